import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda,
                                              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")])]


@pytest.fixture(scope="session")
def codec_cpu():
    from reasoningcodec import ReasoningCodec

    torch.manual_seed(0)
    return ReasoningCodec().eval()


@pytest.fixture(scope="session")
def codec_whisper_cpu():
    """A random codec with the Whisper-style reasoning front-end (the shipped model's)."""
    from reasoningcodec import CodecConfig, ReasoningCodec

    torch.manual_seed(0)
    return ReasoningCodec(CodecConfig(reasoning_frontend="whisper")).eval()


@pytest.fixture(scope="session")
def codec_decr_cpu():
    """A random codec whose decoder also reads the reasoning tokens (``decoder_reasoning``), with a
    decoder FiLM that is not the identity it starts as."""
    from reasoningcodec import CodecConfig, ReasoningCodec

    torch.manual_seed(0)
    c = ReasoningCodec(CodecConfig(reasoning_frontend="whisper", decoder_reasoning=True)).eval()
    with torch.no_grad():
        torch.nn.init.normal_(c.dec_film.proj.weight, std=0.05)
    return c


def _device_frontend_params():
    out = []
    for d in DEVICES:
        name, marks = (d.values[0], d.marks) if hasattr(d, "values") else (d, ())
        for f in ("window", "whisper", "whisper-decr"):
            out.append(pytest.param((name, f), marks=marks, id=f"{name}-{f}"))
    return out


@pytest.fixture(params=_device_frontend_params())
def codec(request, codec_cpu, codec_whisper_cpu, codec_decr_cpu):
    device, frontend = request.param
    base = {"window": codec_cpu, "whisper": codec_whisper_cpu, "whisper-decr": codec_decr_cpu}[frontend]
    if device == "cpu":
        return base
    import copy

    return copy.deepcopy(base).to("cuda")


def signal(n: int, seed: int = 0, batch: int = 1) -> torch.Tensor:
    """A deterministic test signal: a few tones plus noise, ``[batch, n]``."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 24000.0
    out = []
    for b in range(batch):
        f = 100 + 300 * torch.rand(3, generator=g)
        x = sum(0.2 * torch.sin(2 * torch.pi * fi * t * (1 + 0.1 * b)) for fi in f)
        out.append(x + 0.05 * torch.randn(n, generator=g))
    return torch.stack(out)
