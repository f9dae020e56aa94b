"""Reading audio codes through the codec's own codebook vectors (:class:`uniaudio_lm.UniAudioLM` options).

``codec_codebook_dim``: each frame's codes are also read as the codec's frozen, unit-length codebook vectors
(one per codebook, concatenated) under a learned map that starts at zero; ``codec_vectors_only`` reads
real codes only that way.

``audio_summary``: a clip is a run of consecutive audio positions (an ``AudioItem``: its reasoning then its
reconstruction frames, delimiters included). Every position from a clip's first frame on also reads the
mean and spread over time of the frame vectors seen so far in that clip; text positions keep the last
clip's summary until the next clip starts. Frames are read causally: position ``t`` summarises frames
``<= t`` only. Generation feeds a sentence in several calls; the running sums carry over between calls in
the KV cache's ``extra`` (key ``"clip_summary"``), so a summary never depends on how a sentence was split.

``clip_attention``: :class:`ClipAttention` (text after earlier clips, read back by clip similarity).

``audio_encoder_layers``: :class:`uniaudio_lm.audio_encoder.AudioEncoder` (a small recogniser over each
clip's frames whose output is added to the frames' inputs).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .audio_encoder import AudioEncoder
from .config import UniAudioConfig
from .layers import KVCache
from .vocab import AudioVocab

_KEY = "clip_summary"
_ATTN_KEY = "clip_attention"
VAR_EPS = 1e-6


@torch.no_grad()
def running_sums(x: torch.Tensor, counts: torch.Tensor, audio: torch.Tensor,
                 cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-position sums over the current (or last) clip, ``[B, T, 2F + S]`` = (Σx, Σx², frame counts), and
    the clip number of every position ``[B, T]`` (1 for the first clip; 0 before any).

    Args:
        x: ``[B, T, F]`` frame features (zero where a position is no frame of that feature's stream).
        counts: ``[B, T, S]`` 1 where a position is a real frame of stream ``s``, else 0.
        audio: bool ``[B, T]``: audio positions (delimiters included); a clip starts where one follows a
            non-audio position.
        cache: carries the sums, the clip count and whether the last position was audio from earlier
            calls (updated).
    """
    b, t, _ = x.shape
    stats = torch.cat([x, x * x, counts], -1).double()       # float64: differences of long prefix sums stay exact
    carry = cache.extra.get(_KEY) if cache is not None else None
    if carry is None:
        prev_audio = torch.zeros(b, dtype=torch.bool, device=x.device)
        carried = torch.zeros(b, stats.shape[-1], device=x.device, dtype=stats.dtype)
        n_clips = torch.zeros(b, dtype=torch.long, device=x.device)
    else:
        prev_audio, carried, n_clips = carry
    if t == 0:
        return stats, torch.zeros(b, 0, dtype=torch.long, device=x.device)
    prev = torch.cat([prev_audio[:, None], audio[:, :-1]], 1)
    start = audio & ~prev
    clip = n_clips[:, None] + start.long().cumsum(1)
    total = stats.cumsum(1)
    before = total - stats                                   # sums of the positions before t in this call
    idx = torch.arange(t, device=x.device).expand(b, t)
    last_start = torch.where(start, idx, -1).cummax(1).values
    base = before.gather(1, last_start.clamp(min=0)[..., None].expand_as(before))
    out = torch.where((last_start >= 0)[..., None], total - base, total + carried[:, None])
    if cache is not None:
        cache.extra[_KEY] = (audio[:, -1].clone(), out[:, -1].clone(), clip[:, -1].clone())
    return out, clip


def summary_features(sums: torch.Tensor, split: list[int]) -> torch.Tensor:
    """Mean and standard deviation (of the variance plus :data:`VAR_EPS`) per feature from
    :func:`running_sums` → ``[B, T, 2F]`` (zero for a stream with no frame yet). ``split``: the feature
    width of each stream, in the order of the count columns."""
    f = sum(split)
    s, q, n = sums[..., :f], sums[..., f : 2 * f], sums[..., 2 * f :]
    n = torch.cat([n[..., i : i + 1].expand(*n.shape[:-1], w) for i, w in enumerate(split)], -1)
    seen = n > 0
    n = n.clamp(min=1)
    mean = s / n
    std = ((q / n - mean * mean).clamp(min=0) + VAR_EPS).sqrt()     # eps: rounding of a zero variance stays small
    return torch.cat([mean, std * seen], -1).float()


class ClipAttention(nn.Module):
    """``clip_attention``: each position attends to the text that followed earlier clips, weighted by how
    alike the clips are (cosine of their summaries, times a learned sharpness), and adds what it reads
    (those positions' token embeddings, through a learned map that starts at zero) to its input.

    A label written after a clip is then read back wherever a later clip sounds like that one, which is
    what few-shot classification asks; the model still learns what to make of it. Only text positions of
    clips before the position's own clip are keys, so a clip never reads itself. In generation the keys
    and values of earlier calls are kept in the KV cache's ``extra`` (key ``"clip_attention"``).
    """

    def __init__(self, dim: int, sharpness: float = 20.0) -> None:
        super().__init__()
        self.log_sharpness = nn.Parameter(torch.tensor(math.log(sharpness)))
        self.out = nn.Linear(dim, dim, bias=False)

    def forward(self, values: torch.Tensor, feats: torch.Tensor, clip: torch.Tensor, text: torch.Tensor,
                cache: KVCache | None = None) -> torch.Tensor:
        """``values [B, T, D]`` (token embeddings), ``feats [B, T, F]`` (clip summaries), ``clip [B, T]``
        (:func:`running_sums`), ``text`` bool ``[B, T]`` (valid text positions) → ``[B, T, D]``."""
        z = nn.functional.normalize(feats.float(), dim=-1)
        keys, vals, kclip, ktext = z, values, clip, text
        if cache is not None:              # keys and values of every cached position, written in place
            b, t = clip.shape
            s0 = cache.length
            buf = cache.extra.get(_ATTN_KEY)
            if buf is None:
                n = cache.max_len
                buf = (z.new_zeros(b, n, z.shape[-1]), values.new_zeros(b, n, values.shape[-1]),
                       clip.new_zeros(b, n), text.new_zeros(b, n))
                cache.extra[_ATTN_KEY] = buf
            for dst, src in zip(buf, (z, values, clip, text)):
                dst[:, s0 : s0 + t] = src
            keys, vals, kclip, ktext = (x[:, : s0 + t] for x in buf)
        ok = (ktext & (kclip >= 1))[:, None, :] & (kclip[:, None, :] < clip[:, :, None])      # [B, T, S]
        scores = (z @ keys.transpose(1, 2)) * self.log_sharpness.exp()
        attn = torch.softmax(scores.masked_fill(~ok, float("-inf")), -1).nan_to_num(0.0)
        return self.out(attn.to(vals.dtype) @ vals)


class CodecVectorInputs:
    """The codec-vector parts of :class:`uniaudio_lm.UniAudioLM`'s input (mixed into the model; the
    model owns the tables ``codec_vectors_r`` / ``codec_vectors_q`` and the maps)."""

    config: UniAudioConfig
    vocab: AudioVocab
    Va: int
    audio_embed: nn.Embedding
    codec_vectors_r: torch.Tensor
    codec_vectors_q: torch.Tensor
    codec_proj_r: nn.Linear | None
    codec_proj_q: nn.Linear | None
    summary_proj: nn.Linear | None
    clip_attn: ClipAttention | None
    audio_encoder: AudioEncoder | None
    codec_offset: nn.Parameter | None

    def _frame_vectors(self, audio_ids: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per stream (reasoning, reconstruction): the codec vectors of each position's codes, concatenated
        ``[..., k * d]`` (zero where the position is no frame of that stream), and where it is one ``[...]``."""
        v = self.vocab
        out = []
        for table, lo, n in ((self.codec_vectors_r, 0, v.reasoning_codebook_size),
                             (self.codec_vectors_q, v.recon_offset, v.recon_codebook_size)):
            k = table.shape[0]
            ids = audio_ids[..., :k] - lo
            ok = (ids >= 0) & (ids < n)
            rows = ids.clamp(0, n - 1) + torch.arange(k, device=ids.device) * n
            vec = table.flatten(0, 1)[rows] * ok[..., None].to(table.dtype)      # [..., k, d]
            out.append((vec.flatten(-2), ok[..., 0]))
        return out

    def _codec_vector_embed(self, frames: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """The codec-codebook-vector part of the audio embedding (zero for special / padding frames) from
        :meth:`_frame_vectors`."""
        (r, _), (q, _) = frames
        w = self.codec_proj_r.weight
        return self.codec_proj_r(r.to(w.dtype)) + self.codec_proj_q(q.to(w.dtype))

    def _clip_features(self, frames: list[tuple[torch.Tensor, torch.Tensor]], is_audio: torch.Tensor,
                       valid: torch.Tensor, cache: KVCache | None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every position's clip summary ``[B, T, 2F]``, clip number ``[B, T]`` and frames of each stream in
        its clip so far ``[B, T, 2]`` (the module docstring) from :meth:`_frame_vectors`."""
        (r, r_ok), (q, q_ok) = frames
        audio = is_audio & valid
        ok = torch.stack([r_ok, q_ok], -1) & audio[..., None]
        sums, clip = running_sums(torch.cat([r * ok[..., :1], q * ok[..., 1:]], -1), ok.float(), audio, cache)
        return summary_features(sums, [r.shape[-1], q.shape[-1]]), clip, sums[..., -2:]

    def _clip_inputs(self, x: torch.Tensor, frames: list[tuple[torch.Tensor, torch.Tensor]],
                     is_audio: torch.Tensor, valid: torch.Tensor, cache: KVCache | None
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x`` (the embedded input ``[B, T, D]``) plus the ``audio_summary``, ``clip_attention`` and
        ``audio_encoder`` inputs (``frames``: :meth:`_frame_vectors` of the positions), and the audio
        encoder's states ``[B, T, E]`` (``None`` without one)."""
        feats, clip, counts = self._clip_features(frames, is_audio, valid, cache)
        out = x + self.summary_proj(feats.to(self.summary_proj.weight.dtype))
        if self.clip_attn is not None:
            out = out + self.clip_attn(x, feats, clip, valid & ~is_audio, cache)
        enc = None
        if self.audio_encoder is not None:
            (r, r_ok), (q, q_ok) = frames
            audio = is_audio & valid
            enc = self.audio_encoder(r, q, r_ok & audio, q_ok & audio, counts, clip, cache)
            out = out + self.audio_encoder.out(enc.to(out.dtype))
        return out, enc

    @torch.no_grad()
    def set_codec_vectors(self, codec: torch.nn.Module) -> None:
        """Copy the codec's unit-length codebook vectors (``reasoning_vq`` / ``recon_vq`` stages) into the
        frozen tables of a model built with ``codec_codebook_dim``."""
        if self.codec_proj_r is None:
            raise ValueError("this model reads no codec vectors (codec_codebook_dim 0)")
        for table, vq in ((self.codec_vectors_r, codec.reasoning_vq), (self.codec_vectors_q, codec.recon_vq)):
            for k in range(table.shape[0]):
                cb = vq.stages[k].normalized_codebook()
                if tuple(cb.shape) != tuple(table.shape[1:]):
                    raise ValueError(f"codec codebook {k} is {tuple(cb.shape)}, the model expects "
                                     f"{tuple(table.shape[1:])}")
                table[k] = cb.to(table)

    @torch.no_grad()
    def fit_codec_projection(self) -> dict[str, float]:
        """For a ``codec_vectors_only`` model: set the codec-vector maps and the code-frame offsets to the
        least-squares fit of the learned code embeddings from the codec vectors, per stream; returns the
        fraction of the embeddings' variance each fit explains."""
        if self.codec_offset is None:
            raise ValueError("fit_codec_projection needs a model built with codec_vectors_only")
        v, va = self.vocab, self.Va
        out = {}
        offset = torch.zeros(2, self.config.dim)
        for row, (name, table, proj, lo) in enumerate((("reasoning", self.codec_vectors_r, self.codec_proj_r, 0),
                                      ("recon", self.codec_vectors_q, self.codec_proj_q, v.recon_offset))):
            k, n, d = table.shape
            weights = []
            for i in range(k):
                emb = self.audio_embed.weight[i * va + lo : i * va + lo + n].float()      # [n, D]
                x = torch.cat([table[i].float(), torch.ones(n, 1)], 1)                    # [n, d + 1]
                sol = torch.linalg.lstsq(x, emb).solution                                # [d + 1, D]
                resid = emb - x @ sol
                out[f"{name}_{i}"] = float(1 - resid.var(0).sum() / emb.var(0).sum())
                weights.append(sol[:d].T)
                offset[row] += sol[d]
            proj.weight.copy_(torch.cat(weights, 1).to(proj.weight))
        self.codec_offset.copy_(offset.to(self.codec_offset))
        return out
