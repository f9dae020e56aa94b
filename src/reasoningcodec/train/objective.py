"""The generator's objective: named losses and their weighted total ``Σ loss_weights[name] · losses[name]``.

A step's losses come from three places, all in one dict keyed by name (the names of the recipe's
``loss_weights`` and of ``log.csv``'s columns):

* :class:`~.train_model.TrainModel`'s forward: the losses that need the codec's parts or a training head
  (VQ, "f0", "preserve", "distill", "reasoning_mel", "text", "ctc", "recon0_ctc");
* :data:`RECONSTRUCTION_LOSSES`: losses of the decoded audio against the input ("mel", "wfeat", "stft"),
  each computed on steps where its weight is > 0. A new one is one function here, registered with
  :func:`reconstruction_loss`, plus its weight in a recipe; one that needs a frozen network keeps that
  network in a module of its own (e.g. :mod:`.feature_loss`);
* the adversarial terms ("adv", "fm"; and "disc", the discriminators' own loss, logged only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import CodecConfig
from ..model import ReasoningCodec
from .config import TrainConfig
from .losses import (MultiResolutionMelLoss, MultiResolutionSTFTLoss, discriminator_loss, feature_matching_loss,
                     generator_loss)

#: names of the losses a step may log that take no weight: the discriminators' own loss
UNWEIGHTED_LOSSES = ("disc",)
#: names of the losses computed by :class:`~.train_model.TrainModel` and the adversarial step
MODEL_LOSSES = ("preserve", "distill", "f0", "recon_commit", "reasoning_commit", "recon_codebook",
                "reasoning_codebook", "text", "ctc", "recon0_ctc", "reasoning_mel", "adv", "fm")


def autocast_context(cfg: TrainConfig, device: str) -> Any:
    """A fresh context manager for the forward passes: bfloat16 autocast for ``autocast: "bf16"``."""
    if cfg.autocast == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class LossInputs:
    """What a reconstruction loss sees.

    Attributes:
        wav: ``[B, T]`` input audio.
        y_hat: ``[B, T']`` decoded audio (``T' ≥ T``: the decoder's flush runs past the input).
        codec: the codec being trained (e.g. its frozen front-end for a feature loss).
        objective: the run's :class:`Objective` (its loss modules, its autocast context).
    """

    wav: torch.Tensor
    y_hat: torch.Tensor
    codec: ReasoningCodec
    objective: "Objective"


ReconstructionLoss = Callable[[LossInputs], torch.Tensor]
#: name → function of the decoded and the input audio, in the order they are computed
RECONSTRUCTION_LOSSES: dict[str, ReconstructionLoss] = {}


def reconstruction_loss(name: str) -> Callable[[ReconstructionLoss], ReconstructionLoss]:
    """Register a function ``(LossInputs) → scalar`` as the reconstruction loss ``name``."""
    def register(fn: ReconstructionLoss) -> ReconstructionLoss:
        if name in RECONSTRUCTION_LOSSES or name in MODEL_LOSSES or name in UNWEIGHTED_LOSSES:
            raise ValueError(f"loss {name!r} is defined twice")
        RECONSTRUCTION_LOSSES[name] = fn
        return fn
    return register


@reconstruction_loss("mel")
def mel_loss(x: LossInputs) -> torch.Tensor:
    """Multi-resolution log-mel L1."""
    return x.objective.mel(x.y_hat, x.wav)


@reconstruction_loss("wfeat")
def whisper_feature_loss(x: LossInputs) -> torch.Tensor:
    """The Whisper-style front-end's 50 Hz states of decoded vs input audio (:mod:`.feature_loss`)."""
    from .feature_loss import whisper_feature_loss as loss

    with x.objective.amp():
        return loss(x.codec, x.y_hat, x.wav).float()


@reconstruction_loss("stft")
def stft_loss(x: LossInputs) -> torch.Tensor:
    """Linear-frequency log-magnitude L1 up to ``stft_max_hz``."""
    assert x.objective.stft is not None
    return x.objective.stft(x.y_hat, x.wav)


def known_losses() -> tuple[str, ...]:
    """Every loss name a step can produce, in ``log.csv`` order after the legacy columns."""
    return (*MODEL_LOSSES, *RECONSTRUCTION_LOSSES, *UNWEIGHTED_LOSSES)


def check_loss_weights(weights: dict[str, float]) -> None:
    """Raise ValueError for a weight on a loss no step computes (a typo would otherwise be ignored)."""
    weighable = set(MODEL_LOSSES) | set(RECONSTRUCTION_LOSSES)
    bad = sorted(set(weights) - weighable)
    if bad:
        raise ValueError(f"loss_weights name unknown losses {bad}; known: {sorted(weighable)}")


def weighted_total(losses: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """``Σ weights[name] · losses[name]`` over the weighted names present in ``losses``, summed in the
    order of ``weights`` (zero weights included: a computed loss always takes part)."""
    total: torch.Tensor | None = None
    for name, w in weights.items():
        if name in losses:
            term = w * losses[name]
            total = term if total is None else total + term
    if total is None:
        raise ValueError(f"no weighted loss among {sorted(losses)}")
    return total


def _float_outputs(scores: list[torch.Tensor], feats: list[list[torch.Tensor]]
                   ) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    """Discriminator outputs as float32 (they are bfloat16 under autocast), so the losses are float32."""
    return [s.float() for s in scores], [[f.float() for f in fs] for fs in feats]


def generator_gan_losses(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                         amp: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Adversarial and feature-matching losses of the generator's step.

    They need the discriminators' gradient with respect to ``fake`` only: the discriminators' own weight
    gradients would be thrown away (their optimizer clears them before its next step) and the real
    audio's features are fixed targets. So the real features are computed without autograd and the fake
    pass runs through the plain module (under DDP: no all-reduce) with the weights excluded from
    autograd — the same losses and generator gradients as one pass over ``cat([real, fake])`` at about
    half that pass's cost (``benchmarks/train_speed.py``). ``amp``: a function giving the autocast context
    of the passes (:func:`autocast_context`); the losses are computed in float32."""
    amp = amp or contextlib.nullcontext
    with torch.no_grad(), amp():
        _, real_feats = disc(real)
    disc.requires_grad_(False)
    try:
        with amp():
            fake_scores, fake_feats = disc(fake)
    finally:
        disc.requires_grad_(True)
    fake_scores, fake_feats = _float_outputs(fake_scores, fake_feats)
    real_feats = [[f.float() for f in fs] for fs in real_feats]
    return generator_loss(fake_scores), feature_matching_loss(real_feats, fake_feats)


class Objective:
    """The run's loss modules and weights: reconstruction, adversarial and discriminator losses, and the
    weighted total of a step's named losses."""

    def __init__(self, cfg: TrainConfig, codec_cfg: CodecConfig, device: str) -> None:
        check_loss_weights(cfg.loss_weights)
        self.cfg = cfg
        self.weights = cfg.loss_weights
        self.device = device
        self.mel = MultiResolutionMelLoss(codec_cfg.sample_rate).to(device)
        self.stft = (MultiResolutionSTFTLoss(codec_cfg.sample_rate, max_hz=cfg.stft_max_hz).to(device)
                     if self.weights.get("stft", 0.0) > 0 else None)

    def amp(self) -> Any:
        """The autocast context of the run's forward passes."""
        return autocast_context(self.cfg, self.device)

    def reconstruction(self, codec: ReasoningCodec, wav: torch.Tensor,
                       y_hat: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The registered reconstruction losses with a weight > 0 of ``y_hat [B, T']`` against
        ``wav [B, T]``. Without decoded audio (reasoning phase) only "mel", as 0, for the log."""
        if y_hat is None:
            return {"mel": wav.new_zeros(())}
        x = LossInputs(wav, y_hat, codec, self)
        return {name: fn(x) for name, fn in RECONSTRUCTION_LOSSES.items() if self.weights.get(name, 0.0) > 0}

    def adversarial(self, disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """The "adv" and "fm" losses of the generator's audio ``fake [B, T]`` against ``real [B, T]``."""
        adv, fm = generator_gan_losses(disc, real, fake, self.amp)
        return {"adv": adv, "fm": fm}

    def discriminator(self, disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """The "disc" loss: the discriminators' own on ``real`` and ``fake`` audio ``[B, T]`` (``fake`` detached)."""
        with self.amp():
            scores, _ = disc(torch.cat([real, fake.detach()]))
        scores = [sc.float() for sc in scores]
        b = real.shape[0]
        return discriminator_loss([s[:b] for s in scores], [s[b:] for s in scores])

    def total(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """The generator's loss: :func:`weighted_total` with the recipe's weights."""
        return weighted_total(losses, self.weights)
