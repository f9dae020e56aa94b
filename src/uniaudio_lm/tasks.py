"""Task layouts of the UniAudio 2.0 paper as segment lists, with natural-language task prompts.

Each builder returns an :class:`Example`: the segments (condition segments first, then the target
segments with ``target=True``) and its ``kind``, which the training mixture and condition dropout use:
``text`` (text-only LM data), ``audio`` (audio-only continuation), ``translation`` (reasoning ↔
reconstruction), ``understanding`` (audio → text), ``generation`` (→ audio) and ``fewshot``.
Audio arguments are ``(reasoning [Kr, Tr], recon [Kq, Tq])`` pairs of code tensors.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import torch

from .sentence import AudioItem, PlainText, Segment, TaskPrompt, TextField, VoicePrompt

Audio = tuple[torch.Tensor, torch.Tensor]
KINDS = ("text", "audio", "translation", "understanding", "generation", "fewshot")

TASK_PROMPTS: dict[str, tuple[str, ...]] = {
    "asr": ("Transcribe the speech exactly as it is spoken.", "Listen carefully and tell me what the person is saying.",
            "Write down what is said in this recording.", "请把这段语音准确地转写成文字。"),
    "yue_asr": ("Transcribe this Cantonese speech.", "唔該將呢段說話準確噉寫做文字。"),
    "lyric": ("Write down the lyrics of the song.", "Recognise the sung lyrics.", "请写出这首歌的歌词。"),
    "caption": ("Describe the audio in a single sentence.", "Please describe the sound you hear in one short sentence.",
                "请用一句话描述你听到的声音。"),
    "tts": ("Read the following text aloud in a natural voice.", "Say the sentence below.",
            "请用自然的语气朗读下面这段文字。", "用自然啲嘅語氣讀出下面呢段文字。"),
    "instruct_tts": ("Speak the sentence in the style described by the instruction.",
                     "Read the text in the described voice and manner."),
    "voice_tts": ("Read the text in the voice of the prompt speaker, in the described style.",
                  "Clone the prompt voice and say the sentence."),
    "text_to_sound": ("Generate the sound described by the caption.", "Create this sound effect."),
    "text_to_music": ("Compose a short piece of music that matches the description.", "请根据描述生成一段音乐。"),
    "song": ("Sing the lyrics with the given melody and style.", "根据歌词唱呢首歌。"),
    "speech_sound": ("Say the sentence over the described background sound.",),
    "speech_edit": ("Edit the recording as instructed.", "Change the speech following the instruction."),
    "denoise": ("Remove the background noise from the recording.", "请去除录音中的背景噪声。"),
    "separation": ("Separate the speech from the background.", "Split the mixture into its two sources."),
    "spoken_qa": ("Answer the spoken question.", "Listen to the question and answer it."),
    "audio_qa": ("Answer the question about the audio clip.", "请回答关于这段音频的问题。"),
    "continue": ("Continue the audio in the same style.",),
    "reason_to_recon": ("Translate the reasoning tokens into reconstruction tokens.",),
    "recon_to_reason": ("Translate the reconstruction tokens into reasoning tokens.",),
    "fewshot_denoise": ("The examples show noisy recordings and their clean versions. Clean the last one.",),
    "fewshot_vc": ("The examples convert a voice into the prompt voice. Convert the last recording too.",),
    "fewshot_classify": ("Classify the sound into one of the two given categories, like in the examples.",),
}


@dataclass
class Example:
    """One training or prompting sequence."""

    segments: list[Segment]
    kind: str
    task: str = ""


def task_prompt(task: str, rng: random.Random | None = None) -> TaskPrompt:
    """A task prompt drawn from :data:`TASK_PROMPTS` (the first one without ``rng``)."""
    options = TASK_PROMPTS[task]
    return TaskPrompt(rng.choice(options) if rng is not None else options[0])


def _a(x: Audio, target: bool = False, loss_on: str = "all") -> AudioItem:
    return AudioItem(x[0], x[1], target, loss_on)


# ---------------------------------------------------------------- pre-training (stage 1)
def text_only(text: str) -> Example:
    return Example([PlainText(text, True)], "text", "text")


def audio_only(audio: Audio, rng: random.Random | None = None) -> Example:
    return Example([task_prompt("continue", rng), _a(audio, True)], "audio", "continue")


def reason_to_recon(audio: Audio, rng: random.Random | None = None) -> Example:
    return Example([task_prompt("reason_to_recon", rng), _a(audio, True, "recon")], "translation", "reason_to_recon")


def recon_to_reason(audio: Audio, rng: random.Random | None = None) -> Example:
    return Example([task_prompt("recon_to_reason", rng), AudioItem(None, audio[1]), AudioItem(audio[0], None, True)],
                   "translation", "recon_to_reason")


# ---------------------------------------------------------------- understanding (stage 2)
def understanding(task: str, audio: Audio, text: str, rng: random.Random | None = None,
                  question: str | None = None) -> Example:
    """``asr`` / ``yue_asr`` → transcription, ``lyric`` → lyric, ``caption`` → caption,
    ``spoken_qa`` → answer, ``audio_qa`` (needs ``question``) → answer."""
    tag = {"asr": "transcription", "yue_asr": "transcription", "lyric": "lyric", "caption": "caption",
           "spoken_qa": "answer", "audio_qa": "answer"}[task]
    segs: list[Segment] = [task_prompt(task, rng)]
    if question is not None:
        segs.append(PlainText(question))
    segs += [_a(audio), TextField(tag, text, True)]
    return Example(segs, "understanding", task)


# ---------------------------------------------------------------- generation (stage 3)
def generation(task: str, audio: Audio, rng: random.Random | None = None, *, text: str | None = None,
               caption: str | None = None, lyric: str | None = None, voice: torch.Tensor | None = None,
               source: Audio | None = None, instruction: str | None = None) -> Example:
    """Generation layouts: condition fields in paper order, then the target audio item.

    tts: transcription · instruct_tts: caption, transcription · voice_tts: voice, caption, transcription ·
    text_to_sound / text_to_music: caption · song: [voice], lyric · speech_sound: transcription + caption ·
    speech_edit: instruction, source · denoise: source (the noisy clip).
    """
    segs: list[Segment] = [task_prompt(task, rng)]
    if voice is not None:
        segs.append(VoicePrompt(voice))
    if instruction is not None:
        segs.append(PlainText(instruction))
    if caption is not None:
        segs.append(TextField("caption", caption))
    if lyric is not None:
        segs.append(TextField("lyric", lyric))
    if text is not None:
        segs.append(TextField("transcription", text))
    if source is not None:
        segs.append(_a(source))
    segs.append(_a(audio, True))
    return Example(segs, "generation", task)


def separation(mix: Audio, first: Audio, second: Audio, rng: random.Random | None = None) -> Example:
    return Example([task_prompt("separation", rng), _a(mix), _a(first, True), _a(second, True)],
                   "generation", "separation")


# ---------------------------------------------------------------- few-shot (stage 4)
def few_shot(task: str, demos: Sequence[tuple[Sequence[Segment], Sequence[Segment]]],
             query: Sequence[Segment], answer: Sequence[Segment], rng: random.Random | None = None) -> Example:
    """Demonstration (input, output) pairs, then the query input → ``answer`` (the only targets)."""
    segs: list[Segment] = [task_prompt(task, rng)]
    for inp, out in demos:
        segs += [_cond(s) for s in inp] + [_cond(s) for s in out]
    segs += [_cond(s) for s in query] + [_target(s) for s in answer]
    return Example(segs, "fewshot", task)


def _cond(s: Segment) -> Segment:
    return _with_target(s, False)


def _target(s: Segment) -> Segment:
    return _with_target(s, True)


def _with_target(s: Segment, target: bool) -> Segment:
    if isinstance(s, AudioItem):
        return AudioItem(s.reasoning, s.recon, target)
    if isinstance(s, VoicePrompt):
        return VoicePrompt(s.recon, target)
    if isinstance(s, TextField):
        return TextField(s.tag, s.text, target)
    if isinstance(s, PlainText):
        return PlainText(s.text, target)
    return TaskPrompt(s.text, target)
