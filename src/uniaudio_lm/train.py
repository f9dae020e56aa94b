"""Training loop for :class:`UniAudioLM`: one process, or ``torchrun`` (DDP; gloo on CPU, NCCL on CUDA).

Usage::

    python -m uniaudio_lm.train recipe.json                     # a TrainConfig as JSON
    python -m uniaudio_lm.train --stage 1 --preset tiny --synthetic --steps 100 --out-dir runs/lm
    torchrun --nproc_per_node 2 -m uniaudio_lm.train recipe.json

Every ``ckpt_every`` steps and at the end, ``<out_dir>/last`` holds a resumable checkpoint (see
:mod:`uniaudio_lm.checkpoint`); a new run with the same ``out_dir`` continues from it, bit-exactly,
because the batch of each step depends only on ``(seed, rank, step)``. Losses go to
``<out_dir>/losses.csv`` (with the process CPU seconds so far, for equal-compute comparisons, and the
auxiliary CTC loss when the model has one); the final
weights to ``<out_dir>/model`` (``UniAudioLM.from_pretrained``), and with ``snapshot_every`` the weights
every that many steps to ``<out_dir>/snapshots/step_<N>`` (learning curves).

``mixture`` replaces the stage's sampling weights per kind; ``episode_stream`` adds fresh few-shot
classification episodes drawn from the first manifest's labelled clips at every step (see
:mod:`uniaudio_lm.episode_stream`; its keys are that class's arguments, plus ``"replace": true`` to drop
the manifests' fixed few-shot rows); ``symbolic_episodes`` adds episodes over made-up code sequences
(:class:`~uniaudio_lm.episode_stream.SymbolicEpisodes`). A recipe's ``model`` may set the training-only
fields :data:`uniaudio_lm.start.TRAINING_FIELDS` (e.g. ``ctc_weight``) on top of ``init_from`` weights.

Large configurations: ``fsdp: true`` shards every block with FSDP2 (``fully_shard``) instead of DDP and
gathers full state dicts for checkpoints (documented path; the tests here run DDP on CPU).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.distributed as dist
from tqdm import tqdm

from reasoningcodec.configio import build, read_object

from .checkpoint import check_matches, load_checkpoint, save_checkpoint
from .config import UniAudioConfig
from .data import ExampleSource, Manifest, SyntheticAudio, TextLines
from .model import UniAudioLM
from .stages import STAGES, BucketBatcher, StageConfig, lr_at
from .start import build_model, load_tokenizer, save_weights
from .tokenizer import TextTokenizer

#: How errors name a recipe.
_WHAT = "uniaudio_lm training recipe"

CSV_FIELDS = ("step", "loss", "text_loss", "audio_loss", "lr", "tokens", "n_text", "n_audio", "cpu_s", "ctc_loss",
              "encoder_ctc_loss")
#: What a run trains: ``lm`` (the model's losses) or ``audio_encoder_ctc`` (only the audio encoder, on its
#: CTC loss; the rest of the model is frozen and not run).
OBJECTIVES = ("lm", "audio_encoder_ctc")


@dataclass
class TrainConfig:
    """A training run as data (JSON recipe)."""

    out_dir: str = "runs/uniaudio_lm"
    stage: int = 1
    preset: str = "tiny"
    codec: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None
    steps: int = 1000
    max_tokens: int = 4096
    seed: int = 0
    text_files: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    synthetic: bool = False
    lr: float | None = None
    warmup: int | None = None
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    ckpt_every: int = 500
    log_every: int = 10
    threads: int | None = None
    device: str = "auto"
    autocast_bf16: bool = False
    fsdp: bool = False
    mixture: dict[str, float] | None = None
    episode_stream: dict[str, Any] | None = None
    symbolic_episodes: dict[str, Any] | None = None
    snapshot_every: int = 0
    objective: str = "lm"
    #: parameter-name prefixes that train (empty: all but the stage's frozen ones)
    trainable: list[str] = field(default_factory=list)
    #: text tokenizer: ``None`` (the ``init_from`` folder's ``tokenizer.json`` if it has one, else the shipped
    #: one), ``"whisper-tiny.en"`` (:func:`uniaudio_lm.whisper_init.whisper_tokenizer`) or a ``tokenizer.json``
    tokenizer: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | None = None) -> "TrainConfig":
        """A recipe as a dict (``source`` names it in errors); :class:`~reasoningcodec.ConfigError` for a
        non-dict or unknown fields."""
        return build(cls, d, _WHAT, source)

    @classmethod
    def from_json(cls, path: str | Path) -> "TrainConfig":
        """The recipe in the JSON file ``path``; raises as :meth:`from_dict`, and
        :class:`~reasoningcodec.ConfigError` for a file that is not JSON or not a JSON object."""
        return cls.from_dict(*read_object(path, _WHAT))

    def stage_config(self) -> StageConfig:
        st = STAGES[self.stage]
        upd = {k: v for k, v in (("lr", self.lr), ("warmup", self.warmup), ("mixture", self.mixture))
               if v is not None}
        return dataclasses.replace(st, **upd) if upd else st


def _dist() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)


def _init_distributed(device: torch.device) -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device != "auto":
        return torch.device(cfg.device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def build_sources(cfg: TrainConfig, tok: TextTokenizer, mcfg: UniAudioConfig) -> dict[str, list[ExampleSource]]:
    """Text files (default: the shipped corpus), manifests and/or synthetic sources per kind."""
    text = TextLines(cfg.text_files or None)
    sources: dict[str, list[ExampleSource]] = {"text": [text]}
    for m in cfg.manifests:
        for kind in ("text", "audio", "translation", "understanding", "generation", "fewshot"):
            src = Manifest(m, kind, (mcfg.num_reasoning_codebooks, mcfg.num_recon_codebooks))
            if len(src):
                sources.setdefault(kind, []).append(src)
    if cfg.synthetic:
        for kind in ("audio", "translation", "understanding", "generation", "fewshot"):
            sources.setdefault(kind, []).append(SyntheticAudio(mcfg.audio_vocab, kind, text=text))
    if cfg.episode_stream is not None:
        sources["fewshot"] = _with_episode_stream(cfg, sources.get("fewshot", []), mcfg)
    if cfg.symbolic_episodes is not None:
        from .episode_stream import SymbolicEpisodes

        opts = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.symbolic_episodes.items()}
        sources.setdefault("fewshot", []).append(SymbolicEpisodes(
            (mcfg.num_reasoning_codebooks, mcfg.num_recon_codebooks),
            (mcfg.reasoning_codebook_size, mcfg.recon_codebook_size), **opts))
    return sources


def _with_episode_stream(cfg: TrainConfig, fewshot: list[ExampleSource], mcfg: UniAudioConfig
                         ) -> list[ExampleSource]:
    from .episode_stream import EpisodeStream

    opts = dict(cfg.episode_stream or {})
    replace = bool(opts.pop("replace", False))
    manifest = opts.pop("manifest", cfg.manifests[0] if cfg.manifests else None)
    if manifest is None:
        raise ValueError("episode_stream needs a manifest (its 'manifest' key, or the recipe's first manifest)")
    for k in ("clips", "ways"):
        if k in opts:
            opts[k] = tuple(opts[k])
    stream = EpisodeStream(manifest, (mcfg.num_reasoning_codebooks, mcfg.num_recon_codebooks), **opts)
    kept = [s for s in fewshot if not (replace and isinstance(s, Manifest))]
    return kept + [stream]


def _set_trainable(model: UniAudioLM, cfg: TrainConfig, stage: StageConfig) -> bool:
    """Freeze the stage's frozen parameters (and, for the ``audio_encoder_ctc`` objective, everything but the
    audio encoder; with ``trainable``, everything those prefixes do not name); returns whether the run
    trains the encoder alone."""
    encoder_only = cfg.objective == "audio_encoder_ctc"
    if encoder_only and model.audio_encoder is None:
        raise ValueError('objective "audio_encoder_ctc" needs a model with audio_encoder_layers > 0')
    names = [n for n, _ in model.named_parameters()]
    unknown = [t for t in cfg.trainable if not any(n.startswith(t) for n in names)]
    if unknown:
        raise ValueError(f"trainable names no parameter of this model: {', '.join(unknown)}")
    for name, p in model.named_parameters():
        p.requires_grad_(not any(name.startswith(f) for f in stage.freeze)
                         and (not encoder_only or name.startswith("audio_encoder."))
                         and (not cfg.trainable or any(name.startswith(t) for t in cfg.trainable)))
    return encoder_only


def _wrap(model: UniAudioLM, cfg: TrainConfig, device: torch.device) -> torch.nn.Module:
    if _dist()[1] == 1:
        return model
    if cfg.fsdp:
        from torch.distributed.fsdp import fully_shard

        for block in [*model.layers, *model.depth.layers]:
            fully_shard(block)
        fully_shard(model)
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)


def _states(model: torch.nn.Module, opt: torch.optim.Optimizer, fsdp: bool) -> tuple[dict, dict]:
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        return get_state_dict(model, opt, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    inner = model.module if hasattr(model, "module") else model
    return inner.state_dict(), opt.state_dict()


def _load_states(model: torch.nn.Module, opt: torch.optim.Optimizer, ms: dict, os_: dict, fsdp: bool) -> None:
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        set_state_dict(model, opt, model_state_dict=ms, optim_state_dict=os_,
                       options=StateDictOptions(full_state_dict=True))
        return
    inner = model.module if hasattr(model, "module") else model
    inner.load_state_dict(ms)
    opt.load_state_dict(os_)


def train(cfg: TrainConfig, quiet: bool = False) -> dict[str, Any]:
    """Run (or resume) training; returns the final trainer state (``step``, ``tokens``, ...)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = _device(cfg)
    _init_distributed(device)
    rank, world = _dist()
    out = Path(cfg.out_dir)
    stage = cfg.stage_config()
    tok = load_tokenizer(cfg)
    torch.manual_seed(cfg.seed)
    if cfg.objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, not {cfg.objective!r}")
    model = build_model(cfg, tok).to(device)
    encoder_only = _set_trainable(model, cfg, stage)
    wrapped = _wrap(model, cfg, device)
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=stage.lr, betas=(0.9, 0.95))
    state: dict[str, Any] = {"step": 0, "tokens": 0, "stage": cfg.stage}
    last = out / "last"
    if (last / "trainer.json").is_file():
        ck = load_checkpoint(last, device)
        check_matches(model.state_dict(), ck.model_state, last)
        _load_states(wrapped, opt, ck.model_state, ck.optim_state, cfg.fsdp)
        state.update({k: ck.trainer_state[k] for k in ("step", "tokens", "stage", "cpu_s") if k in ck.trainer_state})
    batcher = BucketBatcher(stage, build_sources(cfg, tok, model.config), tok, model.vocab, cfg.max_tokens,
                            cfg.seed, rank)
    csv_path = out / "losses.csv"
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        _trim_csv(csv_path, state["step"])
    bar = tqdm(total=cfg.steps, initial=state["step"], disable=quiet or rank != 0, desc=f"stage {cfg.stage}")
    wrapped.train()
    cpu0 = time.process_time()
    while state["step"] < cfg.steps:
        step = state["step"]
        batch, info = batcher.batch(step)
        batch = batch.to(device)
        lr = lr_at(stage, step, cfg.steps)
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.autocast_bf16):
            res = model.encoder_forward(batch) if encoder_only else wrapped(batch)
        opt.zero_grad(set_to_none=True)
        res.loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg.grad_clip)
        opt.step()
        ctc = float(res.ctc_loss) if res.ctc_loss is not None else float("nan")
        enc_ctc = float(res.encoder_ctc_loss) if res.encoder_ctc_loss is not None else float("nan")
        stats = torch.tensor([res.loss.item(), float(res.text_loss), float(res.audio_loss), info.num_tokens,
                              res.n_text, res.n_audio, ctc, enc_ctc], dtype=torch.float64)
        if world > 1:
            dist.all_reduce(stats)
            stats[:3] /= world
            stats[6:] /= world
        state["step"] = step + 1
        state["tokens"] += int(stats[3])
        if rank == 0:
            bar.update(1)
            if state["step"] % cfg.log_every == 0 or state["step"] == cfg.steps:
                bar.set_postfix(loss=f"{stats[0]:.3f}", text=f"{stats[1]:.3f}", audio=f"{stats[2]:.3f}")
            state["cpu_s"] = state.get("cpu_s", 0.0) + time.process_time() - cpu0
            cpu0 = time.process_time()
            _append_csv(csv_path, [state["step"], *[f"{float(x):.5f}" for x in stats[:3]], f"{lr:.3e}",
                                   int(stats[3]), int(stats[4]), int(stats[5]), f"{state['cpu_s']:.1f}",
                                   *("" if math.isnan(float(x)) else f"{float(x):.5f}" for x in stats[6:])])
            if cfg.snapshot_every and state["step"] % cfg.snapshot_every == 0 and not cfg.fsdp:
                save_weights(model, tok, out / "snapshots" / f"step_{state['step']:06d}")
        if state["step"] % cfg.ckpt_every == 0 or state["step"] == cfg.steps:
            _save(wrapped, opt, model.config, cfg, state, last, rank)
    bar.close()
    if rank == 0 and not cfg.fsdp:
        save_weights(model, tok, out / "model")
    if world > 1:
        dist.barrier()
    return state


def _save(wrapped: torch.nn.Module, opt: torch.optim.Optimizer, mcfg: UniAudioConfig, cfg: TrainConfig,
          state: dict[str, Any], last: Path, rank: int) -> None:
    ms, os_ = _states(wrapped, opt, cfg.fsdp)  # collective under FSDP: every rank calls it
    if rank == 0:
        save_checkpoint(last, mcfg, ms, os_, {**state, "train_config": dataclasses.asdict(cfg)})
    if _dist()[1] > 1:
        dist.barrier()


def _trim_csv(path: Path, step: int) -> None:
    """Keep the header and the rows up to ``step`` (a resumed run rewrites what came after)."""
    if not path.is_file():
        path.write_text(",".join(CSV_FIELDS) + "\n", encoding="utf-8")
        return
    rows = path.read_text(encoding="utf-8").splitlines()
    keep = [",".join(CSV_FIELDS)] + [r for r in rows[1:] if r and int(r.split(",")[0]) <= step]
    path.write_text("\n".join(keep) + "\n", encoding="utf-8")


def _append_csv(path: Path, row: list[Any]) -> None:
    with path.open("a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow(row)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m uniaudio_lm.train", description=__doc__.split("\n")[0])
    ap.add_argument("recipe", nargs="?", help="TrainConfig JSON")
    for f in dataclasses.fields(TrainConfig):
        if f.type in ("int", "str", "float", "int | None", "float | None", "str | None"):
            typ = {"int": int, "float": float}.get(str(f.type).split(" ")[0], str)
            ap.add_argument("--" + f.name.replace("_", "-"), type=typ, default=None)
    ap.add_argument("--synthetic", action="store_true", default=None)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    cfg = TrainConfig.from_json(a.recipe) if a.recipe else TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        v = getattr(a, f.name, None)
        if v is not None:
            setattr(cfg, f.name, v)
    try:
        state = train(cfg, quiet=a.quiet)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    if _dist()[0] == 0 and not a.quiet:
        print(json.dumps({k: state[k] for k in ("step", "tokens", "stage")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
