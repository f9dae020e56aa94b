"""The shipped codec on CUDA (device runs; a dry run on CPU where there is none): batch == single,
streaming == offline, and CUDA tokens vs CPU tokens, on real speech, with trained weights.

``python scripts/gpu_check_model.py MODULES.safetensors CONFIG.json AUDIO`` — the weights are the
``codec.*`` tensors of a resumable checkpoint (what ``train.pack --init`` packs), so the shipped model
need not travel twice.
"""

import json
import sys
import time

import soundfile as sf
import torch
from safetensors.torch import load_file

from reasoningcodec import CodecConfig, ReasoningCodec
from reasoningcodec.model import Codes


DEV = "cuda" if torch.cuda.is_available() else "cpu"  # cpu: a dry run of this script


def sync() -> None:
    if DEV == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    modules, config, audio = sys.argv[1:4]
    cfg = CodecConfig.from_dict(json.loads(open(config).read()))
    state = {k[len("codec."):]: v.float() for k, v in load_file(modules).items() if k.startswith("codec.")}
    cpu = ReasoningCodec(cfg).eval()
    cpu.load_state_dict(state)
    gpu = ReasoningCodec(cfg).eval()
    gpu.load_state_dict(state)
    gpu = gpu.to(DEV)
    x, sr = sf.read(audio, dtype="float32", always_2d=True)
    x = torch.from_numpy(x.mean(1))[None]
    if sr != cfg.sample_rate:
        import soxr

        x = torch.from_numpy(soxr.resample(x[0].numpy(), sr, cfg.sample_rate))[None]
    n = x.shape[1]
    with torch.inference_mode():
        xs = torch.zeros(3, n)
        xs[0], xs[2] = x[0], x[0].flip(0)
        xs[1, : n // 2] = x[0, n // 4: n // 4 + n // 2]
        lengths = torch.tensor([n, n // 2, n])
        batch = gpu.encode(xs.to(DEV), lengths=lengths.to(DEV))
        same = all(torch.equal(gpu.encode(xs[i:i + 1, : int(lengths[i])].to(DEV)).recon,
                               batch.recon[i:i + 1, :, : -(-int(lengths[i]) // cfg.recon_hop)]) for i in range(3))
        print(f"batch == single on {DEV} (3 items, trained weights): {same}")
        off = gpu.encode(x.to(DEV))
        enc = gpu.stream_encoder()
        pieces = [enc.push(x[:, i:i + 1920].to(DEV)) for i in range(0, n, 1920)] + [enc.finish()]
        r = torch.cat([p.reasoning for p in pieces], -1)
        q = torch.cat([p.recon for p in pieces], -1)
        print(f"streaming == offline tokens on {DEV}: reasoning {torch.equal(r, off.reasoning)}, "
              f"recon {torch.equal(q, off.recon)}")
        y_off = gpu.decode(off)
        dec = gpu.stream_decoder()
        outs, w = [], 0
        for t in range(0, off.recon.shape[-1], 2):
            w_end = min(off.reasoning.shape[-1], -(-(t + 2) * cfg.recon_hop // cfg.reasoning_hop))
            outs.append(dec.push(Codes(off.reasoning[..., w:w_end], off.recon[..., t:t + 2], off.lengths)))
            w = w_end
        outs.append(dec.finish())
        y = torch.cat(outs, -1)
        print(f"streaming decode vs offline on {DEV}: max |diff| {float((y - y_off).abs().max()):.2e}")
        c_cpu = cpu.encode(x)
        for name in ("reasoning", "recon"):
            a, b = getattr(c_cpu, name), getattr(off, name).cpu()
            print(f"{DEV} vs CPU {name} tokens: {100 * float((a == b).float().mean()):.2f}% equal")
        y_cpu = cpu.decode(off.cpu())
        print(f"{DEV} vs CPU decode of the same tokens: max |diff| {float((y_cpu - y_off.cpu()).abs().max()):.2e}")
        sync()
        t0 = time.perf_counter()
        for _ in range(3):
            gpu.decode(gpu.encode(x.to(DEV)))
        sync()
        print(f"trained model, {n / cfg.sample_rate:.1f} s, encode+decode batch 1: "
              f"{3 * n / cfg.sample_rate / (time.perf_counter() - t0):.0f}x real time")


if __name__ == "__main__":
    main()
