"""Example sources for training: text files, a JSONL manifest of codec codes, and synthetic data.

A source is a callable ``rng -> Example`` (random access with replacement), so that the batch of every
step is a pure function of ``(seed, rank, step)`` and training resumes exactly.

Manifest lines (one JSON object each; code files are safetensors with ``reasoning [Kr, Tr]`` and
``recon [Kq, Tq]`` LongTensors, e.g. written from :meth:`reasoningcodec.ReasoningCodec.encode`)::

    {"task": "asr", "codes": "clips/0001.safetensors", "text": "hello world"}
    {"task": "tts", "codes": "clips/0002.safetensors", "text": "read this"}
    {"task": "voice_tts", "codes": "a.safetensors", "voice": "b.safetensors", "caption": "...", "text": "..."}
    {"task": "denoise", "codes": "clean.safetensors", "source": "noisy.safetensors"}
    {"task": "audio_qa", "codes": "x.safetensors", "question": "...", "text": "the answer"}
    {"task": "continue", "codes": "x.safetensors"}     # also reason_to_recon, recon_to_reason
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from safetensors.torch import load_file

from .sentence import AudioItem
from .tasks import (Audio, Example, audio_only, few_shot, generation, reason_to_recon, recon_to_reason, text_only,
                    understanding)
from .tokenizer import default_corpus_path
from .vocab import AudioVocab

ExampleSource = Callable[[random.Random], Example]

UNDERSTANDING = ("asr", "yue_asr", "lyric", "caption", "spoken_qa", "audio_qa")
GENERATION = ("tts", "instruct_tts", "voice_tts", "text_to_sound", "text_to_music", "song", "speech_sound",
              "speech_edit", "denoise")


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
    """Examples of one kind from a JSONL manifest (see the module docstring)."""

    def __init__(self, path: str | Path, kind: str) -> None:
        self.root = Path(path).parent
        rows = [json.loads(ln) for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
        self.rows = [r for r in rows if _kind_of(r["task"]) == kind]
        self.kind = kind

    def __len__(self) -> int:
        return len(self.rows)

    def _codes(self, name: str) -> Audio:
        t = load_file(str(self.root / name))
        return t["reasoning"].long(), t["recon"].long()

    def __call__(self, rng: random.Random) -> Example:
        r = self.rows[rng.randrange(len(self.rows))]
        task, audio = r["task"], self._codes(r["codes"])
        if task == "continue":
            return audio_only(audio, rng)
        if task == "reason_to_recon":
            return reason_to_recon(audio, rng)
        if task == "recon_to_reason":
            return recon_to_reason(audio, rng)
        if task in UNDERSTANDING:
            return understanding(task, audio, r["text"], rng, question=r.get("question"))
        voice = self._codes(r["voice"])[1] if "voice" in r else None
        source = self._codes(r["source"]) if "source" in r else None
        return generation(task, audio, rng, text=r.get("text"), caption=r.get("caption"), lyric=r.get("lyric"),
                          voice=voice, source=source, instruction=r.get("instruction"))


def _kind_of(task: str) -> str:
    if task in UNDERSTANDING:
        return "understanding"
    if task in GENERATION:
        return "generation"
    if task in ("reason_to_recon", "recon_to_reason"):
        return "translation"
    if task == "continue":
        return "audio"
    raise ValueError(f"unknown manifest task {task!r}")
