"""Speed of the uniaudio_lm language model (not a test).

For each preset (default ``tiny`` and ``small``, audio vocabulary of the default ``CodecConfig``):
parameters; training throughput (valid positions per second of forward + backward + AdamW step on
length-bucketed synthetic stage-4 batches of ``--train-tokens`` positions, median of ``--steps`` steps
after one warm-up); and audio generation speed (frames per second with the KV cache and the depth
transformer, temperature 0.9 / top-k 50, for 1 and ``--gen-batch`` streams). Runs on the CPU and, when
present, on CUDA (``--devices``).

Run (from the repository root)::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/lm_speed.py --threads 1
    .venv/bin/python benchmarks/lm_speed.py --devices cuda --presets small --train-tokens 16384

Writes ``<out>/lm_speed.json`` and ``<out>/lm_speed.md`` (default ``runs/lm_speed``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from reasoningcodec import CodecConfig
from uniaudio_lm import (STAGES, BucketBatcher, GenerationConfig, SamplingConfig, TaskPrompt, TextField, UniAudioConfig,
                         UniAudioLM, default_tokenizer, generate)
from uniaudio_lm.data import SyntheticAudio, TextLines


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_speed(model: UniAudioLM, device: torch.device, tokens: int, steps: int, bf16: bool) -> dict[str, Any]:
    tok, v = default_tokenizer(), model.vocab
    text = TextLines()
    stage = STAGES[4]
    sources = {"text": [text], **{k: [SyntheticAudio(v, k, 4, 20, text)] for k in stage.mixture}}
    batcher = BucketBatcher(stage, sources, tok, v, max_tokens=tokens, seed=0, pool_size=max(64, tokens // 40))
    batches = [batcher.batch(i)[0].to(device) for i in range(steps + 1)]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    times = []
    for i, b in enumerate(batches):
        _sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(b)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        _sync(device)
        if i:
            times.append((time.perf_counter() - t0, b.num_tokens))
    sec = statistics.median(t for t, _ in times)
    toks = statistics.median(n for _, n in times)
    return {"train_tokens_per_s": toks / sec, "train_step_s": sec, "train_batch_tokens": toks}


@torch.no_grad()
def gen_speed(model: UniAudioLM, frames: int, batch: int, bf16: bool) -> dict[str, Any]:
    tok = default_tokenizer()
    model.eval()
    prompt = [TaskPrompt("Read the following text aloud in a natural voice."),
              TextField("transcription", "The quick brown fox jumps over the lazy dog.")]
    cfg = GenerationConfig(max_new_positions=frames, mode="audio", audio=SamplingConfig(0.9, 50), seed=0,
                           stop_after_audio=False)
    dev = model.text_embed.weight.device
    generate(model, tok, [prompt] * batch, GenerationConfig(max_new_positions=4, mode="audio"))  # warm-up
    _sync(dev)
    t0 = time.perf_counter()
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
        outs = generate(model, tok, [prompt] * batch, cfg)
    _sync(dev)
    sec = time.perf_counter() - t0
    n = sum(len(o.frames) for o in outs)
    return {f"gen_b{batch}_frames_per_s": n / sec, f"gen_b{batch}_frames": n}


def run(preset: str, device: torch.device, args: argparse.Namespace) -> dict[str, Any]:
    tok = default_tokenizer()
    torch.manual_seed(0)
    cfg = UniAudioConfig.preset(preset, CodecConfig(), text_vocab_size=tok.vocab_size)
    model = UniAudioLM(cfg).to(device)
    bf16 = device.type == "cuda" and args.bf16
    row: dict[str, Any] = {"preset": preset, "device": str(device), "params_M": model.num_parameters() / 1e6,
                           "bf16": bf16}
    tokens = args.train_tokens if args.train_tokens else (1024 if preset == "tiny" else 2048)
    row.update(train_speed(model, device, tokens, args.steps, bf16))
    for b in sorted({1, args.gen_batch}):
        row.update(gen_speed(model, args.gen_frames, b, bf16))
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--presets", default="tiny,small")
    p.add_argument("--devices", default="cpu,cuda", help="cuda is skipped when absent")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--train-tokens", type=int, default=0, help="positions per training batch (0: per preset)")
    p.add_argument("--gen-frames", type=int, default=48)
    p.add_argument("--gen-batch", type=int, default=8)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast on CUDA")
    p.add_argument("--out", default="runs/lm_speed")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device(d) for d in args.devices.split(",") if d != "cuda" or torch.cuda.is_available()]
    rows = []
    for dev in devices:
        for preset in args.presets.split(","):
            rows.append(run(preset, dev, args))
            print(json.dumps(rows[-1]), flush=True)
    info = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    cols = ["preset", "device", "params_M", "train_tokens_per_s", "train_batch_tokens", "gen_b1_frames_per_s",
            f"gen_b{args.gen_batch}_frames_per_s"]
    md = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    for r in rows:
        md += "| " + " | ".join(f"{r.get(c, ''):.1f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in cols) + " |\n"
    print(md)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    (out / "lm_speed.json").write_text(json.dumps({"date": date, "machine": info, "args": vars(args), "results": rows},
                                                  indent=2))
    (out / "lm_speed.md").write_text(md)


if __name__ == "__main__":
    main()
