"""Tokenise a dataset of audio files into a sharded token store for language-model training.

Batched (padded batches with lengths: batch == single is guaranteed by the codec), with progress,
and resumable: each shard is written atomically as ``shard-00000.npz`` (+ its ``.jsonl`` index) and
finished shards are skipped on a re-run. ``index.jsonl`` lists every item with its shard, source path
and frame counts.

    python examples/tokenize_dataset.py AUDIO_DIR_OR_MANIFEST.tsv OUT_DIR [--shard-size 256] [--batch 8]

Each shard holds, per item i: ``reasoning_i [Kr, Tr]``, ``recon_i [Kq, Tq]``, ``num_samples_i``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import reasoningcodec as rc

AUDIO = {".wav", ".flac", ".ogg", ".opus", ".mp3"}


def list_inputs(src: Path) -> list[Path]:
    if src.suffix == ".tsv":
        with open(src, encoding="utf-8", newline="") as f:
            return [src.parent / r["path"] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return sorted(f for f in src.rglob("*") if f.suffix.lower() in AUDIO)


def encode_batch(codec: rc.ReasoningCodec, paths: list[Path]) -> list[dict]:
    xs = []
    for p in paths:
        x, sr = rc.audio.load(p)
        xs.append(rc.audio.resample(x.mean(axis=0), sr, codec.sample_rate))
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


def _atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main() -> None:
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
    for s, shard in enumerate(shards):
        path = a.out_dir / f"shard-{s:05d}.npz"
        if path.exists():  # finished on an earlier run
            bar.update(len(shard))
            continue
        arrays, index = {}, []
        for b in range(0, len(shard), a.batch):
            paths = shard[b:b + a.batch]
            try:
                items = encode_batch(codec, paths)
            except rc.AudioError as e:
                tqdm.write(f"skipping a batch: {e}")
                items = []
            for pth, it in zip(paths, items):
                i = len(index)
                arrays[f"reasoning_{i}"], arrays[f"recon_{i}"] = it["reasoning"], it["recon"]
                arrays[f"num_samples_{i}"] = np.int64(it["num_samples"])
                index.append({"shard": path.name, "item": i, "path": str(pth), "num_samples": it["num_samples"],
                              "reasoning_frames": it["reasoning"].shape[1], "recon_frames": it["recon"].shape[1]})
            bar.update(len(paths))
        _atomic(path.with_suffix(".jsonl"), "".join(json.dumps(r) + "\n" for r in index).encode())
        fd, tmp = tempfile.mkstemp(dir=a.out_dir, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)  # the shard counts as done only once its .npz is complete
    bar.close()
    lines = [ln for s in range(len(shards)) for ln in (a.out_dir / f"shard-{s:05d}.jsonl").read_text().splitlines()]
    _atomic(a.out_dir / "index.jsonl", "".join(ln + "\n" for ln in lines).encode())
    meta = {"model_id": codec.config.model_id, "sample_rate": codec.sample_rate,
            "reasoning_frame_rate": codec.reasoning_frame_rate, "recon_frame_rate": codec.recon_frame_rate,
            "num_reasoning_codebooks": codec.num_reasoning_codebooks, "num_recon_codebooks": codec.num_recon_codebooks}
    (a.out_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    print(f"{len(files)} files in {len(shards)} shards → {a.out_dir}")


if __name__ == "__main__":
    main()
