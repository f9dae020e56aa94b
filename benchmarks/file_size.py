"""File size of ``.rc`` files on the eval clips: adaptive (the default) vs rANS vs bit-packed vs the raw
bitrate.

For every eval clip (mixed to mono), compresses with the default model (or ``--model``) in the three
coding modes (``coding="auto"``: each chunk rANS or bit-packed, whichever is smaller; ``"rans"``;
``"packed"``) and reports bits per second of audio, including all container overhead (header, chunk
records, index, footer), against the model's raw bitrate.

    python benchmarks/file_size.py [--model DIR] [--manifest ../shared/data/eval/manifest.tsv]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from tqdm import tqdm

import reasoningcodec as rc

MANIFEST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "manifest.tsv"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model")
    p.add_argument("--manifest", type=Path, default=MANIFEST)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "file_size.json")
    a = p.parse_args()
    codec = rc.ReasoningCodec.from_pretrained(a.model) if a.model else rc.load()
    rows = [r for r in csv.DictReader(open(a.manifest, encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE)
            if r["usage"] in ("eval", "eval-internal-only") and "visqol_anchors" not in r["path"]]
    res: dict[str, dict[str, float]] = {}
    for k in (codec.num_recon_codebooks, 4):
        sizes = {"auto": 0, "rans": 0, "packed": 0}
        secs = 0.0
        for r in tqdm(rows, desc=f"{k} codebooks"):
            x, sr = rc.audio.load(a.manifest.parent.parent / r["path"])
            x = x.mean(axis=0, keepdims=True)
            for mode in sizes:
                sizes[mode] += len(rc.compress(x, codec, sample_rate=sr, recon_codebooks=k,
                                               coding=mode if codec.entropy_tables is not None else "packed"))
            secs += x.shape[1] / sr
        raw = codec.config.bitrate_with(k)
        res[f"{k}_codebooks"] = {"raw_bps": raw, "packed_bps": 8 * sizes["packed"] / secs,
                                 "rans_bps": 8 * sizes["rans"] / secs, "auto_bps": 8 * sizes["auto"] / secs,
                                 "seconds": secs, "clips": len(rows)}
    out = {"model_id": codec.config.model_id, "date": time.strftime("%Y-%m-%d"),
           "has_entropy_tables": codec.entropy_tables is not None, "results": res}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    print("| recon codebooks | raw bit/s | packed file bit/s | rANS file bit/s | default (adaptive) file bit/s |")
    print("|---|---|---|---|---|")
    for k, v in res.items():
        cells = [f"{v[m]:.0f} ({100 * (v[m] / v['raw_bps'] - 1):+.1f}%)" for m in ("packed_bps", "rans_bps", "auto_bps")]
        print(f"| {k.split('_')[0]} | {v['raw_bps']:.0f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
