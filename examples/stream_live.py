"""Stream audio through the codec chunk by chunk, as from a live source, and report latency.

The file is cut into ``--chunk-ms`` pieces pushed one at a time through ``stream_encoder`` →
``stream_decoder`` (B = ``--streams`` copies at once). For each piece it measures the compute time;
latency = algorithmic latency (the codec's frame + iSTFT overlap) + buffering of the chunk + compute.

    python examples/stream_live.py examples/data/speech_sample.flac [--chunk-ms 20] [--streams 4] [--out out.wav]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import reasoningcodec as rc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input")
    p.add_argument("--model")
    p.add_argument("--chunk-ms", type=float, default=20.0)
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", help="write the decoded audio of stream 0 here")
    a = p.parse_args()
    codec = (rc.ReasoningCodec.from_pretrained(a.model, a.device) if a.model else rc.load(a.device))
    x, sr = rc.audio.load(a.input)
    x = rc.audio.resample(x.mean(axis=0), sr, codec.sample_rate)
    wav = torch.from_numpy(x).to(a.device).expand(a.streams, -1).contiguous()
    n = max(1, int(a.chunk_ms / 1000 * codec.sample_rate))
    enc, dec = codec.stream_encoder(a.streams), codec.stream_decoder(a.streams)
    outs, times = [], []
    for i in range(0, wav.shape[1], n):
        t = time.perf_counter()
        outs.append(dec.push(enc.push(wav[:, i:i + n])))
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    outs += [dec.push(enc.finish()), dec.finish()]
    y = torch.cat(outs, dim=-1)
    ms = np.array(times) * 1000
    print(f"{len(times)} chunks of {a.chunk_ms:g} ms × {a.streams} stream(s) on {a.device}")
    print(f"compute per chunk: mean {ms.mean():.2f} ms, p95 {np.percentile(ms, 95):.2f} ms, max {ms.max():.2f} ms")
    print(f"real-time factor: {a.chunk_ms / ms.mean():.1f}× (per chunk of audio for all streams)")
    print(f"latency: algorithmic {codec.latency_ms:.0f} ms + chunk buffering {a.chunk_ms:g} ms "
          f"+ compute p95 {np.percentile(ms, 95):.1f} ms = {codec.latency_ms + a.chunk_ms + np.percentile(ms, 95):.0f} ms")
    offline = codec.decode(codec.encode(wav[:1]))
    print(f"streamed vs offline max abs diff: {float((y[:1] - offline).abs().max()):.2e}")
    if a.out:
        rc.audio.save(a.out, y[0], codec.sample_rate)


if __name__ == "__main__":
    main()
