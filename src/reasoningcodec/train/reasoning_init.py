"""Start the reasoning branch from Whisper tiny.en: front-end weights, a whitened projection and a
residual VQ fitted to its window features.

Training the window transformer from scratch on this CPU did not make the 5 Hz tokens informative
(digit probe 18%), and distilling Whisper into it learns slowly. A Whisper-style front-end initialised
from Whisper tiny.en's convolutions and first two layers, window-causal, is informative at once
(probe ~92% on its unquantised window features), but the residual VQ then loses most of it: its
first stage takes 96% of the feature variance, which is not where the digit identity lives. This
command therefore

1. copies Whisper's weights into the front-end (:func:`whisper_teacher.init_from_whisper`);
2. sets the projection to ``reasoning_dim`` to the PCA whitening of the top ``top`` principal
   components of the window features on training crops (the other outputs are zero), so every kept
   direction has unit variance;
3. fits the residual VQ stage by stage to those features: each stage's input projection is the top
   ``codebook_dim`` principal directions of the residual, its codebook a spherical k-means of the
   normalised projections, its output projection the least-squares map back to the residual.

It reads a resumable checkpoint (the current codec) and writes one with the new reasoning branch and
everything else unchanged; the reconstruction encoder's FiLM must then be re-fitted to the new
reasoning features (``recipes/codec_v1_film.json``) so the decoder stays valid.

    python -m reasoningcodec.train.reasoning_init checkpoints/codec_v1 runs/reasoning_init --corpus data/corpus
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import CodecConfig
from ..model import ReasoningCodec
from ..quantize import ResidualVQ
from . import checkpoint as ckpt
from .dataset import ClipStore, Sampler, crop_batch, read_manifest
from .whisper_teacher import init_from_whisper


@torch.no_grad()
def window_features(codec: ReasoningCodec, corpus: Path, windows: int, source_weights: dict[str, float],
                    seed: int = 0) -> torch.Tensor:
    """Front-end window features before the projection ``[≥ windows, whisper_dim]`` on training crops."""
    enc = codec.reasoning_encoder
    proj, enc.proj = enc.proj, torch.nn.Identity()
    try:
        store = ClipStore(codec.sample_rate)
        sampler = Sampler(read_manifest(corpus, "train"), source_weights, seed)
        rng = np.random.default_rng(seed)
        per = 16
        seg = per * codec.config.reasoning_hop
        out, n = [], 0
        while n < windows:
            f = codec.reasoning_features(crop_batch(store, sampler, 16, seg, rng, noise_prob=0.0))
            out.append(f.reshape(-1, f.shape[-1]))
            n += out[-1].shape[0]
        return torch.cat(out)
    finally:
        enc.proj = proj


@torch.no_grad()
def set_whitening(proj: torch.nn.Linear, x: torch.Tensor, top: int) -> torch.Tensor:
    """Make ``proj`` the whitening of the top ``top`` principal components of ``x``; returns ``proj(x)``."""
    mu = x.mean(0)
    _, s, v = torch.linalg.svd(x - mu, full_matrices=False)
    top = min(top, proj.out_features, v.shape[0])
    w = torch.zeros(proj.out_features, x.shape[1])
    w[:top] = v[:top] / (s[:top, None] / (len(x) - 1) ** 0.5 + 1e-6)
    proj.weight.copy_(w)
    proj.bias.copy_(-(w @ mu))
    return proj(x)


@torch.no_grad()
def fit_residual_vq(vq: ResidualVQ, x: torch.Tensor, iters: int = 12, seed: int = 0) -> list[float]:
    """Fit every stage of a :class:`reasoningcodec.quantize.ResidualVQ` to ``x [N, D]`` in turn.
    Returns the residual variance (summed over dimensions) after each stage."""
    g = torch.Generator().manual_seed(seed)
    r = x.clone()
    left = []
    for i, book in enumerate(vq.codebooks()):
        k, d = book.shape
        mu = r.mean(0)
        _, _, v = torch.linalg.svd(r - mu, full_matrices=False)
        wp = v[:d]
        z = F.normalize((r - mu) @ wp.T, dim=-1)
        c = _spherical_kmeans(z, k, iters, g)
        cq = c[(z @ c.T).argmax(1)]
        design = torch.cat([cq, torch.ones(len(cq), 1)], 1)
        sol = torch.linalg.lstsq(design, r).solution  # [d + 1, D]
        vq.set_stage(i, in_proj=(wp, -(wp @ mu)), codebook=c, out_proj=(sol[:d].T, sol[d]))
        r = r - design @ sol
        left.append(float(r.var(0).sum()))
    return left


def _spherical_kmeans(z: torch.Tensor, k: int, iters: int, g: torch.Generator) -> torch.Tensor:
    """``k`` unit-norm centres ``[k, d]`` of the unit vectors ``z [N, d]`` (empty clusters restart on a
    random point)."""
    c = z[torch.randperm(len(z), generator=g)[:k]].clone()
    if len(c) < k:
        raise ValueError(f"need at least {k} feature vectors to fit a {k}-code stage, got {len(z)}")
    for _ in range(iters):
        a = (z @ c.T).argmax(1)
        sums = torch.zeros_like(c).index_add_(0, a, z)
        empty = torch.bincount(a, minlength=k) == 0
        fresh = z[torch.randint(len(z), (k,), generator=g)]
        c = F.normalize(torch.where(empty[:, None], fresh, sums), dim=-1)
    return c


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("init", type=Path, help="resumable checkpoint folder (modules.safetensors + state.json)")
    p.add_argument("out", type=Path, help="folder for the new resumable checkpoint")
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--recipe", type=Path, default=Path("recipes/codec_v1.json"), help="for its source weights")
    p.add_argument("--windows", type=int, default=30720)
    p.add_argument("--top", type=int, default=64, help="principal components kept by the projection")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t0 = time.time()
    state = json.loads((a.init / "state.json").read_text())
    old = state.get("config", {}).get("codec", {})
    new_codec_cfg = {**old, "reasoning_frontend": "whisper"}
    codec = ReasoningCodec(CodecConfig.from_dict({**CodecConfig().to_dict(), **new_codec_cfg})).eval()
    with ckpt.module_file(a.init) as w:
        ckpt.load_modules(w, {"codec": codec}, partial=("codec",))
    print(f"front-end: {init_from_whisper(codec.reasoning_encoder)} tensors from Whisper tiny.en")
    weights = json.loads(a.recipe.read_text()).get("source_weights", {"*": 1.0})
    x = window_features(codec, a.corpus, a.windows, weights, a.seed)
    y = set_whitening(codec.reasoning_encoder.proj, x, a.top)
    left = fit_residual_vq(codec.reasoning_vq, y, seed=a.seed)
    total = float(y.var(0).sum())
    print(f"{len(x)} windows; residual variance after each VQ stage (of {total:.1f}): "
          + ", ".join(f"{v:.1f}" for v in left))
    # everything else of the checkpoint is carried over unchanged
    from safetensors.torch import load_file, save_file

    a.out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v for k, v in load_file(str(a.init / "modules.safetensors")).items() if not k.startswith("codec.")}
    tensors.update({f"codec.{k}": v.detach().contiguous() for k, v in codec.state_dict().items()})
    save_file(tensors, str(a.out / "modules.safetensors"))
    state.pop("codec_from", None)  # the new file holds the codec itself
    state["config"] = {**state.get("config", {}), "codec": new_codec_cfg}
    state["reasoning_init"] = {"from": str(a.init), "windows": len(x), "top": a.top, "seed": a.seed,
                               "residual_variance": left, "feature_variance": total}
    ckpt.save_json(a.out / "state.json", state)
    print(f"wrote {a.out} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
