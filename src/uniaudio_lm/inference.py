"""Running a pipeline's model: greedy text answers, one generated audio item, reasoning → reconstruction
translation, and the log-likelihood of a sequence's targets (the helpers :mod:`uniaudio_lm.api` shares)."""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .generate import GenerationConfig, SamplingConfig, generate, sample
from .model import IGNORE, UniAudioLM
from .pipeline import Pipeline, check_style_scale
from .sentence import AudioItem, Segment, SentenceTensors, TextField, build, collate
from .style import Style
from .tokenizer import TextTokenizer


def check_length(pipe: Pipeline, st: SentenceTensors, new: int) -> None:
    """A clear error when prompt + new positions exceed the model's context."""
    limit = pipe.model.config.max_seq_len
    if len(st) + new > limit:
        raise ValueError(f"input too long: the prompt has {len(st)} positions and {new} more may be generated, "
                         f"but the model handles {limit}; use shorter audio or a smaller limit")


def generate_text(pipe: Pipeline, segments: Sequence[Segment], tag: str | None, max_new_tokens: int,
                  seed: int = 0) -> str:
    """Greedy text after ``segments``; with ``tag`` the prompt ends with ``<tag>`` and the answer is the
    text up to the closing tag."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    tok, v = pipe.tokenizer, pipe.model.vocab
    if tag is None:
        st = build(segments, tok, v, eot=False)
    else:
        full = build([*segments, TextField(tag, "", True)], tok, v, eot=False)
        st = SentenceTensors(*(getattr(full, f)[:-1] for f in ("text_ids", "audio_ids", "is_audio", "loss_mask",
                                                                "cond_mask")))
    check_length(pipe, st, max_new_tokens)
    out = generate(pipe.model, tok, [st], GenerationConfig(max_new_positions=max_new_tokens, mode="text", seed=seed))
    ids = out[0].text_ids
    cut = next((i for i, t in enumerate(ids) if tok.is_special(t)), len(ids))
    # generation keeps the bytes valid UTF-8 (uniaudio_lm.utf8), so only a character cut off by
    # max_new_tokens can be incomplete: it is left out rather than shown as U+FFFD
    return tok.decode(ids[:cut], errors="ignore").strip()


def audio_config(pipe: Pipeline, max_seconds: float, temperature: float, top_k: int | None,
                 cfg_scale: float | None, seed: int, reasoning_only: bool = False,
                 window: tuple[float, float] | None = None, style: Style | None = None,
                 style_scale: float | None = None) -> GenerationConfig:
    """Generation settings for one audio item of at most ``max_seconds`` (with ``reasoning_only``: its
    reasoning segment alone); ``window = (shortest, longest)`` seconds conditions its length (both
    segments end inside it, and never after ``max_seconds``); ``style`` is the speaking style the item
    is conditioned on (models with ``style_conditioning``; else ignored), ``style_scale`` the guidance on
    it (:class:`~uniaudio_lm.generate.GenerationConfig`; 1: none; ``None``: the pipeline's default,
    :attr:`Pipeline.style_scale`)."""
    cap = pipe.frames_for(max_seconds)
    if reasoning_only:
        cap = max(1, math.ceil(max_seconds * pipe.codec.reasoning_frame_rate))
    frames = None
    if window is not None:
        lo, hi = min(window[0], max_seconds), min(window[1], max_seconds)
        rr, qr = pipe.codec.reasoning_frame_rate, pipe.codec.recon_frame_rate
        frames = ((max(1, math.floor(lo * rr)), max(1, math.ceil(hi * rr))),
                  (max(1, math.floor(lo * qr)), min(cap, max(1, math.ceil(hi * qr)))))
    feats = None if style is None or style.empty or pipe.model.style_proj is None else style.features()
    if style_scale is not None:
        style_scale = check_style_scale(style_scale)
    elif feats is not None:
        style_scale = pipe.style_scale
    return GenerationConfig(max_new_positions=2 * cap + 4, audio=SamplingConfig(temperature, top_k),
                            cfg_scale=cfg_scale, mode="audio", max_segment_frames=cap, seed=seed,
                            reasoning_only=reasoning_only, segment_frames=frames,
                            style=feats, style_scale=style_scale if feats is not None and style_scale != 1 else None)


def generate_item(pipe: Pipeline, segments: Sequence[Segment], cfg: GenerationConfig) -> AudioItem | None:
    """The audio item generated after ``segments`` (``None`` if nothing was generated)."""
    st = build(segments, pipe.tokenizer, pipe.model.vocab, eot=False)
    check_length(pipe, st, cfg.max_new_positions)
    out = generate(pipe.model, pipe.tokenizer, [st], cfg)[0]
    return out.audio[0] if out.audio else None


@torch.no_grad()
def generate_recon(pipe: Pipeline, segments: Sequence[Segment], max_frames: int, sampling: SamplingConfig,
                   seed: int = 0) -> torch.Tensor:
    """Reconstruction codes ``[Kq, T]`` that continue ``segments``, which end with a reasoning segment
    (reasoning → reconstruction translation): ``[BOQ]`` is appended and frames are sampled until
    ``[EOQ]`` or ``max_frames``."""
    model, tok = pipe.model, pipe.tokenizer
    v, K, dev = model.vocab, model.K, pipe.device
    st = build(segments, tok, v, eot=False)
    check_length(pipe, st, max_frames + 1)
    boq = v.special_frame(v.begin_recon)
    text = torch.cat([st.text_ids, torch.tensor([tok.audio_id])])
    audio = torch.cat([st.audio_ids, boq[None]])
    is_audio = torch.cat([st.is_audio, torch.tensor([True])])
    n = len(text)
    cache = model.new_cache(1, n + max_frames)
    valid = torch.ones(1, n, dtype=torch.bool, device=dev)
    h = model.hidden(text[None].to(dev), audio[None].to(dev), is_audio[None].to(dev), valid, cache).audio_hidden[:, -1]
    allowed = v.allowed_mask("recon").to(dev)
    gen = torch.Generator().manual_seed(seed)
    frames: list[torch.Tensor] = []
    for _ in range(max_frames):
        state, lg = model.depth.start(h)
        codes = []
        for k in range(K):
            c = sample(lg.masked_fill(~allowed[k], float("-inf")), sampling, gen)
            codes.append(c)
            if k == 0 and int(c) == v.end_recon:
                break
            if k + 1 < K:
                lg = model.depth.step(state, c)
        if int(codes[0]) == v.end_recon:
            break
        frame = torch.stack(codes, 1)  # [1, K]
        frames.append(frame[0].cpu())
        one = torch.ones(1, 1, dtype=torch.bool, device=dev)
        h = model.hidden(torch.full((1, 1), tok.audio_id, device=dev), frame[:, None], one, one,
                         cache).audio_hidden[:, -1]
    if not frames:
        return torch.zeros(pipe.recon_codebooks or 1, 0, dtype=torch.long)
    return v.frames_to_recon(torch.stack(frames))


@torch.no_grad()
def score(model: UniAudioLM, tokenizer: TextTokenizer, segments: Sequence[Segment]) -> float:
    """Log-likelihood (nats, summed) of the target positions of ``segments`` under teacher forcing: the
    text-head targets (tokens, closing tags, the final ``<eot>``) and the audio targets (every codebook
    the depth transformer predicts; forced ids are skipped)."""
    if not any(s.target for s in segments):
        raise ValueError("score needs at least one target segment")
    model = model.eval()
    dev = model.text_embed.weight.device
    batch = collate([build(segments, tokenizer, model.vocab, eot=True)], tokenizer, model.vocab).to(dev)
    g = model.hidden(batch.text_ids, batch.audio_ids, batch.is_audio, batch.valid)
    text_sel, labels, audio_sel = model.targets(batch)
    total = torch.zeros((), dtype=torch.float64, device=dev)
    if bool(text_sel.any()):
        lp = model.text_logits(g.text_hidden[:, :-1][text_sel]).float().log_softmax(-1)
        total += lp.gather(-1, labels[text_sel][:, None]).sum().double()
    codes = batch.audio_ids[:, 1:][audio_sel]
    lab = model.audio_labels(codes)
    keep = lab != IGNORE
    if bool(keep.any()):
        lp = model.depth(g.audio_hidden[:, :-1][audio_sel], codes).float().log_softmax(-1)
        total += lp.gather(-1, lab.clamp(min=0)[..., None])[..., 0][keep].sum().double()
    return float(total)
