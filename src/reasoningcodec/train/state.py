"""Building (or resuming) a training run's state: the networks, optimisers, weight average, the frozen
reference of the reasoning phase, the data and its samplers, the loop's random generators.

A run resumes from ``OUT/last`` when it exists, otherwise starts from ``init_from`` (e.g. the committed
fp16 checkpoint), otherwise from scratch.
"""

from __future__ import annotations

import copy
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..config import CodecConfig
from ..model import ReasoningCodec
from . import checkpoint as ckpt
from .config import TrainConfig
from .dataset import Clip, ClipStore, Sampler, TeacherCache, read_manifest
from .discriminators import Discriminators
from .objective import Objective, check_loss_weights
from .revive import CodeReviver
from .text_head import TextHead
from .train_model import TrainModel
from .validation import val_batch, validate

#: codec parameter-name prefixes the reasoning phase trains (``train_also`` adds more)
REASONING_PHASE_TRAINS = ("reasoning_encoder.", "reasoning_vq.", "film.", "null_reasoning", "enc_norm.")


@dataclass
class Networks:
    """The trained networks and their optimisers.

    Attributes:
        codec: the codec being trained.
        model: codec + training heads (:class:`TrainModel`); ``ddp_model`` is it or its DDP wrapper.
        disc: the discriminators; ``ddp_disc`` is it or its DDP wrapper.
        g_opt, d_opt: the generator's (``model``) and the discriminators' optimisers.
        modules: what ``modules.safetensors`` holds, by name prefix.
        ema: the codec's weight average (``ema_decay`` > 0) or None.
        frozen_codec: reasoning phase: the model whose reconstruction latent is kept, else None.
    """

    codec: ReasoningCodec
    model: TrainModel
    disc: Discriminators
    g_opt: torch.optim.Optimizer
    d_opt: torch.optim.Optimizer
    modules: dict[str, nn.Module]
    ddp_model: nn.Module
    ddp_disc: nn.Module
    ema: ReasoningCodec | None = None
    frozen_codec: ReasoningCodec | None = None

    @property
    def shown(self) -> ReasoningCodec:
        """The weights validated, kept as ``best`` and exported: the average when there is one."""
        return self.ema if self.ema is not None else self.codec


@dataclass
class TrainData:
    """The training clips and their samplers.

    Attributes:
        corpus: the corpus folder (its ``manifest.tsv`` is re-read when it changes).
        store: decoded clips.
        clips: the training split.
        sampler, text_sampler: pick training clips / clips with analysis text for alignment batches.
        teacher: cached Whisper window states ("distill" > 0) or None.
        seg: samples per training crop (a whole number of reasoning windows).
        manifest_mtime: modification time of the manifest the samplers were built from.
    """

    corpus: Path
    store: ClipStore
    clips: list[Clip]
    sampler: Sampler
    text_sampler: Sampler
    teacher: TeacherCache | None
    seg: int
    manifest_mtime: float


@dataclass
class TrainRun:
    """Everything the loop works on. ``state`` holds the counters saved in ``state.json`` (step,
    audio_seconds, train_seconds, cpu_seconds, best_val); ``rng`` (numpy: crops and gains) and ``prng``
    (Python: quantizer dropout, discriminator crops) make every random choice of the loop."""

    cfg: TrainConfig
    device: str
    rank: int
    world: int
    quiet: bool
    codec_cfg: CodecConfig
    nets: Networks
    state: dict[str, Any]
    fresh_opt_step: int  # the step the optimizer state started at (the learning rate warms up from it)
    rng: np.random.Generator
    prng: random.Random
    cpu_start: float  # the run's CPU-seconds before this process's loop
    proc_t0: float  # ``time.process_time()`` when they were read
    data: TrainData
    objective: Objective
    val_batch: torch.Tensor | None
    reviver: CodeReviver

    @property
    def out(self) -> Path:
        return Path(self.cfg.out_dir)

    def amp(self) -> Any:
        """The autocast context of the forward passes."""
        return self.objective.amp()

    def log(self, msg: str) -> None:
        """Print ``msg`` on rank 0 unless quiet."""
        if self.rank == 0 and not self.quiet:
            print(msg)


def loop_generators(seed: int, rank: int, step: int) -> tuple[np.random.Generator, random.Random]:
    """The training loop's random generators (numpy: crops and gains; Python: quantiser dropout and
    discriminator crops), a pure function of the recipe's seed, the rank and the starting step."""
    key = [int(seed), int(rank), int(step)]
    return np.random.default_rng(key), random.Random(f"{seed}/{rank}/{step}")


def dist_info() -> tuple[int, int]:
    """``(rank, world size)``; joins the process group under ``torchrun`` (nccl on CUDA, gloo on CPU)."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def check_config(cfg: TrainConfig) -> None:
    """Raise ValueError for a recipe the trainer cannot run."""
    if cfg.phase not in ("joint", "reasoning"):
        raise ValueError(f"phase must be 'joint' or 'reasoning', not {cfg.phase!r}")
    if cfg.autocast not in ("", "bf16"):
        raise ValueError(f"autocast must be '' (float32) or 'bf16', not {cfg.autocast!r}")
    check_loss_weights(cfg.loss_weights)


def build_run(cfg: TrainConfig, device: str, quiet: bool) -> TrainRun:
    """The run's state, resumed from ``OUT/last``, started from ``init_from`` or fresh; seeds torch."""
    check_config(cfg)
    rank, world = dist_info()
    torch.set_num_threads(cfg.threads)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(cfg.seed + rank)
    Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
    codec_cfg = CodecConfig.from_dict({**CodecConfig().to_dict(), **cfg.codec})
    nets = build_networks(cfg, codec_cfg, device)
    state, fresh_opt_step = restore(cfg, nets, rank, quiet)
    # every random choice of the loop comes from these two generators, seeded from the recipe's seed, the
    # rank and the step the run starts at: two runs of one recipe from one checkpoint see the same data
    # and make the same choices (``torch.manual_seed`` above covers dropout and the like)
    rng, prng = loop_generators(cfg.seed, rank, int(state["step"]))
    cpu_start, proc_t0 = float(state.get("cpu_seconds", 0.0)), time.process_time()
    nets.ema = weight_average(cfg, nets)
    if cfg.phase == "reasoning":
        nets.frozen_codec = latent_reference(cfg, nets.codec, device)
    set_trainable(cfg, nets.codec)
    if world > 1:
        nets.ddp_model = nn.parallel.DistributedDataParallel(nets.model, find_unused_parameters=True)
        nets.ddp_disc = nn.parallel.DistributedDataParallel(nets.disc)
    data = build_data(cfg, codec_cfg, rank, int(state["step"]))
    objective = Objective(cfg, codec_cfg, device)
    run = TrainRun(cfg=cfg, device=device, rank=rank, world=world, quiet=quiet, codec_cfg=codec_cfg, nets=nets,
                   state=state, fresh_opt_step=fresh_opt_step, rng=rng, prng=prng, cpu_start=cpu_start,
                   proc_t0=proc_t0, data=data, objective=objective, val_batch=None,
                   reviver=CodeReviver(every=cfg.revive_every or 1))
    if cfg.loss_weights.get("distill", 0.0) > 0:
        run.data.teacher = TeacherCache(data.corpus, data.clips)
        run.log(f"distillation targets for {100 * run.data.teacher.coverage:.0f}% of the training clips")
    run.val_batch = val_batch(read_manifest(data.corpus, "val"), data.store, data.seg * 2, cfg.val_clips, cfg.seed)
    if nets.frozen_codec is not None and run.val_batch is not None:
        run.log(f"validation log-mel L1 of the model whose latent is kept: "
                f"{validate(nets.frozen_codec, objective.mel, run.val_batch):.4f}")
    if cfg.preload:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(16) as ex:
            list(ex.map(data.store.get, data.clips))
    return run


def param_groups(model: TrainModel, lr_scales: dict[str, float]) -> list[dict[str, Any]]:
    """The generator's optimiser groups: one per ``lr_scales`` entry (codec parameter-name prefixes, first
    match wins) with its ``lr_scale``, then the rest at scale 1. Without ``lr_scales``: one group."""
    groups: dict[float | None, list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        short = name[len("codec."):] if name.startswith("codec.") else None
        key = next((k for k in lr_scales if short is not None and short.startswith(k)), None)
        groups.setdefault(key, []).append(p)
    unknown = [k for k in lr_scales if k not in groups]
    if unknown:
        raise ValueError(f"lr_scales prefixes match no codec parameter: {unknown}")
    return [{"params": ps, "lr_scale": float(lr_scales[k]) if k is not None else 1.0} for k, ps in groups.items()]


def build_networks(cfg: TrainConfig, codec_cfg: CodecConfig, device: str) -> Networks:
    """Freshly initialised codec, heads and discriminators on ``device``, with their optimisers."""
    codec = ReasoningCodec(codec_cfg)
    text_head = TextHead(codec_cfg.reasoning_dim)
    disc = Discriminators(ch=cfg.disc_channels)
    model = TrainModel(codec, text_head, cfg.decoder_null_prob, cfg.harmonic_teacher_forcing).to(device)
    disc = disc.to(device)
    g_opt = torch.optim.AdamW(param_groups(model, cfg.lr_scales), lr=cfg.lr, betas=(0.8, 0.99), weight_decay=0.0)
    d_opt = torch.optim.AdamW(disc.parameters(), lr=cfg.disc_lr, betas=(0.8, 0.99), weight_decay=0.0)
    modules = {"codec": codec, "text_head": text_head, "disc": disc, "aux": model.reasoning_mel, "ctc": model.ctc,
               "distill": model.distill, "recon0_ctc": model.recon0_ctc}
    return Networks(codec, model, disc, g_opt, d_opt, modules, model, disc)


def restore(cfg: TrainConfig, nets: Networks, rank: int, quiet: bool) -> tuple[dict[str, Any], int]:
    """Load ``OUT/last`` (weights, optimisers, counters) or ``init_from`` (weights, counters).
    Returns ``(counters, the step the optimizer state starts at)``."""
    state: dict[str, Any] = {"step": 0, "audio_seconds": 0.0, "train_seconds": 0.0, "cpu_seconds": 0.0,
                             "best_val": None}
    last = Path(cfg.out_dir) / "last"
    if (last / "state.json").exists():
        disc_ok = ckpt.load_modules(last / "modules.safetensors", nets.modules, skip_mismatch=("disc",))
        opts = {"g": nets.g_opt, "d": nets.d_opt} if disc_ok else {"g": nets.g_opt}
        ckpt.load_optimizer(last / "optim.safetensors", opts)
        state.update(json.loads((last / "state.json").read_text()))
        return state, 0
    if cfg.init_from:
        start_from(Path(cfg.init_from), nets, state, rank == 0 and not quiet)
        return state, state["step"]  # a new optimizer state: re-warm the learning rate
    return state, 0


def start_from(init: Path, nets: Networks, state: dict[str, Any], verbose: bool) -> None:
    """Load the weights of the resumable checkpoint ``init`` (those that fit) and its counters; blocks it
    lacks start as the identity, a Whisper front-end it lacks starts from Whisper tiny.en."""
    codec = nets.codec
    with ckpt.module_file(init) as weights:
        ckpt.load_modules(weights, nets.modules, skip_mismatch=("disc",), partial=("codec",))
        grown = identity_new_blocks(codec, weights)
        has_frontend = has_prefix(weights, "codec.reasoning_encoder.conv1.")
    if grown and verbose:
        print(f"{len(grown)} residual blocks not in {init} start as the identity: {', '.join(grown)}")
    if codec.config.reasoning_frontend == "whisper" and not has_frontend:
        from .whisper_teacher import init_from_whisper

        n = init_from_whisper(codec.reasoning_encoder)
        if verbose:
            print(f"reasoning front-end: {n} tensors from Whisper tiny.en")
    if (init / "state.json").exists():
        prev = json.loads((init / "state.json").read_text())
        state.update({k: prev[k] for k in ("step", "audio_seconds", "train_seconds") if k in prev})


def weight_average(cfg: TrainConfig, nets: Networks) -> ReasoningCodec | None:
    """The codec's weight average (``ema_decay`` > 0): the saved one of ``OUT/last`` or ``init_from``
    when there is one, else a copy of the codec; registered in ``nets.modules`` as ``codec_ema``."""
    if cfg.ema_decay <= 0:
        return None
    ema = copy.deepcopy(nets.codec).eval().requires_grad_(False)
    last = Path(cfg.out_dir) / "last"
    src = last if (last / "state.json").exists() else (Path(cfg.init_from) if cfg.init_from else None)
    if src is not None and has_prefix(src / "modules.safetensors", "codec_ema."):
        ckpt.load_modules(src / "modules.safetensors", {"codec_ema": ema}, partial=("codec_ema",))
    nets.modules["codec_ema"] = ema
    return ema


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema ← decay · ema + (1 − decay) · model`` for floating-point tensors; other buffers are copied."""
    for e, m in zip(ema.state_dict().values(), model.state_dict().values()):
        if e.is_floating_point():
            e.lerp_(m.to(e.dtype), 1.0 - decay)
        else:
            e.copy_(m)


def latent_reference(cfg: TrainConfig, codec: ReasoningCodec, device: str) -> ReasoningCodec:
    """Reasoning phase: the frozen model whose reconstruction latent is the "preserve" target — the
    phase's starting model (``preserve_from`` or ``init_from``, also when resuming) as it was trained (its
    front-end may differ), so the decoder and the recon codebooks, which stay as they are, remain valid."""
    ref = Path(cfg.preserve_from or cfg.init_from) if (cfg.preserve_from or cfg.init_from) else None
    if ref is not None and (ref / "state.json").exists():
        prev_codec = json.loads((ref / "state.json").read_text()).get("config", {}).get("codec", {})
        frozen = ReasoningCodec(CodecConfig.from_dict({**CodecConfig().to_dict(), **prev_codec})).to(device)
    else:
        frozen = copy.deepcopy(codec)
    if ref is not None:
        ckpt.load_modules(ref / "modules.safetensors", {"codec": frozen})
    return frozen.eval().requires_grad_(False)


def set_trainable(cfg: TrainConfig, codec: ReasoningCodec) -> None:
    """Reasoning phase: only the reasoning branch (and ``train_also``) trains; ``freeze`` prefixes stay fixed."""
    if cfg.phase == "reasoning":
        trainable = (*REASONING_PHASE_TRAINS, *cfg.train_also)
        for name, p in codec.named_parameters():
            p.requires_grad_(name.startswith(trainable))
    if cfg.freeze:
        for name, p in codec.named_parameters():
            if name.startswith(tuple(cfg.freeze)):
                p.requires_grad_(False)


def samplers(cfg: TrainConfig, clips: list[Clip], rank: int, step: int) -> tuple[Sampler, Sampler]:
    """``(crop sampler, alignment sampler)`` of ``clips``, seeded by the recipe's seed, rank and step."""
    sampler = Sampler(clips, cfg.source_weights, cfg.seed + rank + step)
    text_sampler = Sampler([c for c in clips if c.text and c.duration <= cfg.align_max_seconds],
                           cfg.source_weights, cfg.seed + 7 + rank + step)
    return sampler, text_sampler


def build_data(cfg: TrainConfig, codec_cfg: CodecConfig, rank: int, step: int) -> TrainData:
    """The training split of the recipe's corpus, its samplers and the crop length."""
    corpus = Path(cfg.corpus)
    clips = read_manifest(corpus, "train")
    store = ClipStore(codec_cfg.sample_rate)
    sampler, text_sampler = samplers(cfg, clips, rank, step)
    hop = codec_cfg.reasoning_hop
    seg = int(round(cfg.segment_seconds * codec_cfg.sample_rate / hop)) * hop
    mtime = (corpus / "manifest.tsv").stat().st_mtime
    return TrainData(corpus, store, clips, sampler, text_sampler, None, seg, mtime)


def refresh_data(cfg: TrainConfig, data: TrainData, rank: int, step: int) -> None:
    """Re-read the training split and rebuild the samplers when the manifest changed since it was read
    (a corpus growing under a long run)."""
    mtime = (data.corpus / "manifest.tsv").stat().st_mtime
    if mtime != data.manifest_mtime:
        data.manifest_mtime = mtime
        data.clips = read_manifest(data.corpus, "train")
        data.sampler, data.text_sampler = samplers(cfg, data.clips, rank, step)


def has_prefix(path: Path, prefix: str) -> bool:
    """Whether the safetensors file ``path`` holds a tensor whose name starts with ``prefix``."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return any(k.startswith(prefix) for k in f.keys())


def identity_new_blocks(codec: ReasoningCodec, path: Path) -> list[str]:
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
