"""What a training run starts from: its text tokenizer and its model (fresh, a saved model, Whisper tiny.en's
text decoder or a Hugging Face Llama), and how its weights are written."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from reasoningcodec import CodecConfig

from .config import UniAudioConfig
from .model import UniAudioLM
from .tokenizer import TextTokenizer, default_tokenizer

#: ``cfg`` below is a :class:`uniaudio_lm.train.TrainConfig` (not imported: the trainer imports this module).
TrainConfig = Any

#: Model-config fields that only shape training; a recipe's ``model`` may set them on top of ``init_from``.
TRAINING_FIELDS = ("audio_loss_weight", "ctc_weight", "codec_codebook_dim", "codec_vectors_only", "audio_summary",
                   "clip_attention", "audio_encoder_layers", "audio_encoder_dim", "audio_encoder_ctc_weight",
                   "style_conditioning")


def load_tokenizer(cfg: TrainConfig) -> TextTokenizer:
    """The run's text tokenizer (see :attr:`TrainConfig.tokenizer`)."""
    from .whisper_init import NAME, whisper_tokenizer

    name = cfg.tokenizer
    if name is None and cfg.init_from == NAME:
        name = NAME
    if name is None and cfg.init_from and (Path(cfg.init_from) / "tokenizer.json").is_file():
        name = str(Path(cfg.init_from) / "tokenizer.json")
    if name == NAME:
        return whisper_tokenizer()
    return default_tokenizer() if name is None else TextTokenizer.load(name)


def build_model(cfg: TrainConfig, tok: TextTokenizer) -> UniAudioLM:
    """The model a run starts from: ``init_from`` weights (a saved model, ``"whisper-tiny.en"``, or a Hugging
    Face Llama folder) or fresh ones; a clear error when the tokenizer does not fit it."""
    model = _new_model(cfg, tok)
    if model.config.text_vocab_size != tok.vocab_size:
        raise ValueError(f"the model has {model.config.text_vocab_size} text ids, the tokenizer {tok.vocab_size}: "
                         "set the recipe's 'tokenizer' to the one the weights were trained with")
    return model


def _new_model(cfg: TrainConfig, tok: TextTokenizer) -> UniAudioLM:
    from .whisper_init import NAME, from_whisper_tiny_en

    codec = CodecConfig(**cfg.codec)
    if cfg.init_from == NAME:
        model = from_whisper_tiny_en(UniAudioConfig.preset(cfg.preset, codec, text_vocab_size=tok.vocab_size,
                                                           **cfg.model))
        if model.config.codec_codebook_dim:
            _fill_codec_vectors(model, cfg)
        return model
    if cfg.init_from and (Path(cfg.init_from) / "model.safetensors").is_file() and \
            "model_type" not in json.loads((Path(cfg.init_from) / "config.json").read_text()):
        model = UniAudioLM.from_pretrained(cfg.init_from,
                                           overrides={k: v for k, v in cfg.model.items() if k in TRAINING_FIELDS})
        if model.config.codec_codebook_dim and not bool(model.codec_vectors_r.any()):
            _fill_codec_vectors(model, cfg)
            if model.config.codec_vectors_only:
                fit = model.fit_codec_projection()
                print("codec-vector maps fitted to the learned embeddings (variance explained): "
                      + ", ".join(f"{k} {v:.2f}" for k, v in fit.items()), file=sys.stderr)
        return model
    base = UniAudioConfig.preset(cfg.preset, codec, text_vocab_size=tok.vocab_size, **cfg.model)
    if cfg.init_from:
        from .hf import from_hf_llama

        model = from_hf_llama(cfg.init_from, codec, base)
    else:
        model = UniAudioLM(base)
    if base.codec_codebook_dim:
        _fill_codec_vectors(model, cfg)
    return model


def _fill_codec_vectors(model: UniAudioLM, cfg: TrainConfig) -> None:
    """Copy the default codec's codebook vectors into the model (the codec the manifests' codes come from:
    the manifests' ``info.json`` names it, and a different one is an error)."""
    import reasoningcodec

    codec = reasoningcodec.load()
    for m in cfg.manifests:
        info = Path(m).parent / "info.json"
        if info.is_file():
            used = json.loads(info.read_text()).get("model_id")
            have = codec.config.model_id
            if used and used != have:
                raise ValueError(f"{m} holds codes of codec {used}, the default codec is {have}")
    model.set_codec_vectors(codec)


def save_weights(model: UniAudioLM, tok: TextTokenizer, directory: Path) -> None:
    """The weights, plus ``tokenizer.json`` when the run does not use the shipped tokenizer."""
    model.save_pretrained(directory)
    if tok is not default_tokenizer():
        tok.save(directory / "tokenizer.json")
