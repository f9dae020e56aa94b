"""One Python function per UniAudio 2.0 task.

Conventions (every function):

- audio inputs: a path, a ``(numpy array, sample_rate)`` tuple, or a 1-D float numpy array at the codec
  rate (``pipeline.sample_rate``, 24 kHz); multi-channel input is averaged to mono;
- audio outputs: float32 numpy ``[T]`` at ``pipeline.sample_rate``; text outputs: ``str``;
- ``pipeline=None`` uses :func:`uniaudio_lm.load` (loaded once); ``seed`` seeds sampling;
- text answers are decoded greedily (at most ``max_new_tokens``); audio is sampled with ``temperature``
  (0.9) and ``top_k`` (50), optional classifier-free guidance ``cfg_scale``, and stops at the item's
  end or after ``max_seconds`` (``None``: from the input's length);
- the layouts come from :mod:`uniaudio_lm.registry` (``TASKS[name].prompt``), the same builders that
  make the training examples;
- a task that did not meet its target in the last benchmark of these weights (``task_status.json``
  beside them, see :mod:`uniaudio_lm.status`) warns once per process with an
  :class:`ExperimentalTaskWarning`; silence it with a warnings filter or ``UNIAUDIO_NO_WARN=1``;
- text outputs are always valid UTF-8 (generation is constrained, :mod:`uniaudio_lm.utf8`).

Example::

    import uniaudio_lm as ul
    text = ul.asr("speech.wav")
    wav = ul.tts("Hello there.", language="en")        # float32 [T] at 24 kHz
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import registry
from .ctc_decode import ctc_transcript
from .generate import SamplingConfig
from .inference import audio_config, generate_item, generate_recon, generate_text, score
from .pipeline import Audio, AudioInput, Pipeline, load
from .sentence import AudioItem
from .status import ExperimentalTaskWarning, warn_if_experimental
from .style import Style, from_caption
from .tasks import ANSWER_TAGS

__all__ = [
    "ExperimentalTaskWarning", "Pipeline", "load", "tts", "instruct_tts", "voice_tts", "asr", "dysarthric_asr", "yue_asr", "spoken_qa",
    "spoken_qa_speech", "speech_edit", "speech_sound", "text_to_sound", "audio_caption", "audio_qa", "text_to_music",
    "music_caption", "song", "lyric_recognition", "fewshot_denoise", "fewshot_vc", "fewshot_classify",
    "fewshot_scores", "continue_text", "continue_audio", "reason_to_recon", "recon_to_reason", "denoise", "separate",
]

_DEFAULT: Pipeline | None = None


def default_pipeline() -> Pipeline:
    """The installed pipeline, loaded on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load()
    return _DEFAULT


def _pipe(pipeline: Pipeline | None, task: str) -> Pipeline:
    """The pipeline to use; warns once if ``task`` is experimental for its weights (:mod:`uniaudio_lm.status`)."""
    p = pipeline if pipeline is not None else default_pipeline()
    key = str(p.directory) if p.directory is not None else f"pipeline@{id(p):x}"
    warn_if_experimental(p.task_status(task), key, stacklevel=3)
    return p


def _seconds(pipe: Pipeline, codes: Audio, max_seconds: float | None, scale: float = 1.25) -> float:
    """``max_seconds``, or (``None``) a limit from the input's length: ``scale ×`` duration + 1 s."""
    if max_seconds is not None:
        return float(max_seconds)
    return scale * codes[1].shape[-1] / pipe.codec.recon_frame_rate + 1.0


def _audio(name: str, pipe: Pipeline, fields: dict[str, Any], max_seconds: float, temperature: float,
           top_k: int | None, cfg_scale: float | None, seed: int,
           window: tuple[float, float] | None = None, style: Style | None = None,
           style_scale: float | None = None) -> np.ndarray:
    segs = registry.get(name).prompt(**fields).segments
    item = generate_item(pipe, segs, audio_config(pipe, max_seconds, temperature, top_k, cfg_scale, seed,
                                                  window=window, style=style, style_scale=style_scale))
    return pipe.decode(item)


def _speech_window(pipe: Pipeline, text: str, language: str, caption: str | None,
                   duration: float | None) -> tuple[float, float] | None:
    """Seconds the speech may last: around ``duration`` if given, else around the pipeline's duration
    model's prediction for the text (and the pace the caption asks for); ``None`` leaves the length to
    the model (no duration model, or a language it has no line for)."""
    m = pipe.duration_model
    if duration is not None:
        if not duration > 0 or not np.isfinite(duration):
            raise ValueError(f"duration must be a positive number of seconds, got {duration}")
        from .duration import DurationModel

        tol = (m or DurationModel({})).tolerance  # the default tolerance without a fitted model
        return duration * (1 - tol), duration * (1 + tol)
    if m is None:
        return None
    sec = m.seconds(text, language, caption)
    return None if sec is None else m.window(sec)


def _text(name: str, pipe: Pipeline, fields: dict[str, Any], max_new_tokens: int, seed: int) -> str:
    segs = registry.get(name).prompt(**fields).segments
    return generate_text(pipe, segs, ANSWER_TAGS[name], max_new_tokens, seed)


def _voice(pipe: Pipeline, voice: AudioInput, seconds: float) -> Any:
    return pipe.encode(voice)[1][:, : pipe.frames_for(seconds)]


# ---------------------------------------------------------------- speech generation
def tts(text: str, *, language: str = "en", pipeline: Pipeline | None = None, seed: int = 0,
        max_seconds: float = 20.0, temperature: float = 0.9, top_k: int | None = 50,
        cfg_scale: float | None = None, duration: float | None = None) -> np.ndarray:
    """Text → speech. ``language``: ``"en"``, ``"zh"`` (Mandarin) or ``"yue"`` (Cantonese).

    The speech lasts ``duration`` seconds (± the duration model's tolerance, 15% by default), or, without
    it, what the pipeline's duration model predicts from the text (:mod:`uniaudio_lm.duration`)."""
    p = _pipe(pipeline, "tts")
    return _audio("tts", p, {"text": text, "language": language}, max_seconds, temperature, top_k, cfg_scale, seed,
                  _speech_window(p, text, language, None, duration))


def instruct_tts(text: str, style: str, *, pipeline: Pipeline | None = None, seed: int = 0,
                 max_seconds: float = 20.0, temperature: float = 0.9, top_k: int | None = 50,
                 cfg_scale: float | None = None, duration: float | None = None,
                 style_scale: float | None = None) -> np.ndarray:
    """Style caption (voice, emotion, pace...) + text → speech in that style (length as :func:`tts`,
    scaled by the pace the caption asks for). A model with ``style_conditioning`` also receives the
    caption's rate, pitch and gender words as numbers (:func:`uniaudio_lm.style.from_caption`), with
    ``style_scale`` times their effect (guidance; ``None``: the pipeline's default, 1: none)."""
    p = _pipe(pipeline, "instruct_tts")
    return _audio("instruct_tts", p, {"caption": style, "text": text}, max_seconds, temperature, top_k, cfg_scale,
                  seed, _speech_window(p, text, "en", style, duration), from_caption(style), style_scale)


def voice_tts(text: str, voice: AudioInput, style: str, *, voice_seconds: float = 3.0,
              pipeline: Pipeline | None = None, seed: int = 0, max_seconds: float = 20.0, temperature: float = 0.9,
              top_k: int | None = 50, cfg_scale: float | None = None, duration: float | None = None,
              style_scale: float | None = None) -> np.ndarray:
    """A voice prompt (its first ``voice_seconds``, ≈3 s) + style caption + text → speech in that voice
    (length and style as :func:`instruct_tts`)."""
    p = _pipe(pipeline, "voice_tts")
    fields = {"voice": _voice(p, voice, voice_seconds), "caption": style, "text": text}
    return _audio("voice_tts", p, fields, max_seconds, temperature, top_k, cfg_scale, seed,
                  _speech_window(p, text, "en", style, duration), from_caption(style), style_scale)


def spoken_qa_speech(audio: AudioInput, *, pipeline: Pipeline | None = None, seed: int = 0,
                     max_seconds: float = 20.0, temperature: float = 0.9, top_k: int | None = 50,
                     cfg_scale: float | None = None) -> np.ndarray:
    """A spoken question → a spoken answer."""
    p = _pipe(pipeline, "spoken_qa_speech")
    return _audio("spoken_qa_speech", p, {"source": p.encode(audio)}, max_seconds, temperature, top_k, cfg_scale,
                  seed)


def speech_edit(audio: AudioInput, instruction: str, *, pipeline: Pipeline | None = None, seed: int = 0,
                max_seconds: float | None = None, temperature: float = 0.9, top_k: int | None = 50,
                cfg_scale: float | None = None) -> np.ndarray:
    """Source speech + an edit instruction → the edited speech (default limit: 1.5 × the source + 1 s)."""
    p = _pipe(pipeline, "speech_edit")
    src = p.encode(audio)
    return _audio("speech_edit", p, {"instruction": instruction, "source": src}, _seconds(p, src, max_seconds, 1.5),
                  temperature, top_k, cfg_scale, seed)


def speech_sound(text: str, sound: str, *, pipeline: Pipeline | None = None, seed: int = 0,
                 max_seconds: float = 20.0, temperature: float = 0.9, top_k: int | None = 50,
                 cfg_scale: float | None = None) -> np.ndarray:
    """Text + a sound tag (``"rain"``, ``"dog barking"``) → the speech with that sound behind it."""
    p = _pipe(pipeline, "speech_sound")
    return _audio("speech_sound", p, {"caption": sound, "text": text}, max_seconds, temperature, top_k, cfg_scale,
                  seed)


def denoise(audio: AudioInput, *, pipeline: Pipeline | None = None, seed: int = 0, max_seconds: float | None = None,
            temperature: float = 0.9, top_k: int | None = 50, cfg_scale: float | None = None) -> np.ndarray:
    """Noisy speech → clean speech."""
    p = _pipe(pipeline, "denoise")
    src = p.encode(audio)
    return _audio("denoise", p, {"source": src}, _seconds(p, src, max_seconds), temperature, top_k, cfg_scale, seed)


def separate(audio: AudioInput, *, pipeline: Pipeline | None = None, seed: int = 0, max_seconds: float | None = None,
             temperature: float = 0.9, top_k: int | None = 50,
             cfg_scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A mixture → ``(speech, background)``; the background is generated after the speech, as in training."""
    p = _pipe(pipeline, "separation")
    src = p.encode(audio)
    cfg = audio_config(p, _seconds(p, src, max_seconds), temperature, top_k, cfg_scale, seed)
    spec = registry.get("separation")
    first = generate_item(p, spec.prompt(source=src).segments, cfg)
    if first is None:
        return p.decode(None), p.decode(None)
    cfg.seed = seed + 1
    second = generate_item(p, spec.prompt(source=src, audio=(first.reasoning, first.recon)).segments, cfg)
    return p.decode(first), p.decode(second)


# ---------------------------------------------------------------- understanding
ASR_DECODERS = ("auto", "lm", "ctc")


def asr(audio: AudioInput, *, pipeline: Pipeline | None = None, seed: int = 0, max_new_tokens: int = 256,
        decoder: str = "auto", language: str = "en") -> str:
    """Speech → transcript.

    ``decoder``: ``"lm"``: the language model writes the transcript; ``"ctc"``: the model's audio encoder
    spells it (English only: lower-case letters, spaces and apostrophes; models with ``audio_encoder_layers``
    trained with ``audio_encoder_ctc_weight``); ``"auto"`` (default): ``"ctc"`` for English speech where the
    model has such an encoder, else ``"lm"``. ``language``: of the speech (``"en"``, ``"zh"``...)."""
    if decoder not in ASR_DECODERS:
        raise ValueError(f"decoder must be one of {', '.join(ASR_DECODERS)}, not {decoder!r}")
    p = _pipe(pipeline, "asr")
    has_ctc = p.model.audio_encoder is not None and p.model.config.audio_encoder_ctc_weight > 0
    english = str(language).lower().split("-")[0] == "en"
    if decoder == "ctc" and not has_ctc:
        raise ValueError("decoder='ctc' needs a model whose audio encoder was trained with a CTC loss "
                         "(audio_encoder_ctc_weight > 0); this one has none")
    if decoder == "ctc" and not english:
        raise ValueError(f"decoder='ctc' spells English only, not language {language!r}; use decoder='lm'")
    codes = p.encode(audio)
    if decoder == "lm" or not has_ctc or not english:
        return _text("asr", p, {"audio": codes}, max_new_tokens, seed)
    return ctc_transcript(p, codes)



def dysarthric_asr(audio: AudioInput, *, pipeline: Pipeline | None = None, seed: int = 0,
                   max_new_tokens: int = 256) -> str:
    """Dysarthric speech → transcript (the ASR layout with its own prompts; zero-shot in the paper)."""
    p = _pipe(pipeline, "dysarthric_asr")
    return _text("dysarthric_asr", p, {"audio": p.encode(audio)}, max_new_tokens, seed)


def yue_asr(audio: AudioInput, *, pipeline: Pipeline | None = None, seed: int = 0, max_new_tokens: int = 256) -> str:
    """Cantonese speech → transcript in Chinese characters."""
    p = _pipe(pipeline, "yue_asr")
    return _text("yue_asr", p, {"audio": p.encode(audio)}, max_new_tokens, seed)


def spoken_qa(audio: AudioInput, *, pipeline: Pipeline | None = None, seed: int = 0,
              max_new_tokens: int = 128) -> str:
    """A spoken question → a text answer."""
    p = _pipe(pipeline, "spoken_qa")
    return _text("spoken_qa", p, {"audio": p.encode(audio)}, max_new_tokens, seed)


def audio_caption(audio: AudioInput, *, pipeline: Pipeline | None = None, seed: int = 0,
                  max_new_tokens: int = 128) -> str:
    """A sound → a one-sentence caption."""
    p = _pipe(pipeline, "audio_caption")
    return _text("audio_caption", p, {"audio": p.encode(audio)}, max_new_tokens, seed)


def audio_qa(audio: AudioInput, question: str, *, pipeline: Pipeline | None = None, seed: int = 0,
             max_new_tokens: int = 128) -> str:
    """A sound + a question about it → a text answer."""
    p = _pipe(pipeline, "audio_qa")
    return _text("audio_qa", p, {"question": question, "audio": p.encode(audio)}, max_new_tokens, seed)


def music_caption(audio: AudioInput, *, pipeline: Pipeline | None = None, seed: int = 0,
                  max_new_tokens: int = 128) -> str:
    """Music → a one-sentence description."""
    p = _pipe(pipeline, "music_caption")
    return _text("music_caption", p, {"audio": p.encode(audio)}, max_new_tokens, seed)


def lyric_recognition(audio: AudioInput, *, pipeline: Pipeline | None = None, seed: int = 0,
                      max_new_tokens: int = 256) -> str:
    """Singing → its lyrics."""
    p = _pipe(pipeline, "lyric_recognition")
    return _text("lyric_recognition", p, {"audio": p.encode(audio)}, max_new_tokens, seed)


# ---------------------------------------------------------------- sound and music generation
def text_to_sound(caption: str, *, pipeline: Pipeline | None = None, seed: int = 0, max_seconds: float = 10.0,
                  temperature: float = 0.9, top_k: int | None = 50, cfg_scale: float | None = None) -> np.ndarray:
    """A sound description → the sound."""
    p = _pipe(pipeline, "text_to_sound")
    return _audio("text_to_sound", p, {"caption": caption}, max_seconds, temperature, top_k, cfg_scale, seed)


def text_to_music(caption: str, *, pipeline: Pipeline | None = None, seed: int = 0, max_seconds: float = 10.0,
                  temperature: float = 0.9, top_k: int | None = 50, cfg_scale: float | None = None) -> np.ndarray:
    """A music description → music."""
    p = _pipe(pipeline, "text_to_music")
    return _audio("text_to_music", p, {"caption": caption}, max_seconds, temperature, top_k, cfg_scale, seed)


def song(lyrics: str, *, language: str = "en", style: str | None = None, voice: AudioInput | None = None,
         voice_seconds: float = 3.0, pipeline: Pipeline | None = None, seed: int = 0, max_seconds: float = 30.0,
         temperature: float = 0.9, top_k: int | None = 50, cfg_scale: float | None = None) -> np.ndarray:
    """Lyrics (``language`` ``"en"`` or ``"zh"``), optional style caption and singer voice prompt → singing."""
    p = _pipe(pipeline, "song")
    fields = {"lyric": lyrics, "language": language, "caption": style,
              "voice": None if voice is None else _voice(p, voice, voice_seconds)}
    return _audio("song", p, fields, max_seconds, temperature, top_k, cfg_scale, seed)


# ---------------------------------------------------------------- few-shot
def _pairs(p: Pipeline, examples: Sequence[tuple[AudioInput, AudioInput]]) -> list[tuple[Audio, Audio]]:
    if not examples:
        raise ValueError("give at least one (input, output) example pair")
    return [(p.encode(a), p.encode(b)) for a, b in examples]


def fewshot_denoise(examples: Sequence[tuple[AudioInput, AudioInput]], query: AudioInput, *,
                    pipeline: Pipeline | None = None, seed: int = 0, max_seconds: float | None = None,
                    temperature: float = 0.9, top_k: int | None = 50, cfg_scale: float | None = None) -> np.ndarray:
    """``examples = [(noisy, clean), ...]`` (one is enough) + a noisy query → the clean query, in one
    auditory sentence."""
    p = _pipe(pipeline, "fewshot_denoise")
    demos, src = _pairs(p, examples), p.encode(query)
    return _audio("fewshot_denoise", p, {"demos": demos, "source": src}, _seconds(p, src, max_seconds), temperature,
                  top_k, cfg_scale, seed)


def fewshot_vc(examples: Sequence[tuple[AudioInput, AudioInput]], query: AudioInput, *,
               pipeline: Pipeline | None = None, seed: int = 0, max_seconds: float | None = None,
               temperature: float = 0.9, top_k: int | None = 50, cfg_scale: float | None = None) -> np.ndarray:
    """``examples = [(source, converted), ...]`` (one-shot) + a source query → the query in the target voice."""
    p = _pipe(pipeline, "fewshot_vc")
    demos, src = _pairs(p, examples), p.encode(query)
    return _audio("fewshot_vc", p, {"demos": demos, "source": src}, _seconds(p, src, max_seconds, 1.5), temperature,
                  top_k, cfg_scale, seed)


def fewshot_scores(examples: Sequence[tuple[AudioInput, str]], query: AudioInput,
                   labels: Sequence[str] | None = None, *, pipeline: Pipeline | None = None) -> dict[str, float]:
    """Log-likelihood of each candidate label as the query's answer (see :func:`fewshot_classify`)."""
    p = _pipe(pipeline, "fewshot_classify")
    if not examples:
        raise ValueError("give at least one (audio, label) example")
    demos = [(p.encode(a), str(lab)) for a, lab in examples]
    cands = list(dict.fromkeys(str(x) for x in (labels if labels is not None else [lab for _, lab in demos])))
    if not cands:
        raise ValueError("give at least one candidate label")
    q = p.encode(query)
    spec = registry.get("fewshot_classify")
    return {c: score(p.model, p.tokenizer, spec.example(demos=demos, audio=q, text=c).segments) for c in cands}


def fewshot_classify(examples: Sequence[tuple[AudioInput, str]], query: AudioInput,
                     labels: Sequence[str] | None = None, *, pipeline: Pipeline | None = None, seed: int = 0) -> str:
    """Few-shot sound classification: ``examples = [(audio, label), ...]`` (2-way in the paper) + a query
    → the candidate label (``labels``, default: the examples' labels) whose answer the model finds most
    likely (teacher-forced log-likelihood, no free generation; deterministic, so ``seed`` has no effect)."""
    scores = fewshot_scores(examples, query, labels, pipeline=pipeline)
    return max(scores, key=scores.__getitem__)


# ---------------------------------------------------------------- pre-training tasks
def continue_text(text: str, *, pipeline: Pipeline | None = None, seed: int = 0, max_new_tokens: int = 64) -> str:
    """Text → its continuation (greedy; the text-only layout, so the model's language ability)."""
    p = _pipe(pipeline, "text_only")
    # the text-only layout has no prompt part: the given text is the start of the target itself
    segs = registry.get("text_only").example(text=text).segments
    return generate_text(p, segs, None, max_new_tokens, seed)


def continue_audio(audio: AudioInput, *, pipeline: Pipeline | None = None, seed: int = 0, max_seconds: float = 5.0,
                   temperature: float = 0.9, top_k: int | None = 50) -> np.ndarray:
    """An audio prefix → its continuation (the continuation only, not the prefix)."""
    p = _pipe(pipeline, "audio_only")
    return _audio("audio_only", p, {"prefix": p.encode(audio)}, max_seconds, temperature, top_k, None, seed)


def reason_to_recon(audio: AudioInput, *, pipeline: Pipeline | None = None, seed: int = 0,
                    max_seconds: float | None = None, temperature: float = 0.9, top_k: int | None = 50) -> np.ndarray:
    """The input's reasoning tokens → reconstruction tokens generated by the language model → audio
    (resynthesis from the 5 Hz semantic stream alone)."""
    p = _pipe(pipeline, "reason_to_recon")
    codes = p.encode(audio)
    segs = registry.get("reason_to_recon").prompt(audio=(codes[0], None)).segments
    recon = generate_recon(p, segs, p.frames_for(_seconds(p, codes, max_seconds)), SamplingConfig(temperature, top_k),
                           seed)
    return p.decode(AudioItem(None, recon, True) if recon.shape[-1] else None)


def recon_to_reason(audio: AudioInput, *, pipeline: Pipeline | None = None, seed: int = 0,
                    max_seconds: float | None = None, temperature: float = 0.0,
                    top_k: int | None = None) -> np.ndarray:
    """The input's reconstruction tokens → reasoning tokens generated by the language model: int64
    ``[Kr, Tr]`` (greedy by default)."""
    p = _pipe(pipeline, "recon_to_reason")
    codes = p.encode(audio)
    segs = registry.get("recon_to_reason").prompt(audio=(None, codes[1])).segments
    cfg = audio_config(p, _seconds(p, codes, max_seconds), temperature, top_k, None, seed, reasoning_only=True)
    item = generate_item(p, segs, cfg)
    kr = p.model.config.num_reasoning_codebooks
    if item is None or item.reasoning is None:
        return np.zeros((kr, 0), dtype=np.int64)
    return item.reasoning.numpy().astype(np.int64)
