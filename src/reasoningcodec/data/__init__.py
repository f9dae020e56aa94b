"""Training-corpus builder for the codec (``python -m reasoningcodec.data build OUT_DIR``).

See :mod:`reasoningcodec.data.build` and ``docs/DATA.md``.
"""

from .items import MANIFEST_COLUMNS

__all__ = ["MANIFEST_COLUMNS"]
