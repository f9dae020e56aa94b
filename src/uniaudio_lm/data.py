"""Example sources for training: text files, a JSONL manifest of codec codes, and synthetic data.

A source is a callable ``rng -> Example`` (random access with replacement), so that the batch of every
step is a pure function of ``(seed, rank, step)`` and training resumes exactly.

Manifest lines (one JSON object each; code files are safetensors with ``reasoning [Kr, Tr]`` and
``recon [Kq, Tq]`` LongTensors, e.g. written from :meth:`reasoningcodec.ReasoningCodec.encode`). ``task``
is any name of :data:`uniaudio_lm.registry.TASKS`; the other keys are that task's fields (see
:mod:`uniaudio_lm.registry`), with code files for ``codes`` (the ``audio`` field), ``source``, ``second``,
``prefix`` and ``voice`` (its reconstruction codes); keys a task does not use (``id``, ``duration``...)
are ignored::

    {"task": "asr", "codes": "clips/0001.safetensors", "text": "hello world"}
    {"task": "tts", "codes": "clips/0002.safetensors", "text": "你好", "language": "zh"}
    {"task": "voice_tts", "codes": "a.safetensors", "voice": "b.safetensors", "caption": "...", "text": "..."}
    {"task": "denoise", "codes": "clean.safetensors", "source": "noisy.safetensors"}
    {"task": "separation", "source": "mix.safetensors", "codes": "speech.safetensors", "second": "noise.safetensors"}
    {"task": "audio_qa", "codes": "x.safetensors", "question": "...", "text": "the answer"}
    {"task": "speech_edit", "source": "a.safetensors", "instruction": "...", "codes": "edited.safetensors"}
    {"task": "audio_only", "codes": "x.safetensors"}     # also reason_to_recon, recon_to_reason
    {"task": "fewshot_classify", "demos": [{"codes": "a.safetensors", "label": "dog"},
                                           {"codes": "b.safetensors", "label": "cat"}],
     "codes": "q.safetensors", "text": "dog"}
    {"task": "fewshot_denoise", "demos": [{"source": "noisy1.safetensors", "codes": "clean1.safetensors"}],
     "source": "noisy2.safetensors", "codes": "clean2.safetensors"}       # fewshot_vc alike

Older names still work: ``continue`` (audio_only), ``lyric`` (lyric_recognition), ``caption`` (audio_caption).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from safetensors.torch import load_file

from . import registry
from .registry import TaskError
from .style import from_row as style_from_row
from .sentence import AudioItem
from .tasks import (Audio, Example, audio_only, few_shot, generation, reason_to_recon, recon_to_reason, text_only,
                    understanding)
from .tokenizer import default_corpus_path
from .vocab import AudioVocab

ExampleSource = Callable[[random.Random], Example]

#: Registry tasks of the understanding / generation kinds.
UNDERSTANDING = tuple(n for n, s in registry.TASKS.items() if s.kind == "understanding")
GENERATION = tuple(n for n, s in registry.TASKS.items() if s.kind == "generation")
#: speech generation tasks whose rows' recorded style (rate, pitch, gender) conditions the target speech
STYLED_TASKS = ("tts", "instruct_tts", "voice_tts")


class TextLines:
    """Text-only examples: one line of the given files each (default: the shipped tokenizer corpus)."""

    def __init__(self, paths: Sequence[str | Path] | None = None) -> None:
        self.lines = [ln.strip() for p in (paths or [default_corpus_path()])
                      for ln in Path(p).read_text(encoding="utf-8").splitlines() if ln.strip()]
        if not self.lines:
            raise ValueError("no text lines found")

    def __call__(self, rng: random.Random) -> Example:
        return text_only(rng.choice(self.lines))


@dataclass
class SyntheticAudio:
    """Random codes and corpus sentences in real task layouts (for smoke tests and benchmarks).

    Reasoning frames ``Tr ~ U[min_frames, max_frames]``; reconstruction frames ``Tq = round(2.5 Tr)``
    (the 5 Hz / 12.5 Hz ratio).
    """

    vocab: AudioVocab
    kind: str
    min_frames: int = 2
    max_frames: int = 6
    text: TextLines | None = None

    def audio(self, rng: random.Random) -> Audio:
        v = self.vocab
        g = torch.Generator().manual_seed(rng.getrandbits(62))
        tr = rng.randint(self.min_frames, self.max_frames)
        tq = max(1, round(2.5 * tr))
        return (torch.randint(0, v.reasoning_codebook_size, (v.num_reasoning_codebooks, tr), generator=g),
                torch.randint(0, v.recon_codebook_size, (v.num_recon_codebooks, tq), generator=g))

    def __call__(self, rng: random.Random) -> Example:
        text = self.text or _default_text()
        line = text.lines[rng.randrange(len(text.lines))]
        if self.kind == "text":
            return text_only(line)
        if self.kind == "audio":
            return audio_only(self.audio(rng), rng)
        if self.kind == "translation":
            return (reason_to_recon if rng.random() < 0.5 else recon_to_reason)(self.audio(rng), rng)
        if self.kind == "understanding":
            return understanding(rng.choice(("asr", "caption", "lyric")), self.audio(rng), line, rng)
        if self.kind == "generation":
            return generation(rng.choice(("tts", "text_to_sound")), self.audio(rng), rng, text=line)
        if self.kind == "fewshot":
            demos = [([AudioItem(*self.audio(rng))], [AudioItem(*self.audio(rng))]) for _ in range(2)]
            return few_shot("fewshot_denoise", demos, [AudioItem(*self.audio(rng))], [AudioItem(*self.audio(rng))], rng)
        raise ValueError(f"unknown kind {self.kind!r}")


_TEXT: TextLines | None = None


def _default_text() -> TextLines:
    global _TEXT
    if _TEXT is None:
        _TEXT = TextLines()
    return _TEXT


class Manifest:
    """Examples of one kind from a JSONL manifest (see the module docstring), built by the registry's
    task builders. Rows are checked when the manifest is read: an unknown task or a missing field is a
    :class:`~uniaudio_lm.registry.TaskError` naming the line."""

    def __init__(self, path: str | Path, kind: str, codebooks: tuple[int, int] | None = None) -> None:
        """``codebooks = (Kr, Kq)`` keeps the first Kr reasoning and Kq reconstruction stages of every
        code file (a model that reads a prefix of the residual stages); ``None`` keeps all."""
        self.codebooks = codebooks
        self.path = Path(path)
        self.root = self.path.parent
        self.kind = kind
        self.rows: list[dict[str, Any]] = []
        for n, ln in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not ln.strip():
                continue
            where = f"{self.path}:{n}"
            try:
                row = json.loads(ln)
            except json.JSONDecodeError as e:
                raise TaskError(f"{where}: not a JSON object ({e.msg})") from None
            if not isinstance(row, dict) or "task" not in row:
                raise TaskError(f"{where}: a manifest row is a JSON object with a 'task' key")
            try:
                spec = registry.get(row["task"])
                _check_row(spec, row)
            except TaskError as e:
                raise TaskError(f"{where}: {e}") from None
            if spec.kind == kind:
                self.rows.append(row)

    def __len__(self) -> int:
        return len(self.rows)

    def _codes(self, name: str) -> Audio:
        return load_codes(self.root / name, self.codebooks)

    def fields(self, row: dict[str, Any]) -> dict[str, Any]:
        """A manifest row → the keyword fields of its task's builder (code files loaded)."""
        spec = registry.get(row["task"])
        out: dict[str, Any] = {}
        for f in spec.fields:
            key = "codes" if f == "audio" else f
            if key not in row or row[key] is None:
                continue
            v = row[key]
            if f in _AUDIO_FIELDS:
                v = self._codes(v)
            elif f == "voice":
                v = self._codes(v)[1]
            elif f == "demos":
                v = [(self._codes(d["codes"]), str(d["label"])) if "label" in d
                     else (self._codes(d["source"]), self._codes(d["codes"])) for d in v]
            out[f] = v
        return out

    def __call__(self, rng: random.Random) -> Example:
        r = self.rows[rng.randrange(len(self.rows))]
        ex = registry.get(r["task"]).example(rng=rng, **self.fields(r))
        if r["task"] in STYLED_TASKS:
            ex.style = style_from_row(r)
        return ex


def load_codes(path: str | Path, codebooks: tuple[int, int] | None = None) -> Audio:
    """A code file → ``(reasoning [Kr, T], recon [Kq, T'])`` LongTensors; ``codebooks = (Kr, Kq)`` keeps
    the first stages (a :class:`~uniaudio_lm.registry.TaskError` if the file has fewer)."""
    t = load_file(str(path))
    r, q = t["reasoning"].long(), t["recon"].long()
    if codebooks is not None:
        kr, kq = codebooks
        if r.shape[0] < kr or q.shape[0] < kq:
            raise TaskError(f"{path} has {r.shape[0]} reasoning / {q.shape[0]} reconstruction "
                            f"codebooks; the model reads {kr} / {kq}")
        r, q = r[:kr], q[:kq]
    return r, q


_AUDIO_FIELDS = ("audio", "source", "second", "prefix")


def _check_row(spec: registry.TaskSpec, row: dict[str, Any]) -> None:
    missing = [f for f in spec.conditions + spec.targets if row.get("codes" if f == "audio" else f) is None]
    if missing:
        keys = ["codes" if f == "audio" else f for f in missing]
        raise TaskError(f"task {spec.name!r} rows need the key(s) {keys}")
    demos = row.get("demos")
    if "demos" in spec.fields:
        need = ("codes", "label") if spec.name == "fewshot_classify" else ("source", "codes")
        if not isinstance(demos, list) or not demos or not all(isinstance(d, dict) and all(k in d for k in need)
                                                               for d in demos):
            raise TaskError(f"task {spec.name!r} rows need 'demos': a non-empty list of objects with keys {need}")
