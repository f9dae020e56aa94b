"""May a run's state become the committed resumable checkpoint? (git keeps every weight version forever)

Rules: the run must be at least ``--min-steps`` (3,000) steps past the committed checkpoint, and the
checkpoint must not duplicate the weights the shipped default already holds: when the run's codec is the
default's weights, the export must leave them out (``python -m reasoningcodec.train RECIPE --export DEST
--codec-from DEFAULT``, which names the default in the checkpoint's ``state.json`` instead); pass
``--by-reference`` to say it will.

    python scripts/checkpoint_policy.py RUN_DIR checkpoints/codec_v1 src/reasoningcodec/pretrained/default
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def check(run_dir: Path, committed: Path, default: Path | None, min_steps: int, by_reference: bool = False) -> list[str]:
    """The reasons the export is refused (empty: allowed)."""
    problems = []
    new = json.loads((run_dir / "last" / "state.json").read_text())["step"]
    old = json.loads((committed / "state.json").read_text())["step"] if (committed / "state.json").exists() else None
    if old is not None and new - old < min_steps:
        problems.append(f"{run_dir} is at step {new}, only {new - old} past the committed {committed} "
                        f"(step {old}); commit a checkpoint every {min_steps} steps at most")
    if default is not None and not by_reference and (default / "model.safetensors").exists():
        from safetensors.torch import load_file

        shipped = load_file(str(default / "model.safetensors"))
        mine = load_file(str(run_dir / "last" / "codec" / "model.safetensors"))
        if shipped.keys() == mine.keys() and all(
                (shipped[k].float() - mine[k].float()).abs().max() <= 1e-3 * (mine[k].float().abs().max() + 1e-6)
                for k in shipped):
            problems.append(f"{run_dir}/last/codec holds the weights the shipped default already has "
                            "(export with --codec-from to store them once)")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("committed", type=Path)
    p.add_argument("default", type=Path, nargs="?")
    p.add_argument("--min-steps", type=int, default=3000)
    p.add_argument("--by-reference", action="store_true",
                   help="the export leaves a codec equal to the default out (--codec-from)")
    a = p.parse_args(argv)
    problems = check(a.run_dir, a.committed, a.default, a.min_steps, a.by_reference)
    for msg in problems:
        print(f"checkpoint_policy: {msg}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
