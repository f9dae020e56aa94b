"""The codec trainer's loop: step (batch, forward, discriminator and generator updates), log, validate,
snapshot, checkpoint. Single process or ``torchrun`` (DistributedDataParallel, gloo on CPU / nccl on CUDA).

Usage: ``python -m reasoningcodec.train recipes/codec_v1.json [--steps N] [--out runs/x]``.
The parts: :mod:`.config` (the recipe and its loss weights), :mod:`.state` (building or resuming the run),
:mod:`.train_model` and :mod:`.objective` (the named losses and their weighted total), :mod:`.log`
(``log.csv``), :mod:`.validation`, :mod:`.export` (shards and releases).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from ..model import ReasoningCodec
from . import checkpoint as ckpt
from .config import TrainConfig
from .dataset import crop_batch, text_batch
from .export import export_default, export_resumable, export_shards, merge_shards
from .log import TrainLog, log_columns
from .objective import autocast_context, generator_gan_losses, known_losses
from .state import TrainRun, build_run, ema_update, identity_new_blocks, refresh_data
from .text_head import encode_texts, encode_transcripts
from .train_model import StepBatch, TextBatch, TrainModel
from .validation import val_batch, validate

__all__ = ["TrainConfig", "TrainModel", "autocast_context", "export_default", "export_resumable", "export_shards",
           "generator_gan_losses", "identity_new_blocks", "merge_shards", "train", "val_batch", "validate"]


@dataclass
class StepResult:
    """One generator step: its named losses (scalars, some still attached to the graph), the weighted
    total, the gradient norm before clipping, and the audio samples it trained on (this rank)."""

    losses: dict[str, torch.Tensor]
    total: torch.Tensor
    gnorm: torch.Tensor
    samples: int


@dataclass
class Progress:
    """What rank 0 reports to: the log (None on other ranks), the progress bar, the loop's start time and
    the time of the last checkpoint."""

    log: TrainLog | None
    bar: Any
    t_start: float
    last_ckpt: float


def train(cfg: TrainConfig, device: str = "cpu", quiet: bool = False) -> dict[str, Any]:
    """Train the codec on the recipe ``cfg`` until ``cfg.steps`` (or a time or CPU budget) and save
    ``OUT/last``. Returns the run's counters (step, audio_seconds, train_seconds, cpu_seconds, best_val)."""
    run = build_run(cfg, device, quiet)
    columns = log_columns([*cfg.loss_weights, *known_losses()])
    now = time.time()
    progress = Progress(TrainLog(run.out / "log.csv", columns) if run.rank == 0 else None,
                        tqdm(total=cfg.steps, initial=run.state["step"], disable=quiet or run.rank != 0,
                             desc="train", unit="step"), now, now)
    run.nets.model.train()
    run.nets.disc.train()
    while run.state["step"] < cfg.steps:
        step = run.state["step"]
        if step % 200 == 0:
            refresh_data(cfg, run.data, run.rank, step)
        t0 = time.time()
        if out_of_budget(run, progress.t_start):
            break
        result = train_step(run, step)
        dt = time.time() - t0
        cpu_before = advance_counters(run, result, dt)
        progress.bar.update(1)
        if run.rank == 0:
            report(run, progress, step, result, dt, cpu_before)
    progress.bar.close()
    if run.rank == 0:
        save_checkpoint(run)
        assert progress.log is not None
        progress.log.close()
    if run.world > 1:
        dist.barrier()
    return run.state


def out_of_budget(run: TrainRun, t_start: float) -> bool:
    """Whether the run's wall-clock (``max_minutes``) or CPU (``max_cpu_seconds``) budget is spent."""
    cfg = run.cfg
    if cfg.max_minutes and time.time() - t_start > cfg.max_minutes * 60:
        return True
    return bool(cfg.max_cpu_seconds and run.state["cpu_seconds"] >= cfg.max_cpu_seconds)


def train_step(run: TrainRun, step: int) -> StepResult:
    """One step: a batch, the forward, the discriminators' update (on adversarial steps), the named
    losses of the generator and its update."""
    cfg, nets = run.cfg, run.nets
    for g in nets.g_opt.param_groups:
        g["lr"] = cfg.lr * g.get("lr_scale", 1.0) * min(1.0, (step - run.fresh_opt_step + 1) / cfg.warmup_steps)
    batch = draw_batch(run, step)
    with run.amp():
        y_hat, losses = nets.ddp_model(batch)
    if cfg.autocast:
        y_hat = y_hat.float() if y_hat is not None else None
        losses = {k: v.float() for k, v in losses.items()}
    wav = batch.wav
    use_gan = (step >= cfg.gan_start and cfg.phase != "reasoning"
               and (step - cfg.gan_start) % max(1, cfg.disc_every) == 0)
    real, fake = wav, y_hat
    if use_gan and cfg.disc_crop_seconds > 0:
        n = min(wav.shape[1], int(cfg.disc_crop_seconds * run.codec_cfg.sample_rate))
        o = run.prng.randint(0, wav.shape[1] - n)
        real, fake = wav[:, o:o + n], y_hat[:, o:o + n]
    if use_gan:
        losses["disc"] = discriminator_update(run, real, fake)
    losses.update(run.objective.reconstruction(nets.codec, wav, y_hat))
    if use_gan:
        losses.update(run.objective.adversarial(nets.disc, real, fake))
    total = run.objective.total(losses)
    gnorm = generator_update(run, total, step)
    if not torch.isfinite(total):
        raise FloatingPointError(f"non-finite loss at step {step}: { {k: float(v) for k, v in losses.items()} }")
    return StepResult(losses, total, gnorm, wav.numel())


def draw_batch(run: TrainRun, step: int) -> StepBatch:
    """The step's training crops (with teacher targets, a latent target in the reasoning phase, a
    quantizer-dropout codebook count, and an alignment batch every ``align_every`` steps)."""
    cfg, data, device = run.cfg, run.data, run.device
    hop = run.codec_cfg.reasoning_hop
    if data.teacher is not None:
        wav, tgt, tmask = crop_batch(data.store, data.sampler, cfg.batch_size, data.seg, run.rng, hop=hop,
                                     teacher=data.teacher)
        batch = StepBatch(wav.to(device), distill_targets=tgt.to(device), distill_mask=tmask.to(device))
    else:
        batch = StepBatch(crop_batch(data.store, data.sampler, cfg.batch_size, data.seg, run.rng).to(device))
    if run.nets.frozen_codec is not None:
        with torch.no_grad():
            batch.latent_target = run.nets.frozen_codec.encode_frames(batch.wav, None, None)[0].recon_pre
    if cfg.phase != "reasoning" and run.prng.random() < cfg.quantizer_dropout:
        batch.n_q = run.prng.randint(1, run.codec_cfg.num_recon_codebooks)
    if cfg.align_every and step % cfg.align_every == 0 and data.text_sampler.sources:
        batch.text = draw_text_batch(run)
    return batch


def draw_text_batch(run: TrainRun) -> TextBatch:
    """Whole clips with analysis text (and transcripts when a CTC loss is weighted)."""
    cfg, c, w = run.cfg, run.codec_cfg, run.cfg.loss_weights
    tw, tl, texts, transcripts = text_batch(run.data.store, run.data.text_sampler, cfg.align_batch, c.reasoning_hop,
                                            int(cfg.align_max_seconds * c.sample_rate), run.rng)
    text = TextBatch(tw.to(run.device), tl, encode_texts(texts, 200).to(run.device))
    if w.get("ctc", 0.0) > 0 or w.get("recon0_ctc", 0.0) > 0:
        text.ctc_targets, text.ctc_lens = encode_transcripts(transcripts)
    text.recon0_ctc = w.get("recon0_ctc", 0.0) > 0 and cfg.phase != "reasoning"
    return text


def discriminator_update(run: TrainRun, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """One optimizer step of the discriminators on ``real`` vs ``fake`` (detached) audio ``[B, T]``;
    returns their loss (detached)."""
    nets = run.nets
    d_loss = run.objective.discriminator(nets.ddp_disc, real, fake)
    nets.d_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    torch.nn.utils.clip_grad_norm_(nets.disc.parameters(), run.cfg.grad_clip)
    nets.d_opt.step()
    return d_loss.detach()


def generator_update(run: TrainRun, total: torch.Tensor, step: int) -> torch.Tensor:
    """Backward of ``total``, clipped optimizer step, weight average, dead-code restarts; returns the
    gradient norm before clipping."""
    cfg, nets = run.cfg, run.nets
    nets.g_opt.zero_grad(set_to_none=True)
    total.backward()
    gnorm = torch.nn.utils.clip_grad_norm_(nets.model.parameters(), cfg.grad_clip)
    nets.g_opt.step()
    if nets.ema is not None:
        ema_update(nets.ema, nets.codec, cfg.ema_decay)
    if cfg.revive_every:
        revive_codes(run, step)
    return gnorm


def revive_codes(run: TrainRun, step: int) -> None:
    """Count this step's codes and restart dead ones (every ``revive_every`` steps) in the trained
    quantisers; DDP replicas then take rank 0's codebooks."""
    codec = run.nets.codec
    quantizers = {"reasoning": codec.reasoning_vq, "recon": codec.recon_vq}
    for name, qo in run.nets.model.last_quantizers.items():
        vq = quantizers[name]
        if not vq.is_trainable():  # frozen (phase or ``freeze``): leave it be
            continue
        run.reviver.observe(name, vq, qo)
        run.reviver.maybe_revive(step + 1, name, vq)
        if run.world > 1 and (step + 1) % run.reviver.every == 0:  # keep replicas identical
            for book in vq.codebooks():
                dist.broadcast(book.data, 0)


def advance_counters(run: TrainRun, result: StepResult, dt: float) -> float:
    """Count the step (``dt`` seconds) in ``run.state``; returns the CPU-seconds before it."""
    st = run.state
    st["step"] += 1
    st["audio_seconds"] += result.samples * run.world / run.codec_cfg.sample_rate
    st["train_seconds"] += dt
    cpu_before = st["cpu_seconds"]
    st["cpu_seconds"] = run.cpu_start + time.process_time() - run.proc_t0
    return cpu_before


def report(run: TrainRun, progress: Progress, step: int, result: StepResult, dt: float, cpu_before: float) -> None:
    """Rank 0 after a step: log row, validation, CPU-time snapshot and checkpoint, each when due."""
    cfg, st = run.cfg, run.state
    if step % cfg.log_every == 0:
        log_step(run, progress, step, result, dt)
    if run.val_batch is not None and st["step"] % cfg.val_every == 0:
        validate_step(run, progress)
    every = cfg.snapshot_cpu_seconds
    if every > 0 and int(st["cpu_seconds"] // every) > int(cpu_before // every):
        snapshot(run, int(st["cpu_seconds"] // every * every))
    if time.time() - progress.last_ckpt > cfg.ckpt_minutes * 60 or st["step"] >= cfg.steps:
        save_checkpoint(run)
        progress.last_ckpt = time.time()


def log_step(run: TrainRun, progress: Progress, step: int, result: StepResult, dt: float) -> None:
    """One ``log.csv`` row: counters, timings, the total and every named loss; the progress bar's postfix."""
    st, audio_s = run.state, result.samples * run.world / run.codec_cfg.sample_rate
    row: dict[str, Any] = {"step": step, "time": round(time.time() - progress.t_start, 1),
                           "cpu_s": round(st["cpu_seconds"], 1), "audio_h": round(st["audio_seconds"] / 3600, 3),
                           "sec_per_step": round(dt, 3), "audio_s_per_s": round(audio_s / dt, 2),
                           "gnorm": round(float(result.gnorm), 3), "total": round(float(result.total.detach()), 4)}
    row.update({k: round(float(v.detach()), 4) for k, v in result.losses.items()})
    row.update({f"revived_{k}": v for k, v in run.reviver.revived.items()})
    assert progress.log is not None
    progress.log.row(row)
    zero = torch.zeros(())
    progress.bar.set_postfix(mel=f"{float(result.losses.get('mel', zero).detach()):.3f}",
                             text=f"{float(result.losses.get('text', zero).detach()):.2f}")


def validate_step(run: TrainRun, progress: Progress) -> None:
    """Validate the shown weights, log ``val_mel`` and keep the best as ``OUT/best``."""
    nets, st = run.nets, run.state
    assert run.val_batch is not None and progress.log is not None
    v = validate(nets.shown, run.objective.mel, run.val_batch)
    progress.log.validation(st["step"], v)
    if st["best_val"] is None or v < st["best_val"]:
        st["best_val"] = v
        save_codec(nets.shown, run.out / "best", f"{run.out.name}-s{st['step']}")
    nets.model.train()


def snapshot(run: TrainRun, mark: int) -> None:
    """Save the shown weights as ``OUT/snap/cpu<mark>`` (a point of an equal-compute arm's curve)."""
    dest = run.out / "snap" / f"cpu{mark}"
    save_codec(run.nets.shown, dest, f"{run.out.name}-s{run.state['step']}")
    ckpt.save_json(dest / "train_state.json",
                   {k: run.state[k] for k in ("step", "audio_seconds", "train_seconds", "cpu_seconds")})
    run.nets.model.train()


def save_codec(codec: ReasoningCodec, dest: Path, model_id: str) -> None:
    """Save a training snapshot named after its run and step, so a bitstream or a report made with it says
    which snapshot it was (``export_default`` renames it when it becomes a release)."""
    kept = codec.config.model_id
    codec.config.model_id = model_id
    try:
        codec.save_pretrained(dest)
    finally:
        codec.config.model_id = kept


def save_checkpoint(run: TrainRun) -> None:
    """``OUT/last``: every module's weights, the optimisers, the shown codec, the counters and the recipe."""
    last, nets = run.out / "last", run.nets
    last.mkdir(parents=True, exist_ok=True)
    ckpt.save_modules(last / "modules.safetensors", nets.modules)
    ckpt.save_optimizer(last / "optim.safetensors", {"g": nets.g_opt, "d": nets.d_opt})
    save_codec(nets.modules.get("codec_ema", nets.codec), last / "codec", f"{run.out.name}-s{run.state['step']}")
    ckpt.save_json(last / "state.json", {**run.state, "config": dataclasses.asdict(run.cfg)})
