"""Each task's measured status from the last benchmark, stored with the weights.

A pipeline folder may hold ``task_status.json`` beside ``model.safetensors``, written by
``benchmarks/lm_tasks.py`` from its results::

    {"format": 1, "benchmark": {"date": ..., "results": ..., "model": ...}, "weights_sha256": "...",
     "rule": "...", "tasks": {"asr": {"status": "experimental", "metric": "CER (en)", "score": 0.81,
                                       "n": 100, "target": "<= 0.25", "baseline": 1.0, "note": "..."}, ...}}

A task ``works`` when its benchmark score meets its target (:data:`TARGETS`, from issue 22), or, for a
task without a target, when it clearly beats its trivial baseline (:func:`assess`); every other task is
``experimental``, and so is every task when the file is missing, was measured on other weights
(``weights_sha256``) or has no entry for it ("not measured").

The task functions of :mod:`uniaudio_lm.api` warn once per task and process with an
:class:`ExperimentalTaskWarning` (one line) before running an experimental task. Silence it with
``warnings.filterwarnings("ignore", category=uniaudio_lm.ExperimentalTaskWarning)`` or the environment
variable ``UNIAUDIO_NO_WARN=1`` (the ``uniaudio`` command line: ``-q``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

STATUS_NAME = "task_status.json"
FORMAT = 1
WORKS, EXPERIMENTAL = "works", "experimental"
NO_WARN_ENV = "UNIAUDIO_NO_WARN"

#: (task, metric) → (comparison, threshold): the acceptance targets of issue 22 (held-out data). The
#: InstructTTS target also asks for a rate ratio ≥ 1.25 and ≥ 2 semitones per pair; the benchmark's
#: pair metrics count the requested direction, so meeting them is necessary, not sufficient.
TARGETS: dict[tuple[str, str], tuple[str, float]] = {
    ("asr", "CER (en)"): ("<=", 0.25),
    ("tts", "WER (Whisper tiny.en)"): ("<=", 0.50),
    ("tts", "duration within 35% of espeak-ng"): (">=", 0.80),
    ("instruct_tts", "rate pairs: fast/slow >= 1.25"): (">=", 0.90),
    ("instruct_tts", "pitch pairs: high - low >= 2 semitones"): (">=", 0.90),
    ("fewshot_classify", "accuracy"): (">=", 0.75),
}

RULE = ("works: every target of the task met (issue 22); a task without a target: its main metric beats the "
        "best trivial baseline by a clear margin (0.1 on rates, accuracies and cosines, 1 dB on SI-SDR) and "
        "closes at least half the gap from that baseline to the ceiling (the measured one, else the metric's "
        "perfect value: 0 for error rates, 1 for accuracies); otherwise experimental")


class ExperimentalTaskWarning(UserWarning):
    """A task whose last benchmark did not meet its target (or that was never measured) was run."""


@dataclass(frozen=True)
class TaskStatus:
    """The measured status of one task.

    Attributes:
        task: registry name.
        status: ``"works"`` or ``"experimental"``.
        metric / score / n: the benchmark's main metric for the task, its value (``None``: not measured)
            and the number of held-out items.
        target: e.g. ``"<= 0.25"`` (``""``: the task has none; judged against ``baseline``).
        baseline: the best trivial baseline on that metric (``None``: none measured).
        note: why, in words.
    """

    task: str
    status: str
    metric: str = ""
    score: float | None = None
    n: int = 0
    target: str = ""
    baseline: float | None = None
    note: str = ""

    @property
    def works(self) -> bool:
        return self.status == WORKS

    def to_json(self) -> dict[str, Any]:
        """The fields but ``task`` (the key it is stored under)."""
        d = asdict(self)
        del d["task"]
        return d

    def describe(self) -> str:
        """One line, e.g. ``task 'asr' is experimental: CER (en) 0.807 on 100 held-out items (target <= 0.25)``."""
        if self.score is None:
            measured = f"not measured{f' ({self.note})' if self.note and self.note != 'not measured' else ''}"
        else:
            vs = f"target {self.target}" if self.target else (
                f"trivial baseline {self.baseline:.3g}" if self.baseline is not None else "no baseline")
            measured = f"{self.metric} {self.score:.3g} on {self.n} held-out items ({vs})"
        return f"task {self.task!r} is {self.status}: {measured}; its outputs may be wrong"


@dataclass
class StatusTable:
    """Every measured task of one pipeline folder (:data:`STATUS_NAME`)."""

    tasks: dict[str, TaskStatus] = field(default_factory=dict)
    benchmark: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""
    rule: str = RULE
    reason: str = ""  # set when the whole table does not apply (missing file, other weights)

    def get(self, task: str) -> TaskStatus:
        """The status of ``task``; experimental "not measured" when the table has none (or does not apply)."""
        if self.reason:
            return TaskStatus(task, EXPERIMENTAL, note=self.reason)
        return self.tasks.get(task) or TaskStatus(task, EXPERIMENTAL, note="not measured")

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "benchmark": self.benchmark, "weights_sha256": self.weights_sha256,
                "rule": self.rule, "tasks": {k: v.to_json() for k, v in sorted(self.tasks.items())}}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "StatusTable":
        if d.get("format") != FORMAT or not isinstance(d.get("tasks"), dict):
            raise ValueError(f"not a task status table of format {FORMAT}")
        tasks = {k: TaskStatus(task=k, **{f: v for f, v in e.items() if f != "task"}) for k, e in d["tasks"].items()}
        return cls(tasks, dict(d.get("benchmark", {})), str(d.get("weights_sha256", "")), str(d.get("rule", RULE)))

    def save(self, path: str | os.PathLike) -> None:
        """Write the table as JSON (atomically)."""
        p = Path(path)
        tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, p)


def weights_sha256(directory: str | os.PathLike) -> str:
    """SHA-256 of a pipeline folder's ``model.safetensors`` (``""`` if it has none)."""
    p = Path(directory) / "model.safetensors"
    if not p.is_file():
        return ""
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read(directory: str | os.PathLike | None) -> StatusTable:
    """The status table of a pipeline folder; it does not apply (every task experimental) when the file
    is missing or unreadable, or when it was measured on other weights."""
    if directory is None:
        return StatusTable(reason="weights not loaded from a pipeline folder; not measured")
    p = Path(directory) / STATUS_NAME
    if not p.is_file():
        return StatusTable(reason=f"no {STATUS_NAME} beside the weights; not measured")
    try:
        table = StatusTable.from_json(json.loads(p.read_text(encoding="utf-8")))
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        return StatusTable(reason=f"{p} is unreadable ({e}); not measured")
    if table.weights_sha256 and table.weights_sha256 != weights_sha256(directory):
        table.reason = f"{STATUS_NAME} was measured on other weights; not measured"
    return table


# ---------------------------------------------------------------- the warning
_WARNED: set[tuple[str, str]] = set()


def warn_if_experimental(status: TaskStatus, key: str = "", stacklevel: int = 2) -> bool:
    """Warn (:class:`ExperimentalTaskWarning`, one line) the first time an experimental task runs in this
    process (per ``key``, e.g. the pipeline folder); returns whether it warned. ``UNIAUDIO_NO_WARN=1``
    or a warnings filter silences it. ``stacklevel`` counts from the caller (2: the caller's caller)."""
    if os.environ.get(NO_WARN_ENV, "") not in ("", "0") or (key, status.task) in _WARNED or status.works:
        return False
    _WARNED.add((key, status.task))
    warnings.warn(ExperimentalTaskWarning(status.describe()), stacklevel=stacklevel + 1)
    return True


def reset_warnings() -> None:
    """Forget which tasks have warned (each warns again once)."""
    _WARNED.clear()


# ---------------------------------------------------------------- from benchmark rows
def lower_is_better(metric: str) -> bool:
    """Error rates (WER, CER) fall as a task improves; every other benchmark metric rises."""
    return metric.split(" ", 1)[0] in ("WER", "CER")


def margin(metric: str) -> float:
    """How much better than the trivial baseline counts as clearly better."""
    return 1.0 if "dB" in metric else 0.1


def perfect(metric: str) -> float | None:
    """The best value a metric can take (``None``: unbounded or not meaningful, e.g. dB, cosines)."""
    if lower_is_better(metric):
        return 0.0
    return None if any(k in metric for k in ("dB", "cosine", "log-mel")) else 1.0


def baseline_role(row: Mapping[str, Any]) -> str:
    """``"trivial"`` (empty output, chance, majority, copying the input...), ``"ceiling"`` (real or
    reference audio through the metric) or ``"reference"`` (another method), from the row's ``role`` or,
    in older results, its note."""
    return str(row.get("role") or ("ceiling" if "ceiling" in str(row.get("note", "")) else "trivial"))


def compare(value: float | None, target: tuple[str, float]) -> bool:
    if value is None or math.isnan(value):
        return False
    return value >= target[1] if target[0] == ">=" else value <= target[1]


def _values(rows: Iterable[Mapping[str, Any]], task: str, metric: str, kind: str, role: str | None = None
            ) -> list[float]:
    return [float(r["value"]) for r in rows if r["task"] == task and r["metric"] == metric and r["kind"] == kind
            and r.get("value") is not None and (role is None or baseline_role(r) == role)]


def _fmt_target(t: tuple[str, float]) -> str:
    return f"{t[0]} {t[1]:g}"


def assess(task: str, rows: list[Mapping[str, Any]], main_metric: str) -> TaskStatus:
    """The status of ``task`` from benchmark result rows (``task``, ``metric``, ``kind``, ``value``, ``n``,
    ``note``): against its :data:`TARGETS` if it has any, else against its trivial baselines on
    ``main_metric`` (see :data:`RULE`)."""
    targets = [(m, t) for (tk, m), t in TARGETS.items() if tk == task]
    metric = targets[0][0] if targets else main_metric
    model = [r for r in rows if r["task"] == task and r["metric"] == metric and r["kind"] == "model"]
    row = next((r for r in model if r.get("value") is not None), model[0] if model else None)
    if row is None or row.get("value") is None:
        why = str(row.get("note", "")) if row is not None else ""
        return TaskStatus(task, EXPERIMENTAL, metric, None, 0, _fmt_target(targets[0][1]) if targets else "",
                          None, f"not measured{f': {why}' if why else ''}")
    score, n = float(row["value"]), int(row.get("n", 0))
    lower = lower_is_better(metric)
    trivial = _values(rows, task, metric, "baseline", "trivial")
    base = (min(trivial) if lower else max(trivial)) if trivial else None
    if targets:
        missed = []
        for m, t in targets:
            v = _values(rows, task, m, "model")
            if not compare(v[0] if v else None, t):
                missed.append(f"{m} {'%.3g' % v[0] if v else 'not measured'} (target {_fmt_target(t)})")
        ok = not missed
        note = "meets its target" if ok else "misses " + "; ".join(missed)
        return TaskStatus(task, WORKS if ok else EXPERIMENTAL, metric, score, n, _fmt_target(targets[0][1]),
                          base, note)
    ok, note = _beats_baseline(score, base, _values(rows, task, metric, "baseline", "ceiling"), metric)
    return TaskStatus(task, WORKS if ok else EXPERIMENTAL, metric, score, n, "", base, note)


def _beats_baseline(score: float, base: float | None, ceilings: list[float], metric: str) -> tuple[bool, str]:
    if base is None:
        return False, "no trivial baseline measured"
    sign = -1.0 if lower_is_better(metric) else 1.0
    gain = sign * (score - base)
    if gain < margin(metric):
        return False, f"does not clearly beat its trivial baseline ({base:.3g})"
    # the least demanding ceiling (e.g. through the codec) above the trivial baseline, else a perfect score
    useful = [c for c in ceilings if sign * (c - base) > 0]
    what = "the ceiling"
    best = perfect(metric)
    if not useful and best is not None and sign * (best - base) > 0:
        useful, what = [best], "a perfect score"
    if useful:
        ceil = min(useful, key=lambda c: sign * c)
        frac = gain / (sign * (ceil - base))
        if frac < 0.5:
            return False, (f"beats its trivial baseline ({base:.3g}) but closes only {frac:.0%} of the gap to "
                           f"{what} ({ceil:.3g})")
    return True, f"clearly beats its trivial baseline ({base:.3g})"


def from_rows(rows: list[Mapping[str, Any]], tasks: Iterable[str], main_metric: Mapping[str, str],
              benchmark: Mapping[str, Any], sha256: str) -> StatusTable:
    """A status table for ``tasks`` from benchmark rows (tasks without rows: experimental, not measured)."""
    return StatusTable({t: assess(t, rows, main_metric.get(t, "")) for t in tasks}, dict(benchmark), sha256)
