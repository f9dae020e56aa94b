"""Score equal-compute training arms: every CPU-seconds snapshot of each arm on the same held-out clips.

An *arm* is one training run directory whose trainer had ``snapshot_cpu_seconds: N``: it holds
``ARM/snap/cpu<M>/`` (a ``ReasoningCodec.from_pretrained`` folder plus ``train_state.json`` with step,
audio_seconds, train_seconds, cpu_seconds) for each multiple ``M`` of ``N`` CPU-seconds the run passed.
All arms start from one checkpoint; ``--start MODEL_DIR`` (a from_pretrained folder of that starting
model, optionally with a ``train_state.json`` or ``state.json`` for its step and hours of audio) is
scored as the CPU-0 point of every arm.

Each snapshot is encoded and decoded through the public API (``encode`` → ``decode``) on the held-out
speech clips of ``scripts/heldout_eval.py`` (same clip options, same clips, same loudness), and every
clip's PESQ-WB, STOI, log-mel distance (``benchmarks/metrics.py``) and cepstral peak prominence of the
decoded speech (``scripts/bottleneck.py``'s :func:`harmonicity`, "CPP") is kept, beside heldout_eval's
``val_mel``. The per-clip scores are cached in ``scores.json`` in the snapshot's folder, keyed by the
clip options and checked against the weights' SHA-256, so a re-run only scores new snapshots.

Against the control arm (``--control``, default ``control``), at every CPU mark both arms have, each
metric gets the paired difference of means over the clips both scored (arm − control) with a 95 %
bootstrap interval (clips resampled with replacement, 2000 resamples, fixed seed); at the last common
mark a verdict per metric: ``better`` / ``worse`` when the interval excludes 0 (in the direction that is
better for that metric: lower for mel, higher for the others), else ``same``.

    python scripts/arm_curve.py runs/arms/control runs/arms/disc4 --start runs/arms/start \\
        --json benchmarks/results/arms.json --png benchmarks/results/arms.png
    python scripts/arm_curve.py runs/arms/* --control control --speech-clips 60 --val-clips 128
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT / "scripts", ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
from benchmarks.metrics import evaluate  # noqa: E402
from bottleneck import harmonicity  # noqa: E402
from heldout_eval import add_clip_args, speech_clips  # noqa: E402

from reasoningcodec import CodecConfig, ReasoningCodec  # noqa: E402
from reasoningcodec.train.config import TrainConfig  # noqa: E402
from reasoningcodec.train.dataset import ClipStore, read_manifest  # noqa: E402
from reasoningcodec.train.losses import MultiResolutionMelLoss  # noqa: E402
from reasoningcodec.train.validation import val_batch, validate  # noqa: E402

METRICS = ("pesq_wb", "stoi", "cpp", "mel")  # per-clip metrics, compared by paired bootstrap
HIGHER_IS_BETTER = {"pesq_wb": True, "stoi": True, "cpp": True, "mel": False}
LABELS = {"pesq_wb": "PESQ-WB", "stoi": "STOI", "cpp": "CPP", "mel": "log-mel distance"}
RESAMPLES = 2000
BOOT_SEED = 0
CACHE_NAME = "scores.json"
CACHE_VERSION = 1


@dataclass
class Snapshot:
    """One point of one arm: the codec folder saved at CPU mark ``mark`` (seconds; 0 = ``--start``)."""

    arm: str
    mark: int
    path: Path
    state: dict = field(default_factory=dict)  # step, audio_seconds, train_seconds, cpu_seconds (if known)


@dataclass
class HeldOut:
    """The held-out material at one model rate: speech clips ``[T]`` (peak 0.5) and the val batch ``[N, S]``."""

    rate: int
    clip_ids: list[str]
    clips: list[np.ndarray]
    val_batch: torch.Tensor


class HeldOutSet:
    """heldout_eval's clips for the given clip options, loaded once per (sample rate, reasoning hop)."""

    def __init__(self, opts: dict) -> None:
        self.opts = opts
        self.corpus = Path(opts["corpus"])
        self._cache: dict[tuple[int, int], HeldOut] = {}

    def for_config(self, cfg: CodecConfig) -> HeldOut:
        key = (cfg.sample_rate, cfg.reasoning_hop)
        if key not in self._cache:
            self._cache[key] = self._load(cfg.sample_rate, cfg.reasoning_hop)
        return self._cache[key]

    def _load(self, rate: int, hop: int) -> HeldOut:
        o = self.opts
        val = read_manifest(self.corpus, "val")
        if not val:
            raise SystemExit(f"{self.corpus}/manifest.tsv has no val clips")
        store = ClipStore(rate)
        seg = int(round(TrainConfig().segment_seconds * rate / hop)) * hop  # as heldout_eval.score
        batch = val_batch(val, store, seg * 2, o["val_clips"], o["seed"])
        ids, clips = [], []
        for c in speech_clips(val, o["speech_clips"], o["seed"]):
            x = store.get(c)[: int(o["max_seconds"] * rate)]
            clips.append((x / (np.abs(x).max() + 1e-6) * 0.5).astype(np.float32))
            ids.append(os.path.relpath(c.path, self.corpus))
        if not clips:
            raise SystemExit(f"{self.corpus}/manifest.tsv has no val speech clips")
        return HeldOut(rate, ids, clips, batch)


def _finite(v: float) -> float | None:
    return round(float(v), 5) if v is not None and math.isfinite(v) else None


def score_model(model_dir: Path, held: HeldOutSet) -> dict:
    """Per-clip scores of one codec folder: ``{"val_mel", "clips": [id], "pesq_wb"|"stoi"|"cpp"|"mel": [v]}``
    (a value is None where the metric could not apply to that clip)."""
    codec = ReasoningCodec.from_pretrained(model_dir).eval()
    h = held.for_config(codec.config)
    mel_loss = MultiResolutionMelLoss(h.rate)
    out: dict = {"model_id": codec.config.model_id,
                 "val_mel": round(validate(codec, mel_loss, h.val_batch), 5), "clips": list(h.clip_ids)}
    per = {m: [] for m in METRICS}
    for x in tqdm(h.clips, desc=f"  {model_dir.name}", unit="clip", leave=False):
        with torch.no_grad():
            y = codec.decode(codec.encode(torch.from_numpy(x))).reshape(-1).cpu().numpy()
        s = evaluate(x, h.rate, y, h.rate, visqol_mode=None, metrics=("pesq_wb", "stoi", "mel_distance")).scores
        per["pesq_wb"].append(_finite(s["pesq_wb"].value))
        per["stoi"].append(_finite(s["stoi"].value))
        per["mel"].append(_finite(s["mel_distance"].value))
        per["cpp"].append(_finite(harmonicity(y, x, h.rate)))
    return {**out, **per}


def weights_digest(model_dir: Path) -> str:
    """SHA-256 of the folder's weights file: a cached score is only reused for the same weights."""
    h = hashlib.sha256()
    with open(model_dir / "model.safetensors", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_json_atomic(path: Path, obj: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(obj, indent=1) + "\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def cached_scores(snap: Snapshot, held: HeldOutSet, memo: dict[tuple[str, str], dict]) -> dict:
    """The snapshot's per-clip scores from its ``scores.json`` (same clip options, same weights), else
    :func:`score_model`'s, written back there. ``memo`` shares one folder's scores between arms (``--start``)."""
    key = json.dumps(held.opts, sort_keys=True)
    folder = str(snap.path.resolve())
    if (folder, key) in memo:
        return memo[(folder, key)]
    digest = weights_digest(snap.path)
    cache_path = snap.path / CACHE_NAME
    try:
        cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    except json.JSONDecodeError:
        cache = {}  # unreadable: scored again and rewritten
    if cache.get("version") != CACHE_VERSION:
        cache = {"version": CACHE_VERSION, "entries": {}}
    entry = cache["entries"].get(key)
    if entry is None or entry.get("weights_sha256") != digest:
        t = time.time()
        entry = {"options": held.opts, "weights_sha256": digest, **score_model(snap.path, held),
                 "seconds": round(time.time() - t, 1)}
        cache["entries"][key] = entry
        try:
            _write_json_atomic(cache_path, cache)
        except OSError as e:
            tqdm.write(f"{snap.path}: scores not cached ({e})")
    memo[(folder, key)] = entry
    return entry


def find_snapshots(arm_dir: Path, start: Snapshot | None) -> list[Snapshot]:
    """The arm's complete ``snap/cpu<M>`` folders (``train_state.json`` written), by CPU mark; ``start``
    first as mark 0 unless the arm has its own ``cpu0``."""
    snaps = []
    for d in (arm_dir / "snap").glob("cpu*"):
        mark = d.name[3:]
        if not (mark.isdigit() and (d / "config.json").exists() and (d / "train_state.json").exists()):
            continue  # not a snapshot, or one still being written
        snaps.append(Snapshot(arm_dir.name, int(mark), d, json.loads((d / "train_state.json").read_text())))
    snaps.sort(key=lambda s: s.mark)
    if start is not None and not (snaps and snaps[0].mark == 0):
        snaps.insert(0, Snapshot(arm_dir.name, 0, start.path, start.state))
    return snaps


def export_start(checkpoint: Path, dest: Path) -> Path:
    """A resumable training checkpoint (``modules.safetensors`` + ``state.json``, e.g. ``checkpoints/codec_v1``)
    as a from_pretrained folder ``dest`` with a ``train_state.json`` (written once, then reused)."""
    if (dest / "train_state.json").exists():
        return dest
    from reasoningcodec import CodecConfig, ReasoningCodec
    from reasoningcodec.train import checkpoint as ckpt

    st = json.loads((checkpoint / "state.json").read_text())
    cfg = CodecConfig.from_dict({**CodecConfig().to_dict(), **st.get("config", {}).get("codec", {})})
    codec = ReasoningCodec(cfg)
    with ckpt.module_file(checkpoint) as weights:
        ckpt.load_modules(weights, {"codec": codec})
    cfg.model_id = f"{checkpoint.name}-s{st['step']}"
    codec.save_pretrained(dest)
    counters = {k: st[k] for k in ("step", "audio_seconds", "train_seconds") if k in st}
    (dest / "train_state.json").write_text(json.dumps({**counters, "cpu_seconds": 0.0}) + "\n")
    return dest


def start_snapshot(path: Path | None) -> Snapshot | None:
    """``--start`` as a CPU-0 snapshot; its step and hours come from a ``train_state.json`` or
    ``state.json`` beside the weights when there is one."""
    if path is None:
        return None
    if not (path / "config.json").exists() and (path / "modules.safetensors").exists():
        path = export_start(path, Path("runs/arms") / f"start_{path.name}")
    if not (path / "config.json").exists():
        raise SystemExit(f"--start {path}: expected a ReasoningCodec.from_pretrained folder (config.json, "
                         "model.safetensors)")
    state = {}
    for name in ("train_state.json", "state.json"):
        if (path / name).exists():
            state = json.loads((path / name).read_text())
            break
    return Snapshot("start", 0, path, {**state, "cpu_seconds": 0.0})  # the start is the arms' CPU 0


def paired_bootstrap(arm: dict, control: dict, metric: str) -> dict:
    """Mean of ``arm − control`` over the clips both scored, with a 95 % percentile bootstrap interval."""
    a = {c: v for c, v in zip(arm["clips"], arm[metric]) if v is not None}
    b = {c: v for c, v in zip(control["clips"], control[metric]) if v is not None}
    common = [c for c in a if c in b]
    if not common:
        return {"diff": None, "lo": None, "hi": None, "clips": 0}
    d = np.array([a[c] - b[c] for c in common], dtype=np.float64)
    idx = np.random.default_rng(BOOT_SEED).integers(0, len(d), size=(RESAMPLES, len(d)))
    lo, hi = np.percentile(d[idx].mean(axis=1), [2.5, 97.5])
    return {"diff": round(float(d.mean()), 5), "lo": round(float(lo), 5), "hi": round(float(hi), 5),
            "clips": len(common)}


def verdict(cmp: dict, metric: str) -> str | None:
    """``better`` / ``worse`` when the interval excludes 0, else ``same`` (None without common clips)."""
    if cmp["diff"] is None:
        return None
    if cmp["lo"] > 0 or cmp["hi"] < 0:
        return "better" if (cmp["lo"] > 0) == HIGHER_IS_BETTER[metric] else "worse"
    return "same"


def _mean(vs: list[float | None]) -> float | None:
    ok = [v for v in vs if v is not None]
    return round(float(np.mean(ok)), 4) if ok else None


def point_row(snap: Snapshot, sc: dict) -> dict:
    """One arm at one CPU mark: where it was (step, hours of audio) and its mean scores."""
    st = snap.state
    audio = st.get("audio_seconds")
    return {"arm": snap.arm, "cpu_mark_s": snap.mark, "cpu_hours": round(snap.mark / 3600, 4),
            "cpu_seconds": round(float(st["cpu_seconds"]), 1) if "cpu_seconds" in st else None,
            "step": st.get("step"), "audio_h": round(audio / 3600, 2) if audio is not None else None,
            "model": str(snap.path), "model_id": sc.get("model_id"),
            "clips": sum(v is not None for v in sc["pesq_wb"]),
            **{m: _mean(sc[m]) for m in METRICS}, "val_mel": sc["val_mel"]}


def build_rows(snaps: dict[str, list[Snapshot]], scores: dict[tuple[str, int], dict], control: str) -> list[dict]:
    """:func:`point_row` for every snapshot; an arm's rows at marks the control also has get ``vs_control``
    (per metric: diff, lo, hi, clips; ``val_mel``: diff only), and its last common mark above 0 a
    ``verdict`` per metric (every other row: ``verdict`` None)."""
    rows = []
    for arm, arm_snaps in snaps.items():
        ctrl = {s.mark: scores[(control, s.mark)] for s in snaps[control]} if arm != control else {}
        common = [s.mark for s in arm_snaps if s.mark in ctrl and s.mark > 0]
        for s in arm_snaps:
            sc = scores[(arm, s.mark)]
            row = point_row(s, sc)
            row["vs_control"], row["verdict"] = None, None
            if s.mark in ctrl:
                c = ctrl[s.mark]
                row["vs_control"] = {m: paired_bootstrap(sc, c, m) for m in METRICS}
                row["vs_control"]["val_mel"] = {"diff": round(sc["val_mel"] - c["val_mel"], 5)}
                if common and s.mark == common[-1]:
                    row["verdict"] = {m: verdict(row["vs_control"][m], m) for m in METRICS}
            rows.append(row)
    return rows


def _fmt(v: float | int | None, spec: str) -> str:
    width = spec.lstrip("<>+").split(".")[0].rstrip(",d")
    return format(v, spec) if v is not None else format("—", f">{width}")


def print_table(rows: list[dict], control: str) -> None:
    """The scores of every point, then each arm minus the control with its 95 % interval, then the verdicts."""
    print(f"{'arm':<16} {'CPU-h':>7} {'step':>8} {'audio h':>8} {'PESQ-WB':>8} {'STOI':>7} {'CPP':>7} "
          f"{'mel':>7} {'val_mel':>8}")
    for r in rows:
        print(f"{r['arm']:<16} {r['cpu_hours']:>7.3f} {_fmt(r['step'], '>8d')} {_fmt(r['audio_h'], '>8.1f')} "
              f"{_fmt(r['pesq_wb'], '>8.3f')} {_fmt(r['stoi'], '>7.4f')} {_fmt(r['cpp'], '>7.4f')} "
              f"{_fmt(r['mel'], '>7.4f')} {_fmt(r['val_mel'], '>8.4f')}")
    vs = [r for r in rows if r["arm"] != control and r["vs_control"]]
    if not vs:
        return
    print(f"\narm − {control} (paired mean over clips, [95 % bootstrap interval])")
    print(f"{'arm':<16} {'CPU-h':>7} " + " ".join(f"{LABELS[m][:8]:>26}" for m in METRICS) + f" {'val_mel':>8}")

    def cell(c: dict) -> str:
        if c["diff"] is None:
            return f"{'—':>26}"
        return f"{c['diff']:>+8.4f} [{c['lo']:>+7.4f},{c['hi']:>+7.4f}]".rjust(26)

    for r in vs:
        v = r["vs_control"]
        print(f"{r['arm']:<16} {r['cpu_hours']:>7.3f} " + " ".join(cell(v[m]) for m in METRICS)
              + f" {v['val_mel']['diff']:>+8.4f}")
    for r in vs:
        if r["verdict"]:
            said = ", ".join(f"{LABELS[m]} {r['verdict'][m] or '—'}" for m in METRICS)
            print(f"{r['arm']} vs {control} at {r['cpu_hours']:.3f} CPU-h: {said}")


def plot(rows: list[dict], control: str, path: Path) -> None:
    """Four panels (PESQ-WB, STOI, CPP, mel) of the metric against CPU-hours, one line per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    for ax, m in zip(axes.flat, METRICS):
        for arm in arms:
            pts = [(r["cpu_hours"], r[m]) for r in rows if r["arm"] == arm and r[m] is not None]
            if pts:
                style = {"color": "k", "lw": 2.0} if arm == control else {"lw": 1.2}
                ax.plot(*zip(*pts), "o-", ms=3, label=arm, **style)
        ax.set_title(f"{LABELS[m]} ({'higher' if HIGHER_IS_BETTER[m] else 'lower'} is better)")
        ax.set_xlabel("CPU-hours of training")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def collect(arm_dirs: list[Path], start: Path | None, control: str) -> dict[str, list[Snapshot]]:
    """Each arm's snapshots by name (the folder's name), checked: unique names, a control among them."""
    names = [d.name for d in arm_dirs]
    if len(set(names)) != len(names):
        raise SystemExit(f"arm folders must have distinct names, got {names}")
    if control not in names:
        raise SystemExit(f"no control arm named {control!r} among {names} (choose one with --control)")
    first = start_snapshot(start)
    snaps = {}
    for d in arm_dirs:
        snaps[d.name] = find_snapshots(d, first)
        if not snaps[d.name]:
            print(f"{d}: no snap/cpu*/ snapshots yet", file=sys.stderr)
    if not snaps[control]:
        raise SystemExit(f"control arm {control!r} has nothing to score")
    return snaps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("arms", nargs="+", type=Path, help="run folders with snap/cpu<M>/ snapshots; named by folder")
    p.add_argument("--start", type=Path, help="the arms' starting model, scored as CPU 0: a from_pretrained folder, "
                   "or the resumable checkpoint the arms start from (e.g. checkpoints/codec_v1; exported to "
                   "runs/arms/start_<name> once)")
    p.add_argument("--control", default="control", help="the arm the others are compared with (folder name)")
    add_clip_args(p)
    p.add_argument("--json", type=Path, help="write the rows here")
    p.add_argument("--png", type=Path, help="write the four-panel plot here")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    snaps = collect(a.arms, a.start, a.control)
    opts = {"corpus": str(a.corpus.resolve()), "val_clips": a.val_clips, "speech_clips": a.speech_clips,
            "max_seconds": a.max_seconds, "seed": a.seed}
    held, memo, scores = HeldOutSet(opts), {}, {}
    todo = [s for arm_snaps in snaps.values() for s in arm_snaps]
    for s in tqdm(todo, desc="snapshots", unit="snap"):
        scores[(s.arm, s.mark)] = cached_scores(s, held, memo)
    rows = build_rows(snaps, scores, a.control)
    print_table(rows, a.control)
    if a.json:
        verdicts = {r["arm"]: {"cpu_hours": r["cpu_hours"], **r["verdict"]} for r in rows if r["verdict"]}
        out = {"control": a.control, "start": str(a.start) if a.start else None, "options": opts,
               "bootstrap": {"resamples": RESAMPLES, "seed": BOOT_SEED, "interval": 0.95},
               "rows": rows, "verdicts": verdicts}
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=2) + "\n")
    if a.png:
        a.png.parent.mkdir(parents=True, exist_ok=True)
        plot(rows, a.control, a.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
