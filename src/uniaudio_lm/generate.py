"""Generation: text tokens from the text head, audio frames from the depth transformer.

Every item of a batch runs a small state machine, one sequence position per step::

    TEXT    --text head--> a text token | <eot> (stop) | <audio> → append [BOR], go to REASON
    REASON  --depth------> reasoning frame | [EOR] → next step appends the forced [BOQ], go to RECON
    RECON   --depth------> reconstruction frame | [EOQ] → stop (or back to TEXT)

While sampling reconstruction frames every reasoning id (and every special id but [EOQ]) has logit
−inf, and vice versa; codebooks beyond a stream's count are forced to the codebook pad and the rest of
a special frame is forced. Classifier-free guidance runs the unconditional prompt (conditions replaced
by padding, same length) beside the conditional one and uses ``cond + (s - 1) * (cond - uncond)``, so
``s = 1`` gives the conditional logits exactly. Items stop independently; a stopped item is fed
padding that nothing attends to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from reasoningcodec import CodecConfig, Codes, ReasoningCodec

from .model import UniAudioLM
from .sentence import AudioItem, Segment, SentenceTensors, build, collate, drop_conditions
from .tokenizer import TextTokenizer
from .vocab import AudioVocab

TEXT, REASON, AFTER_REASON, RECON, DONE = range(5)
NEG_INF = float("-inf")


@dataclass
class SamplingConfig:
    """``temperature <= 0`` is greedy; ``top_k`` / ``top_p`` filter before sampling."""

    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None


@dataclass
class GenerationConfig:
    """Options of :func:`generate`.

    Attributes:
        max_new_positions: positions (text tokens + audio frames) to add at most.
        text / audio: sampling for the text head and the depth transformer (paper: greedy for
            understanding; temperature 0.9, top-k 50 for generation).
        cfg_scale: classifier-free guidance scale (``None``: no unconditional pass).
        mode: ``"auto"`` (the text head decides), ``"text"`` (``<audio>`` is never chosen) or
            ``"audio"`` (the first step starts an audio item).
        stop_after_audio: an item stops at its end-of-reconstruction frame.
        reasoning_only: stop at the end-of-reasoning frame (no reconstruction segment).
        max_segment_frames: force the end frame once a segment has this many frames.
        use_cache: KV cache (``False`` recomputes the whole sequence each step; same result).
        seed: seed of the sampling generator.
    """

    max_new_positions: int = 256
    text: SamplingConfig = field(default_factory=SamplingConfig)
    audio: SamplingConfig = field(default_factory=lambda: SamplingConfig(0.9, 50))
    cfg_scale: float | None = None
    mode: str = "auto"
    stop_after_audio: bool = True
    reasoning_only: bool = False
    max_segment_frames: int | None = None
    use_cache: bool = True
    seed: int | None = None


@dataclass
class GenerationOutput:
    """What one item generated.

    Attributes:
        text_ids: generated text tokens (no ``<eot>``); text: their decoding (tags written out).
        audio: generated audio items (the last one may be cut short by ``max_new_positions``).
        frames: LongTensor ``[T, K]``: every generated frame in order, special frames included.
        stop_reason: ``"eot"``, ``"audio_end"`` or ``"max_length"``.
    """

    text_ids: list[int]
    text: str
    audio: list[AudioItem]
    frames: torch.Tensor
    stop_reason: str


def sample(logits: torch.Tensor, cfg: SamplingConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """``logits [N, V]`` → ids ``[N]`` (greedy, or temperature / top-k / top-p sampling)."""
    if cfg.temperature <= 0:
        return logits.argmax(-1)
    x = logits.float() / cfg.temperature
    if cfg.top_k is not None and cfg.top_k < x.shape[-1]:
        kth = x.topk(cfg.top_k, dim=-1).values[:, -1:]
        x = x.masked_fill(x < kth, NEG_INF)
    if cfg.top_p is not None and cfg.top_p < 1.0:
        srt, idx = x.sort(-1, descending=True)
        p = srt.softmax(-1)
        srt = srt.masked_fill(p.cumsum(-1) - p > cfg.top_p, NEG_INF)
        x = torch.full_like(x, NEG_INF).scatter(-1, idx, srt)
    probs = x.softmax(-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)


def _guide(logits: torch.Tensor, n: int, scale: float | None) -> torch.Tensor:
    """Rows ``[0, n)`` conditional, ``[n, 2n)`` unconditional → guided ``[n, V]``."""
    if scale is None:
        return logits[:n]
    cond, uncond = logits[:n], logits[n:]
    return cond + (scale - 1.0) * (cond - uncond)


class _Item:
    def __init__(self) -> None:
        self.phase = TEXT
        self.text: list[int] = []
        self.frames: list[torch.Tensor] = []
        self.audio: list[AudioItem] = []
        self.reasoning: list[torch.Tensor] = []
        self.recon: list[torch.Tensor] = []
        self.seg_frames = 0
        self.stop = "max_length"


@torch.no_grad()
def generate(model: UniAudioLM, tokenizer: TextTokenizer, prompts: Sequence[Sequence[Segment] | SentenceTensors],
             config: GenerationConfig | None = None) -> list[GenerationOutput]:
    """Continue each prompt (segments, or a built :class:`SentenceTensors` without ``<eot>``)."""
    cfg = config or GenerationConfig()
    if cfg.mode not in ("auto", "text", "audio"):
        raise ValueError(f"mode is auto / text / audio, got {cfg.mode!r}")
    v, K = model.vocab, model.K
    dev = model.text_embed.weight.device
    gen = torch.Generator().manual_seed(cfg.seed) if cfg.seed is not None else None
    sts = [p if isinstance(p, SentenceTensors) else build(p, tokenizer, v, eot=False) for p in prompts]
    n = len(sts)
    rows = sts + ([drop_conditions(s, tokenizer, v) for s in sts] if cfg.cfg_scale is not None else [])
    r = len(rows)
    batch = collate(rows, tokenizer, v, pad_side="left").to(dev)
    l0 = batch.text_ids.shape[1]
    total = l0 + cfg.max_new_positions
    seq_t = torch.full((r, total), tokenizer.pad_id, dtype=torch.long, device=dev)
    seq_a = torch.full((r, total, K), v.audio_pad, dtype=torch.long, device=dev)
    seq_i = torch.zeros(r, total, dtype=torch.bool, device=dev)
    seq_v = torch.zeros(r, total, dtype=torch.bool, device=dev)
    seq_t[:, :l0], seq_a[:, :l0], seq_i[:, :l0], seq_v[:, :l0] = batch.text_ids, batch.audio_ids, batch.is_audio, batch.valid
    cache = model.new_cache(r, total) if cfg.use_cache else None
    out = model.hidden(batch.text_ids, batch.audio_ids, batch.is_audio, batch.valid, cache)
    h_text, h_audio = out.text_hidden[:, -1], out.audio_hidden[:, -1]
    items = [_Item() for _ in range(n)]
    masks = {REASON: v.allowed_mask("reasoning").to(dev), RECON: v.allowed_mask("recon").to(dev)}
    bor, boq = v.special_frame(v.begin_reasoning).to(dev), v.special_frame(v.begin_recon).to(dev)
    cur = l0
    for step in range(cfg.max_new_positions):
        if all(it.phase == DONE for it in items):
            break
        nt = torch.full((n,), tokenizer.pad_id, dtype=torch.long, device=dev)
        na = torch.full((n, K), v.audio_pad, dtype=torch.long, device=dev)
        ni = torch.zeros(n, dtype=torch.bool, device=dev)
        nv = torch.tensor([it.phase != DONE for it in items], device=dev)

        # ---- text head
        ti = [i for i, it in enumerate(items) if it.phase == TEXT]
        if ti:
            idx = torch.tensor(ti + ([i + n for i in ti] if cfg.cfg_scale is not None else []), device=dev)
            lg = _guide(model.text_logits(h_text[idx]), len(ti), cfg.cfg_scale)
            lg[:, tokenizer.pad_id] = NEG_INF
            if cfg.mode == "text":
                lg[:, tokenizer.audio_id] = NEG_INF
            tok = sample(lg, cfg.text, gen)
            for j, i in enumerate(ti):
                t = int(tok[j])
                if cfg.mode == "audio" and step == 0:
                    t = tokenizer.audio_id
                it = items[i]
                if t == tokenizer.eot_id:
                    it.phase, it.stop, nv[i] = DONE, "eot", False
                elif t == tokenizer.audio_id:
                    na[i], ni[i], it.phase, it.seg_frames = bor, True, REASON, 0
                    it.reasoning, it.recon = [], []
                    it.frames.append(bor.cpu())
                else:
                    nt[i] = t
                    it.text.append(t)

        # ---- forced [BOQ] after [EOR]
        for i, it in enumerate(items):
            if it.phase == AFTER_REASON:
                na[i], ni[i], it.phase, it.seg_frames = boq, True, RECON, 0
                it.frames.append(boq.cpu())

        # ---- depth transformer
        ai = [i for i, it in enumerate(items) if it.phase in (REASON, RECON) and not bool(ni[i])]
        if ai:
            frames = _sample_frames(model, h_audio, ai, n, [items[i] for i in ai], masks, cfg, gen)
            for j, i in enumerate(ai):
                it, f = items[i], frames[j]
                na[i], ni[i] = f, True
                it.frames.append(f.cpu())
                it.seg_frames += 1
                c0 = int(f[0])
                if c0 == v.end_reasoning:
                    it.phase = AFTER_REASON
                    if cfg.reasoning_only:
                        _close_item(it, v, cfg.stop_after_audio)
                elif c0 == v.end_recon:
                    _close_item(it, v, cfg.stop_after_audio)
                elif it.phase == REASON:
                    it.reasoning.append(f.cpu())
                else:
                    it.recon.append(f.cpu())

        # ---- append the new position to every row (conditional and unconditional copies)
        rep = r // n
        row_t, row_a, row_i, row_v = nt.repeat(rep), na.repeat(rep, 1), ni.repeat(rep), nv.repeat(rep)
        seq_t[:, cur], seq_a[:, cur], seq_i[:, cur], seq_v[:, cur] = row_t, row_a, row_i, row_v
        cur += 1
        if cache is not None:
            out = model.hidden(row_t[:, None], row_a[:, None], row_i[:, None], row_v[:, None], cache)
        else:
            out = model.hidden(seq_t[:, :cur], seq_a[:, :cur], seq_i[:, :cur], seq_v[:, :cur])
        h_text, h_audio = out.text_hidden[:, -1], out.audio_hidden[:, -1]

    results = []
    for it in items:
        if it.phase in (REASON, AFTER_REASON, RECON) and (it.reasoning or it.recon):
            it.audio.append(_make_item(it, v))
        fr = torch.stack(it.frames) if it.frames else torch.zeros(0, K, dtype=torch.long)
        results.append(GenerationOutput(it.text, tokenizer.decode(it.text), it.audio, fr, it.stop))
    return results


def _make_item(it: _Item, v: AudioVocab) -> AudioItem:
    r = v.frames_to_reasoning(torch.stack(it.reasoning)) if it.reasoning else None
    q = v.frames_to_recon(torch.stack(it.recon)) if it.recon else None
    if r is None and q is None:
        r = torch.zeros(v.num_reasoning_codebooks, 0, dtype=torch.long)
    return AudioItem(r, q, True)


def _close_item(it: _Item, v: AudioVocab, stop: bool) -> None:
    it.audio.append(_make_item(it, v))
    it.reasoning, it.recon = [], []
    it.phase = DONE if stop else TEXT
    if stop:
        it.stop = "audio_end"


def _sample_frames(model: UniAudioLM, h_audio: torch.Tensor, ai: list[int], n: int, items: list[_Item],
                   masks: dict[int, torch.Tensor], cfg: GenerationConfig, gen: torch.Generator | None) -> torch.Tensor:
    """Sample one frame ``[len(ai), K]`` per audio-phase item, codebook by codebook."""
    v, K, m = model.vocab, model.K, len(ai)
    idx = torch.tensor(ai + ([i + n for i in ai] if cfg.cfg_scale is not None else []), device=h_audio.device)
    allowed = torch.stack([masks[it.phase] for it in items])  # [m, K, V]
    end_ids = torch.tensor([v.end_reasoning if it.phase == REASON else v.end_recon for it in items],
                           device=h_audio.device)
    force_end = torch.tensor([cfg.max_segment_frames is not None and it.seg_frames >= cfg.max_segment_frames
                              for it in items], device=h_audio.device)
    state, lg = model.depth.start(h_audio[idx])
    codes: list[torch.Tensor] = []
    for k in range(K):
        g = _guide(lg, m, cfg.cfg_scale).masked_fill(~allowed[:, k], NEG_INF)
        c = sample(g, cfg.audio, gen)
        if k == 0:
            c = torch.where(force_end, end_ids, c)
            special = (c > v.codebook_pad) & (c < v.size)
        else:
            c = torch.where(special, codes[0], c)
        codes.append(c)
        if k + 1 < K:
            lg = model.depth.step(state, c.repeat(len(idx) // m))
    return torch.stack(codes, dim=1)


def codes_from_items(items: Sequence[AudioItem], codec_config: CodecConfig) -> Codes:
    """Generated audio items → a padded :class:`reasoningcodec.Codes` batch (lengths from the
    reconstruction frame counts)."""
    kq = max((it.recon.shape[0] for it in items if it.recon is not None), default=codec_config.num_recon_codebooks)
    kr = max((it.reasoning.shape[0] for it in items if it.reasoning is not None),
             default=codec_config.num_reasoning_codebooks)
    tq = max([it.recon.shape[1] for it in items if it.recon is not None] + [1])
    tr = max([it.reasoning.shape[1] for it in items if it.reasoning is not None] + [1])
    recon = torch.zeros(len(items), kq, tq, dtype=torch.long)
    reasoning = torch.zeros(len(items), kr, tr, dtype=torch.long)
    lengths = torch.zeros(len(items), dtype=torch.long)
    for b, it in enumerate(items):
        if it.recon is not None:
            recon[b, : it.recon.shape[0], : it.recon.shape[1]] = it.recon
            lengths[b] = it.recon.shape[1] * codec_config.recon_hop
        if it.reasoning is not None:
            reasoning[b, : it.reasoning.shape[0], : it.reasoning.shape[1]] = it.reasoning
    return Codes(reasoning, recon, lengths)


def decode_audio(codec: ReasoningCodec, items: Sequence[AudioItem]) -> torch.Tensor:
    """Generated audio items → waveforms ``[B, 1, T]`` at ``codec.config.sample_rate`` (zero past each
    item's own length). A codec whose decoder reads the reasoning tokens gets them only when every item
    carries all of its reasoning codebooks for all of its frames; otherwise the batch decodes without them
    (the model's null window), since partial reasoning codes are not what that decoder was trained on."""
    codes = codes_from_items(items, codec.config)
    if codec.config.decoder_reasoning and not all(_full_reasoning(it, codec.config) for it in items):
        codes = Codes(codes.reasoning[..., :0], codes.recon, codes.lengths)
    return codec.decode(codes.to(next(codec.parameters()).device)).cpu()


def _full_reasoning(item: AudioItem, c: CodecConfig) -> bool:
    """Whether ``item`` has every reasoning codebook for every window its reconstruction frames read."""
    if item.recon is None:
        return True
    need = item.recon.shape[1] * c.recon_hop // c.reasoning_hop  # windows completed by the last frame's end
    return (item.reasoning is not None and item.reasoning.shape[0] == c.num_reasoning_codebooks
            and item.reasoning.shape[1] >= need)
