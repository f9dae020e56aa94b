"""Config dataclasses from JSON, for every config class of both packages, with one error type.

``read_object`` reads a JSON file (or, where a class allows it, JSON text) and checks it is an object;
``check_fields`` rejects unknown fields by name; ``build`` does both checks on a dict and makes the
dataclass. Every problem is a :class:`~reasoningcodec.errors.ConfigError` (a ``ValueError``) whose message
names the config and its file: ``invalid codec config runs/a/config.json: unknown field(s) ['hop']``.
A file that cannot be opened raises the ``OSError`` that ``open`` raises. What a class checks beyond this
(value ranges, field types, legacy fields) stays in the class.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterable, TypeVar

from .errors import ConfigError

T = TypeVar("T")

#: How a JSON value's kind is named in messages (the Python type json.loads gives it → its JSON name).
_JSON_KINDS = {"list": "an array", "str": "a string", "int": "a number", "float": "a number", "bool": "a boolean",
               "NoneType": "null"}


def config_error(what: str, source: str | None, problem: str) -> ConfigError:
    """The error for ``problem`` in the config ``what`` (e.g. ``"codec config"``) read from ``source``
    (a file name, ``"(JSON text)"``, or None for a dict given in code)."""
    return ConfigError(f"invalid {what} {source}: {problem}" if source else f"invalid {what}: {problem}")


def read_object(path_or_text: str | Path, what: str, text_ok: bool = False) -> tuple[dict[str, Any], str]:
    """The JSON object in the file ``path_or_text`` and the name messages give it (the path).

    With ``text_ok``, a string whose first non-blank character is ``{`` is the JSON text itself (named
    ``(JSON text)``). Raises :class:`ConfigError` for text that is not UTF-8, not JSON (with line and
    column) or not an object; ``OSError`` (e.g. ``FileNotFoundError``) for a file that cannot be read.
    """
    s = str(path_or_text)
    if text_ok and s.lstrip().startswith("{"):
        source, text = "(JSON text)", s
    else:
        source = s
        try:
            text = Path(s).read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise config_error(what, source, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise config_error(what, source, f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    require_object(d, what, source)
    return d, source


def require_object(d: Any, what: str, source: str | None = None) -> dict[str, Any]:
    """``d`` itself if it is a dict (a JSON object); else :class:`ConfigError`."""
    if not isinstance(d, dict):
        kind = _JSON_KINDS.get(type(d).__name__, type(d).__name__)
        raise config_error(what, source, f"expected a JSON object, got {kind}")
    return d


def check_fields(cls: type, d: Any, what: str, source: str | None = None, also: Iterable[str] = ()) -> dict[str, Any]:
    """``d`` itself if it is a dict whose keys are all fields of the dataclass ``cls`` (or in ``also``, e.g.
    legacy fields the class maps itself); else :class:`ConfigError` naming the unknown keys."""
    require_object(d, what, source)
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)} - set(also))
    if unknown:
        raise config_error(what, source, f"unknown field(s) {unknown}")
    return d


def build(cls: type[T], d: Any, what: str, source: str | None = None) -> T:
    """The dataclass ``cls(**d)`` once ``d`` passed :func:`check_fields` (the class's own checks then run
    in its constructor, with their own errors)."""
    return cls(**check_fields(cls, d, what, source))
