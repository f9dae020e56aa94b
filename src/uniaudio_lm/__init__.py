"""uniaudio_lm: one autoregressive language model over text tokens and ReasoningCodec frames.

The model follows UniAudio 2.0 (arXiv 2602.04683): a sequence position is one text token or one audio
frame (the sum of its per-codebook embeddings); audio positions pass through audio-understanding expert
layers, every position through the backbone (a text-LLM-shaped transformer), and positions that predict
audio through audio-generation expert layers, from which a small depth transformer predicts the
codebooks of the next frame one by one. An audio item is its reasoning segment then its reconstruction
segment; tasks are *auditory sentences* of typed segments with the loss on the target fields.

Quick tour::

    from reasoningcodec import CodecConfig
    import uniaudio_lm as ul

    tok = ul.default_tokenizer()
    cfg = ul.UniAudioConfig.preset("tiny", CodecConfig())
    model = ul.UniAudioLM(cfg)
    sent = ul.build([ul.TaskPrompt("Read the text aloud."), ul.TextField("transcription", "hi")],
                    tok, model.vocab, eot=False)
    out = ul.generate(model, tok, [sent], ul.GenerationConfig(mode="audio", max_new_positions=64))
    wav = ul.decode_audio(codec, out[0].audio)      # codec: a reasoningcodec.ReasoningCodec

Every task of the paper is in :data:`uniaudio_lm.registry.TASKS` (layout, prompts, data recipe) and has
a function here, on a trained :class:`Pipeline` (``uniaudio_lm.load()``; see :mod:`uniaudio_lm.api`)::

    ul.asr("speech.wav")                                   # → str
    ul.tts("你好", language="zh")                          # → float32 [T] at 24 kHz
    ul.fewshot_classify([("a.wav", "dog"), ("b.wav", "cat")], "q.wav")

The same tasks on the command line: ``uniaudio list``, ``uniaudio tts "hello" -o out.wav``.

Each task carries its measured status from the last benchmark of the installed weights
(``pretrained/default/task_status.json``): ``works`` or ``experimental``. Experimental tasks warn once
(:class:`ExperimentalTaskWarning`; ``UNIAUDIO_NO_WARN=1`` or a warnings filter silences it), and
``uniaudio list`` shows every task's status.

Training: ``python -m uniaudio_lm.train`` (stages 1-4, DDP via torchrun); install the result with
``uniaudio install <out_dir>/model``. Tokenizer rebuild: ``python -m uniaudio_lm.tokenizer train``.
"""

import warnings

# `python -m uniaudio_lm.tokenizer` runs a module this package has already imported; that is harmless
# here (the module keeps no state the CLI depends on), so runpy's warning about it is silenced
warnings.filterwarnings("ignore", message=r".*'uniaudio_lm\.\w+' found in sys\.modules", category=RuntimeWarning)

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from .config import PRESETS, UniAudioConfig  # noqa: E402
from .generate import (GenerationConfig, GenerationOutput, SamplingConfig, codes_from_items,  # noqa: E402
                       decode_audio, generate, sample)
from .hf import from_hf_llama  # noqa: E402
from .whisper_init import from_whisper_tiny_en, whisper_tokenizer  # noqa: E402
from .model import GlobalOutput, LMOutput, UniAudioLM  # noqa: E402
from .sentence import (AudioItem, PlainText, Segment, SentenceBatch, SentenceTensors, TaskPrompt,  # noqa: E402
                       TextField, VoicePrompt, build, collate, drop_conditions, parse)
from .stages import STAGES, BucketBatcher, StageConfig  # noqa: E402
from .tasks import TASK_PROMPTS, Example  # noqa: E402
from .tokenizer import FIELD_TAGS, SPECIAL_TOKENS, TextTokenizer, default_tokenizer  # noqa: E402
from .vocab import AudioVocab, Special  # noqa: E402
from .registry import TASKS, TaskError, TaskSpec  # noqa: E402
from .inference import score  # noqa: E402
from .pipeline import Pipeline, install, load  # noqa: E402
from .status import ExperimentalTaskWarning, TaskStatus  # noqa: E402
from .api import (asr, audio_caption, audio_qa, continue_audio, continue_text, denoise, dysarthric_asr,  # noqa: E402
                  fewshot_classify, fewshot_denoise, fewshot_scores, fewshot_vc, instruct_tts, lyric_recognition,
                  music_caption, reason_to_recon, recon_to_reason, separate, song, speech_edit, speech_sound,
                  spoken_qa, spoken_qa_speech, text_to_music, text_to_sound, tts, voice_tts, yue_asr)

__version__ = "0.1.0"

__all__ = [
    "AudioItem", "AudioVocab", "BucketBatcher", "Checkpoint", "Example", "FIELD_TAGS", "GenerationConfig",
    "GenerationOutput", "GlobalOutput", "LMOutput", "PRESETS", "PlainText", "SPECIAL_TOKENS", "STAGES",
    "SamplingConfig", "Segment", "SentenceBatch", "SentenceTensors", "Special", "StageConfig", "TASK_PROMPTS",
    "TaskPrompt", "TextField", "TextTokenizer", "UniAudioConfig", "UniAudioLM", "VoicePrompt", "build",
    "codes_from_items", "collate", "decode_audio", "default_tokenizer", "drop_conditions", "from_hf_llama",
    "from_whisper_tiny_en", "generate", "load_checkpoint", "parse", "sample", "save_checkpoint", "whisper_tokenizer", "__version__",
    # tasks
    "ExperimentalTaskWarning", "Pipeline", "TASKS", "TaskError", "TaskSpec", "TaskStatus", "install", "load",
    "score",
    "asr", "audio_caption", "audio_qa", "continue_audio", "continue_text", "denoise", "dysarthric_asr",
    "fewshot_classify", "fewshot_denoise", "fewshot_scores", "fewshot_vc", "instruct_tts", "lyric_recognition",
    "music_caption", "reason_to_recon", "recon_to_reason", "separate", "song", "speech_edit", "speech_sound",
    "spoken_qa", "spoken_qa_speech", "text_to_music", "text_to_sound", "tts", "voice_tts", "yue_asr",
]
