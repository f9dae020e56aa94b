"""The codec trainer: reconstruction + adversarial losses, VQ losses, text alignment of the reasoning
branch. Single process or ``torchrun`` (DistributedDataParallel, gloo on CPU / nccl on CUDA).

Usage: ``python -m reasoningcodec.train recipes/codec_v1.json [--steps N] [--out runs/x]``.
A run resumes from ``OUT/last`` when it exists, otherwise from ``init_from`` (e.g. the committed fp16
checkpoint), otherwise from scratch.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from ..config import CodecConfig
from ..model import EncoderOutput, ReasoningCodec
from . import checkpoint as ckpt
from .dataset import ClipStore, Sampler, TeacherCache, crop_batch, read_manifest, text_batch
from .discriminators import Discriminators
from .losses import (MultiResolutionMelLoss, MultiResolutionSTFTLoss, discriminator_loss, feature_matching_loss,
                     generator_loss)
from .text_head import TextHead, TranscriptCTC, encode_texts, encode_transcripts


@dataclass
class TrainConfig:
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
    mel_weight: float = 15.0
    # > 0: also a linear-frequency log-magnitude loss at 1024/2048-point resolution up to ``stft_max_hz``
    # (the harmonics that the mel losses pool together; see ``losses.MultiResolutionSTFTLoss``)
    stft_weight: float = 0.0
    stft_max_hz: float = 8000.0
    adv_weight: float = 1.0
    fm_weight: float = 2.0
    commit_weight: float = 0.25
    codebook_weight: float = 1.0
    text_weight: float = 1.0
    reasoning_mel_weight: float = 1.0  # the reasoning tokens alone must predict each window's coarse log-mel
    ctc_weight: float = 1.0  # each reasoning window must spell out its transcript bytes (CTC; clips with transcripts)
    # pronunciation in reconstruction codebook 0: the latent quantised with codebook 0 alone must spell the
    # transcript bytes, 4 CTC slots per 80 ms frame (joint phase, alignment steps, clips with transcripts)
    recon0_ctc_weight: float = 0.0
    # each quantised reasoning window must predict the window-averaged Whisper tiny.en encoder states
    # (cached by ``python -m reasoningcodec.train.whisper_teacher CORPUS``; windows without a cache are skipped)
    distill_weight: float = 0.0
    # harmonic-source decoders (codec.harmonic_source): the decoder's F0 head must predict the YIN F0 of the
    # input (L1 in octaves on voiced frames) and its voicing (binary cross-entropy)
    f0_weight: float = 1.0
    # > 0: the frozen Whisper-style reasoning front-end must hear the same 50 Hz states in the decoded audio
    # as in the input (``feature_loss.whisper_feature_loss``; joint phase)
    whisper_feature_weight: float = 0.0
    # reasoning-conditioned decoder (codec.decoder_reasoning): the share of batch items decoded with the
    # null window instead of their reasoning windows, so codes without reasoning still decode
    decoder_null_prob: float = 0.1
    # "joint": the whole codec. "reasoning": only the reasoning branch and the FiLM that feeds it to the
    # reconstruction encoder are trained, with no decoder pass and no GAN; ``preserve_weight`` keeps the
    # reconstruction latent equal to that of the starting model, so decoder and recon codebooks stay valid
    phase: str = "joint"
    preserve_weight: float = 10.0
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

    @classmethod
    def from_json(cls, path: str | Path, **overrides: Any) -> "TrainConfig":
        d = json.loads(Path(path).read_text())
        d.update({k: v for k, v in overrides.items() if v is not None})
        names = {f.name for f in dataclasses.fields(cls)}
        bad = set(d) - names
        if bad:
            raise ValueError(f"unknown training config fields: {sorted(bad)}")
        return cls(**d)


class TrainModel(nn.Module):
    """Codec + text head behind one forward, so that DDP sees every parameter used in a step."""

    def __init__(self, codec: ReasoningCodec, text_head: TextHead, decoder_null_prob: float = 0.0) -> None:
        super().__init__()
        self.codec = codec
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

    def _f0_loss(self, wav: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """The harmonic decoder's F0 head against YIN labels of the input ``wav [B, T]``."""
        from .pitch import yin

        c = self.codec.config
        with torch.no_grad(), torch.autocast(wav.device.type, enabled=False):
            f0, voiced = yin(wav.float(), c.sample_rate, c.hop_length, c.f0_min, c.f0_max)
        log2_f0, logit = self.codec.f0_head.log2_f0_and_voicing(feats)
        n = min(log2_f0.shape[1], f0.shape[1])
        log2_f0, logit, f0, voiced = log2_f0[:, :n], logit[:, :n], f0[:, :n], voiced[:, :n]
        vm = voiced.float()
        err = (log2_f0 - torch.log2(f0.clamp(min=c.f0_min))).abs()
        pitch = (err * vm).sum() / vm.sum().clamp(min=1.0)
        return pitch + torch.nn.functional.binary_cross_entropy_with_logits(logit, vm)

    def forward(self, wav: torch.Tensor, n_q: int | None, text_wav: torch.Tensor | None = None,
                text_lens: torch.Tensor | None = None, tokens: torch.Tensor | None = None,
                ctc_targets: torch.Tensor | None = None, ctc_lens: torch.Tensor | None = None,
                distill_targets: torch.Tensor | None = None, distill_mask: torch.Tensor | None = None,
                latent_target: torch.Tensor | None = None, recon0_ctc: bool = False
                ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """One training forward. With ``latent_target`` (reasoning phase) the decoder is skipped, the
        output audio is None and ``losses["preserve"]`` is the MSE of the reconstruction latent to it."""
        c = self.codec
        out, _ = c.encode_frames(wav, None, n_q)
        losses = dict(out.losses)
        y = None
        if latent_target is None:
            y, st = c.decode_latent(out.recon, None, self._decoder_cond(out))
            y = torch.cat([y, c.flush(st)], dim=1)
            if st.features is not None:
                losses["f0"] = self._f0_loss(wav, st.features)
        else:
            losses["preserve"] = torch.nn.functional.mse_loss(out.recon_pre, latent_target)
        if distill_targets is not None:
            n = min(out.reasoning.shape[1], distill_targets.shape[1])
            m = distill_mask[:, :n].to(out.reasoning.dtype)
            err = (self.distill(out.reasoning[:, :n]) - distill_targets[:, :n]).pow(2).mean(-1)
            losses["distill"] = (err * m).sum() / m.sum().clamp(min=1.0)
        self.last_quantizers = out.quantizer_outputs
        if out.reasoning.shape[1] > 0:
            cfg = c.config
            mel, _ = c.mel(wav)
            b, nr = out.reasoning.shape[:2]
            target = mel[:, : nr * cfg.reasoning_stride].reshape(b, nr, self.sub, cfg.reasoning_substride, cfg.n_mels)
            target = target.mean(3).reshape(b, nr, -1)
            losses["reasoning_mel"] = torch.nn.functional.l1_loss(self.reasoning_mel(out.reasoning), target.detach())
        if text_wav is not None:
            if recon0_ctc and ctc_targets is not None:
                # one encoder pass serves both: reasoning tokens (all stages) and the latent as
                # reconstruction codebook 0 alone codes it
                first, _ = c.encode_frames(text_wav, None, 1)
                rq_quantized, vq_losses = first.reasoning, first.losses
                n_rec = (-(-text_lens // c.config.recon_hop)).clamp(max=first.recon.shape[1])
                losses["recon0_ctc"] = self.recon0_ctc(first.recon, n_rec.to(wav.device), ctc_targets, ctc_lens)
            else:
                rq = c.reasoning_vq(c.reasoning_features(text_wav))
                rq_quantized = rq.quantized
                vq_losses = {"reasoning_commit": rq.commit_loss, "reasoning_codebook": rq.codebook_loss}
            n_win = -(-text_lens // c.config.reasoning_hop)
            mask = torch.arange(rq_quantized.shape[1], device=wav.device)[None] < n_win.to(wav.device)[:, None]
            losses["text"] = self.text_head(rq_quantized, mask, tokens)
            if ctc_targets is not None:
                losses["ctc"] = self.ctc(rq_quantized, n_win.to(wav.device), ctc_targets, ctc_lens)
            for k, v in vq_losses.items():
                losses[k] = losses[k] + v
        return y, losses


def _float_outputs(scores: list[torch.Tensor], feats: list[list[torch.Tensor]]
                   ) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    """Discriminator outputs as float32 (they are bfloat16 under autocast), so the losses are float32."""
    return [s.float() for s in scores], [[f.float() for f in fs] for fs in feats]


def _last_header(log_path: Path) -> list[str]:
    """The column names of ``log.csv``'s latest header line (resumed runs append to the file)."""
    header: list[str] = []
    with open(log_path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("step,"):
                header = line.rstrip("\r\n").split(",")
    return header


def autocast_context(cfg: "TrainConfig", device: str) -> Any:
    """A fresh context manager for the forward passes: bfloat16 autocast for ``autocast: "bf16"``."""
    if cfg.autocast == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


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


def _dist_info() -> tuple[int, int]:
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def train(cfg: TrainConfig, device: str = "cpu", quiet: bool = False) -> dict[str, Any]:
    if cfg.phase not in ("joint", "reasoning"):
        raise ValueError(f"phase must be 'joint' or 'reasoning', not {cfg.phase!r}")
    if cfg.autocast not in ("", "bf16"):
        raise ValueError(f"autocast must be '' (float32) or 'bf16', not {cfg.autocast!r}")
    amp = functools.partial(autocast_context, cfg, device)
    rank, world = _dist_info()
    torch.set_num_threads(cfg.threads)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(cfg.seed + rank)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    last = out / "last"

    codec_cfg = CodecConfig.from_dict({**CodecConfig().to_dict(), **cfg.codec})
    codec = ReasoningCodec(codec_cfg)
    text_head = TextHead(codec_cfg.reasoning_dim)
    disc = Discriminators(ch=cfg.disc_channels)
    model = TrainModel(codec, text_head, cfg.decoder_null_prob).to(device)
    disc = disc.to(device)
    g_opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.8, 0.99), weight_decay=0.0)
    d_opt = torch.optim.AdamW(disc.parameters(), lr=cfg.disc_lr, betas=(0.8, 0.99), weight_decay=0.0)
    state = {"step": 0, "audio_seconds": 0.0, "train_seconds": 0.0, "cpu_seconds": 0.0, "best_val": None}
    fresh_opt_step = 0  # re-warm the learning rate when the optimizer state is new
    modules = {"codec": codec, "text_head": text_head, "disc": disc, "aux": model.reasoning_mel, "ctc": model.ctc,
               "distill": model.distill, "recon0_ctc": model.recon0_ctc}
    if (last / "state.json").exists():
        disc_ok = ckpt.load_modules(last / "modules.safetensors", modules, skip_mismatch=("disc",))
        ckpt.load_optimizer(last / "optim.safetensors", {"g": g_opt, "d": d_opt} if disc_ok else {"g": g_opt})
        state.update(json.loads((last / "state.json").read_text()))
    elif cfg.init_from:
        init = Path(cfg.init_from)
        ckpt.load_modules(init / "modules.safetensors", modules, skip_mismatch=("disc",), partial=("codec",))
        grown = _identity_new_blocks(codec, init / "modules.safetensors")
        if grown and rank == 0 and not quiet:
            print(f"{len(grown)} residual blocks not in {init} start as the identity: {', '.join(grown)}")
        if codec_cfg.reasoning_frontend == "whisper" and not _has_prefix(init / "modules.safetensors",
                                                                         "codec.reasoning_encoder.conv1."):
            from .whisper_teacher import init_from_whisper

            n = init_from_whisper(codec.reasoning_encoder)
            if rank == 0 and not quiet:
                print(f"reasoning front-end: {n} tensors from Whisper tiny.en")
        if (init / "state.json").exists():
            prev = json.loads((init / "state.json").read_text())
            state.update({k: prev[k] for k in ("step", "audio_seconds", "train_seconds") if k in prev})
        fresh_opt_step = state["step"]

    # every random choice of the loop comes from these two generators, seeded from the recipe's seed, the
    # rank and the step the run starts at: two runs of one recipe from one checkpoint see the same data
    # and make the same choices (``torch.manual_seed`` above covers dropout and the like)
    rng, prng = _loop_generators(cfg.seed, rank, int(state["step"]))
    cpu_start = float(state.get("cpu_seconds", 0.0))  # this run's CPU time before this process
    proc_t0 = time.process_time()

    ema: ReasoningCodec | None = None
    if cfg.ema_decay > 0:
        import copy

        ema = copy.deepcopy(codec).eval().requires_grad_(False)
        src = last if (last / "state.json").exists() else (Path(cfg.init_from) if cfg.init_from else None)
        if src is not None and _has_prefix(src / "modules.safetensors", "codec_ema."):
            ckpt.load_modules(src / "modules.safetensors", {"codec_ema": ema}, partial=("codec_ema",))
        modules["codec_ema"] = ema
    shown = ema if ema is not None else codec  # the weights validated, kept as ``best`` and exported

    reasoning_phase = cfg.phase == "reasoning"
    frozen_codec: ReasoningCodec | None = None
    if reasoning_phase:
        # the reconstruction latent of the phase's starting model (``init_from``, also when resuming) is
        # the target, so the decoder and the recon codebooks, which stay as they are, remain valid
        import copy

        ref = Path(cfg.preserve_from or cfg.init_from) if (cfg.preserve_from or cfg.init_from) else None
        if ref is not None and (ref / "state.json").exists():  # as it was trained (its front-end may differ)
            prev_codec = json.loads((ref / "state.json").read_text()).get("config", {}).get("codec", {})
            frozen_codec = ReasoningCodec(CodecConfig.from_dict({**CodecConfig().to_dict(), **prev_codec})).to(device)
        else:
            frozen_codec = copy.deepcopy(codec)
        if ref is not None:
            ckpt.load_modules(ref / "modules.safetensors", {"codec": frozen_codec})
        frozen_codec.eval().requires_grad_(False)
        trainable = ("reasoning_encoder.", "reasoning_vq.", "film.", "null_reasoning", "enc_norm.", *cfg.train_also)
        for name, p in codec.named_parameters():
            p.requires_grad_(name.startswith(trainable))
    if cfg.freeze:
        for name, p in codec.named_parameters():
            if name.startswith(tuple(cfg.freeze)):
                p.requires_grad_(False)

    ddp_model: nn.Module = model
    ddp_disc: nn.Module = disc
    if world > 1:
        ddp_model = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
        ddp_disc = nn.parallel.DistributedDataParallel(disc)

    corpus = Path(cfg.corpus)
    train_clips = read_manifest(corpus, "train")
    val_clips = read_manifest(corpus, "val")
    store = ClipStore(codec_cfg.sample_rate)
    sampler = Sampler(train_clips, cfg.source_weights, cfg.seed + rank + state["step"])
    text_sampler = Sampler([c for c in train_clips if c.text and c.duration <= cfg.align_max_seconds],
                           cfg.source_weights, cfg.seed + 7 + rank + state["step"])
    seg = int(round(cfg.segment_seconds * codec_cfg.sample_rate / codec_cfg.reasoning_hop)) * codec_cfg.reasoning_hop
    mel_loss = MultiResolutionMelLoss(codec_cfg.sample_rate).to(device)
    stft_loss = (MultiResolutionSTFTLoss(codec_cfg.sample_rate, max_hz=cfg.stft_max_hz).to(device)
                 if cfg.stft_weight > 0 else None)
    teacher = None
    if cfg.distill_weight > 0:
        teacher = TeacherCache(corpus, train_clips)
        if rank == 0 and not quiet:
            print(f"distillation targets for {100 * teacher.coverage:.0f}% of the training clips")
    val_batch = _val_batch(val_clips, store, seg * 2, cfg.val_clips, cfg.seed)
    if frozen_codec is not None and val_batch is not None and rank == 0 and not quiet:
        print(f"validation log-mel L1 of the model whose latent is kept: "
              f"{_validate(frozen_codec, mel_loss, val_batch):.4f}")
    if cfg.preload:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(16) as ex:
            list(ex.map(store.get, train_clips))

    log_path = out / "log.csv"
    new_log = not log_path.exists()
    log_f = open(log_path, "a", newline="") if rank == 0 else None
    writer = None
    last_ckpt = time.time()
    t_start = time.time()
    bar = tqdm(total=cfg.steps, initial=state["step"], disable=quiet or rank != 0, desc="train", unit="step")
    model.train()
    disc.train()
    from .revive import CodeReviver

    reviver = CodeReviver(every=cfg.revive_every or 1)
    manifest_mtime = (corpus / "manifest.tsv").stat().st_mtime
    while state["step"] < cfg.steps:
        step = state["step"]
        if step % 200 == 0 and (corpus / "manifest.tsv").stat().st_mtime != manifest_mtime:
            manifest_mtime = (corpus / "manifest.tsv").stat().st_mtime
            train_clips = read_manifest(corpus, "train")
            sampler = Sampler(train_clips, cfg.source_weights, cfg.seed + rank + step)
            text_sampler = Sampler([c for c in train_clips if c.text and c.duration <= cfg.align_max_seconds],
                                   cfg.source_weights, cfg.seed + 7 + rank + step)
        t0 = time.time()
        lr_scale = min(1.0, (step - fresh_opt_step + 1) / cfg.warmup_steps)
        if cfg.max_minutes and time.time() - t_start > cfg.max_minutes * 60:
            break
        if cfg.max_cpu_seconds and state["cpu_seconds"] >= cfg.max_cpu_seconds:
            break
        for g in g_opt.param_groups:
            g["lr"] = cfg.lr * lr_scale
        extra: dict[str, Any] = {}
        if teacher is not None:
            wav, tgt, tmask = crop_batch(store, sampler, cfg.batch_size, seg, rng, hop=codec_cfg.reasoning_hop,
                                         teacher=teacher)
            wav = wav.to(device)
            extra.update(distill_targets=tgt.to(device), distill_mask=tmask.to(device))
        else:
            wav = crop_batch(store, sampler, cfg.batch_size, seg, rng).to(device)
        if frozen_codec is not None:
            with torch.no_grad():
                extra["latent_target"] = frozen_codec.encode_frames(wav, None, None)[0].recon_pre
        n_q = None
        if not reasoning_phase and prng.random() < cfg.quantizer_dropout:
            n_q = prng.randint(1, codec_cfg.num_recon_codebooks)
        text_args: tuple = ()
        if cfg.align_every and step % cfg.align_every == 0 and text_sampler.sources:
            tw, tl, texts, transcripts = text_batch(store, text_sampler, cfg.align_batch, codec_cfg.reasoning_hop,
                                                    int(cfg.align_max_seconds * codec_cfg.sample_rate), rng)
            text_args = (tw.to(device), tl, encode_texts(texts, 200).to(device))
            if cfg.ctc_weight > 0 or cfg.recon0_ctc_weight > 0:
                text_args = text_args + encode_transcripts(transcripts)
            if cfg.recon0_ctc_weight > 0 and not reasoning_phase:
                extra["recon0_ctc"] = True
        with amp():
            y_hat, losses = ddp_model(wav, n_q, *text_args, **extra)
        if cfg.autocast:
            y_hat = y_hat.float() if y_hat is not None else None
            losses = {k: v.float() for k, v in losses.items()}
        use_gan = step >= cfg.gan_start and not reasoning_phase and (step - cfg.gan_start) % max(1, cfg.disc_every) == 0
        real, fake = wav, y_hat
        if use_gan and cfg.disc_crop_seconds > 0:
            n = min(wav.shape[1], int(cfg.disc_crop_seconds * codec_cfg.sample_rate))
            o = prng.randint(0, wav.shape[1] - n)
            real, fake = wav[:, o:o + n], y_hat[:, o:o + n]
        if use_gan:
            with amp():
                scores, _ = ddp_disc(torch.cat([real, fake.detach()]))
            scores = [sc.float() for sc in scores]
            b = wav.shape[0]
            d_loss = discriminator_loss([s[:b] for s in scores], [s[b:] for s in scores])
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            torch.nn.utils.clip_grad_norm_(disc.parameters(), cfg.grad_clip)
            d_opt.step()
            losses["disc"] = d_loss.detach()
        if reasoning_phase:
            l_mel = wav.new_zeros(())
            total = cfg.preserve_weight * losses["preserve"]
        else:
            l_mel = mel_loss(y_hat, wav)
            total = cfg.mel_weight * l_mel
            if cfg.whisper_feature_weight > 0:
                from .feature_loss import whisper_feature_loss

                with amp():
                    losses["wfeat"] = whisper_feature_loss(codec, y_hat, wav).float()
                total = total + cfg.whisper_feature_weight * losses["wfeat"]
            if stft_loss is not None:
                l_stft = stft_loss(y_hat, wav)
                total = total + cfg.stft_weight * l_stft
                losses["stft"] = l_stft.detach()
        if "distill" in losses:
            total = total + cfg.distill_weight * losses["distill"]
        if "f0" in losses:
            total = total + cfg.f0_weight * losses["f0"]
        total = total + cfg.commit_weight * (losses["recon_commit"] + losses["reasoning_commit"])
        total = total + cfg.codebook_weight * (losses["recon_codebook"] + losses["reasoning_codebook"])
        if "text" in losses:
            total = total + cfg.text_weight * losses["text"]
        if "ctc" in losses:
            total = total + cfg.ctc_weight * losses["ctc"]
        if "recon0_ctc" in losses:
            total = total + cfg.recon0_ctc_weight * losses["recon0_ctc"]
        if "reasoning_mel" in losses:
            total = total + cfg.reasoning_mel_weight * losses["reasoning_mel"]
        if use_gan:
            l_adv, l_fm = generator_gan_losses(disc, real, fake, amp)
            total = total + cfg.adv_weight * l_adv + cfg.fm_weight * l_fm
            losses["adv"], losses["fm"] = l_adv.detach(), l_fm.detach()
        losses["mel"] = l_mel.detach()
        g_opt.zero_grad(set_to_none=True)
        total.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        g_opt.step()
        if ema is not None:
            _ema_update(ema, codec, cfg.ema_decay)
        if cfg.revive_every:
            for name, qo in model.last_quantizers.items():
                vq = codec.reasoning_vq if name == "reasoning" else codec.recon_vq
                if not vq.stages[0].codebook.requires_grad:  # frozen (phase or ``freeze``): leave it be
                    continue
                reviver.observe(name, vq, qo)
                reviver.maybe_revive(step + 1, name, vq)
                if world > 1 and (step + 1) % reviver.every == 0:  # keep replicas identical
                    for stage in vq.stages:
                        dist.broadcast(stage.codebook.data, 0)
        if not torch.isfinite(total):
            raise FloatingPointError(f"non-finite loss at step {step}: { {k: float(v) for k, v in losses.items()} }")
        dt = time.time() - t0
        state["step"] = step + 1
        state["audio_seconds"] += wav.numel() * world / codec_cfg.sample_rate
        state["train_seconds"] += dt
        cpu_before = state["cpu_seconds"]
        state["cpu_seconds"] = cpu_start + time.process_time() - proc_t0
        bar.update(1)
        if rank == 0 and (step % cfg.log_every == 0):
            row = {"step": step, "time": round(time.time() - t_start, 1), "cpu_s": round(state["cpu_seconds"], 1),
                   "audio_h": round(state["audio_seconds"] / 3600, 3),
                   "sec_per_step": round(dt, 3), "audio_s_per_s": round(wav.numel() * world / codec_cfg.sample_rate / dt, 2),
                   "gnorm": round(float(gnorm), 3), "total": round(float(total.detach()), 4)}
            row.update({k: round(float(v.detach()), 4) for k, v in losses.items()})
            row.update({f"revived_{k}": v for k, v in reviver.revived.items()})
            keys = ["step", "time", "cpu_s", "audio_h", "sec_per_step", "audio_s_per_s", "gnorm", "total", "mel", "adv", "fm",
                    "disc", "text", "recon_commit", "recon_codebook", "reasoning_commit", "reasoning_codebook",
                    "reasoning_mel", "ctc", "recon0_ctc", "distill", "preserve", "revived_reasoning", "revived_recon",
                    "stft", "f0", "wfeat"]
            if writer is None:
                writer = csv.DictWriter(log_f, fieldnames=keys + ["val_mel"], extrasaction="ignore")
                if new_log or _last_header(log_path) != keys + ["val_mel"]:
                    writer.writeheader()  # a new log, or the columns changed since the file's latest header
            writer.writerow(row)
            log_f.flush()
            bar.set_postfix(mel=f"{float(l_mel.detach()):.3f}", text=f"{float(losses.get('text', torch.zeros(())).detach()):.2f}")
        if rank == 0 and val_batch is not None and state["step"] % cfg.val_every == 0:
            v = _validate(shown, mel_loss, val_batch)
            if writer is not None:
                writer.writerow({"step": state["step"], "val_mel": round(v, 4)})
                log_f.flush()
            if state["best_val"] is None or v < state["best_val"]:
                state["best_val"] = v
                _save_codec(shown, out / "best", f"{out.name}-s{state['step']}")
            model.train()
        every = cfg.snapshot_cpu_seconds
        if rank == 0 and every > 0 and int(state["cpu_seconds"] // every) > int(cpu_before // every):
            mark = int(state["cpu_seconds"] // every * every)
            _save_codec(shown, out / "snap" / f"cpu{mark}", f"{out.name}-s{state['step']}")
            ckpt.save_json(out / "snap" / f"cpu{mark}" / "train_state.json",
                           {k: state[k] for k in ("step", "audio_seconds", "train_seconds", "cpu_seconds")})
            model.train()
        if rank == 0 and (time.time() - last_ckpt > cfg.ckpt_minutes * 60 or state["step"] >= cfg.steps):
            _save(last, modules, g_opt, d_opt, state, cfg)
            last_ckpt = time.time()
    bar.close()
    if rank == 0:
        _save(last, modules, g_opt, d_opt, state, cfg)
    if world > 1:
        dist.barrier()
    return state


def _loop_generators(seed: int, rank: int, step: int) -> tuple[np.random.Generator, random.Random]:
    """The training loop's random generators (numpy: crops and gains; Python: quantiser dropout and
    discriminator crops), a pure function of the recipe's seed, the rank and the starting step."""
    key = [int(seed), int(rank), int(step)]
    return np.random.default_rng(key), random.Random(f"{seed}/{rank}/{step}")


def _has_prefix(path: Path, prefix: str) -> bool:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return any(k.startswith(prefix) for k in f.keys())


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema ← decay · ema + (1 − decay) · model`` for floating-point tensors; other buffers are copied."""
    for e, m in zip(ema.state_dict().values(), model.state_dict().values()):
        if e.is_floating_point():
            e.lerp_(m.to(e.dtype), 1.0 - decay)
        else:
            e.copy_(m)


def _identity_new_blocks(codec: ReasoningCodec, path: Path) -> list[str]:
    """Zero the layer scale of every residual ConvNeXt block that ``path`` has no weights for, so a codec
    grown by blocks (e.g. ``dec_blocks`` 6 → 9) computes exactly what the checkpoint did until trained."""
    from safetensors import safe_open

    from ..nn import ConvNeXtBlock

    with safe_open(str(path), "pt") as f:
        saved = set(f.keys())
    grown = []
    for name, m in codec.named_modules():
        if isinstance(m, ConvNeXtBlock) and f"codec.{name}.scale" not in saved:
            with torch.no_grad():
                m.scale.zero_()
            grown.append(name)
    return grown


def _save_codec(codec, dest: Path, model_id: str) -> None:
    """Save a training snapshot named after its run and step, so a bitstream or a report made with it says
    which snapshot it was (``export_default`` renames it when it becomes a release)."""
    kept = codec.config.model_id
    codec.config.model_id = model_id
    try:
        codec.save_pretrained(dest)
    finally:
        codec.config.model_id = kept


def _save(last: Path, modules: dict, g_opt, d_opt, state: dict, cfg: TrainConfig) -> None:
    last.mkdir(parents=True, exist_ok=True)
    ckpt.save_modules(last / "modules.safetensors", modules)
    ckpt.save_optimizer(last / "optim.safetensors", {"g": g_opt, "d": d_opt})
    _save_codec(modules.get("codec_ema", modules["codec"]), last / "codec", f"{Path(cfg.out_dir).name}-s{state['step']}")
    ckpt.save_json(last / "state.json", {**state, "config": dataclasses.asdict(cfg)})


def export_shards(run_dir: Path, dest: Path, max_mb: float = 15.0, only: tuple[str, ...] = (),
                  skip: tuple[str, ...] = ()) -> None:
    """fp16 module weights of ``run_dir/last`` split into safetensors shards of at most ``max_mb`` MB each
    (for transfers with a per-file size limit); ``state.json`` beside them. ``only``: keep the tensors
    whose names start with one of these prefixes (e.g. ``("codec_ema.", "disc.")``); ``skip``: drop those
    whose name *after* the module prefix starts with one of these (e.g. the frozen parts, which
    :func:`merge_shards` takes from its ``base``)."""
    from safetensors.torch import load_file, save_file

    dest.mkdir(parents=True, exist_ok=True)
    state = load_file(str(run_dir / "last" / "modules.safetensors"))
    if only:
        state = {k: v for k, v in state.items() if k.startswith(only)}
    if skip:
        state = {k: v for k, v in state.items() if not k.split(".", 1)[-1].startswith(skip)}
    if not state:
        raise ValueError(f"no tensors of {run_dir / 'last'} left to export (only={only}, skip={skip})")
    shard: dict[str, torch.Tensor] = {}
    size, n = 0, 0
    for k in sorted(state):
        v = state[k].half() if state[k].is_floating_point() else state[k]
        if shard and size + v.numel() * v.element_size() > max_mb * 1e6:
            save_file(shard, str(dest / f"modules-{n}.safetensors"))
            shard, size, n = {}, 0, n + 1
        shard[k] = v.contiguous()
        size += v.numel() * v.element_size()
    save_file(shard, str(dest / f"modules-{n}.safetensors"))
    st = json.loads((run_dir / "last" / "state.json").read_text())
    ckpt.save_json(dest / "state.json", {k: st[k] for k in ("step", "audio_seconds", "train_seconds")})


def merge_shards(src: Path, dest: Path, base: Path | None = None) -> None:
    """Inverse of :func:`export_shards`: one ``modules.safetensors`` + ``state.json`` (an ``init_from``
    folder). ``base``: a ``modules.safetensors`` whose tensors fill in what the shards lack (e.g. the
    frozen parts left out of a GPU burst's transfer). A weight average in the shards (``codec_ema.*``)
    becomes the codec, as in :func:`export_resumable`."""
    from safetensors.torch import load_file, save_file

    shards = sorted(src.glob("modules-*.safetensors"))
    if not shards:
        raise FileNotFoundError(f"no modules-*.safetensors in {src}")
    got: dict[str, torch.Tensor] = {}
    for f in shards:
        got.update(load_file(str(f)))
    got = ckpt.fold_ema(got)
    state = load_file(str(base)) if base is not None else {}
    state = {k: v for k, v in state.items() if not k.startswith("codec_ema.")}
    if base is not None:
        unknown = sorted(k for k in set(got) - set(state) if k.startswith("codec."))
        if unknown:
            raise ValueError(f"{len(unknown)} codec tensors of {src} are not in {base}, e.g. {unknown[0]}")
    state.update(got)
    dest.mkdir(parents=True, exist_ok=True)
    save_file(state, str(dest / "modules.safetensors"))
    (dest / "state.json").write_text((src / "state.json").read_text())


def export_resumable(run_dir: Path, dest: Path) -> None:
    """Write the git-sized resumable checkpoint: fp16 weights of every module, no optimizer state.

    A run with ``ema_decay`` stores its weight average (``codec_ema.*``) as the codec: that is the model
    validated and shipped, so the checkpoint gives the shipped model's tokens, and git holds one copy of
    the codec instead of two. A run resumed from it starts its average afresh from those weights."""
    from safetensors.torch import load_file, save_file

    dest.mkdir(parents=True, exist_ok=True)
    state = ckpt.fold_ema(load_file(str(run_dir / "last" / "modules.safetensors")))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()},
              str(dest / "modules.safetensors"))
    st = json.loads((run_dir / "last" / "state.json").read_text())
    ckpt.save_json(dest / "state.json", {k: st[k] for k in ("step", "audio_seconds", "train_seconds", "config")})


def export_default(codec_dir: Path, dest: Path, model_id: str, corpus: Path | None = None,
                   minutes: float = 20.0) -> None:
    """Ship a trained codec as the package default: fp16 safetensors + config (+ entropy tables)."""
    from ..hub import from_pretrained
    from ..tables import build_tables

    codec = from_pretrained(codec_dir)
    codec.config.model_id = model_id
    dest.mkdir(parents=True, exist_ok=True)
    codec.save_pretrained(dest, dtype=torch.float16)
    if corpus is not None:
        build_tables(dest, corpus, minutes)


def _val_batch(clips, store: ClipStore, seg: int, n: int, seed: int) -> torch.Tensor | None:
    if not clips:
        return None
    r = random.Random(seed)
    pick = sorted(clips, key=lambda c: str(c.path))
    r.shuffle(pick)
    xs = []
    for c in pick[:n]:
        x = store.get(c)[:seg]
        x = np.pad(x, (0, seg - len(x)))
        xs.append(x / (np.abs(x).max() + 1e-6) * 0.5)
    return torch.from_numpy(np.stack(xs).astype(np.float32))


@torch.no_grad()
def _validate(codec: ReasoningCodec, mel_loss: MultiResolutionMelLoss, batch: torch.Tensor) -> float:
    codec.eval()
    batch = batch.to(codec.device)
    out, _ = codec.encode_frames(batch, None)
    y, st = codec.decode_latent(out.recon, None, out.recon_cond)
    y = torch.cat([y, codec.flush(st)], dim=1)
    return float(mel_loss(y, batch))
