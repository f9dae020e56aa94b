"""Tables, JSON and plots for the reconstruction benchmark (see ``reconstruction.py``)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

COLUMNS = [("pesq_wb", "PESQ-WB"), ("pesq_nb", "PESQ-NB"), ("stoi", "STOI"), ("visqol", "ViSQOL"),
           ("mel_distance", "mel dist ↓"), ("si_sdr", "SI-SDR dB")]
CATEGORY_ORDER = ["speech", "music", "sound"]


def _finite_or_inf(v: Any) -> bool:
    return isinstance(v, (int, float)) and not math.isnan(v)


def summarize(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{category: {label: {metric: mean, metric+"_n": valid clips, kbps, clips, notes}}}``.

    Metric means are over the clips where the metric applied (NaN skipped; the count is kept). The real
    bitrate is aggregate: total bits over total duration of the category's clips.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["category"], r["codec"])].append(r)
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (cat, label), rs in groups.items():
        ok = [r for r in rs if r.get("error") is None]
        row: dict[str, Any] = {"family": rs[0]["family"], "clips": len(rs), "errors": len(rs) - len(ok)}
        dur = sum(r["duration_s"] for r in ok)
        row["kbps"] = sum(r["bits"] for r in ok) / dur / 1000 if dur > 0 else float("nan")
        notes: dict[str, list[str]] = defaultdict(list)
        for key, _ in COLUMNS:
            vals = [r["scores"][key] for r in ok if _finite_or_inf(r["scores"].get(key))]
            row[key] = sum(vals) / len(vals) if vals else float("nan")
            row[key + "_n"] = len(vals)
            for r in ok:
                if not _finite_or_inf(r["scores"].get(key)):
                    notes[f"{key}: {r['reasons'].get(key, 'n/a')}"].append(Path(r["clip"]).stem)
        for r in rs:
            if r.get("error"):
                notes[f"error: {r['error']}"].append(Path(r["clip"]).stem)
        row["notes"] = dict(notes)
        out[cat][label] = row
    return dict(out)


def _fmt(v: float, n: int, total: int, digits: int) -> str:
    if math.isnan(v):
        return "—"
    s = "∞" if math.isinf(v) else f"{v:.{digits}f}"
    return s if n == total else f"{s} ({n}/{total})"


def category_tables(summary: dict[str, dict[str, dict[str, Any]]], unavailable: list[dict[str, str]],
                    labels: list[str], level: int = 2) -> list[str]:
    """One table per category (heading ``level``); rows in the order of ``labels``, then the unavailable
    codecs with their reason in place of numbers."""
    digits = {"pesq_wb": 2, "pesq_nb": 2, "stoi": 3, "visqol": 2, "mel_distance": 3, "si_sdr": 1}
    head = "| codec@bitrate | " + " | ".join(h for _, h in COLUMNS) + " | real kbit/s | clips |"
    rule = "|---|" + "---:|" * (len(COLUMNS) + 2)
    lines: list[str] = []
    cats = [c for c in CATEGORY_ORDER if c in summary] + sorted(set(summary) - set(CATEGORY_ORDER))
    for cat in cats:
        mode = "speech mode, 16 kHz" if cat == "speech" else "audio mode, 48 kHz"
        lines += [f"{'#' * level} {cat}", "", f"ViSQOL in {mode}." + ("" if cat == "speech" else
                  " PESQ and STOI are speech measures: on this category they are only indicative."), "",
                  head, rule]
        notes = []
        for label in labels:
            row = summary[cat].get(label)
            if row is None:
                continue
            ok = row["clips"] - row["errors"]
            cells = [_fmt(row[k], row[k + "_n"], ok, digits[k]) for k, _ in COLUMNS]
            kb = "—" if math.isnan(row["kbps"]) else f"{row['kbps']:.2f}"
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {kb} | {row['clips']} |")
            notes += [f"- {label}: {k} ({', '.join(v)})" for k, v in row["notes"].items()]
        for u in unavailable:
            lines.append(f"| {u['label']} | {u['reason']} |" + " — |" * (len(COLUMNS) + 1))
        if notes:
            lines += ["", "Not scored:", *notes]
        lines.append("")
    return lines


FOOTNOTE = ["Means over clips (plain, not weighted by speaker); (n/N) = the metric applied to n of N clips.",
            "Real kbit/s = bits produced (file or stream size × 8; codes × bits per code for the "
            "transformers models) over the clips' total duration."]


def markdown(summary: dict[str, dict[str, dict[str, Any]]], unavailable: list[dict[str, str]],
             labels: list[str], meta: dict[str, Any]) -> str:
    """One table per category; rows in the order the codecs were requested."""
    lines = ["# Reconstruction quality", "",
             f"Clips: {meta['source']} ({meta['n_clips']} clips). {meta['mono']}",
             f"Metrics: {meta['metrics']}", f"ViSQOL: {meta['visqol']}", ""]
    lines += category_tables(summary, unavailable, labels, level=2)
    lines += [*FOOTNOTE, ""]
    return "\n".join(lines)


def summary_from_json(summary: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Undo :func:`write_json`'s encoding in a stored summary: null → NaN, "inf"/"-inf" → ±inf."""
    def num(v: Any) -> Any:
        if v is None:
            return math.nan
        if v in ("inf", "-inf"):
            return math.inf if v == "inf" else -math.inf
        return v

    return {cat: {label: {k: (num(v) if k != "notes" and k != "family" else v) for k, v in row.items()}
                  for label, row in rows.items()} for cat, rows in summary.items()}


def _json_safe(x: Any) -> Any:
    if isinstance(x, float):
        return None if math.isnan(x) else ("inf" if x == math.inf else "-inf" if x == -math.inf else x)
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """NaN → null and ±inf → "inf"/"-inf", so the file is strict JSON."""
    path.write_text(json.dumps(_json_safe(payload), indent=1, ensure_ascii=False, allow_nan=False) + "\n")


def plot(summary: dict[str, dict[str, dict[str, Any]]], out_dir: Path) -> list[Path]:
    """One PNG per category: each metric against the real bitrate, one line per codec family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    paths = []
    for cat, rows in summary.items():
        fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
        families: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
        for row in rows.values():
            if not math.isnan(row["kbps"]) and row["family"] != "identity":
                families[row["family"]].append((row["kbps"], row))
        rates = [k for pts in families.values() for k, _ in pts] or [1.0]
        lo, hi = min(rates), max(rates)
        for ax, (key, title) in zip(axes.flat, COLUMNS):
            for fam, pts in sorted(families.items()):
                pts.sort(key=lambda p: p[0])
                xs = [p[0] for p in pts if math.isfinite(p[1][key])]
                ys = [p[1][key] for p in pts if math.isfinite(p[1][key])]
                if xs:
                    ax.plot(xs, ys, marker="o", label=fam)
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xticks([t for t in (0.5, 1, 2, 4, 8, 16, 32, 64, 128) if lo / 1.6 <= t <= hi * 1.6] or [lo])
            ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.set_title(title)
            ax.set_xlabel("real kbit/s")
            ax.grid(True, which="both", alpha=0.3)
        handles, names = axes.flat[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, names, loc="lower center", ncol=min(len(names), 8))
        fig.suptitle(f"{cat}: quality vs real bitrate")
        fig.tight_layout(rect=(0, 0.05, 1, 0.97))
        p = out_dir / f"quality_vs_bitrate_{cat}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths
