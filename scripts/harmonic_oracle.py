"""How much better would a harmonic-source decoder be with the true F0? (the oracle bound)

Scores one harmonic-source codec (``harmonic_source: true``) on the held-out speech clips of the training
corpus (the clips ``heldout_eval.py`` uses) three ways:

* ``predicted`` — as shipped: the decoder predicts F0 and voicing from the tokens;
* ``oracle`` — the decoder's F0 head replaced by YIN on the input (what sending F0 in the tokens would give
  at best);
* ``off`` — the harmonic term removed (gain 0): what the source adds at all.

    python scripts/harmonic_oracle.py runs/arms/harmonic/snap/cpu2400 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT / "scripts", ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
from benchmarks.metrics import evaluate  # noqa: E402
from bottleneck import harmonicity  # noqa: E402
from heldout_eval import add_clip_args, speech_clips  # noqa: E402

from reasoningcodec import ReasoningCodec  # noqa: E402
from reasoningcodec.train.dataset import ClipStore, read_manifest  # noqa: E402
from reasoningcodec.train.pitch import yin  # noqa: E402


@contextlib.contextmanager
def f0_mode(codec: ReasoningCodec, mode: str, x: torch.Tensor) -> Iterator[None]:
    """Within the block the codec decodes ``x``'s codes with the given F0 mode."""
    c = codec.config
    head, gain = codec.f0_head, codec.harm_gain
    saved_forward = head.forward
    saved = gain.weight.detach().clone(), gain.bias.detach().clone()
    if mode == "oracle":
        f0, voiced = yin(x[None], c.sample_rate, c.hop_length, c.f0_min, c.f0_max)

        def forward(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            n = feats.shape[1] * c.stem_stride
            f = torch.nn.functional.pad(f0, (0, max(0, n - f0.shape[1])))[:, :n]
            v = torch.nn.functional.pad(voiced.float(), (0, max(0, n - voiced.shape[1])))[:, :n]
            return f, v * 2 - 1

        head.forward = forward  # type: ignore[method-assign]
    elif mode == "off":
        with torch.no_grad():
            gain.weight.zero_()
            gain.bias.zero_()
    try:
        yield
    finally:
        head.forward = saved_forward  # type: ignore[method-assign]
        with torch.no_grad():
            gain.weight.copy_(saved[0])
            gain.bias.copy_(saved[1])


def score(codec: ReasoningCodec, corpus: Path, n: int, max_seconds: float, seed: int) -> dict:
    rate = codec.sample_rate
    store = ClipStore(rate)
    rows: dict[str, dict[str, list[float]]] = {m: {"pesq_wb": [], "stoi": [], "cpp": []}
                                               for m in ("predicted", "oracle", "off")}
    for clip in speech_clips(read_manifest(corpus, "val"), n, seed):
        x = store.get(clip)[: int(max_seconds * rate)]
        x = (x / (np.abs(x).max() + 1e-6) * 0.5).astype(np.float32)
        xt = torch.from_numpy(x)
        codes = codec.encode(xt)
        for mode, acc in rows.items():
            with f0_mode(codec, mode, xt), torch.no_grad():
                y = codec.decode(codes).reshape(-1).numpy()
            s = evaluate(x, rate, y, rate, visqol_mode=None, metrics=("stoi", "pesq_wb")).scores
            for k in ("pesq_wb", "stoi"):
                if s[k].ok:
                    acc[k].append(s[k].value)
            acc["cpp"].append(harmonicity(y, x, rate))
    return {m: {k: round(float(np.mean(v)), 4) for k, v in acc.items()} | {"clips": len(acc["stoi"])}
            for m, acc in rows.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path, help="a harmonic-source codec folder (from_pretrained)")
    add_clip_args(p)
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    codec = ReasoningCodec.from_pretrained(a.model).eval()
    if codec.source is None:
        raise SystemExit(f"{a.model} has no harmonic source (config harmonic_source is false)")
    out = {"model": str(a.model), **score(codec, a.corpus, a.speech_clips, a.max_seconds, a.seed)}
    print(json.dumps(out, indent=2))
    if a.json:
        a.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
