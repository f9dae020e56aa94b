"""Project exceptions: one type per failure family.

Every message says what was expected and what was found, so that the CLI can print it as one line.
"""

from __future__ import annotations


class ReasoningCodecError(Exception):
    """Base class of every error this library raises on purpose."""


class AudioError(ReasoningCodecError, ValueError):
    """Bad audio input: unreadable file, empty, NaN/inf samples, wrong shape, absurd sample rate."""


class BitstreamError(ReasoningCodecError, ValueError):
    """A .rc file or byte string that is corrupt, truncated, of another version or another model."""


class WeightsError(ReasoningCodecError, ValueError):
    """Missing, truncated or mismatching weights, or an invalid config."""


class ConfigError(ReasoningCodecError, ValueError):
    """A config or recipe file (or dict) that is not valid JSON, not a JSON object, has unknown fields or a
    field of the wrong type (see :mod:`reasoningcodec.configio`)."""


class OptionError(ReasoningCodecError, ValueError):
    """An argument outside what it allows: a time span, a chunk length, a bitrate, a device."""


class NoWeightsInstalledError(WeightsError):
    """No trained default weights are installed with this copy of the package."""


class AudioWarning(UserWarning):
    """Audio accepted, but outside what the codec expects: float samples that peak above full scale (1.0)."""
