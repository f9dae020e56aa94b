"""Speed benchmark: ReasoningCodec vs EnCodec / Mimi / XCodec architectures (not a test).

Measures per codec: parameters, encode/decode real-time factor (RTF = seconds of audio per second of
compute; >1 is faster than real time) at batch 1 (one ``--seconds`` clip) and batch 16 (16 clips of
``--seconds / 2``), median of ``--runs`` runs after one warm-up; peak memory (process RSS increase,
plus ``torch.cuda.max_memory_allocated`` on CUDA); streaming latency; for ours the streaming RTF of
80 ms chunks for 1 and 16 streams; on CUDA the throughput of many concurrent streams.

Baselines are built offline from their default ``transformers`` configs with random weights unless
the real weights are already in the local Hugging Face cache: their numbers are architecture speed
only. Each codec runs in its own child process (one at a time) so peak-memory numbers are clean.

Run (from the repository root)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/speed.py --threads 1 --codecs ours,encodec,mimi,xcodec
    .venv/bin/python benchmarks/speed.py --device cuda --codecs ours,encodec,mimi

Writes ``<out>/speed.json`` and ``<out>/speed.md`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch

CODECS = ("ours", "encodec", "mimi", "xcodec")
BATCH = 16
CHUNK_MS = 80
GPU_STREAMS = (64, 256, 1024)
# nominal algorithmic latency of the baselines (frame hop of causal models; xcodec is offline)
NOMINAL_LATENCY = {"encodec": "13.3 (1 frame, causal)", "mimi": "80 (1 frame, causal)",
                   "xcodec": "offline (non-causal)"}


@dataclass
class Adapter:
    """Uniform ``encode(wav [B, T]) -> codes`` / ``decode(codes) -> audio`` around one codec."""

    name: str
    model: torch.nn.Module
    sample_rate: int
    kbps: float
    weights: str
    encode: Callable[[torch.Tensor], Any]
    decode: Callable[[Any], torch.Tensor]
    tokens: Callable[[Any], int] = lambda codes: int(codes.numel())


def _hf(model_cls: Any, config: Any, repo: str, device: torch.device) -> tuple[Any, str]:
    """Real weights if they are in the local HF cache, else random init from ``config`` (never downloads)."""
    try:
        return model_cls.from_pretrained(repo, local_files_only=True).to(device).eval(), repo
    except Exception:  # noqa: BLE001 - any failure means "no local weights"
        return model_cls(config).to(device).eval(), "random"


# one child process per entry, so each peak-memory number is measured in a fresh process
WORKERS = {"ours": ["ours"], "encodec": ["encodec:6", "encodec:1.5"], "mimi": ["mimi"], "xcodec": ["xcodec"]}


def default_architecture() -> "rc.CodecConfig":
    """The installed default model's config (its architecture, timed with random weights), or the
    library's default config when no trained weights are installed."""
    import reasoningcodec as rc

    try:
        return rc.load().config
    except Exception:  # noqa: BLE001 - no weights installed: time the library default
        return rc.CodecConfig()


def build(spec: str, args: argparse.Namespace, device: torch.device) -> Adapter:
    name, _, arg = spec.partition(":")
    if name == "ours":
        import reasoningcodec as rc

        m = (rc.ReasoningCodec.from_pretrained(args.model, device=device) if args.model
             else rc.ReasoningCodec(default_architecture()).to(device)).eval()
        return Adapter("ours", m, m.sample_rate, m.bitrate / 1000, args.model or "random", m.encode, m.decode,
                       lambda c: int(c.reasoning.numel() + c.recon.numel()))
    import transformers as tf

    if name == "encodec":
        bw = float(arg)
        m, w = _hf(tf.EncodecModel, tf.EncodecConfig(), "facebook/encodec_24khz", device)

        def enc(x: torch.Tensor) -> tuple[torch.Tensor, Any]:
            out = m.encode(x[:, None], bandwidth=bw, return_dict=True)
            return out.audio_codes, out.audio_scales

        return Adapter(f"encodec@{bw:g}kbps", m, m.config.sampling_rate, bw, w, enc,
                       lambda c: m.decode(c[0], c[1], return_dict=False)[0], lambda c: int(c[0].numel()))
    if name == "mimi":
        m, w = _hf(tf.MimiModel, tf.MimiConfig(num_quantizers=8), "kyutai/mimi", device)
        kbps = 8 * m.config.frame_rate * (m.config.codebook_size - 1).bit_length() / 1000
        return Adapter("mimi (8 cb)", m, m.config.sampling_rate, kbps, w,
                       lambda x: m.encode(x[:, None], num_quantizers=8).audio_codes,
                       lambda c: m.decode(c).audio_values)
    m, w = _hf(tf.XcodecModel, tf.XcodecConfig(), "hf-audio/xcodec-hubert-librispeech", device)
    bw = float(m.config.target_bandwidths[-1])
    return Adapter(f"xcodec@{bw:g}kbps", m, m.config.sample_rate, bw, w,
                   lambda x: m.encode(x[:, None], bandwidth=bw, return_dict=True).audio_codes,
                   lambda c: m.decode(c, return_dict=True).audio_values)


# ----------------------------------------------------------------------------- measuring
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak(device: torch.device) -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM, what ``getrusage`` reports); False if not allowed."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def timed(fn: Callable[[], Any], runs: int, device: torch.device) -> tuple[float, float, Any]:
    """Median wall time of ``runs`` calls (the caller has warmed up), process CPU time / wall, last result."""
    times, out, cpu0 = [], None, time.process_time()
    for _ in range(runs):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), (time.process_time() - cpu0) / sum(times), out


@torch.inference_mode()
def measure_batch(ad: Adapter, batch: int, seconds: float, runs: int, device: torch.device) -> dict[str, Any]:
    wav = 0.1 * torch.randn(batch, int(seconds * ad.sample_rate), device=device)
    audio_s = batch * seconds
    sync(device)
    base_rss, base_cuda = rss_mib(), torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    exact = reset_peak(device)
    codes = ad.encode(wav)  # warm-up doubles as the memory measurement
    ad.decode(codes)
    sync(device)
    res: dict[str, Any] = {
        "batch": batch, "clip_s": seconds,
        "peak_rss_mib": max(0.0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base_rss),
        "peak_rss_exact": exact,
    }
    if device.type == "cuda":
        res["cuda_peak_mib"] = (torch.cuda.max_memory_allocated(device) - base_cuda) / 2**20
    t_enc, cpu_enc, codes = timed(lambda: ad.encode(wav), runs, device)
    t_dec, cpu_dec, _ = timed(lambda: ad.decode(codes), runs, device)
    res.update(enc_s=t_enc, dec_s=t_dec, enc_rtf=audio_s / t_enc, dec_rtf=audio_s / t_dec,
               cpu_per_wall=(cpu_enc + cpu_dec) / 2,
               tokens_per_audio_s=ad.tokens(codes) / audio_s)
    return res


@torch.inference_mode()
def measure_stream(codec: Any, streams: int, seconds: float, device: torch.device) -> dict[str, Any]:
    """Push ``CHUNK_MS`` chunks through StreamEncoder → StreamDecoder; per-chunk compute stats."""
    n = codec.sample_rate * CHUNK_MS // 1000
    n_chunks = max(3, int(seconds * 1000 // CHUNK_MS))
    x = 0.1 * torch.randn(streams, n * n_chunks, device=device)
    for warm in (True, False):
        enc, dec = codec.stream_encoder(batch_size=streams), codec.stream_decoder(streams)
        times, tokens = [], 0
        for i in range(3 if warm else n_chunks):
            sync(device)
            t0 = time.perf_counter()
            codes = enc.push(x[:, i * n:(i + 1) * n])
            dec.push(codes)
            sync(device)
            times.append(time.perf_counter() - t0)
            tokens += int(codes.reasoning.numel() + codes.recon.numel())
        enc.finish()
        dec.finish()
    total = sum(times)
    chunk_s = CHUNK_MS / 1000
    return {
        "streams": streams, "chunks": n_chunks, "chunk_ms": CHUNK_MS,
        "mean_ms": 1000 * total / len(times),
        "p95_ms": 1000 * sorted(times)[min(len(times) - 1, int(0.95 * len(times)))],
        "rtf": chunk_s * len(times) / total,  # per stream
        "audio_s_per_s": streams * chunk_s * len(times) / total, "tokens_per_s": tokens / total,
    }


@torch.inference_mode()
def gpu_offline_throughput(ad: Adapter, batch: int, seconds: float, device: torch.device) -> dict[str, Any]:
    wav = 0.1 * torch.randn(batch, int(seconds * ad.sample_rate), device=device)
    ad.decode(ad.encode(wav))
    t, _, codes = timed(lambda: ad.encode(wav), 3, device)
    t_dec, _, _ = timed(lambda: ad.decode(codes), 3, device)
    return {"streams": batch, "mode": "offline batch enc+dec", "audio_s_per_s": batch * seconds / (t + t_dec),
            "tokens_per_s": ad.tokens(codes) / (t + t_dec)}


def run_worker(spec: str, args: argparse.Namespace) -> dict[str, Any]:
    device, name = torch.device(args.device), spec.partition(":")[0]
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ad = build(spec, args, device)
    with torch.inference_mode():  # lazy one-time init (e.g. our float64 encoder copy) off the books
        ad.decode(ad.encode(0.1 * torch.randn(1, ad.sample_rate // 2, device=device)))
    row: dict[str, Any] = {
        "codec": ad.name, "weights": ad.weights, "sample_rate": ad.sample_rate, "kbps": ad.kbps,
        "params_m": sum(p.numel() for p in ad.model.parameters()) / 1e6,
        "b1": measure_batch(ad, 1, args.seconds, args.runs, device),
        f"b{BATCH}": measure_batch(ad, BATCH, args.seconds / 2, args.runs, device),
        "latency_ms": NOMINAL_LATENCY.get(name, ""),
    }
    if name == "ours":
        row["latency_ms"] = f"{ad.model.latency_ms:g} (algorithmic)"
        row["stream"] = [measure_stream(ad.model, b, args.seconds, device) for b in (1, BATCH)]
    if device.type == "cuda":
        row["gpu"] = []
        for b in GPU_STREAMS:
            try:
                row["gpu"].append(measure_stream(ad.model, b, 2.0, device) if name == "ours"
                                  else gpu_offline_throughput(ad, b, 5.0, device))
            except RuntimeError as e:  # CUDA OOM, or a kernel's size limit at huge batches
                torch.cuda.empty_cache()
                row["gpu"].append({"streams": b, "mode": "streaming" if name == "ours" else "offline batch",
                                  "error": f"{type(e).__name__}: {e}".splitlines()[0][:80]})
    return row


# ----------------------------------------------------------------------------- report
def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        tf_version = importlib.metadata.version("transformers")
    except importlib.metadata.PackageNotFoundError:
        tf_version = "not installed"
    if args.threads:
        torch.set_num_threads(args.threads)
    info = {
        "cpu": cpu, "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "transformers": tf_version,
        "python": platform.python_version(), "device": args.device,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "loadavg_start": os.getloadavg(),
    }
    if args.device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def fmt(x: Any, nd: int = 1) -> str:
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def markdown(info: dict[str, Any], rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"# Codec speed ({info['date']})", "",
        f"- machine: {info['cpu']}, {info['cores']} cores ({info['cores_usable']} usable), "
        f"{info['threads']} torch threads, device `{info['device']}`" + (f" ({info['gpu']})" if "gpu" in info else ""),
        f"- torch {info['torch']}, transformers {info['transformers']}, python {info['python']}",
        (f"- load average at start / end: {', '.join(f'{v:.2f}' for v in info['loadavg_start'])} / "
         f"{', '.join(f'{v:.2f}' for v in info['loadavg_end'])}"),
        ("- RTF = seconds of audio per second of compute (>1 is faster than real time); median of "
         f"{args.runs} runs after a warm-up. b1 = 1 × {args.seconds:g} s, b{BATCH} = {BATCH} × {args.seconds / 2:g} s."),
        ("- **Baselines with weights `random` are untrained architectures (no real weights present): "
         "speed only, no quality claim.** Ours uses random init unless `--model` is given."),
        "- peak mem = process peak RSS increase over encode+decode (b1 / b16)"
        + (", CUDA = max_memory_allocated increase." if args.device == "cuda" else "."),
        "- cpu/wall = process CPU seconds per wall second in the timed runs (≈ threads when the CPU is free; "
        "lower means the process was starved by other load).", "",
        (f"| codec | weights | params (M) | kbps | tok/s audio | enc RTF b1 | dec RTF b1 | enc RTF b{BATCH} "
         f"| dec RTF b{BATCH} | peak mem MiB b1 / b{BATCH} | latency ms | cpu/wall |"),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['codec']} | skipped: {r['error']} |" + " |" * 10)
            continue
        b1, bb = r["b1"], r[f"b{BATCH}"]
        mem = f"{b1['peak_rss_mib']:.0f} / {bb['peak_rss_mib']:.0f}"
        if "cuda_peak_mib" in b1:
            mem += f" (CUDA {b1['cuda_peak_mib']:.0f} / {bb['cuda_peak_mib']:.0f})"
        lines.append(f"| {r['codec']} | {r['weights']} | {r['params_m']:.1f} | {r['kbps']:.2f} | "
                     f"{bb['tokens_per_audio_s']:.0f} | {b1['enc_rtf']:.1f} | {b1['dec_rtf']:.1f} | "
                     f"{bb['enc_rtf']:.1f} | {bb['dec_rtf']:.1f} | {mem} | {r['latency_ms']} | "
                     f"{(b1['cpu_per_wall'] + bb['cpu_per_wall']) / 2:.2f} |")
    streams = [(r["codec"], s) for r in rows for s in r.get("stream", [])]
    if streams:
        lines += ["", f"Streaming ({CHUNK_MS} ms chunks, StreamEncoder.push + StreamDecoder.push per chunk):", "",
                  "| codec | streams | chunks | compute/chunk mean ms | p95 ms | RTF per stream | audio s/s | tokens/s |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {c} | {s['streams']} | {s['chunks']} | {s['mean_ms']:.1f} | {s['p95_ms']:.1f} | "
                  f"{s['rtf']:.1f} | {s['audio_s_per_s']:.1f} | {s['tokens_per_s']:.0f} |" for c, s in streams]
    gpu = [(r["codec"], g) for r in rows for g in r.get("gpu", [])]
    if gpu:
        lines += ["", "GPU throughput (ours: concurrent 80 ms streams; baselines: offline batches of 5 s):", "",
                  "| codec | streams | mode | audio s/s | tokens/s |", "|---|---:|---|---:|---:|"]
        lines += [f"| {c} | {g['streams']} | {g.get('mode', 'streaming')} | "
                  + (f"{g['error']} | |" if "error" in g else f"{g['audio_s_per_s']:.0f} | {g['tokens_per_s']:.0f} |")
                  for c, g in gpu]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's default)")
    p.add_argument("--codecs", default="ours,encodec", help=f"comma list of {','.join(CODECS)}")
    p.add_argument("--seconds", type=float, default=10.0, help="batch-1 clip length; batch-16 clips are half")
    p.add_argument("--runs", type=int, default=3, help="timed runs per measurement (median)")
    p.add_argument("--model", default=None, help="trained ReasoningCodec directory (default: random init of the installed "
                   "default model's architecture)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"), help="output directory")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:  # child process: one codec, JSON on the last stdout line
        try:
            row = run_worker(args.worker, args)
        except Exception as e:  # noqa: BLE001 - reported as a skipped row
            row = {"codec": args.worker, "error": f"{type(e).__name__}: {e}".splitlines()[0][:200]}
        print(json.dumps(row), flush=True)
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda given but CUDA is not available")
    names = [c.strip() for c in args.codecs.split(",") if c.strip()]
    if any(c not in CODECS for c in names):
        sys.exit(f"unknown codec in {names}; choose from {', '.join(CODECS)}")
    info = machine_info(args)
    rows: list[dict[str, Any]] = []
    for spec in (w for n in names for w in WORKERS[n]):
        print(f"running {spec} ...", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--worker", spec],
                              stdout=subprocess.PIPE, text=True, check=False)
        try:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        except (IndexError, json.JSONDecodeError):
            rows.append({"codec": spec, "error": f"worker exited with code {proc.returncode}"})
    info["loadavg_end"] = os.getloadavg()
    md = markdown(info, rows, args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.json").write_text(json.dumps({"machine": info, "args": vars(args), "results": rows}, indent=2))
    (out / "speed.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
