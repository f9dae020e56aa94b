"""Reconstruction-quality benchmark: the project's evaluation script.

For every clip and codec: the clip is read at its own rate and **mixed to mono** (channels averaged);
that mono signal is the reference. It is resampled (soxr HQ) to the codec's rate, encoded, decoded, and
the output is scored against the reference by :func:`benchmarks.metrics.evaluate` (delay removed
within ±100 ms: waveform cross-correlation for phase-keeping codecs, band envelopes for codecs that
resynthesise the waveform; each metric at its own rate, see ``benchmarks/metrics.py``). ViSQOL runs
in speech mode (16 kHz) on the speech category and in audio mode (48 kHz) on music and sound.

Writes ``reconstruction.md`` (one table per category), ``reconstruction.json`` (per-clip scores) and
``quality_vs_bitrate_<category>.png`` into ``--out``.

    python benchmarks/reconstruction.py --codecs opus6,opus12,codec2_3200,codec2_1300,mp3_8
    python benchmarks/reconstruction.py --codecs ours,encodec,mimi,xcodec --model runs/codec_v1/export

Codec names: ``identity``, ``ours`` (``--ours-codebooks``), ``ours_k<N>``, ``opus6``, ``opus12``,
``codec2_3200``, ``codec2_1300``, ``mp3_8``, ``encodec_1.5|3|6``, ``mimi_8``, ``xcodec_1|2|4``, and the
groups ``classical``, ``neural``, ``encodec``, ``mimi``, ``xcodec``, ``all``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.bench_report import markdown, plot, summarize, write_json  # noqa: E402
from benchmarks.codec_adapters import Codec, OursCodec, Unavailable, make_codecs  # noqa: E402
from benchmarks import metrics  # noqa: E402

DEFAULT_MANIFEST = next((p for p in (ROOT.parent / "shared/data/eval/manifest.tsv",) if p.exists()),
                        Path("/work/shared/data/eval/manifest.tsv"))
CATEGORIES = ("speech", "music", "sound")
USAGES = {"eval", "eval-internal-only"}
SKIP_DIRS = {"visqol_anchors"}
AUDIO_EXT = {".flac", ".wav", ".ogg", ".mp3", ".opus"}
MONO_NOTE = "Stereo inputs are mixed to mono (channels averaged) before coding; scores are on mono."


@dataclass(frozen=True)
class Clip:
    path: Path
    name: str  # shown in the JSON: the manifest path, or the path under --folder
    category: str


def clips_from_manifest(manifest: Path, data_root: Path | None = None) -> list[Clip]:
    """Rows with usage ``eval``/``eval-internal-only``, outside ``visqol_anchors``.

    Manifest paths (``eval/speech/x.flac``) are relative to the data root: by default the manifest's
    grandparent folder (``/work/shared/data`` for ``/work/shared/data/eval/manifest.tsv``).
    """
    root = data_root or manifest.resolve().parent.parent
    out = []
    with open(manifest, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            rel = row["path"]
            if row.get("usage") not in USAGES or SKIP_DIRS & set(Path(rel).parts):
                continue
            out.append(Clip(root / rel, rel, row["category"]))
    return out


def clips_from_folder(folder: Path) -> list[Clip]:
    """Every audio file under ``folder`` (``visqol_anchors`` skipped); category = parent folder name
    when it is speech/music/sound, else ``other``."""
    out = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() not in AUDIO_EXT or SKIP_DIRS & set(p.relative_to(folder).parts):
            continue
        out.append(Clip(p, str(p.relative_to(folder)), p.parent.name if p.parent.name in CATEGORIES else "other"))
    return out


def load_mono(path: Path) -> tuple[np.ndarray, int]:
    """``[T]`` float64 mono (channels averaged) at the file's own rate."""
    x, sr = sf.read(path, dtype="float64", always_2d=True)
    return x.mean(axis=1), int(sr)


def code_and_score(codec: Codec, clip: Clip, ref: np.ndarray, sr: int, visqol: bool) -> dict[str, Any]:
    """Run one clip through one codec and score it; failures become a record with ``error``."""
    rec: dict[str, Any] = {"clip": clip.name, "category": clip.category, "codec": codec.label,
                           "family": codec.name, "setting": codec.setting, "nominal_kbps": codec.nominal_kbps,
                           "input_rate": sr, "codec_rate": codec.sample_rate, "duration_s": len(ref) / sr,
                           "error": None, "scores": {}, "reasons": {}}
    try:
        x = metrics.resample(ref, sr, codec.sample_rate).astype(np.float32)
        t0 = time.perf_counter()
        enc = codec.encode(x)
        t1 = time.perf_counter()
        y = codec.decode(enc)
        t2 = time.perf_counter()
    except Exception as e:
        rec["error"] = f"{type(e).__name__}: {str(e)[:200]}"
        rec["scores"] = {m: float("nan") for m in metrics.METRICS}
        return rec
    mode = ("speech" if clip.category == "speech" else "audio") if visqol else None
    ev = metrics.evaluate(ref, sr, y, codec.output_rate, visqol_mode=mode)
    rec.update(bits=enc.bits, kbps=codec.real_kbps(enc), encode_s=t1 - t0, decode_s=t2 - t1,
               lag_samples=ev.lag_samples, lag_ms=ev.lag_ms)
    rec["scores"] = {k: s.value for k, s in ev.scores.items()}
    rec["reasons"] = {k: s.reason for k, s in ev.scores.items() if s.reason}
    return rec


def run(clips: list[Clip], codecs: list[Codec], visqol: bool = True, progress: bool = True) -> list[dict[str, Any]]:
    """Per-clip records for every (clip, codec) pair."""
    from tqdm import tqdm

    records = []
    bar = tqdm(total=len(clips) * len(codecs), disable=not progress, unit="run", dynamic_ncols=True)
    for clip in clips:
        ref, sr = load_mono(clip.path)
        for codec in codecs:
            bar.set_description(f"{codec.label} {Path(clip.name).stem[:28]}")
            records.append(code_and_score(codec, clip, ref, sr, visqol))
            bar.update()
    bar.close()
    return records


def _ints(s: str) -> list[int]:
    vals = [int(v) for v in s.split(",") if v.strip()]
    if not vals or not all(1 <= v <= 8 for v in vals):
        raise argparse.ArgumentTypeError("expected a comma list of codebook counts in 1..8")
    return vals


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--manifest", type=Path, default=None,
                     help=f"eval manifest TSV (default {DEFAULT_MANIFEST})")
    src.add_argument("--folder", type=Path, help="score every audio file under this folder instead")
    p.add_argument("--data-root", type=Path, help="folder the manifest paths are relative to "
                   "(default: the manifest's grandparent)")
    p.add_argument("--codecs", default="ours,classical",
                   help="comma list of codec names or groups (default ours,classical)")
    p.add_argument("--ours-codebooks", type=_ints, default=[8, 4], help="recon codebooks for 'ours' (default 8,4)")
    p.add_argument("--coding", choices=["auto", "packed"], default="auto", help="bitstream coding for ours")
    p.add_argument("--model", help="folder for ReasoningCodec.from_pretrained (default: installed weights)")
    p.add_argument("--weights-dir", help="folder with local copies of the EnCodec/Mimi/XCodec checkpoints "
                   "(default: the Hugging Face cache, offline)")
    p.add_argument("--categories", default=",".join(CATEGORIES), help="comma list (default all)")
    p.add_argument("--max-clips", type=int, default=0, help="at most this many clips per category (0 = all)")
    p.add_argument("--no-visqol", action="store_true", help="skip ViSQOL (the slowest metric)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="output folder")
    p.add_argument("--random-weights-smoke", action="store_true",
                   help="TESTS ONLY: random-initialised (tiny) neural models; output goes to --out/smoke")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    manifest = None if a.folder else (a.manifest or DEFAULT_MANIFEST)
    clips = clips_from_folder(a.folder) if a.folder else clips_from_manifest(manifest, a.data_root)
    cats = [c.strip() for c in a.categories.split(",") if c.strip()]
    clips = [c for c in clips if c.category in cats or (c.category == "other" and a.folder)]
    if a.max_clips:
        kept: list[Clip] = []
        for c in clips:
            if sum(k.category == c.category for k in kept) < a.max_clips:
                kept.append(c)
        clips = kept
    if not clips:
        print("no clips to score", file=sys.stderr)
        return 2
    built = make_codecs([n.strip() for n in a.codecs.split(",") if n.strip()], ours_codebooks=a.ours_codebooks,
                        model_dir=a.model, weights_dir=a.weights_dir,
                        random_weights_smoke=a.random_weights_smoke, coding=a.coding)
    codecs = [c for c in built if isinstance(c, Codec)]
    unavailable = [{"label": u.label, "reason": u.reason} for u in built if isinstance(u, Unavailable)]
    for u in unavailable:
        print(f"skipping {u['label']}: {u['reason']}", file=sys.stderr)
    out = a.out / "smoke" if a.random_weights_smoke else a.out
    out.mkdir(parents=True, exist_ok=True)
    records = run(clips, codecs, visqol=not a.no_visqol, progress=not a.quiet)
    summary = summarize(records)
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "source": str(a.folder or manifest), "n_clips": len(clips), "mono": MONO_NOTE,
            "metrics": "delay removed first (±100 ms, integer lag: waveform cross-correlation peak when the normalised "
            "correlation is ≥ 0.5, else band-envelope alignment at 1 ms refined by the waveform); resampling is soxr HQ; "
            "PESQ-WB at 16 kHz, PESQ-NB at 8 kHz, STOI at 10 kHz, log-mel L1 distance and SI-SDR at 24 kHz "
            "(definitions in benchmarks/metrics.py).",
            "visqol": "not run (--no-visqol)" if a.no_visqol else metrics.visqol_status(),
            "random_weights_smoke": a.random_weights_smoke, "codecs": [c.label for c in codecs],
            "ours_model_id": next((c.model.config.model_id for c in codecs if isinstance(c, OursCodec)), None),
            "torch_threads": _torch_threads()}
    text = markdown(summary, unavailable, [c.label for c in codecs], meta)
    if a.random_weights_smoke:
        text = "> RANDOM-WEIGHTS SMOKE RUN: these numbers are meaningless and must not be reported.\n\n" + text
    (out / "reconstruction.md").write_text(text)
    write_json(out / "reconstruction.json", {"meta": meta, "unavailable": unavailable, "summary": summary,
                                             "clips": records})
    pngs = plot(summary, out)
    print(text)
    print(f"wrote {out / 'reconstruction.md'}, {out / 'reconstruction.json'}, " + ", ".join(p.name for p in pngs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
