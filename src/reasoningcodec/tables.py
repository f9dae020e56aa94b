"""Build the static entropy-coding tables of a model from token statistics of training audio.

``python -m reasoningcodec.tables MODEL_DIR --corpus data/corpus [--minutes 20]`` encodes a random
sample of the corpus's *training* split with the model, counts every codebook's symbols and writes
``MODEL_DIR/entropy.safetensors``. Tables belong to one set of weights: rebuild them whenever the
weights change.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from .bitstream import EntropyTables
from .hub import TABLES_NAME
from .model import ReasoningCodec


def count_corpus_tokens(codec, corpus: Path, minutes: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Token counts ``([Kr, Nr], [Kq, Nq])`` over about ``minutes`` of training clips."""
    rows = []
    with open(corpus / "manifest.tsv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if row["split"] == "train":
                rows.append(row)
    random.Random(seed).shuffle(rows)
    c = codec.config
    cr = np.zeros((c.num_reasoning_codebooks, c.reasoning_codebook_size), dtype=np.int64)
    cq = np.zeros((c.num_recon_codebooks, c.recon_codebook_size), dtype=np.int64)
    budget = minutes * 60.0
    bar = tqdm(total=int(budget), unit="s", desc="count tokens")
    for row in rows:
        if budget <= 0:
            break
        x, sr = sf.read(str(corpus / row["path"]), dtype="float32", always_2d=True)
        with torch.no_grad():
            codes = codec.encode(torch.from_numpy(x.mean(axis=1)), sample_rate=sr)
        for k in range(c.num_reasoning_codebooks):
            cr[k] += np.bincount(codes.reasoning[0, k].cpu().numpy(), minlength=c.reasoning_codebook_size)
        for k in range(c.num_recon_codebooks):
            cq[k] += np.bincount(codes.recon[0, k].cpu().numpy(), minlength=c.recon_codebook_size)
        d = len(x) / sr
        budget -= d
        bar.update(int(d))
    bar.close()
    return cr, cq


def build_tables(model_dir: Path, corpus: Path, minutes: float = 20.0) -> EntropyTables:
    codec = ReasoningCodec.from_pretrained(model_dir)
    cr, cq = count_corpus_tokens(codec, corpus, minutes)
    tables = EntropyTables.from_counts(cr, cq)
    tables.save(model_dir / TABLES_NAME)
    return tables


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m reasoningcodec.tables", description=__doc__)
    p.add_argument("model_dir", type=Path)
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--minutes", type=float, default=20.0)
    a = p.parse_args()
    t = build_tables(a.model_dir, a.corpus, a.minutes)
    print(f"wrote {a.model_dir / TABLES_NAME} ({t!r})")


if __name__ == "__main__":
    main()
