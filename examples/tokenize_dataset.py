"""Tokenise a dataset of audio files into a sharded token store for language-model training.

Batched (padded batches with lengths: batch == single is guaranteed by the codec), with progress,
and resumable: each shard is written atomically as ``shard-00000.npz`` (+ its ``.jsonl`` index) and
finished shards are skipped on a re-run. ``index.jsonl`` lists every item with its shard, source path
and frame counts.

    python examples/tokenize_dataset.py AUDIO_DIR_OR_MANIFEST.tsv OUT_DIR [--shard-size 256] [--batch 8]

Each shard holds, per item i: ``reasoning_i [Kr, Tr]``, ``recon_i [Kq, Tq]``, ``num_samples_i``.

A file that cannot be read is skipped and reported (one line each); the rest of its batch is kept. Its
shard lists it in ``shard-NNNNN.failed.jsonl``, ``failed.jsonl`` lists every one, and the script exits
with status 1 while any input has failed (a re-run keeps finished shards: delete a shard to retry it).
Outputs are written to temp files that follow the umask and renamed when complete.

For one token file per input, resumable and sharded over GPUs with ``torchrun``, see
``rcodec tokens FOLDER OUT``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

import reasoningcodec as rc
from reasoningcodec.atomic import temp_next_to

AUDIO = {".wav", ".flac", ".ogg", ".opus", ".mp3"}


def list_inputs(src: Path) -> list[Path]:
    if src.suffix == ".tsv":
        with open(src, encoding="utf-8", newline="") as f:
            return [src.parent / r["path"] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return sorted(f for f in src.rglob("*") if f.suffix.lower() in AUDIO)


def load_clips(codec: rc.ReasoningCodec, paths: list[Path]) -> tuple[list[tuple[Path, np.ndarray]], list[dict]]:
    """Read and resample each file on its own: ``([(path, mono clip at the model rate)], failures)``; a
    file that cannot be read is a failure ``{"path", "error"}``, not a lost batch."""
    clips, failed = [], []
    for p in paths:
        try:
            x, sr = rc.audio.load(p)
            rc.audio.check_peak(float(np.abs(x).max()), f"audio in {p}")  # one bad file, not a bad batch
            clips.append((p, rc.audio.resample(x.mean(axis=0), sr, codec.sample_rate)))
        except (rc.ReasoningCodecError, OSError) as e:
            failed.append({"path": str(p), "error": str(e)})
    return clips, failed


def encode_batch(codec: rc.ReasoningCodec, xs: list[np.ndarray]) -> list[dict]:
    """Mono clips → one padded batch (batch == single) → per clip its tokens, cut to its own frames."""
    lens = [len(x) for x in xs]
    batch = np.zeros((len(xs), max(lens)), dtype=np.float32)
    for i, x in enumerate(xs):
        batch[i, : len(x)] = x
    codes = codec.encode(torch.from_numpy(batch), lengths=lens)
    out = []
    for i, n in enumerate(lens):
        nr, nq = codec.num_frames(n)
        out.append({"reasoning": codes.reasoning[i, :, :nr].cpu().numpy().astype(np.int16),
                    "recon": codes.recon[i, :, :nq].cpu().numpy().astype(np.int16), "num_samples": n})
    return out


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` a temp file next to ``path`` (mode 0666 & ~umask, as a plain open() makes), then rename it."""
    tmp = temp_next_to(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _jsonl(path: Path, rows: list[dict]) -> None:
    _atomic(path, lambda tmp: tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"))


def write_shard(codec: rc.ReasoningCodec, shard: list[Path], path: Path, batch: int, bar: tqdm) -> list[dict]:
    """Encode one shard into ``path`` (+ its ``.jsonl`` index and ``.failed.jsonl``); returns its failures."""
    arrays, index, failed = {}, [], []
    for b in range(0, len(shard), batch):
        clips, bad = load_clips(codec, shard[b:b + batch])
        for f in bad:
            tqdm.write(f"skipped {f['path']}: {f['error']}", file=sys.stderr)
        failed += bad
        items = encode_batch(codec, [x for _, x in clips]) if clips else []
        for (pth, _), it in zip(clips, items):
            i = len(index)
            arrays[f"reasoning_{i}"], arrays[f"recon_{i}"] = it["reasoning"], it["recon"]
            arrays[f"num_samples_{i}"] = np.int64(it["num_samples"])
            index.append({"shard": path.name, "item": i, "path": str(pth), "num_samples": it["num_samples"],
                          "reasoning_frames": it["reasoning"].shape[1], "recon_frames": it["recon"].shape[1]})
        bar.update(min(batch, len(shard) - b))
    _jsonl(path.with_suffix(".jsonl"), index)
    _jsonl(path.with_suffix(".failed.jsonl"), failed)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    _atomic(path, save)  # the shard counts as done only once its .npz is complete
    return failed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", type=Path, help="a folder of audio files or a manifest.tsv with a 'path' column")
    p.add_argument("out_dir", type=Path)
    p.add_argument("--model")
    p.add_argument("--shard-size", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    a = p.parse_args()
    codec = rc.ReasoningCodec.from_pretrained(a.model) if a.model else rc.load()
    files = list_inputs(a.source)
    a.out_dir.mkdir(parents=True, exist_ok=True)
    shards = [files[i:i + a.shard_size] for i in range(0, len(files), a.shard_size)]
    bar = tqdm(total=len(files), unit="file", desc="tokenise")
    failed: list[dict] = []
    for s, shard in enumerate(shards):
        path = a.out_dir / f"shard-{s:05d}.npz"
        if path.exists():  # finished on an earlier run; its failures still count
            bar.update(len(shard))
            done = path.with_suffix(".failed.jsonl")
            failed += [json.loads(x) for x in done.read_text().splitlines()] if done.exists() else []
            continue
        failed += write_shard(codec, shard, path, a.batch, bar)
    bar.close()
    lines = [ln for s in range(len(shards)) for ln in (a.out_dir / f"shard-{s:05d}.jsonl").read_text().splitlines()]
    _atomic(a.out_dir / "index.jsonl", lambda tmp: tmp.write_text("".join(ln + "\n" for ln in lines)))
    _jsonl(a.out_dir / "failed.jsonl", failed)
    meta = {"model_id": codec.config.model_id, "sample_rate": codec.sample_rate,
            "reasoning_frame_rate": codec.reasoning_frame_rate, "recon_frame_rate": codec.recon_frame_rate,
            "num_reasoning_codebooks": codec.num_reasoning_codebooks, "num_recon_codebooks": codec.num_recon_codebooks}
    _atomic(a.out_dir / "meta.json", lambda tmp: tmp.write_text(json.dumps(meta, indent=2)))
    print(f"{len(lines)} of {len(files)} files in {len(shards)} shards → {a.out_dir}")
    if failed:
        print(f"error: {len(failed)} files could not be read (listed in {a.out_dir / 'failed.jsonl'}), "
              f"e.g. {failed[0]['path']}: {failed[0]['error']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
