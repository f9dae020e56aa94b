"""Initialise the backbone from a local Hugging Face Llama / Qwen2 checkpoint (safetensors only).

Only ``config.json`` and ``*.safetensors`` are read, with :mod:`safetensors` — ``transformers`` is not
needed, and pickled ``pytorch_model.bin`` files are refused. The LLM's decoder layers become the
backbone layers one to one (same parameter names), its final norm the backbone norm. Its token
embeddings and LM head are only kept with ``keep_text_embeddings=True`` (then the text side must use
the LLM's own tokenizer; the shipped 4k BPE tokenizer needs fresh embeddings). The expert layers and
the depth transformer start random, or the experts copy the first / last backbone layers.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from reasoningcodec import CodecConfig

from .config import UniAudioConfig
from .model import UniAudioLM

SUPPORTED = ("llama", "qwen2", "mistral")


def config_from_hf(hf: dict[str, Any], base: UniAudioConfig, keep_text_embeddings: bool) -> UniAudioConfig:
    """Map a Hugging Face ``config.json`` dict onto ``base`` (global-stack sizes come from ``hf``)."""
    mt = hf.get("model_type")
    if mt not in SUPPORTED:
        raise ValueError(f"model_type {mt!r} is not supported (expected one of {SUPPORTED})")
    heads = int(hf["num_attention_heads"])
    rp = dict(hf.get("rope_parameters") or {})  # transformers >= 5 keeps theta and scaling here
    theta = float(hf.get("rope_theta") or rp.pop("rope_theta", 10000.0))
    rp.pop("rope_theta", None)
    scaling = hf.get("rope_scaling") or (rp if rp.get("rope_type", "default") != "default" else None)
    upd: dict[str, Any] = dict(
        dim=int(hf["hidden_size"]), n_heads=heads, n_kv_heads=int(hf.get("num_key_value_heads") or heads),
        head_dim=int(hf.get("head_dim") or hf["hidden_size"] // heads), ffn_dim=int(hf["intermediate_size"]),
        n_backbone_layers=int(hf["num_hidden_layers"]), rope_theta=theta,
        rope_scaling=scaling, norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
        attn_bias=bool(hf.get("attention_bias", mt == "qwen2")),
        max_seq_len=int(hf.get("max_position_embeddings", base.max_seq_len)))
    if keep_text_embeddings:
        upd.update(text_vocab_size=int(hf["vocab_size"]), tie_text_embeddings=bool(hf.get("tie_word_embeddings", False)))
    return dataclasses.replace(base, **upd)


def from_hf_llama(path: str | Path, codec: CodecConfig | None = None, base: UniAudioConfig | None = None,
                  keep_text_embeddings: bool = False, init_experts: str = "random") -> UniAudioLM:
    """Build a :class:`UniAudioLM` whose backbone holds the weights of a local Llama / Qwen2 checkpoint.

    Args:
        path: directory with ``config.json`` and ``model.safetensors`` (or sharded ``*.safetensors``).
        codec: codec configuration for the audio vocabulary (default: ``base``'s).
        base: configuration for everything the checkpoint does not fix (expert counts, depth
            transformer, text vocabulary); default the ``small`` preset.
        keep_text_embeddings: also load ``embed_tokens`` / ``lm_head`` (text vocabulary = the LLM's).
        init_experts: ``"random"`` or ``"copy"`` (understanding experts copy the first backbone layers,
            generation experts the last ones).
    """
    d = Path(path)
    cfg_file = d / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"no config.json in {d}")
    hf = json.loads(cfg_file.read_text(encoding="utf-8"))
    files = sorted(d.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors in {d} (pickled checkpoints are not loaded)")
    base = base or UniAudioConfig.preset("small", codec)
    if codec is not None:
        base = dataclasses.replace(
            base, num_reasoning_codebooks=codec.num_reasoning_codebooks, reasoning_codebook_size=codec.reasoning_codebook_size,
            num_recon_codebooks=codec.num_recon_codebooks, recon_codebook_size=codec.recon_codebook_size)
    model = UniAudioLM(config_from_hf(hf, base, keep_text_embeddings))
    own = model.state_dict()
    loaded: set[str] = set()
    for f in files:
        with safe_open(str(f), framework="pt") as sf:
            for key in sf.keys():
                name = _map_key(key, keep_text_embeddings)
                if name is None:
                    continue
                if name not in own:
                    raise ValueError(f"checkpoint tensor {key} has no place in the model ({name})")
                t = sf.get_tensor(key)
                if tuple(t.shape) != tuple(own[name].shape):
                    raise ValueError(f"{key}: shape {tuple(t.shape)} != expected {tuple(own[name].shape)}")
                with torch.no_grad():
                    own[name].copy_(t.to(own[name].dtype))
                loaded.add(name)
    need = {k for k in own if k.startswith("backbone.")} | {"norm.weight"}
    if keep_text_embeddings:
        need.add("text_embed.weight")
        if not model.config.tie_text_embeddings:
            need.add("text_head.weight")
    missing = sorted(need - loaded)
    if missing:
        raise ValueError(f"checkpoint lacks {len(missing)} backbone tensors, e.g. {missing[:3]}")
    if init_experts == "copy":
        copy_backbone_to_experts(model)
    elif init_experts != "random":
        raise ValueError("init_experts is 'random' or 'copy'")
    return model


@torch.no_grad()
def copy_backbone_to_experts(model: UniAudioLM) -> None:
    """Start the expert layers as copies of backbone layers (a backbone loaded from a pretrained text model):
    understanding experts of the first ones, generation experts of the last ones."""
    nb = len(model.backbone)
    for i, layer in enumerate(model.understanding):
        layer.load_state_dict(model.backbone[min(i, nb - 1)].state_dict())
    for i, layer in enumerate(model.generation):
        layer.load_state_dict(model.backbone[max(nb - len(model.generation) + i, 0)].state_dict())


def _map_key(key: str, keep_text: bool) -> str | None:
    if key.startswith("model.layers."):
        return "backbone." + key[len("model.layers."):]
    if key == "model.norm.weight":
        return "norm.weight"
    if key == "model.embed_tokens.weight":
        return "text_embed.weight" if keep_text else None
    if key == "lm_head.weight":
        return "text_head.weight" if keep_text else None
    if key.endswith("rotary_emb.inv_freq"):
        return None
    raise ValueError(f"unexpected tensor {key!r} in a Llama-style checkpoint")
