"""``audio_encoder_layers``: a small transformer that reads each clip before the language model does.

The language model spreads its compute over twenty tasks, and one code embedding per code learns slowly
from little data; a small recogniser that reads the codes through the codec's own codebook vectors learns
in minutes what the model does not learn in an hour (``docs/TRAINING.md``). :class:`AudioEncoder` is that
recogniser inside the model:

* its input at every audio frame is the frame's codec vectors (both streams' concatenation, zero for the
  other stream) through a linear map, plus a learned offset per stream;
* its attention is causal and stays inside the clip: a frame reads the frames of its own clip up to itself,
  so generation (where a clip is written frame by frame) sees exactly what training saw;
* its rotary positions put both streams on one 25 Hz time axis (reasoning frame ``k`` of a clip at ``5k``,
  reconstruction frame ``j`` at ``2j``), so a reconstruction frame knows which reasoning frames it overlaps;
* its output reaches the model through a linear map that starts at zero (added to the frame's input);
* with ``audio_encoder_ctc_weight`` its reconstruction frames are trained to spell the transcription of
  speech-recognition rows: two CTC slots per frame (25 Hz) over :data:`CHARS` plus a blank.

In generation the keys and values of earlier calls live in the KV cache's ``extra`` (key
``"audio_encoder"``), so chunked calls give what one call gives.
"""

from __future__ import annotations

import re
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Block, KVCache, RMSNorm, Rotary

_KEY = "audio_encoder"
#: The CTC alphabet (lower-case English letters, space and apostrophe); the blank is index ``len(CHARS)``.
CHARS = " abcdefghijklmnopqrstuvwxyz'"
_CHAR_ID = {c: i for i, c in enumerate(CHARS)}
#: Frames per second of the two streams on the encoder's 25 Hz axis: reasoning 5 Hz, reconstruction 12.5 Hz.
_STEP = (5, 2)
_NON_LATIN = re.compile(r"[^\x00-\x7f]")


def spell(text: str) -> list[int] | None:
    """``text`` as CTC targets over :data:`CHARS` (lower-cased, other characters as spaces, runs of spaces
    merged), or ``None`` when it has no letters or any non-ASCII character (not English)."""
    if _NON_LATIN.search(text):
        return None
    t = re.sub(r" +", " ", re.sub(r"[^a-z' ]", " ", text.lower())).strip()
    return [_CHAR_ID[c] for c in t] if re.search(r"[a-z]", t) else None


@lru_cache(maxsize=1)
def _tokenizer():  # noqa: ANN202  (the text tokenizer, loaded once)
    from .tokenizer import TextTokenizer

    return TextTokenizer.load()


class AudioEncoder(nn.Module):
    """See the module docstring. ``in_dim``: width of a frame's codec vectors (both streams); ``dim``, ``n_layers``:
    the encoder's size; ``model_dim``: the language model's width."""

    def __init__(self, in_dim: int, dim: int, n_layers: int, model_dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        n_heads = max(1, dim // 48)
        while dim % n_heads or (dim // n_heads) % 2:
            n_heads -= 1
        self.n_heads, self.head_dim = n_heads, dim // n_heads
        self.inp = nn.Linear(in_dim, dim)
        self.stream = nn.Parameter(torch.zeros(2, dim))
        self.layers = nn.ModuleList(Block(dim, n_heads, n_heads, self.head_dim, 2 * dim, eps) for _ in range(n_layers))
        self.norm = RMSNorm(dim, eps)
        self.out = nn.Linear(dim, model_dim, bias=False)
        self.ctc = nn.Linear(dim, 2 * (len(CHARS) + 1))
        self.rotary = Rotary(self.head_dim, 10_000.0)

    def reset_parameters(self, std: float) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.zeros_(self.stream)
        nn.init.zeros_(self.out.weight)

    def forward(self, r: torch.Tensor, q: torch.Tensor, r_ok: torch.Tensor, q_ok: torch.Tensor,
                counts: torch.Tensor, clip: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Encoder states ``[B, T, dim]`` (zero where a position is no frame).

        Args:
            r, q: ``[B, T, F_r]``, ``[B, T, F_q]`` codec vectors of the positions (zero off their stream).
            r_ok, q_ok: bool ``[B, T]``: real reasoning / reconstruction frames (of valid audio positions).
            counts: ``[B, T, 2]`` frames of each stream in the position's clip up to and including it.
            clip: ``[B, T]`` clip number of every position (:func:`uniaudio_lm.codec_inputs.running_sums`).
            cache: keeps the keys and values of earlier calls (``extra["audio_encoder"]``).
        """
        b, t = clip.shape
        frame = r_ok | q_ok
        w = self.inp.weight
        x = self.inp(torch.cat([r, q], -1).to(w.dtype))
        x = x + r_ok[..., None].to(w.dtype) * self.stream[0] + q_ok[..., None].to(w.dtype) * self.stream[1]
        n = counts.round().long()
        pos = torch.where(r_ok, _STEP[0] * (n[..., 0] - 1), torch.where(q_ok, _STEP[1] * (n[..., 1] - 1), 0))
        cos, sin = self.rotary(pos.clamp(min=0), x.dtype)
        kclip, kframe, sub, s0 = clip, frame, None, 0
        if cache is not None:
            s0 = cache.length
            buf = cache.extra.get(_KEY)
            if buf is None:
                m = cache.max_len
                z = [x.new_zeros(b, self.n_heads, m, self.head_dim) for _ in range(2 * len(self.layers))]
                buf = (*z, clip.new_zeros(b, m), frame.new_zeros(b, m))
                cache.extra[_KEY] = buf
            buf[-2][:, s0 : s0 + t] = clip
            buf[-1][:, s0 : s0 + t] = frame
            kclip, kframe = buf[-2][:, : s0 + t], buf[-1][:, : s0 + t]
            nl = len(self.layers)
            sub = KVCache(list(buf[:nl]), list(buf[nl : 2 * nl]), kframe, clip.new_zeros(b), s0)
        qi = torch.arange(s0, s0 + t, device=clip.device)[:, None]
        kj = torch.arange(kclip.shape[1], device=clip.device)[None]
        same = (kclip[:, None, :] == clip[:, :, None]) & kframe[:, None, :] & (kj <= qi)[None]
        mask = (same | (kj == qi)[None])[:, None]                                           # [B, 1, T, S]
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, mask, sub, i)
        return self.norm(x) * frame[..., None].to(x.dtype)

    def ctc_loss(self, h: torch.Tensor, q_ok: torch.Tensor, spans: list[tuple[int, int, int, torch.Tensor]]
                 ) -> torch.Tensor | None:
        """Mean CTC loss per character over the English ``spans`` (``(row, start, end, transcription ids)``,
        :meth:`uniaudio_lm.UniAudioLM.ctc_spans`), read at their reconstruction frames; ``None`` when no
        span is English."""
        tok = _tokenizer()
        logps, targets, in_lens = [], [], []
        for b, s, e, ids in spans:
            chars = spell(tok.decode(ids.tolist()))
            idx = q_ok[b, s:e].nonzero().squeeze(-1) + s
            if chars is None or len(idx) == 0:
                continue
            lp = self.ctc(h[b, idx]).view(len(idx) * 2, len(CHARS) + 1)
            logps.append(lp)
            targets.append(torch.tensor(chars, dtype=torch.long))
            in_lens.append(len(idx) * 2)
        if not logps:
            return None
        x = nn.utils.rnn.pad_sequence(logps).float().log_softmax(-1)                    # [L, N, C + 1]
        ylen = torch.tensor([len(c) for c in targets])
        return F.ctc_loss(x, torch.cat(targets), torch.tensor(in_lens), ylen, blank=len(CHARS),
                          reduction="sum", zero_infinity=True) / max(int(ylen.sum()), 1)

    @torch.no_grad()
    def log_probs(self, h: torch.Tensor) -> torch.Tensor:
        """CTC log-probabilities ``[2M, len(CHARS) + 1]`` (blank last) of one clip's reconstruction-frame
        states ``[M, dim]``: two slots per frame, in time order."""
        return self.ctc(h).view(-1, len(CHARS) + 1).float().log_softmax(-1)

    @torch.no_grad()
    def greedy(self, h: torch.Tensor) -> str:
        """Greedy CTC transcript of one clip's reconstruction-frame states ``[M, dim]``."""
        best = self.log_probs(h).argmax(-1).tolist()
        blank = len(CHARS)
        return " ".join("".join(CHARS[i] for k, i in enumerate(best)
                                if i != blank and (k == 0 or best[k - 1] != i)).split())
