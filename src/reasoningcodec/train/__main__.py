"""``python -m reasoningcodec.train RECIPE.json [--steps N] [--out DIR] [--max-minutes M] [--device cuda]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .config import TrainConfig
from .export import export_resumable
from .trainer import train


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m reasoningcodec.train")
    p.add_argument("recipe", help="training recipe JSON (see recipes/)")
    p.add_argument("--steps", type=int, help="total steps (overrides the recipe)")
    p.add_argument("--out", dest="out_dir", help="run folder (overrides the recipe)")
    p.add_argument("--corpus", help="corpus folder (overrides the recipe)")
    p.add_argument("--init-from", dest="init_from", help="resumable checkpoint folder to start from")
    p.add_argument("--threads", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--max-minutes", dest="max_minutes", type=float,
                   help="stop (and save) after this much training time (overrides the recipe)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--export", metavar="DEST", help="only export OUT/last as an fp16 resumable checkpoint to DEST")
    p.add_argument("--codec-from", dest="codec_from", metavar="MODEL_DIR",
                   help="with --export: leave the codec out when it is exactly this shipped model's weights")
    p.add_argument("--ship", nargs=2, metavar=("CODEC_DIR", "MODEL_ID"),
                   help="only write CODEC_DIR (e.g. OUT/best) as the package's default model, with entropy tables")
    a = p.parse_args()
    cfg = TrainConfig.from_json(a.recipe, steps=a.steps, out_dir=a.out_dir, corpus=a.corpus, init_from=a.init_from,
                                threads=a.threads, batch_size=a.batch_size,
                                max_minutes=a.max_minutes)
    if a.ship:
        from .export import export_default

        dest = Path(__file__).resolve().parents[1] / "pretrained" / "default"
        export_default(Path(a.ship[0]), dest, a.ship[1], Path(cfg.corpus))
        print(f"shipped {a.ship[0]} as {dest} ({a.ship[1]})")
        return
    if a.export:
        export_resumable(Path(cfg.out_dir), Path(a.export), Path(a.codec_from) if a.codec_from else None)
        return
    state = train(cfg, device=a.device, quiet=a.quiet)
    print(f"done: step {state['step']}, {state['audio_seconds'] / 3600:.2f} h of audio seen")


if __name__ == "__main__":
    main()
