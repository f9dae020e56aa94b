"""Compress every audio file in a folder to .rc files (and optionally decode them back).

    python examples/compress_folder.py IN_DIR OUT_DIR [--model DIR] [--recon-codebooks N] [--decode]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

import reasoningcodec as rc
from reasoningcodec.compress import CompressOptions, compress_to

AUDIO = {".wav", ".flac", ".ogg", ".opus", ".mp3"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("in_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--model", help="model folder (default: the embedded model)")
    p.add_argument("--recon-codebooks", type=int)
    p.add_argument("--decode", action="store_true", help="also write OUT_DIR/<name>.decoded.wav")
    a = p.parse_args()
    codec = rc.ReasoningCodec.from_pretrained(a.model) if a.model else rc.load()
    files = sorted(f for f in a.in_dir.rglob("*") if f.suffix.lower() in AUDIO)
    a.out_dir.mkdir(parents=True, exist_ok=True)
    total_in = total_out = 0
    for f in tqdm(files, desc="compress", unit="file"):
        out = a.out_dir / (f.relative_to(a.in_dir).with_suffix(".rc"))
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(out, "wb") as fh:
                header = compress_to(fh, codec, f, options=CompressOptions(recon_codebooks=a.recon_codebooks))
        except rc.ReasoningCodecError as e:
            out.unlink(missing_ok=True)
            tqdm.write(f"skipped {f}: {e}")
            continue
        total_in += f.stat().st_size
        total_out += out.stat().st_size
        if a.decode:
            wav, sr = rc.decompress(out.read_bytes(), codec)
            rc.audio.save(out.with_suffix(".decoded.wav"), wav, sr)
        secs = header.num_samples / header.sample_rate
        tqdm.write(f"{f.name}: {secs:.1f} s → {out.stat().st_size} B ({8 * out.stat().st_size / secs / 1000:.2f} kbit/s)")
    if total_out:
        print(f"{len(files)} files: {total_in} B → {total_out} B ({total_in / total_out:.0f}× smaller)")


if __name__ == "__main__":
    main()
