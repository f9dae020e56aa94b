"""Feature loss from a frozen network: the codec's Whisper-style reasoning front-end (started from Whisper
tiny.en's first two layers and kept frozen in the joint recipes) hears the decoded and the input audio;
the decoded audio's 50 Hz states must match the input's (L1, relative to the input states' mean
magnitude). Aimed at intelligibility: those layers were trained to recognise speech."""

from __future__ import annotations

import torch

from ..model import ReasoningCodec


def whisper_feature_loss(codec: ReasoningCodec, y_hat: torch.Tensor, wav: torch.Tensor) -> torch.Tensor:
    """``y_hat``, ``wav`` ``[B, T]`` (``y_hat`` may run longer) → scalar loss; gradients reach ``y_hat`` only."""
    enc = codec.reasoning_encoder
    if codec.whisper_mel is None or not hasattr(enc, "hidden_states"):
        raise ValueError("the Whisper feature loss needs the whisper reasoning front-end "
                         "(codec config reasoning_frontend='whisper')")
    with torch.no_grad():
        target = enc.hidden_states(codec.whisper_mel(wav)[0])
    got = enc.hidden_states(codec.whisper_mel(y_hat[:, : wav.shape[1]])[0])
    return (got.float() - target.float()).abs().mean() / target.float().abs().mean().clamp(min=1e-6)
