"""GPU throughput of the shipped codec's architecture (its config.json with random weights: speed does
not depend on them; the plain default config if the package has no model installed).

Prints encode/decode real-time factors for a batch of 64 × 10 s clips, tokens per second, and the
per-step time of 64 concurrent 80 ms streams.
"""

import json
import time

import torch

from reasoningcodec import CodecConfig, ReasoningCodec
from reasoningcodec.hub import DEFAULT_DIR


def timed(f, n=3):
    f()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        out = f()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / n, out


def main() -> None:
    torch.manual_seed(0)
    cfg_file = DEFAULT_DIR / "config.json"
    cfg = CodecConfig.from_dict(json.loads(cfg_file.read_text())) if cfg_file.exists() else CodecConfig()
    c = ReasoningCodec(cfg).cuda().eval()
    print(torch.cuda.get_device_name(), "torch", torch.__version__, "config:", cfg.model_id or "default",
          f"({sum(p.numel() for p in c.parameters()) / 1e6:.1f} M parameters)")
    for b in (1, 64):
        x = torch.randn(b, 240000, device="cuda") * 0.1
        te, codes = timed(lambda: c.encode(x))
        td, _ = timed(lambda: c.decode(codes))
        toks = codes.reasoning.numel() + codes.recon.numel()
        print(f"batch {b:3d} x 10 s: encode {b * 10 / te:8.1f}x real time, decode {b * 10 / td:8.1f}x, "
              f"{toks / te:,.0f} tokens/s encoded, peak mem {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    for b in (1, 64):
        enc, dec = c.stream_encoder(b), c.stream_decoder(b)
        chunk = torch.randn(b, 1920, device="cuda") * 0.1
        for _ in range(5):
            dec.push(enc.push(chunk))
        torch.cuda.synchronize()
        t = time.perf_counter()
        n = 50
        for _ in range(n):
            dec.push(enc.push(chunk))
        torch.cuda.synchronize()
        dt = (time.perf_counter() - t) / n
        print(f"streaming {b:3d} streams, 80 ms chunks: {1000 * dt:.2f} ms per chunk step "
              f"({b * 0.08 / dt:.0f} stream-seconds per second)")


if __name__ == "__main__":
    main()
