"""The codec with its training heads behind one forward (what DistributedDataParallel wraps), and the
losses that need those heads or the codec's own parts: VQ, F0, latent preservation, distillation,
reasoning log-mel, text, transcript CTC and codebook-0 CTC.

Losses computed from the decoded audio alone (log-mel, STFT, features of a frozen network) live in
:mod:`.objective`; they need no parameters of their own, so they run outside the DDP forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..model import EncoderOutput, ReasoningCodec
from ..quantize import QuantizerOutput
from .text_head import TextHead, TranscriptCTC


@dataclass
class TextBatch:
    """Whole clips with analysis text, for the alignment losses ("text", "ctc", "recon0_ctc").

    Attributes:
        wav: ``[Bt, Tt]`` clips, zero-padded to a multiple of the reasoning hop.
        lens: ``[Bt]`` samples of each clip (on the CPU).
        tokens: ``[Bt, L]`` text bytes with BOS/EOS/PAD (``text_head.encode_texts``).
        ctc_targets: concatenated transcript bytes ``[ΣL']`` (``text_head.encode_transcripts``) or None.
        ctc_lens: ``[Bt]`` transcript lengths (0: none) or None.
        recon0_ctc: also the pronunciation loss of reconstruction codebook 0 ("recon0_ctc").
    """

    wav: torch.Tensor
    lens: torch.Tensor
    tokens: torch.Tensor
    ctc_targets: torch.Tensor | None = None
    ctc_lens: torch.Tensor | None = None
    recon0_ctc: bool = False


@dataclass
class StepBatch:
    """What one generator step trains on.

    Attributes:
        wav: ``[B, T]`` training crops.
        n_q: reconstruction codebooks kept (quantizer dropout) or None for all.
        text: an alignment batch on alignment steps, else None.
        distill_targets: ``[B, Nr, 384]`` cached Whisper window states (or None).
        distill_mask: ``[B, Nr]`` True where a window has a target.
        latent_target: reasoning phase: ``[B, Nq, Dq]`` reconstruction latent of the starting model; the
            decoder is skipped and "preserve" is the latent's MSE to it.
    """

    wav: torch.Tensor
    n_q: int | None = None
    text: TextBatch | None = None
    distill_targets: torch.Tensor | None = None
    distill_mask: torch.Tensor | None = None
    latent_target: torch.Tensor | None = None


class TrainModel(nn.Module):
    """Codec + training heads behind one forward, so that DDP sees every parameter used in a step.

    After each forward, ``last_quantizers`` holds the pass's :class:`QuantizerOutput` per stream
    ("reasoning", "recon"), for dead-code restarts."""

    def __init__(self, codec: ReasoningCodec, text_head: TextHead, decoder_null_prob: float = 0.0,
                 harmonic_teacher_forcing: bool = False) -> None:
        super().__init__()
        self.codec = codec
        self.harmonic_teacher_forcing = harmonic_teacher_forcing
        self.decoder_null_prob = decoder_null_prob
        self.text_head = text_head
        c = codec.config
        self.sub = c.reasoning_stride // c.reasoning_substride
        # reasoning window → its coarse log-mel (sub-steps × mels): makes the 5 Hz tokens informative
        self.reasoning_mel = nn.Sequential(nn.Linear(c.reasoning_dim, 512), nn.GELU(),
                                           nn.Linear(512, self.sub * c.n_mels))
        self.ctc = TranscriptCTC(c.reasoning_dim)
        self.recon0_ctc = TranscriptCTC(c.latent_dim, slots=4)
        from .whisper_teacher import DIM

        self.distill = nn.Sequential(nn.Linear(c.reasoning_dim, 512), nn.GELU(), nn.Linear(512, DIM))
        self.last_quantizers: dict[str, QuantizerOutput] = {}

    def forward(self, batch: StepBatch) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """One training forward: ``(decoded audio [B, T'] (T' ≥ T) or None in the reasoning phase,
        named scalar losses)``."""
        c = self.codec
        wav = batch.wav
        out, _ = c.encode_frames(wav, None, batch.n_q)
        losses = dict(out.losses)
        y = None
        if batch.latent_target is None:
            labels = self._f0_labels(wav) if c.source is not None else None
            forced = None
            if labels is not None and self.harmonic_teacher_forcing:
                n = out.recon.shape[1] * c.config.recon_stride
                forced = F.pad(labels[0], (0, max(0, n - labels[0].shape[1])))[:, :n]
            y, st = c.decode_latent(out.recon, None, self._decoder_cond(out), forced)
            y = torch.cat([y, c.flush(st)], dim=1)
            if st.features is not None and labels is not None:
                losses["f0"] = self._f0_loss(labels, st.features)
        else:
            losses["preserve"] = F.mse_loss(out.recon_pre, batch.latent_target)
        if batch.distill_targets is not None:
            losses["distill"] = self._distill_loss(out.reasoning, batch.distill_targets, batch.distill_mask)
        self.last_quantizers = out.quantizer_outputs
        if out.reasoning.shape[1] > 0:
            losses["reasoning_mel"] = self._reasoning_mel_loss(wav, out.reasoning)
        if batch.text is not None:
            text_losses, vq_losses = self._text_losses(batch.text)
            losses.update(text_losses)
            for k, v in vq_losses.items():
                losses[k] = losses[k] + v
        return y, losses

    def _decoder_cond(self, out: EncoderOutput) -> torch.Tensor | None:
        """Per-frame reasoning windows for a reasoning-conditioned decoder (a share of the items get the
        null window); None for other decoders."""
        c = self.codec
        if c.dec_film is None:
            return None
        cond = out.recon_cond
        if self.training and self.decoder_null_prob > 0:
            drop = torch.rand(cond.shape[0], 1, 1, device=cond.device) < self.decoder_null_prob
            cond = torch.where(drop, c.null_reasoning.to(cond.dtype), cond)
        return cond

    def _f0_labels(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """YIN labels of the input ``wav [B, T]``: ``(f0 Hz [B, T // hop] (0: unvoiced), voiced [B, T // hop])``."""
        from .pitch import yin

        c = self.codec.config
        with torch.no_grad(), torch.autocast(wav.device.type, enabled=False):
            return yin(wav.float(), c.sample_rate, c.hop_length, c.f0_min, c.f0_max)

    def _f0_loss(self, labels: tuple[torch.Tensor, torch.Tensor], feats: torch.Tensor) -> torch.Tensor:
        """The "f0" loss: the harmonic decoder's F0 head on its features ``feats`` against the YIN
        ``labels`` of the input (:meth:`_f0_labels`)."""
        c = self.codec.config
        f0, voiced = labels
        log2_f0, logit = self.codec.f0_head.log2_f0_and_voicing(feats)
        n = min(log2_f0.shape[1], f0.shape[1])
        log2_f0, logit, f0, voiced = log2_f0[:, :n], logit[:, :n], f0[:, :n], voiced[:, :n]
        vm = voiced.float()
        err = (log2_f0 - torch.log2(f0.clamp(min=c.f0_min))).abs()
        pitch = (err * vm).sum() / vm.sum().clamp(min=1.0)
        return pitch + F.binary_cross_entropy_with_logits(logit, vm)

    def _distill_loss(self, reasoning: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The "distill" loss: MSE of the head's prediction from the quantised windows ``reasoning [B, Nr, Dr]``
        to the cached teacher states ``targets [B, Nr', 384]`` where ``mask [B, Nr']``."""
        n = min(reasoning.shape[1], targets.shape[1])
        m = mask[:, :n].to(reasoning.dtype)
        err = (self.distill(reasoning[:, :n]) - targets[:, :n]).pow(2).mean(-1)
        return (err * m).sum() / m.sum().clamp(min=1.0)

    def _reasoning_mel_loss(self, wav: torch.Tensor, reasoning: torch.Tensor) -> torch.Tensor:
        """The "reasoning_mel" loss: L1 of each window's coarse log-mel (``sub`` steps × mels) predicted from the
        quantised windows ``reasoning [B, Nr, Dr]`` of ``wav [B, T]``."""
        c = self.codec
        cfg = c.config
        mel, _ = c.mel(wav)
        b, nr = reasoning.shape[:2]
        target = mel[:, : nr * cfg.reasoning_stride].reshape(b, nr, self.sub, cfg.reasoning_substride, cfg.n_mels)
        target = target.mean(3).reshape(b, nr, -1)
        return F.l1_loss(self.reasoning_mel(reasoning), target.detach())

    def _text_losses(self, text: TextBatch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(alignment losses "text", "ctc", "recon0_ctc", VQ losses of the text clips' pass)``."""
        c = self.codec
        losses: dict[str, torch.Tensor] = {}
        dev = text.wav.device
        if text.recon0_ctc and text.ctc_targets is not None:
            # one encoder pass serves both: reasoning tokens (all stages) and the latent as
            # reconstruction codebook 0 alone codes it
            first, _ = c.encode_frames(text.wav, None, 1)
            rq_quantized, vq_losses = first.reasoning, first.losses
            n_rec = (-(-text.lens // c.config.recon_hop)).clamp(max=first.recon.shape[1])
            losses["recon0_ctc"] = self.recon0_ctc(first.recon, n_rec.to(dev), text.ctc_targets, text.ctc_lens)
        else:
            rq = c.reasoning_vq(c.reasoning_features(text.wav))
            rq_quantized = rq.quantized
            vq_losses = {"reasoning_commit": rq.commit_loss, "reasoning_codebook": rq.codebook_loss}
        n_win = -(-text.lens // c.config.reasoning_hop)
        mask = torch.arange(rq_quantized.shape[1], device=dev)[None] < n_win.to(dev)[:, None]
        losses["text"] = self.text_head(rq_quantized, mask, text.tokens)
        if text.ctc_targets is not None:
            losses["ctc"] = self.ctc(rq_quantized, n_win.to(dev), text.ctc_targets, text.ctc_lens)
        return losses, vq_losses
