"""Pin the installed default model's tokens (and the start of its decoded audio) on a fixed clip.

``tests/test_pinned_model.py`` checks them against ``tests/data/pinned_<model_id>.json``: a refactor that
changes what the shipped model computes fails there. ``scripts/release.sh ship`` runs this for a new
default.

    python scripts/pin_tokens.py            # writes tests/data/pinned_<model_id>.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
CLIP = "examples/data/speech_sample.flac"
SECONDS = 3
DECODED = 4800


def pinned(codec) -> dict:
    """Tokens of the first ``SECONDS`` of ``CLIP`` and the first ``DECODED`` decoded samples (rounded to 1e-6)."""
    x, sr = sf.read(ROOT / CLIP, dtype="float32", always_2d=True)
    x = x[: SECONDS * sr, 0]
    with torch.no_grad():
        codes = codec.encode(torch.from_numpy(x), sample_rate=sr)
        y = codec.decode(codes)[0, 0, :DECODED].cpu().numpy()
    return {"model_id": codec.config.model_id, "clip": CLIP, "seconds": SECONDS, "sample_rate": sr,
            "recon": codes.recon[0].tolist(), "reasoning": codes.reasoning[0].tolist(),
            "decoded_first_samples": [round(float(v), 6) for v in y]}


def main() -> int:
    import reasoningcodec

    torch.set_num_threads(1)
    out = pinned(reasoningcodec.load())
    dest = ROOT / "tests" / "data" / f"pinned_{out['model_id']}.json"
    dest.write_text(json.dumps(out) + "\n")
    print(f"wrote {dest.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
