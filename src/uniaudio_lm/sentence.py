"""Auditory sentences: typed segments ⇄ the per-position tensors the language model reads.

A sentence is a list of segments. Each sequence position is one text token or one audio frame::

    TaskPrompt(text)        <task> text </task>
    TextField(tag, text)    <tag> text </tag>          tag in transcription / lyric / caption / answer
    PlainText(text)         text
    AudioItem(r, q)         [BOR] r frames [EOR] [BOQ] q frames [EOQ]   (either part may be absent)
    VoicePrompt(q)          [BOV] q frames [EOV]

Every segment has ``target`` (its positions carry the loss). Few-shot prompting is a longer list of
segments (demonstration pairs, then the query). :func:`build` adds a final ``<eot>`` (a target when the
last segment is) and :func:`parse` inverts :func:`build` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, Union

import torch

from .tokenizer import FIELD_TAGS, TextTokenizer
from .vocab import AudioVocab


def _eq_t(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(torch.equal(a.long().cpu(), b.long().cpu()))


@dataclass
class TaskPrompt:
    """Natural-language task instruction; starts every task sequence."""

    text: str
    target: bool = False


@dataclass
class TextField:
    """Tagged text: ``tag`` is one of :data:`uniaudio_lm.tokenizer.FIELD_TAGS`."""

    tag: str
    text: str
    target: bool = False

    def __post_init__(self) -> None:
        if self.tag not in FIELD_TAGS:
            raise ValueError(f"TextField tag must be one of {FIELD_TAGS}, got {self.tag!r}")


@dataclass
class PlainText:
    """Untagged text (text-only data, instructions, questions)."""

    text: str
    target: bool = False


@dataclass(eq=False)
class AudioItem:
    """One audio clip: a reasoning segment ``[Kr, Tr]`` then a reconstruction segment ``[Kq, Tq]``.

    ``loss_on`` (for targets) selects ``"all"``, or only the ``"reasoning"`` / ``"recon"`` part
    (reasoning → reconstruction translation is ``loss_on="recon"``). Either part may be ``None``.
    """

    reasoning: torch.Tensor | None
    recon: torch.Tensor | None
    target: bool = False
    loss_on: str = "all"

    def __post_init__(self) -> None:
        if self.reasoning is None and self.recon is None:
            raise ValueError("AudioItem needs reasoning or recon codes")
        if self.loss_on not in ("all", "reasoning", "recon"):
            raise ValueError(f"loss_on must be all / reasoning / recon, got {self.loss_on!r}")
        if self.loss_on != "all" and (not self.target or self.reasoning is None or self.recon is None):
            raise ValueError("loss_on other than 'all' needs a target item with both parts")

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, AudioItem) and _eq_t(self.reasoning, other.reasoning)
                and _eq_t(self.recon, other.recon) and self.target == other.target and self.loss_on == other.loss_on)


@dataclass(eq=False)
class VoicePrompt:
    """A short reconstruction-token clip ``[Kq, T]`` giving the voice / timbre to imitate."""

    recon: torch.Tensor
    target: bool = False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VoicePrompt) and _eq_t(self.recon, other.recon) and self.target == other.target


Segment = Union[TaskPrompt, TextField, PlainText, AudioItem, VoicePrompt]


@dataclass
class SentenceTensors:
    """One auditory sentence as per-position tensors (``L`` positions, ``K`` codebooks).

    Attributes:
        text_ids: LongTensor ``[L]``; ``<audio>`` at audio positions.
        audio_ids: LongTensor ``[L, K]``; audio-pad frames at text positions.
        is_audio: BoolTensor ``[L]``.
        loss_mask: BoolTensor ``[L]``: the token *at* this position is a training target.
        cond_mask: BoolTensor ``[L]``: condition positions (non-target, not the task prompt) that
            condition dropout / classifier-free guidance replace by padding.
    """

    text_ids: torch.Tensor
    audio_ids: torch.Tensor
    is_audio: torch.Tensor
    loss_mask: torch.Tensor
    cond_mask: torch.Tensor

    def __len__(self) -> int:
        return int(self.text_ids.shape[0])


@dataclass
class SentenceBatch:
    """A padded batch (``B`` sentences, ``L`` = longest). Fields as :class:`SentenceTensors` with a
    leading ``B``; ``valid [B, L]`` marks real (non-padding) positions."""

    text_ids: torch.Tensor
    audio_ids: torch.Tensor
    is_audio: torch.Tensor
    loss_mask: torch.Tensor
    cond_mask: torch.Tensor
    valid: torch.Tensor
    #: ``[B, F]`` speaking-style features of each row's target speech (:mod:`uniaudio_lm.style`; zeros:
    #: none), or ``None``
    style: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "SentenceBatch":
        return SentenceBatch(*(getattr(self, f).to(device) for f in _BATCH_FIELDS),
                             style=None if self.style is None else self.style.to(device))

    @property
    def num_tokens(self) -> int:
        return int(self.valid.sum())


_FIELDS = ("text_ids", "audio_ids", "is_audio", "loss_mask", "cond_mask")
_BATCH_FIELDS = (*_FIELDS, "valid")


@dataclass
class _Builder:
    tok: TextTokenizer
    vocab: AudioVocab
    text: list[int] = field(default_factory=list)
    audio: list[torch.Tensor] = field(default_factory=list)
    is_audio: list[bool] = field(default_factory=list)
    loss: list[bool] = field(default_factory=list)
    cond: list[bool] = field(default_factory=list)

    def add_text(self, ids: Sequence[int], target: bool, cond: bool) -> None:
        pad = self.vocab.special_frame(self.vocab.audio_pad)[None].expand(len(ids), -1)
        self.text += list(ids)
        self.audio.append(pad)
        self.is_audio += [False] * len(ids)
        self.loss += [target] * len(ids)
        self.cond += [cond] * len(ids)

    def add_frames(self, frames: torch.Tensor, begin: int, end: int, target: bool, cond: bool) -> None:
        v = self.vocab
        fr = torch.cat([v.special_frame(begin)[None], frames, v.special_frame(end)[None]])
        self.text += [self.tok.audio_id] * fr.shape[0]
        self.audio.append(fr)
        self.is_audio += [True] * fr.shape[0]
        self.loss += [target] * fr.shape[0]
        self.cond += [cond] * fr.shape[0]


def build(segments: Sequence[Segment], tokenizer: TextTokenizer, vocab: AudioVocab,
          eot: bool = True) -> SentenceTensors:
    """Segments → :class:`SentenceTensors`; with ``eot`` a final ``<eot>`` (target iff the last segment is)."""
    b = _Builder(tokenizer, vocab)
    for s in segments:
        cond = not s.target and not isinstance(s, TaskPrompt)
        if isinstance(s, TaskPrompt):
            b.add_text([tokenizer.special.task_open, *tokenizer.encode(s.text), tokenizer.special.task_close],
                       s.target, cond)
        elif isinstance(s, TextField):
            o, c = tokenizer.tag_ids(s.tag)
            b.add_text([o, *tokenizer.encode(s.text), c], s.target, cond)
        elif isinstance(s, PlainText):
            b.add_text(tokenizer.encode(s.text), s.target, cond)
        elif isinstance(s, AudioItem):
            if s.reasoning is not None:
                b.add_frames(vocab.reasoning_frames(s.reasoning), vocab.begin_reasoning, vocab.end_reasoning,
                             s.target and s.loss_on != "recon", cond)
            if s.recon is not None:
                b.add_frames(vocab.recon_frames(s.recon), vocab.begin_recon, vocab.end_recon,
                             s.target and s.loss_on != "reasoning", cond)
        elif isinstance(s, VoicePrompt):
            b.add_frames(vocab.recon_frames(s.recon), vocab.begin_voice, vocab.end_voice, s.target, cond)
        else:
            raise TypeError(f"not a segment: {type(s).__name__}")
    if eot:
        b.add_text([tokenizer.eot_id], bool(segments) and segments[-1].target, False)
    k = vocab.num_codebooks
    audio = torch.cat(b.audio) if b.audio else torch.zeros(0, k, dtype=torch.long)
    return SentenceTensors(torch.tensor(b.text, dtype=torch.long), audio, torch.tensor(b.is_audio, dtype=torch.bool),
                           torch.tensor(b.loss, dtype=torch.bool), torch.tensor(b.cond, dtype=torch.bool))


def parse(st: SentenceTensors, tokenizer: TextTokenizer, vocab: AudioVocab) -> list[Segment]:
    """:class:`SentenceTensors` → segments (inverse of :func:`build`).

    A trailing ``<eot>`` is dropped, padding positions (``<pad>``, audio-pad frames) are skipped, and
    adjacent plain text with the same ``target`` comes back as one :class:`PlainText`, and a
    reasoning-only item directly followed by a reconstruction-only item comes back as one item.
    """
    text, audio = st.text_ids.tolist(), st.audio_ids
    is_audio, loss = st.is_audio.tolist(), st.loss_mask.tolist()
    sp, n, out, i = tokenizer.special, len(text), [], 0
    if n and not is_audio[-1] and text[-1] == tokenizer.eot_id:
        n -= 1

    def read_text(start: int, close: int) -> int:
        j = start
        while j < n and not is_audio[j] and text[j] != close:
            if tokenizer.is_special(text[j]):
                raise ValueError(f"unexpected special token {tokenizer.token(text[j])!r} at position {j}")
            j += 1
        if j >= n or is_audio[j]:
            raise ValueError(f"unclosed text field starting at position {start - 1}")
        return j

    def read_frames(start: int, end_id: int) -> int:
        j = start
        while j < n and is_audio[j] and int(audio[j, 0]) != end_id:
            j += 1
        if j >= n or not is_audio[j]:
            raise ValueError(f"unterminated audio segment starting at position {start - 1}")
        return j

    while i < n:
        if not is_audio[i]:
            t = text[i]
            if t == sp.pad:
                i += 1
            elif t == sp.task_open:
                j = read_text(i + 1, sp.task_close)
                out.append(TaskPrompt(tokenizer.decode(text[i + 1 : j]), loss[i]))
                i = j + 1
            elif tokenizer.tag_of(t) is not None:
                tag, is_open = tokenizer.tag_of(t)  # type: ignore[misc]
                if not is_open:
                    raise ValueError(f"closing tag </{tag}> without an opening tag at position {i}")
                j = read_text(i + 1, tokenizer.tag_ids(tag)[1])
                out.append(TextField(tag, tokenizer.decode(text[i + 1 : j]), loss[i]))
                i = j + 1
            elif tokenizer.is_special(t):
                raise ValueError(f"unexpected special token {tokenizer.token(t)!r} at position {i}")
            else:
                j = i
                while j < n and not is_audio[j] and not tokenizer.is_special(text[j]) and loss[j] == loss[i]:
                    j += 1
                out.append(PlainText(tokenizer.decode(text[i:j]), loss[i]))
                i = j
            continue
        first = int(audio[i, 0])
        if first == vocab.audio_pad:
            i += 1
        elif first in (vocab.begin_reasoning, vocab.begin_recon):
            r = q = None
            lr = lq = None
            if first == vocab.begin_reasoning:
                j = read_frames(i + 1, vocab.end_reasoning)
                r, lr, i = vocab.frames_to_reasoning(audio[i + 1 : j]), loss[i], j + 1
            if i < n and is_audio[i] and int(audio[i, 0]) == vocab.begin_recon:
                j = read_frames(i + 1, vocab.end_recon)
                q, lq, i = vocab.frames_to_recon(audio[i + 1 : j]), loss[i], j + 1
            if lr is not None and lq is not None and lr != lq:
                out.append(AudioItem(r, q, True, "reasoning" if lr else "recon"))
            else:
                out.append(AudioItem(r, q, bool(lr if lr is not None else lq)))
        elif first == vocab.begin_voice:
            j = read_frames(i + 1, vocab.end_voice)
            out.append(VoicePrompt(vocab.frames_to_recon(audio[i + 1 : j]), loss[i]))
            i = j + 1
        else:
            raise ValueError(f"audio position {i} does not start a segment (id {first})")
    return out


def drop_conditions(st: SentenceTensors, tokenizer: TextTokenizer, vocab: AudioVocab) -> SentenceTensors:
    """Replace condition positions (``cond_mask``) by padding, keeping the length: the unconditional
    input of classifier-free guidance and the 10% condition dropout of generation training."""
    c = st.cond_mask
    text = torch.where(c, torch.full_like(st.text_ids, tokenizer.pad_id), st.text_ids)
    audio = torch.where(c[:, None], torch.full_like(st.audio_ids, vocab.audio_pad), st.audio_ids)
    return SentenceTensors(text, audio, st.is_audio & ~c, st.loss_mask, c.clone())


def collate(items: Sequence[SentenceTensors], tokenizer: TextTokenizer, vocab: AudioVocab,
            pad_side: str = "right", length: int | None = None) -> SentenceBatch:
    """Pad sentences to one batch (``pad_side="left"`` for generation prompts)."""
    if pad_side not in ("left", "right"):
        raise ValueError("pad_side is 'left' or 'right'")
    b, k = len(items), vocab.num_codebooks
    lmax = max([len(x) for x in items] + [length or 0])
    out = SentenceBatch(
        torch.full((b, lmax), tokenizer.pad_id, dtype=torch.long),
        torch.full((b, lmax, k), vocab.audio_pad, dtype=torch.long),
        torch.zeros(b, lmax, dtype=torch.bool), torch.zeros(b, lmax, dtype=torch.bool),
        torch.zeros(b, lmax, dtype=torch.bool), torch.zeros(b, lmax, dtype=torch.bool))
    for i, x in enumerate(items):
        sl = slice(0, len(x)) if pad_side == "right" else slice(lmax - len(x), lmax)
        for f in _FIELDS:
            getattr(out, f)[i, sl] = getattr(x, f)
        out.valid[i, sl] = True
    return out
