"""Task layouts of the UniAudio 2.0 paper as segment lists, with natural-language task prompts.

Each builder returns an :class:`Example`: the segments (condition segments first, then the target
segments with ``target=True``) and its ``kind``, which the training mixture and condition dropout use:
``text`` (text-only LM data), ``audio`` (audio-only continuation), ``translation`` (reasoning ↔
reconstruction), ``understanding`` (audio → text), ``generation`` (→ audio) and ``fewshot``.
Audio arguments are ``(reasoning [Kr, Tr], recon [Kq, Tq])`` pairs of code tensors. Leaving a builder's
target out (``None``) gives the condition segments alone: the prompt that generation continues.

:mod:`uniaudio_lm.registry` names every task of the paper on top of these builders.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from .sentence import AudioItem, PlainText, Segment, TaskPrompt, TextField, VoicePrompt

Audio = tuple[torch.Tensor, torch.Tensor]
KINDS = ("text", "audio", "translation", "understanding", "generation", "fewshot")

TASK_PROMPTS: dict[str, tuple[str, ...]] = {
    # ---- speech understanding
    "asr": ("Transcribe the speech exactly as it is spoken.", "Listen carefully and tell me what the person is saying.",
            "Write down what is said in this recording.", "Turn this spoken audio into written text, word for word.",
            "What words does the speaker say? Give the exact transcript.",
            "Produce a verbatim transcript of the clip.", "请把这段语音准确地转写成文字。"),
    "dysarthric_asr": ("The speaker has a speech impairment. Transcribe what they say as accurately as you can.",
                       "Write down the words of this slurred or unclear speech.",
                       "Transcribe this recording of a speaker with dysarthria.",
                       "The articulation in this clip is impaired; recover the intended sentence as text.",
                       "Listen patiently to this atypical speech and give its transcript.",
                       "请转写这段构音障碍说话人的语音。"),
    "yue_asr": ("Transcribe this Cantonese speech.", "Write down what the Cantonese speaker says, in Chinese characters.",
                "Listen to the Cantonese recording and give its exact transcript.",
                "Convert this Cantonese utterance into written text.",
                "The clip is spoken in Cantonese. What is being said?", "唔該將呢段說話準確噉寫做文字。",
                "请把这段粤语语音转写成文字。"),
    "spoken_qa": ("Answer the spoken question.", "Listen to the question and answer it.",
                  "Someone asks you something out loud. Reply in text.",
                  "Give a short written answer to the question in the recording.",
                  "What is the answer to the question you hear?", "请回答录音里的问题。"),
    # ---- speech generation
    "spoken_qa_speech": ("Listen to the question and answer it out loud.", "Reply to the spoken question with speech.",
                         "Someone asks you a question. Say your answer.",
                         "Answer the question in the recording with a spoken reply.",
                         "Hear the question, then speak a short answer.", "请听问题，然后用语音回答。"),
    "tts": ("Read the following text aloud in a natural voice.", "Say the sentence below.",
            "Convert this text into natural-sounding speech.", "Speak the transcription clearly.",
            "Please read this out loud at a normal pace.", "Turn the written sentence into spoken English."),
    "tts_zh": ("Read the following Mandarin text aloud.", "Say this sentence in Mandarin Chinese.",
               "Speak the Chinese text below in standard Mandarin.", "Turn this Mandarin sentence into natural speech.",
               "Please read the text aloud in Putonghua.", "请用自然的语气朗读下面这段文字。", "请用普通话读出这句话。"),
    "tts_yue": ("Read the following text aloud in Cantonese.", "Say this sentence in Cantonese.",
                "Speak the text below the way a Hong Kong Cantonese speaker would.",
                "Turn this Cantonese sentence into natural speech.", "Please pronounce the text in Cantonese.",
                "用自然啲嘅語氣讀出下面呢段文字。", "請用廣東話讀出呢句說話。"),
    "instruct_tts": ("Speak the sentence in the style described by the instruction.",
                     "Read the text in the described voice and manner.",
                     "Follow the style description and say the sentence.",
                     "Use the voice, emotion and pace given in the caption to read the text.",
                     "Synthesise the transcription so that it matches the style caption.",
                     "请按照描述的风格朗读这句话。"),
    "voice_tts": ("Read the text in the voice of the prompt speaker, in the described style.",
                  "Clone the prompt voice and say the sentence.",
                  "Use the speaker from the short voice sample and read the text in the described manner.",
                  "Imitate the timbre of the voice prompt while following the style caption.",
                  "Say the transcription with the prompt speaker's voice.", "请用提示音里的声音，按描述的风格读出这段文字。"),
    "speech_edit": ("Edit the recording as instructed.", "Change the speech following the instruction.",
                    "Apply the requested change to this utterance.",
                    "Modify the source speech according to the instruction and keep everything else.",
                    "Rewrite the recording so that it follows the edit request.", "请按照指令修改这段语音。"),
    "speech_sound": ("Say the sentence over the described background sound.",
                     "Speak the text with the given sound playing behind the voice.",
                     "Generate speech of the transcription mixed with the tagged sound.",
                     "Read the sentence aloud in a scene that contains the described sound.",
                     "Produce the spoken sentence on top of the background sound.", "请在描述的背景声音中读出这句话。"),
    "denoise": ("Remove the background noise from the recording.", "Clean up this noisy speech.",
                "Keep the voice and take out the noise.", "Enhance the recording so that only clear speech remains.",
                "Suppress the noise in this clip.", "请去除录音中的背景噪声。"),
    "separation": ("Separate the speech from the background.", "Split the mixture into its two sources.",
                   "Pull the voice and the background sound apart.",
                   "Give the speech first, then everything else in the mixture.",
                   "Unmix this recording into its speech and its background.", "请把混合音频分离成两个声源。"),
    # ---- sound
    "text_to_sound": ("Generate the sound described by the caption.", "Create this sound effect.",
                      "Make audio that matches the description.", "Produce the sound scene in the caption.",
                      "Synthesise a clip that sounds like the text describes.", "请根据描述生成声音。"),
    "audio_caption": ("Describe the audio in a single sentence.", "What can you hear in this clip? Answer in one sentence.",
                      "Write a short caption for the sound.", "Summarise the sound events in this recording.",
                      "Give a brief description of what is happening in the audio.", "请用一句话描述你听到的声音。"),
    "audio_qa": ("Answer the question about the audio clip.", "Listen to the clip and reply to the question.",
                 "Use what you hear to answer the question.", "The question is about the recording; answer it briefly.",
                 "Based on the sound, what is the answer?", "请回答关于这段音频的问题。"),
    # ---- music
    "text_to_music": ("Compose a short piece of music that matches the description.", "Generate music from this caption.",
                      "Create an instrumental clip in the described style.", "Play music that fits the description.",
                      "Write and perform a short tune like the text says.", "请根据描述生成一段音乐。"),
    "music_caption": ("Describe this piece of music in one sentence.", "What instruments, mood and tempo do you hear?",
                      "Write a short caption for the music.", "Summarise the style of this music clip.",
                      "Give a brief description of the music.", "请用一句话描述这段音乐。"),
    "song": ("Sing the lyrics with the given melody and style.", "Sing these lyrics.", "Turn the lyrics into a sung vocal.",
             "Perform the words as a song.", "Sing the text below in a clear voice."),
    "song_zh": ("Sing these Mandarin lyrics.", "Perform the Chinese lyrics as a song.", "Sing the words below in Mandarin.",
                "Turn the Mandarin lyrics into a sung vocal.", "Please sing this Chinese text.", "请唱出下面的歌词。",
                "根据歌词唱呢首歌。"),
    "lyric_recognition": ("Write down the lyrics of the song.", "Recognise the sung lyrics.",
                          "What words are being sung? Give the lyrics.", "Transcribe the singing in this clip.",
                          "Listen to the song and write out its lyrics.", "请写出这首歌的歌词。"),
    # ---- few-shot (one auditory sentence each)
    "fewshot_denoise": ("The examples show noisy recordings and their clean versions. Clean the last one.",
                        "Learn from the example pair how to remove the noise, then do the same for the new clip.",
                        "Each noisy clip is followed by its clean version. Give the clean version of the last clip.",
                        "Follow the demonstration: noisy in, clean out.",
                        "Denoise the final recording the way the example was denoised."),
    "fewshot_vc": ("The examples convert a voice into the prompt voice. Convert the last recording too.",
                   "The example shows a sentence and the same sentence in another voice. Convert the last clip the same way.",
                   "Follow the demonstration and say the last utterance in the target speaker's voice.",
                   "Each source clip is followed by its converted version. Convert the final clip.",
                   "Change the speaker of the last recording like in the example."),
    "fewshot_classify": ("Classify the sound into one of the two given categories, like in the examples.",
                         "Each clip is followed by its label. Label the last clip.",
                         "Use the labelled examples to decide which class the final sound belongs to.",
                         "Look at the examples and name the category of the last clip.",
                         "Which of the example labels fits the last recording?"),
    # ---- pre-training
    "continue": ("Continue the audio in the same style.", "Keep going from where the clip stops.",
                 "Extend this recording naturally.", "Generate what comes next in the audio.",
                 "Carry on the sound for a little longer."),
    "reason_to_recon": ("Translate the reasoning tokens into reconstruction tokens.",
                        "Turn the semantic tokens into acoustic tokens.",
                        "Fill in the acoustic detail for these reasoning tokens.",
                        "Render the reasoning stream as reconstruction codes.",
                        "Generate the reconstruction tokens that match the reasoning tokens."),
    "recon_to_reason": ("Translate the reconstruction tokens into reasoning tokens.",
                        "Turn the acoustic tokens into semantic tokens.",
                        "Extract the reasoning stream from these reconstruction codes.",
                        "Summarise the acoustic tokens as reasoning tokens.",
                        "Which reasoning tokens go with these reconstruction tokens?"),
    # ---- older names kept for existing data (``lyric`` and ``caption`` layouts)
    "lyric": ("Write down the lyrics of the song.", "Recognise the sung lyrics.", "请写出这首歌的歌词。"),
    "caption": ("Describe the audio in a single sentence.", "Please describe the sound you hear in one short sentence.",
                "请用一句话描述你听到的声音。"),
}


@dataclass
class Example:
    """One training or prompting sequence."""

    segments: list[Segment]
    kind: str
    task: str = ""
    #: the recorded speaking style of the target speech (:class:`uniaudio_lm.style.Style`), if any
    style: Any = None


#: Languages with their own prompt lists (``TASK_PROMPTS[f"{task}_{language}"]``); English uses ``task``.
LANGUAGES = ("en", "zh", "yue")
#: Other spellings of those languages (ISO 639-3 ``cmn`` for Mandarin, espeak's English voices).
LANGUAGE_ALIASES = {"cmn": "zh", "zh-cn": "zh", "en-us": "en", "en-gb": "en"}


def canonical_language(language: str | None) -> str | None:
    """``"cmn"`` → ``"zh"``, ``"en-us"`` → ``"en"``...; other values unchanged."""
    return LANGUAGE_ALIASES.get(language.lower(), language) if isinstance(language, str) else language


def prompt_key(task: str, language: str | None = None) -> str:
    """The :data:`TASK_PROMPTS` key of ``task`` in ``language`` (``None`` / ``"en"``: the task itself)."""
    language = canonical_language(language)
    if language in (None, "en"):
        return task
    key = f"{task}_{language}"
    if key not in TASK_PROMPTS:
        have = ["en"] + [k[len(task) + 1:] for k in TASK_PROMPTS if k.startswith(task + "_")
                         and k[len(task) + 1:] in LANGUAGES]
        raise ValueError(f"task {task!r} has no prompts for language {language!r}; it has {have}")
    return key


def task_prompt(task: str, rng: random.Random | None = None, language: str | None = None) -> TaskPrompt:
    """A task prompt drawn from :data:`TASK_PROMPTS` (the first one without ``rng``)."""
    options = TASK_PROMPTS[prompt_key(task, language)]
    return TaskPrompt(rng.choice(options) if rng is not None else options[0])


def _a(x: Audio, target: bool = False, loss_on: str = "all") -> AudioItem:
    return AudioItem(x[0], x[1], target, loss_on)


# ---------------------------------------------------------------- pre-training (stage 1)
def text_only(text: str) -> Example:
    return Example([PlainText(text, True)], "text", "text")


def audio_only(audio: Audio | None, rng: random.Random | None = None, prefix: Audio | None = None) -> Example:
    """``P · [A(prefix)] → A(audio)``; ``audio=None`` gives the continuation prompt."""
    segs: list[Segment] = [task_prompt("continue", rng)]
    if prefix is not None:
        segs.append(_a(prefix))
    if audio is not None:
        segs.append(_a(audio, True))
    return Example(segs, "audio", "continue")


def reason_to_recon(audio: tuple[torch.Tensor, torch.Tensor | None], rng: random.Random | None = None) -> Example:
    """One item, loss on its reconstruction part; ``audio = (reasoning, None)`` gives the prompt."""
    item = _a(audio, True, "recon") if audio[1] is not None else AudioItem(audio[0], None)
    return Example([task_prompt("reason_to_recon", rng), item], "translation", "reason_to_recon")


def recon_to_reason(audio: tuple[torch.Tensor | None, torch.Tensor], rng: random.Random | None = None) -> Example:
    """Reconstruction-only item → reasoning-only item; ``audio = (None, recon)`` gives the prompt."""
    segs: list[Segment] = [task_prompt("recon_to_reason", rng), AudioItem(None, audio[1])]
    if audio[0] is not None:
        segs.append(AudioItem(audio[0], None, True))
    return Example(segs, "translation", "recon_to_reason")


# ---------------------------------------------------------------- understanding (stage 2)
#: Understanding task → the tag of its text target.
ANSWER_TAGS = {"asr": "transcription", "dysarthric_asr": "transcription", "yue_asr": "transcription",
               "lyric": "lyric", "lyric_recognition": "lyric", "caption": "caption", "audio_caption": "caption",
               "music_caption": "caption", "spoken_qa": "answer", "audio_qa": "answer"}


def understanding(task: str, audio: Audio, text: str | None, rng: random.Random | None = None,
                  question: str | None = None) -> Example:
    """``P · [question] · A → <tag>text</tag>``: ``asr`` / ``dysarthric_asr`` / ``yue_asr`` → transcription,
    ``lyric_recognition`` (``lyric``) → lyric, ``audio_caption`` / ``music_caption`` (``caption``) → caption,
    ``spoken_qa`` → answer, ``audio_qa`` (needs ``question``) → answer. ``text=None`` gives the prompt."""
    tag = ANSWER_TAGS[task]
    segs: list[Segment] = [task_prompt(task, rng)]
    if question is not None:
        segs.append(PlainText(question))
    segs.append(_a(audio))
    if text is not None:
        segs.append(TextField(tag, text, True))
    return Example(segs, "understanding", task)


# ---------------------------------------------------------------- generation (stage 3)
def generation(task: str, audio: Audio | None, rng: random.Random | None = None, *, text: str | None = None,
               caption: str | None = None, lyric: str | None = None, voice: torch.Tensor | None = None,
               source: Audio | None = None, instruction: str | None = None,
               language: str | None = None) -> Example:
    """Generation layouts: condition fields in paper order, then the target audio item (``audio=None``
    gives the generation prompt).

    tts: transcription · instruct_tts: caption, transcription · voice_tts: voice, caption, transcription ·
    text_to_sound / text_to_music: caption · song: [voice], [caption], lyric · speech_sound: caption (the
    sound tag), transcription · speech_edit: instruction, source · denoise: source (the noisy clip) ·
    spoken_qa_speech: source (the question). ``language`` picks the prompt list (tts: en / zh / yue;
    song: en / zh).
    """
    segs: list[Segment] = [task_prompt(task, rng, language)]
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
    if audio is not None:
        segs.append(_a(audio, True))
    return Example(segs, "generation", task)


def separation(mix: Audio, first: Audio | None, second: Audio | None, rng: random.Random | None = None) -> Example:
    """``P · A(mix) → A(first) · A(second)``; leave out the targets (``None``) for the prompt."""
    segs: list[Segment] = [task_prompt("separation", rng), _a(mix)]
    segs += [_a(x, True) for x in (first, second) if x is not None]
    return Example(segs, "generation", "separation")


# ---------------------------------------------------------------- few-shot (stage 4)
def few_shot(task: str, demos: Sequence[tuple[Sequence[Segment], Sequence[Segment]]],
             query: Sequence[Segment], answer: Sequence[Segment], rng: random.Random | None = None) -> Example:
    """Demonstration (input, output) pairs, then the query input → ``answer`` (the only targets)."""
    segs: list[Segment] = [task_prompt(task, rng)]
    for inp, out in demos:
        segs += [_cond(s) for s in inp] + [_cond(s) for s in out]
    segs += [_cond(s) for s in query] + [_target(s) for s in answer]
    return Example(segs, "fewshot", task)


def few_shot_audio(task: str, demos: Sequence[tuple[Audio, Audio]], source: Audio, audio: Audio | None,
                   rng: random.Random | None = None) -> Example:
    """Audio → audio few-shot (``fewshot_denoise``, ``fewshot_vc``): ``P · (A(in) · A(out))×n · A(query) →
    A(answer)``; ``audio=None`` gives the prompt."""
    return few_shot(task, [([_a(i)], [_a(o)]) for i, o in demos], [_a(source)],
                    [] if audio is None else [_a(audio)], rng)


def few_shot_classify(demos: Sequence[tuple[Audio, str]], audio: Audio, label: str | None,
                      rng: random.Random | None = None) -> Example:
    """Few-shot sound classification: ``P · (A · <answer>label</answer>)×n · A(query) → <answer>label</answer>``."""
    return few_shot("fewshot_classify", [([_a(x)], [TextField("answer", lab)]) for x, lab in demos], [_a(audio)],
                    [] if label is None else [TextField("answer", label)], rng)


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
