"""The training recipe (:class:`TrainConfig`, a JSON file in ``recipes/``) and the weights of its named
losses.

The generator's loss is ``Σ loss_weights[name] · losses[name]`` over the losses a step computed; each
name is also a column of the run's ``log.csv``. Recipes written before ``loss_weights`` gave one
``*_weight`` field per loss; :meth:`TrainConfig.from_json` still reads them (:data:`LEGACY_WEIGHT_FIELDS`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..configio import check_fields, config_error, read_object

#: How errors name a recipe.
_WHAT = "codec training recipe"

#: The weight of each named loss where a recipe gives none (a recipe's ``loss_weights`` update these).
#: This is also the order the weighted terms are summed in (that of the trainer before ``loss_weights``
#: existed, so totals stay bit-identical); losses not listed here follow in the recipe's order.
DEFAULT_LOSS_WEIGHTS: dict[str, float] = {
    # reasoning phase: MSE of the reconstruction latent to that of the phase's starting model
    "preserve": 10.0,
    # multi-resolution log-mel L1 of the decoded audio (``losses.MultiResolutionMelLoss``)
    "mel": 15.0,
    # the frozen Whisper-style reasoning front-end must hear the same 50 Hz states in the decoded audio
    # as in the input (``feature_loss.whisper_feature_loss``; joint phase)
    "wfeat": 0.0,
    # linear-frequency log-magnitude loss at 1024/2048-point resolution up to ``stft_max_hz`` (the
    # harmonics that the mel losses pool together; see ``losses.MultiResolutionSTFTLoss``)
    "stft": 0.0,
    # each quantised reasoning window must predict the window-averaged Whisper tiny.en encoder states
    # (cached by ``python -m reasoningcodec.train.whisper_teacher CORPUS``; windows without a cache are skipped)
    "distill": 0.0,
    # harmonic-source decoders (codec.harmonic_source): the decoder's F0 head must predict the YIN F0 of
    # the input (L1 in octaves on voiced frames) and its voicing (binary cross-entropy)
    "f0": 1.0,
    # the quantisers' commitment and codebook losses, per token stream
    "recon_commit": 0.25,
    "reasoning_commit": 0.25,
    "recon_codebook": 1.0,
    "reasoning_codebook": 1.0,
    # the reasoning tokens of an aligned clip must predict its text (cross-entropy of ``TextHead``)
    "text": 1.0,
    # each reasoning window must spell out its transcript bytes (CTC; clips with transcripts)
    "ctc": 1.0,
    # pronunciation in reconstruction codebook 0: the latent quantised with codebook 0 alone must spell
    # the transcript bytes, 4 CTC slots per 80 ms frame (joint phase, alignment steps, clips with transcripts)
    "recon0_ctc": 0.0,
    # the reasoning tokens alone must predict each window's coarse log-mel
    "reasoning_mel": 1.0,
    # adversarial and feature-matching losses of the generator (after ``gan_start``)
    "adv": 1.0,
    "fm": 2.0,
}

#: The weight fields of recipes written before ``loss_weights``, and the losses each one weighs.
LEGACY_WEIGHT_FIELDS: dict[str, tuple[str, ...]] = {
    "mel_weight": ("mel",),
    "stft_weight": ("stft",),
    "adv_weight": ("adv",),
    "fm_weight": ("fm",),
    "commit_weight": ("recon_commit", "reasoning_commit"),
    "codebook_weight": ("recon_codebook", "reasoning_codebook"),
    "text_weight": ("text",),
    "reasoning_mel_weight": ("reasoning_mel",),
    "ctc_weight": ("ctc",),
    "recon0_ctc_weight": ("recon0_ctc",),
    "distill_weight": ("distill",),
    "f0_weight": ("f0",),
    "whisper_feature_weight": ("wfeat",),
    "preserve_weight": ("preserve",),
}


@dataclass
class TrainConfig:
    """A training recipe (``recipes/*.json``; unknown fields are an error)."""

    corpus: str = "data/corpus"
    out_dir: str = "runs/codec"
    init_from: str = ""
    codec: dict[str, Any] = field(default_factory=dict)
    steps: int = 1_000_000
    batch_size: int = 8
    segment_seconds: float = 1.2
    lr: float = 5e-4
    disc_lr: float = 2e-4
    warmup_steps: int = 300
    gan_start: int = 1000
    # the weight of each named loss in the generator's total (see DEFAULT_LOSS_WEIGHTS, which a recipe's
    # mapping updates); a loss whose name has no weight is only logged (e.g. "disc")
    loss_weights: dict[str, float] = field(default_factory=dict)
    stft_max_hz: float = 8000.0  # top of the "stft" loss's band
    # reasoning-conditioned decoder (codec.decoder_reasoning): the share of batch items decoded with the
    # null window instead of their reasoning windows, so codes without reasoning still decode
    decoder_null_prob: float = 0.1
    # harmonic-source decoders: drive the comb with the input's YIN F0 in training (the F0 head still learns
    # to predict it; decoding uses the prediction)
    harmonic_teacher_forcing: bool = False
    # codec parameter-name prefix → learning-rate multiplier (e.g. parts a checkpoint lacks, which start
    # from zero and would otherwise move at the fine-tuning rate of the rest)
    lr_scales: dict[str, float] = field(default_factory=dict)
    # "joint": the whole codec. "reasoning": only the reasoning branch and the FiLM that feeds it to the
    # reconstruction encoder are trained, with no decoder pass and no GAN; the "preserve" loss keeps the
    # reconstruction latent equal to that of the starting model, so decoder and recon codebooks stay valid
    phase: str = "joint"
    preserve_from: str = ""  # reasoning phase: checkpoint whose reconstruction latent is kept (default init_from)
    freeze: list[str] = field(default_factory=list)  # codec parameter-name prefixes kept fixed (any phase)
    train_also: list[str] = field(default_factory=list)  # reasoning phase: more codec prefixes to train
    revive_every: int = 50  # restart dead VQ codes every N steps (0: never)
    align_every: int = 4
    align_batch: int = 8
    align_max_seconds: float = 6.0
    quantizer_dropout: float = 0.5
    grad_clip: float = 10.0
    disc_channels: int = 32
    disc_crop_seconds: float = 0.0  # > 0: discriminators see a random crop of this length (cheaper)
    source_weights: dict[str, float] = field(default_factory=lambda: {"*": 1.0})
    threads: int = 2
    seed: int = 0
    log_every: int = 20
    ckpt_minutes: float = 10.0
    val_every: int = 500
    val_clips: int = 16
    max_minutes: float = 0.0  # > 0: stop (and save) after this much wall-clock training time
    # > 0: stop (and save) once this run's training loop has used this many process CPU-seconds in all
    # (``state["cpu_seconds"]`` counts across resumes): the budget of an equal-compute experiment arm
    max_cpu_seconds: float = 0.0
    # > 0: save the validated codec to ``OUT/snap/cpu<N>`` each time ``cpu_seconds`` passes a multiple of
    # this (the points of an experiment arm's curve, scored afterwards by ``scripts/arm_curve.py``)
    snapshot_cpu_seconds: float = 0.0
    # adversarial losses (discriminator update + generator adversarial/feature-matching terms) only on
    # every k-th step after ``gan_start``: the discriminators cost more per step than the codec
    disc_every: int = 1
    # > 0: keep an exponential moving average of the codec weights (e.g. 0.999); validation, ``best`` and
    # ``last/codec`` (what gets exported) then use the average, the raw weights keep training
    ema_decay: float = 0.0
    preload: bool = False  # decode every clip up front (threads): for short bursts on a big machine
    # "bf16": run the codec's and the discriminators' forward and backward passes under bfloat16 autocast
    # (weights, optimizer, quantiser, losses and validation stay float32); "" : float32 throughout
    autocast: str = ""

    def __post_init__(self) -> None:
        self.loss_weights = {**DEFAULT_LOSS_WEIGHTS, **{k: float(v) for k, v in self.loss_weights.items()}}

    def __setattr__(self, name: str, value: Any) -> None:
        if name in LEGACY_WEIGHT_FIELDS:  # would otherwise be set and silently ignored
            keys = " and ".join(f"loss_weights[{k!r}]" for k in LEGACY_WEIGHT_FIELDS[name])
            raise AttributeError(f"TrainConfig.{name} is gone: set {keys} instead")
        super().__setattr__(name, value)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | None = None) -> "TrainConfig":
        """A recipe as a dict (``source`` names it in errors); the ``*_weight`` fields of older recipes
        become ``loss_weights`` entries.

        Raises:
            ConfigError: ``d`` is not a dict, has unknown fields, or gives one loss two weights.
        """
        check_fields(cls, d, _WHAT, source, also=LEGACY_WEIGHT_FIELDS)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names} | {"loss_weights": _loss_weights(d, source)})

    @classmethod
    def from_json(cls, path: str | Path, **overrides: Any) -> "TrainConfig":
        """The recipe at ``path``, with the ``overrides`` that are not None (raises as :meth:`from_dict`,
        and :class:`ConfigError` for a file that is not JSON or not a JSON object)."""
        d, source = read_object(path, _WHAT)
        d.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(d, source)


def _loss_weights(d: dict[str, Any], source: str | None) -> dict[str, float]:
    """A recipe's ``loss_weights`` with its legacy ``*_weight`` fields mapped in (a name given both ways
    must get one value)."""
    weights = {k: float(v) for k, v in d.get("loss_weights", {}).items()}
    for old, losses in LEGACY_WEIGHT_FIELDS.items():
        if old not in d:
            continue
        for name in losses:
            if name in weights and weights[name] != float(d[old]):
                raise config_error(_WHAT, source, f"loss {name!r} gets two weights: {old}={d[old]} and "
                                   f"loss_weights[{name!r}]={weights[name]}")
            weights[name] = float(d[old])
    return weights
