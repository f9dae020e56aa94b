"""``python -m uniaudio_lm.recipes {build,tokenize,summary,list} ...``"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ap = argparse.ArgumentParser(prog="python -m uniaudio_lm.recipes", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="synthesise clips and metadata")
    b.add_argument("out_dir", type=Path)
    b.add_argument("--recipes", default="", help="comma-separated recipe ids (default: all; see 'list')")
    b.add_argument("--scale", type=float, default=1.0, help="row-count multiplier (1.0 ~ 4,000 train rows)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--force", action="store_true", help="rebuild recipes that already exist")
    b.add_argument("--tuxpaint-dir", type=Path, default=None, help="Tux Paint stamps folder")
    b.add_argument("--fsdd-dir", type=Path, default=None, help="shared/data/train/fsdd folder")
    t = sub.add_parser("tokenize", help="encode clips with the codec and write LM manifests")
    t.add_argument("out_dir", type=Path)
    t.add_argument("--model", default=None, help="codec folder or Hub id (default: reasoningcodec.load())")
    t.add_argument("--recon-codebooks", type=int, default=None, help="keep the first N reconstruction codebooks")
    t.add_argument("--force", action="store_true", help="re-encode everything if the codec changed")
    s = sub.add_parser("summary", help="row counts per split and task")
    s.add_argument("out_dir", type=Path)
    c = sub.add_parser("check", help="verify clips, split disjointness and held-out sound classes")
    c.add_argument("out_dir", type=Path)
    sub.add_parser("list", help="recipe ids and their tasks")
    args = ap.parse_args(argv)

    from reasoningcodec import ReasoningCodecError

    from . import RECIPES, build, check, summary, tokenize

    try:
        if args.cmd == "build":
            opts = {}
            if args.tuxpaint_dir is not None:
                opts["tuxpaint_dir"] = str(args.tuxpaint_dir)
            if args.fsdd_dir is not None:
                opts["fsdd_dir"] = str(args.fsdd_dir)
            names = [n.strip() for n in args.recipes.split(",") if n.strip()]
            build(args.out_dir, names or None, scale=args.scale, seed=args.seed, force=args.force, options=opts)
            print(summary(args.out_dir))
        elif args.cmd == "tokenize":
            tokenize(args.out_dir, model=args.model, recon_codebooks=args.recon_codebooks, force=args.force)
        elif args.cmd == "summary":
            print(summary(args.out_dir))
        elif args.cmd == "check":
            problems = check(args.out_dir)
            print("\n".join(problems) if problems else f"{args.out_dir}: no problems found")
            return 1 if problems else 0
        else:
            for r in RECIPES.values():
                print(f"{r.name:18s} {', '.join(r.tasks):45s} {r.summary}")
    except (ValueError, FileNotFoundError, ReasoningCodecError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
