"""Pack a training subset for a short GPU burst into a few tens of MB.

``python -m reasoningcodec.train.pack CORPUS OUT_DIR --mb 28 [--recipe R.json] [--init RUN/last]``
samples clips of the corpus's training split by the recipe's source weights, writes them as 24 kHz
Ogg/Opus (decoded on the device) with a manifest in the corpus format, and optionally an fp16 copy of a
run's codec (its weight average, if it keeps one) and discriminators to start from.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
from pathlib import Path

import soundfile as sf
from safetensors.torch import load_file, save_file

from .checkpoint import fold_ema
from .dataset import read_manifest


def pack(corpus: Path, out: Path, mb: float, weights: dict[str, float], bitrate_kbps: float, seed: int = 0) -> None:
    clips = read_manifest(corpus, "train")
    rng = random.Random(seed)
    by_src: dict[str, list] = {}
    for c in clips:
        by_src.setdefault(c.source, []).append(c)
    for v in by_src.values():
        rng.shuffle(v)
    srcs = sorted(by_src)
    w = [weights.get(s, weights.get("*", 1.0)) for s in srcs]
    budget = mb * 1e6 * 8 / (bitrate_kbps * 1000)  # seconds of audio that fit
    rows = list(csv.DictReader(open(corpus / "manifest.tsv", encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE))
    meta = {r["path"]: r for r in rows}
    (out / "clips").mkdir(parents=True, exist_ok=True)
    chosen, total = [], 0.0
    while total < budget and any(by_src.values()):
        s = rng.choices(srcs, w)[0]
        if not by_src[s]:
            continue
        c = by_src[s].pop()
        chosen.append(c)
        total += c.duration
    with open(out / "manifest.tsv", "w", encoding="utf-8", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0].keys()), delimiter="\t", quoting=csv.QUOTE_NONE,
                            escapechar="\\")
        wr.writeheader()
        for i, c in enumerate(chosen):
            x, sr = sf.read(str(c.path), dtype="float32")
            rel = f"clips/{i:06d}.ogg"
            sf.write(str(out / rel), x, sr, format="OGG", subtype="OPUS", compression_level=0.94)  # ≈ 24–30 kbit/s
            r = dict(meta[str(c.path.relative_to(corpus))])
            r["path"] = rel
            wr.writerow(r)
    print(f"packed {len(chosen)} clips, {total / 3600:.2f} h → {out}")


def pack_init(run_last: Path, out: Path, modules: tuple[str, ...] = ("codec", "disc")) -> None:
    """fp16 copy of a run's ``modules`` (default: the codec and the discriminators; the text head, CTC and
    other heads only matter when their loss weights are non-zero). A run with a weight average
    (``codec_ema``) gives the average as the codec, as :func:`~.export.export_resumable` does."""
    state = fold_ema(load_file(str(run_last / "modules.safetensors")))
    keep = {k: v.half() if v.is_floating_point() else v for k, v in state.items() if k.split(".", 1)[0] in modules}
    if not any(k.startswith("codec.") for k in keep):
        raise ValueError(f"{run_last / 'modules.safetensors'} holds no codec weights")
    (out / "init").mkdir(parents=True, exist_ok=True)
    save_file(keep, str(out / "init" / "modules.safetensors"))
    st = json.loads((run_last / "state.json").read_text())
    (out / "init" / "state.json").write_text(json.dumps({k: st[k] for k in ("step", "audio_seconds", "train_seconds")}))


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m reasoningcodec.train.pack", description=__doc__)
    p.add_argument("corpus", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--mb", type=float, default=28.0)
    p.add_argument("--kbps", type=float, default=30.0, help="expected Opus bitrate incl. container overhead")
    p.add_argument("--recipe", type=Path, help="take source weights from this training recipe")
    p.add_argument("--init", type=Path, help="a run's last/ folder (or a resumable checkpoint) to start the burst from")
    p.add_argument("--init-modules", default="codec,disc",
                   help="comma-separated modules of --init to pack (default: codec,disc)")
    a = p.parse_args()
    if a.out.exists():
        shutil.rmtree(a.out)
    weights = json.loads(a.recipe.read_text()).get("source_weights", {}) if a.recipe else {}
    pack(a.corpus, a.out, a.mb, weights, a.kbps)
    if a.init:
        pack_init(a.init, a.out, tuple(m for m in a.init_modules.split(",") if m))


if __name__ == "__main__":
    main()
