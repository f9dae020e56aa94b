"""Peak memory and speed of ``rcodec compress``/``decompress`` on a long file (default 60 minutes).

Writes a synthetic mono 24 kHz file of ``--minutes`` minutes (tones, chirps and noise bursts, written
block by block), then runs each CLI command in its own process and reads that process's peak RSS
(``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a fresh parent per command). It also checks that the
decoded file has the input's length.

    python benchmarks/long_file.py [--minutes 60] [--model DIR] [--keep]

Without ``--model`` a randomly initialised default-size model is used: memory and speed do not depend
on the weights' values.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

MEASURE = ("import resource, subprocess, sys, time; t = time.time(); "
           "r = subprocess.run(sys.argv[1:]); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.time() - t, r.returncode)")


def write_signal(path: Path, minutes: float, sr: int = 24000) -> int:
    rng = np.random.default_rng(0)
    n_total = int(minutes * 60 * sr)
    with sf.SoundFile(str(path), "w", sr, 1, subtype="PCM_16") as f:
        done = 0
        while done < n_total:
            n = min(sr * 10, n_total - done)
            t = (done + np.arange(n)) / sr
            f0 = 120 + 80 * np.sin(2 * np.pi * 0.3 * t)
            x = 0.2 * np.sin(2 * np.pi * np.cumsum(f0) / sr) + 0.02 * rng.standard_normal(n)
            x *= (np.sin(2 * np.pi * 2 * t) > -0.3)
            f.write(x.astype(np.float32))
            done += n
    return n_total


def measure(cmd: list[str]) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, check=True)
    rss_kb, secs, rc = out.stdout.split()
    if int(rc) != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{out.stderr}")
    return int(rss_kb) / 1024, float(secs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--model")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "long_file.json")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as td:
        d = Path(td)
        model = a.model
        if model is None:
            import torch

            from reasoningcodec import ReasoningCodec

            torch.manual_seed(0)
            model = str(d / "model")
            ReasoningCodec().save_pretrained(model)
        n = write_signal(d / "long.wav", a.minutes)
        rcodec = [sys.executable, "-m", "reasoningcodec"]
        c_rss, c_s = measure(rcodec + ["compress", str(d / "long.wav"), str(d / "long.rc"), "--model", model, "-q"])
        d_rss, d_s = measure(rcodec + ["decompress", str(d / "long.rc"), str(d / "out.wav"), "--model", model, "-q"])
        info = sf.info(str(d / "out.wav"))
        assert info.frames == n, (info.frames, n)
        size = (d / "long.rc").stat().st_size
    res = {"minutes": a.minutes, "compress_peak_rss_mib": round(c_rss, 1), "compress_seconds": round(c_s, 1),
           "decompress_peak_rss_mib": round(d_rss, 1), "decompress_seconds": round(d_s, 1),
           "rc_bytes": size, "kbit_per_s": round(8 * size / (a.minutes * 60) / 1000, 4),
           "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
           "date": time.strftime("%Y-%m-%d"), "model": "random-init default config" if a.model is None else a.model}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
