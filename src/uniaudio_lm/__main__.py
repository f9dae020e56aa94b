"""``python -m uniaudio_lm``: the ``uniaudio`` command line (see :mod:`uniaudio_lm.cli`)."""

import sys

from .cli import main

sys.exit(main())
