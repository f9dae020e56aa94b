"""``python -m reasoningcodec.data`` entry point."""

from .build import main

if __name__ == "__main__":
    raise SystemExit(main())
