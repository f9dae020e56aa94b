"""The task registry: every task of UniAudio 2.0 with its layout, prompts, data recipe and function.

One :class:`TaskSpec` per task. ``spec.example(**fields)`` builds a training :class:`~uniaudio_lm.tasks.Example`
(conditions and targets); ``spec.prompt(**conditions)`` builds the same layout without its targets, which
is what generation continues. Manifests (:class:`uniaudio_lm.data.Manifest`), the Python functions of
:mod:`uniaudio_lm.api` and the ``uniaudio`` command line all go through these builders, so each layout
is written down in one place.

Field names (shared with the JSONL manifest keys; audio fields hold ``(reasoning [Kr, Tr], recon [Kq, Tq])``
code pairs)::

    audio        the clip: the input of understanding tasks, the target of generation tasks
    source       an input clip of generation tasks (noisy speech, the clip to edit, a spoken question)
    second       the second target of separation
    prefix       the clip that audio-only continuation continues
    voice        a ≈3 s voice prompt: reconstruction codes [Kq, T]
    text         transcription (tts, asr), answer (qa) or class label (fewshot_classify)
    caption      style / sound / music description, or the sound tag of speech_sound
    lyric, question, instruction
    language     tts: en / zh / yue, song: en / zh (also written cmn, en-us, en-gb); picks the prompt list
    demos        few-shot demonstrations: [(audio, label), ...] or [(input audio, output audio), ...]

Layout strings: segments joined by ``·``, ``→`` where the targets begin, ``[x]`` optional,
``{x · y}×n`` repeated demonstrations; ``audio(...)`` is a whole item (reasoning then reconstruction
segment), ``reasoning(...)`` / ``recon(...)`` one half of it, ``voice(...)`` a voice prompt, ``text(...)``
untagged text, ``<tag>...</tag>`` a tagged text field.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from reasoningcodec import ReasoningCodecError

from . import tasks as T
from .sentence import AudioItem, PlainText, Segment, TaskPrompt, TextField, VoicePrompt
from .tasks import TASK_PROMPTS, Example

CATEGORIES = ("speech", "sound", "music", "fewshot", "pretrain")

#: Data recipe ids (implemented in :mod:`uniaudio_lm.recipes`).
RECIPES = ("espeak_tts", "espeak_instruct", "espeak_voice", "espeak_asr", "espeak_dysarthric", "espeak_yue",
           "espeak_qa", "espeak_edit", "speech_sound_mix", "sfx_caption", "sfx_qa", "midi_caption", "sung_lyrics",
           "noise_pairs", "vc_pairs", "sfx_fewshot", "text_corpus", "any_audio")


class TaskError(ReasoningCodecError, ValueError):
    """An unknown task, or fields that do not fit a task's layout."""


@dataclass(frozen=True)
class TaskSpec:
    """One task: what it reads and writes, its auditory-sentence layout and where its data comes from.

    Attributes:
        name: registry name (also the manifest ``task``).
        category: one of :data:`CATEGORIES`.
        kind: one of :data:`uniaudio_lm.tasks.KINDS` (training mixture, condition dropout).
        inputs / outputs: what the task reads and produces, in words.
        layout: the sequence layout (see the module docstring).
        prompt_keys: :data:`~uniaudio_lm.tasks.TASK_PROMPTS` keys of its prompts (one per language).
        recipe: the data recipe id that makes its training / evaluation data.
        function: the name of its function in :mod:`uniaudio_lm.api` (and its ``uniaudio`` subcommand).
        builder: ``builder(rng=..., **fields) -> Example``; called through :meth:`example` / :meth:`prompt`.
        conditions / optional / targets: field names (see the module docstring).
        languages: languages with their own prompts (empty: any language, one prompt list).
        zero_shot: the paper evaluates it without training data of its own.
    """

    name: str
    category: str
    kind: str
    inputs: str
    outputs: str
    layout: str
    prompt_keys: tuple[str, ...]
    recipe: str
    function: str
    builder: Callable[..., Example]
    conditions: tuple[str, ...]
    targets: tuple[str, ...]
    optional: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    zero_shot: bool = False

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field the builder accepts."""
        return self.conditions + self.optional + self.targets

    @property
    def prompts(self) -> tuple[str, ...]:
        """All task prompts of this task (every language)."""
        return tuple(p for k in self.prompt_keys for p in TASK_PROMPTS[k])

    def _check(self, fields: dict[str, Any], need: Sequence[str]) -> None:
        unknown = sorted(set(fields) - set(self.fields))
        if unknown:
            raise TaskError(f"task {self.name!r} has no field(s) {unknown}; its fields are {list(self.fields)}")
        missing = [f for f in need if fields.get(f) is None]
        if missing:
            raise TaskError(f"task {self.name!r} needs the field(s) {missing} (layout: {self.layout})")
        lang = T.canonical_language(fields.get("language"))
        if lang is not None and lang not in (self.languages or ("en",)):
            raise TaskError(f"task {self.name!r} supports the languages {list(self.languages or ('en',))}, "
                            f"got {lang!r}")
        if "demos" in fields and fields["demos"] is not None and not len(fields["demos"]):
            raise TaskError(f"task {self.name!r} needs at least one demonstration")

    def example(self, rng: random.Random | None = None, **fields: Any) -> Example:
        """A full example (conditions and targets); ``rng`` draws the task prompt (first prompt without)."""
        self._check(fields, self.conditions + self.targets)
        ex = self.builder(rng=rng, **_canonical(fields))
        ex.task = self.name
        return ex

    def prompt(self, rng: random.Random | None = None, **fields: Any) -> Example:
        """The layout without its targets (or without the last of them: separation's second source is
        generated after the first): the prompt that generation continues."""
        if self.targets and all(fields.get(t) is not None for t in self.targets):
            raise TaskError(f"a {self.name!r} prompt leaves out its target field(s) {list(self.targets)}")
        self._check(fields, self.conditions)
        ex = self.builder(rng=rng, **_canonical(fields))
        ex.task = self.name
        return ex


def _canonical(fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("language") is None:
        return fields
    return {**fields, "language": T.canonical_language(fields["language"])}


# ---------------------------------------------------------------- builders
def _understand(task: str) -> Callable[..., Example]:
    def build(*, audio: T.Audio, text: str | None = None, question: str | None = None,
              rng: random.Random | None = None) -> Example:
        return T.understanding(task, audio, text, rng, question=question)

    return build


def _generate(task: str) -> Callable[..., Example]:
    def build(*, audio: T.Audio | None = None, rng: random.Random | None = None, **conditions: Any) -> Example:
        return T.generation(task, audio, rng, **conditions)

    return build


def _few_shot_audio(task: str) -> Callable[..., Example]:
    def build(*, demos: Sequence[tuple[T.Audio, T.Audio]], source: T.Audio, audio: T.Audio | None = None,
              rng: random.Random | None = None) -> Example:
        return T.few_shot_audio(task, demos, source, audio, rng)

    return build


def _classify(*, demos: Sequence[tuple[T.Audio, str]], audio: T.Audio, text: str | None = None,
              rng: random.Random | None = None) -> Example:
    return T.few_shot_classify(demos, audio, text, rng)


def _text_only(*, text: str | None = None, rng: random.Random | None = None) -> Example:
    return T.text_only(text) if text is not None else Example([], "text", "text")


def _audio_only(*, audio: T.Audio | None = None, prefix: T.Audio | None = None,
                rng: random.Random | None = None) -> Example:
    return T.audio_only(audio, rng, prefix=prefix)


def _reason_to_recon(*, audio: T.Audio, rng: random.Random | None = None) -> Example:
    return T.reason_to_recon(audio, rng)


def _recon_to_reason(*, audio: T.Audio, rng: random.Random | None = None) -> Example:
    return T.recon_to_reason(audio, rng)


def _separation(*, source: T.Audio, audio: T.Audio | None = None, second: T.Audio | None = None,
                rng: random.Random | None = None) -> Example:
    return T.separation(source, audio, second, rng)


# ---------------------------------------------------------------- the registry
def _spec(name: str, category: str, kind: str, inputs: str, outputs: str, layout: str, recipe: str,
          builder: Callable[..., Example], conditions: tuple[str, ...], targets: tuple[str, ...],
          optional: tuple[str, ...] = (), function: str | None = None, prompt_keys: tuple[str, ...] | None = None,
          languages: tuple[str, ...] = (), zero_shot: bool = False) -> TaskSpec:
    if prompt_keys is None:
        prompt_keys = (name, *(f"{name}_{lang}" for lang in languages if lang != "en"))
    return TaskSpec(name, category, kind, inputs, outputs, layout, prompt_keys, recipe, function or name, builder,
                    conditions, targets, optional, languages, zero_shot)


_ASR = "<task> · audio(speech) → <transcription>text</transcription> · <eot>"

_SPECS = [
    # ---------------------------------------------------------------- speech
    _spec("tts", "speech", "generation", "text (English, Mandarin or Cantonese)", "speech",
          "<task> · <transcription>text</transcription> → audio(speech) · <eot>", "espeak_tts",
          _generate("tts"), ("text",), ("audio",), ("language",), languages=("en", "zh", "yue")),
    _spec("instruct_tts", "speech", "generation", "style caption + text", "speech in that style",
          "<task> · <caption>style</caption> · <transcription>text</transcription> → audio(speech) · <eot>",
          "espeak_instruct", _generate("instruct_tts"), ("caption", "text"), ("audio",)),
    _spec("voice_tts", "speech", "generation", "≈3 s voice prompt + style caption + text",
          "speech in the prompt voice",
          "<task> · voice(≈3 s prompt) · <caption>style</caption> · <transcription>text</transcription> → "
          "audio(speech) · <eot>", "espeak_voice", _generate("voice_tts"), ("voice", "caption", "text"), ("audio",)),
    _spec("asr", "speech", "understanding", "speech", "transcript", _ASR, "espeak_asr", _understand("asr"),
          ("audio",), ("text",)),
    _spec("dysarthric_asr", "speech", "understanding", "dysarthric speech", "transcript", _ASR, "espeak_dysarthric",
          _understand("dysarthric_asr"), ("audio",), ("text",), zero_shot=True),
    _spec("yue_asr", "speech", "understanding", "Cantonese speech", "transcript (Chinese characters)", _ASR,
          "espeak_yue", _understand("yue_asr"), ("audio",), ("text",)),
    _spec("spoken_qa", "speech", "understanding", "spoken question", "text answer",
          "<task> · audio(question) → <answer>text</answer> · <eot>", "espeak_qa", _understand("spoken_qa"),
          ("audio",), ("text",)),
    _spec("spoken_qa_speech", "speech", "generation", "spoken question", "spoken answer",
          "<task> · audio(question) → audio(answer) · <eot>", "espeak_qa", _generate("spoken_qa_speech"),
          ("source",), ("audio",)),
    _spec("speech_edit", "speech", "generation", "edit instruction + source speech", "edited speech",
          "<task> · text(instruction) · audio(source) → audio(edited) · <eot>", "espeak_edit",
          _generate("speech_edit"), ("instruction", "source"), ("audio",)),
    _spec("speech_sound", "speech", "generation", "text + sound tag", "speech over that sound",
          "<task> · <caption>sound tag</caption> · <transcription>text</transcription> → audio(speech over sound) · "
          "<eot>", "speech_sound_mix", _generate("speech_sound"), ("caption", "text"), ("audio",), zero_shot=True),
    _spec("denoise", "speech", "generation", "noisy speech", "clean speech",
          "<task> · audio(noisy) → audio(clean) · <eot>", "noise_pairs", _generate("denoise"), ("source",),
          ("audio",)),
    _spec("separation", "speech", "generation", "speech + background mixture", "speech, then background",
          "<task> · audio(mixture) → audio(speech) · audio(background) · <eot>", "noise_pairs", _separation,
          ("source",), ("audio", "second"), function="separate"),
    # ---------------------------------------------------------------- sound
    _spec("text_to_sound", "sound", "generation", "sound description", "sound",
          "<task> · <caption>description</caption> → audio(sound) · <eot>", "sfx_caption",
          _generate("text_to_sound"), ("caption",), ("audio",)),
    _spec("audio_caption", "sound", "understanding", "sound", "one-sentence caption",
          "<task> · audio(sound) → <caption>description</caption> · <eot>", "sfx_caption",
          _understand("audio_caption"), ("audio",), ("text",)),
    _spec("audio_qa", "sound", "understanding", "question + sound", "text answer",
          "<task> · text(question) · audio(clip) → <answer>text</answer> · <eot>", "sfx_qa",
          _understand("audio_qa"), ("question", "audio"), ("text",)),
    # ---------------------------------------------------------------- music
    _spec("text_to_music", "music", "generation", "music description", "music",
          "<task> · <caption>description</caption> → audio(music) · <eot>", "midi_caption",
          _generate("text_to_music"), ("caption",), ("audio",)),
    _spec("music_caption", "music", "understanding", "music", "one-sentence description",
          "<task> · audio(music) → <caption>description</caption> · <eot>", "midi_caption",
          _understand("music_caption"), ("audio",), ("text",)),
    _spec("song", "music", "generation", "lyrics (English or Mandarin), optional voice prompt and style", "singing",
          "<task> · [voice(≈3 s singer)] · [<caption>style</caption>] · <lyric>lyrics</lyric> → audio(song) · <eot>",
          "sung_lyrics", _generate("song"), ("lyric",), ("audio",), ("voice", "caption", "language"),
          languages=("en", "zh")),
    _spec("lyric_recognition", "music", "understanding", "singing", "lyrics",
          "<task> · audio(song) → <lyric>lyrics</lyric> · <eot>", "sung_lyrics", _understand("lyric_recognition"),
          ("audio",), ("text",)),
    # ---------------------------------------------------------------- few-shot
    _spec("fewshot_denoise", "fewshot", "fewshot", "one (noisy, clean) example pair + a noisy clip", "clean clip",
          "<task> · {audio(noisy) · audio(clean)}×n · audio(noisy query) → audio(clean) · <eot>", "noise_pairs",
          _few_shot_audio("fewshot_denoise"), ("demos", "source"), ("audio",)),
    _spec("fewshot_vc", "fewshot", "fewshot", "one (source, converted) example pair + a source clip",
          "the clip in the example's target voice",
          "<task> · {audio(source) · audio(converted)}×n · audio(source query) → audio(converted) · <eot>", "vc_pairs",
          _few_shot_audio("fewshot_vc"), ("demos", "source"), ("audio",)),
    _spec("fewshot_classify", "fewshot", "fewshot", "labelled example clips (2-way) + a query clip", "its label",
          "<task> · {audio(example) · <answer>label</answer>}×n · audio(query) → <answer>label</answer> · <eot>",
          "sfx_fewshot", _classify, ("demos", "audio"), ("text",)),
    # ---------------------------------------------------------------- pre-training
    # raw text, as the backbone LLM read it: the one layout without a task prompt
    _spec("text_only", "pretrain", "text", "text", "its continuation", "→ text · <eot>", "text_corpus", _text_only,
          (), ("text",), function="continue_text", prompt_keys=()),
    _spec("audio_only", "pretrain", "audio", "audio (a prefix)", "its continuation",
          "<task> · [audio(prefix)] → audio(continuation) · <eot>", "any_audio", _audio_only, (), ("audio",),
          ("prefix",), function="continue_audio", prompt_keys=("continue",)),
    _spec("reason_to_recon", "pretrain", "translation", "reasoning tokens", "reconstruction tokens (audio)",
          "<task> · reasoning(clip) → recon(clip) · <eot>", "any_audio", _reason_to_recon, ("audio",), ()),
    _spec("recon_to_reason", "pretrain", "translation", "reconstruction tokens", "reasoning tokens",
          "<task> · recon(clip) → reasoning(clip) · <eot>", "any_audio", _recon_to_reason, ("audio",), ()),
]

#: Every task by name.
TASKS: dict[str, TaskSpec] = {s.name: s for s in _SPECS}

#: Older task names (manifests written before the registry) → registry names.
ALIASES = {"continue": "audio_only", "text": "text_only", "lyric": "lyric_recognition", "caption": "audio_caption"}


def get(name: str) -> TaskSpec:
    """The spec of a task (registry name or one of :data:`ALIASES`)."""
    spec = TASKS.get(ALIASES.get(name, name)) if isinstance(name, str) else None
    if spec is None:
        raise TaskError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return spec


def by_function(function: str) -> TaskSpec:
    """The spec whose :mod:`uniaudio_lm.api` function (or name) is ``function``."""
    for s in _SPECS:
        if function in (s.function, s.name):
            return s
    raise TaskError(f"no task has the function {function!r}; functions: {', '.join(s.function for s in _SPECS)}")


def render(segments: Sequence[Segment], eot: bool = True) -> str:
    """The bare layout of a segment list, e.g. ``<task> · audio → <transcription> · <eot>`` (no roles)."""
    pieces: list[tuple[str, bool]] = []
    for s in segments:
        if isinstance(s, TaskPrompt):
            pieces.append(("<task>", s.target))
        elif isinstance(s, TextField):
            pieces.append((f"<{s.tag}>", s.target))
        elif isinstance(s, PlainText):
            pieces.append(("text", s.target))
        elif isinstance(s, VoicePrompt):
            pieces.append(("voice", s.target))
        elif isinstance(s, AudioItem):
            if s.reasoning is not None and s.recon is not None and s.loss_on == "all":
                pieces.append(("audio", s.target))
            else:
                if s.reasoning is not None:
                    pieces.append(("reasoning", s.target and s.loss_on != "recon"))
                if s.recon is not None:
                    pieces.append(("recon", s.target and s.loss_on != "reasoning"))
        else:
            raise TypeError(f"not a segment: {type(s).__name__}")
    out, prev = "", False
    for i, (p, tgt) in enumerate(pieces):
        sep = "→ " if tgt and not prev else ("· " if i else "")
        out += (" " if i else "") + sep + p
        prev = tgt
    if eot:
        out += " · <eot>" if out else "<eot>"
    return out
