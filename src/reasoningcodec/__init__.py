"""reasoningcodec: audio ⇄ text-aligned reasoning tokens (5 Hz) + reconstruction tokens (12.5 Hz)."""

from .codes import Codes
from .config import CodecConfig
from .errors import (AudioError, AudioWarning, BitstreamError, ConfigError, NoWeightsInstalledError, OptionError,
                     ReasoningCodecError, WeightsError)
from .compress import compress, decompress
from .model import ReasoningCodec, load

__version__ = "0.1.0"

__all__ = [
    "AudioError", "AudioWarning", "BitstreamError", "Codes", "CodecConfig", "ConfigError", "NoWeightsInstalledError",
    "OptionError", "ReasoningCodec", "ReasoningCodecError", "WeightsError", "compress", "decompress", "load",
    "__version__",
]
