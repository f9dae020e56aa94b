"""Per-task benchmark of the uniaudio_lm model: every registry task on held-out test rows (not a test).

For each task the model is run through its :mod:`uniaudio_lm.api` function on the first ``--per-task``
rows of that task in ``<data>/test/*.jsonl`` (written by ``python -m uniaudio_lm.recipes build``), and its
output is scored with :mod:`benchmarks.lm_eval`:

===================  ==========================================================================
task                 metric(s)
===================  ==========================================================================
tts                  WER of Whisper tiny.en's transcript; output duration within 35% of espeak-ng's
                     (everyday English sentences, not from the training grammar: recipe everyday_en)
instruct_tts         fast-vs-slow pairs (same text, same voice wording) whose measured speaking rate
                     differs by 1.25x in the requested direction; high-vs-low pitch pairs by 2
                     semitones of median F0 (pairs that cannot be measured fail; everyday sentences)
voice_tts            speaker similarity to the voice prompt (LDA on MFCC statistics, fitted on train
                     speakers)
asr, dysarthric_asr  CER and WER (English: everyday sentences, and held-out grammar sentences apart),
                     CER (Mandarin); yue_asr: CER
spoken_qa, audio_qa  exact match and lenient match (the reference answer in the output)
spoken_qa_speech     lenient match on Whisper's transcript of the spoken answer
speech_edit          WER (Whisper) against the edited sentence; edit applied (word swapped/removed/added)
speech_sound         WER (Whisper) of the speech over the generated sound
denoise, separation  SI-SDR improvement over the noisy input (separation: its first, speech, output)
text_to_sound        accuracy of a sound-class classifier on the generated clip
text_to_music        accuracy of an instrument-family classifier on the generated clip
audio/music_caption  fraction of reference key facts (class; instrument, tempo word, key) in the caption
song                 WER (Whisper) against the lyrics (English rows); lyric_recognition: CER/WER
fewshot_denoise      SI-SDR improvement; fewshot_vc: similarity to the demo's target voice
fewshot_classify     accuracy on ``--fewshot-episodes`` 2-way episodes built here from held-out clips
                     (:mod:`uniaudio_lm.recipes.episodes`): classes absent from every train row,
                     query and demos from different source recordings, nonsense labels (and again
                     with the real names shuffled); beside chance and a nearest-demo log-mel baseline
===================  ==========================================================================

Every model number comes with its trivial baseline or ceiling where one is meaningful (empty output,
chance/majority, copying the input, Whisper on the ground-truth espeak audio and on its codec
resynthesis...), and every learned metric with its sanity on real held-out audio. A task whose model
run fails says why (model missing, Whisper missing, no test rows); nothing is filled in.

Generation limits: audio outputs may last 1.5 × the reference clip + 1 s (a trained model stops earlier
by itself), text outputs 32-128 tokens by task; ``--seed`` seeds every call.

Run (from the repository root; one thread, beside a training job)::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/lm_tasks.py --model runs/lm/pipeline
    .venv/bin/python benchmarks/lm_tasks.py --tasks tts,asr --tts-en-rows 100

Writes ``--out`` (JSON, default ``benchmarks/results/lm_tasks.json``) and the Markdown table beside it
(``.md``), and each task's measured status (:mod:`uniaudio_lm.status`: ``works`` when it meets its
target, else ``experimental``) to ``task_status.json`` beside the benchmarked weights (``--status-out``;
tasks not run this time keep their entry when the weights are the same). Only the status, from an
earlier results file::

    .venv/bin/python benchmarks/lm_tasks.py --status-from benchmarks/results/lm_tasks.json
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import math
import os
import platform
import random
import shutil
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("UNIAUDIO_NO_WARN", "1")  # the benchmark measures the tasks; no experimental-task warnings
ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks import lm_eval as E  # noqa: E402
from uniaudio_lm import status as S  # noqa: E402
from uniaudio_lm.episode_stream import recording_of  # noqa: E402
from uniaudio_lm.recipes import episodes as EP  # noqa: E402

SR = E.LM_RATE
TARGETS = S.TARGETS  # (task, metric) -> (comparison, threshold), from issue 22
SOUND_TASKS = ("text_to_sound", "audio_caption", "audio_qa", "speech_sound", "fewshot_classify", "denoise",
               "separation", "fewshot_denoise")  # train rows that name sound classes
TEXT_TOKENS = {"asr": 128, "dysarthric_asr": 128, "yue_asr": 128, "lyric_recognition": 128, "spoken_qa": 32,
               "audio_qa": 32, "audio_caption": 96, "music_caption": 96}
GM_FAMILIES = ("piano", "chromatic percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass", "reed",
               "pipe", "synth lead", "synth pad", "synth effects", "ethnic", "percussive", "sound effects")


class Skip(Exception):
    """A metric that cannot be computed; the message says why."""


# ====================================================================== context
@dataclass
class Bench:
    data: Path
    pipe: Any  # uniaudio_lm.Pipeline or None
    model_reason: str  # why there is no model ("" when there is one)
    per_task: int
    tts_en_rows: int
    asr_en_rows: int
    seed: int
    threads: int
    fewshot_episodes: int = 200
    instruct_pairs: int = 50
    asr_decoder: str | None = None  # None: the pipeline's default ASR decoder ("auto")
    test: dict[str, list[dict]] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    items: dict[str, list[dict]] = field(default_factory=dict)
    sanity: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    _whisper: Any = None
    _whisper_reason: str | None = None
    _codec: Any = None
    _codec_reason: str | None = None
    _train: dict[str, list[dict]] | None = None
    _speaker: Any = None

    # ------------------------------------------------------------------ data
    def path(self, rel: str) -> Path:
        return self.data / rel

    def train_rows(self, task: str) -> list[dict]:
        if self._train is None:
            self._train = read_rows(self.data / "train")
        return self._train.get(task, [])

    def take(self, task: str, n: int | None = None, where: Callable[[dict], bool] | None = None) -> list[dict]:
        rows = [r for r in self.test.get(task, []) if where is None or where(r)]
        return rows[: (self.per_task if n is None else n)]

    # ------------------------------------------------------------------ tools
    def whisper(self) -> Any:
        if self._whisper is None and self._whisper_reason is None:
            status = E.whisper_status()
            if status != "ok":
                self._whisper_reason = status
            else:
                self._whisper = E.Whisper(threads=self.threads)
        if self._whisper is None:
            raise Skip(self._whisper_reason)
        return self._whisper

    def codec(self) -> Any:
        if self.pipe is not None:
            return self.pipe.codec
        if self._codec is None and self._codec_reason is None:
            try:
                import reasoningcodec

                self._codec = reasoningcodec.load()
            except Exception as e:  # no weights installed
                self._codec_reason = f"codec not available: {e}"
        if self._codec is None:
            raise Skip(self._codec_reason)
        return self._codec

    def resynth(self, audio: Any) -> np.ndarray:
        """Codec round trip (encode + decode) at the pipeline's number of reconstruction codebooks."""
        codec = self.codec()
        x = torch.from_numpy(E.load_audio(audio).astype(np.float32))[None]
        n_q = getattr(self.pipe, "recon_codebooks", None)
        with torch.no_grad():
            y = codec.decode(codec.encode(x, sample_rate=SR, n_q=n_q))
        return y[0, 0].cpu().numpy()

    def transcribe(self, audio: Any) -> str:
        if isinstance(audio, np.ndarray) and audio.size == 0:
            return ""
        return self.whisper().transcribe(audio)

    def speaker(self) -> E.SpeakerEmbedder:
        if self._speaker is None:
            self._speaker = fit_speaker_embedder(self)
        return self._speaker

    # ------------------------------------------------------------------ results
    def add(self, task: str, metric: str, value: float | None, n: int, kind: str = "model", note: str = "",
            role: str | None = None) -> None:
        """One table row; ``value=None`` with a ``note`` when it could not be computed. A baseline's
        ``role`` is ``trivial``, ``ceiling`` or ``reference`` (default: ``ceiling`` when the note says so,
        else ``trivial``); the task status compares the model with the trivial ones."""
        tgt = TARGETS.get((task, metric)) if kind == "model" else None
        met = None
        if tgt is not None and value is not None and not math.isnan(value):
            met = S.compare(value, tgt)
        row = {"task": task, "metric": metric, "kind": kind,
               "value": None if value is None or math.isnan(value) else float(value), "n": n,
               "target": f"{tgt[0]} {tgt[1]:g}" if tgt else "", "met": met, "note": note}
        if kind == "baseline":
            row["role"] = role or S.baseline_role(row)
        self.rows.append(row)

    def skip(self, task: str, metric: str, reason: str, kind: str = "model") -> None:
        self.add(task, metric, None, 0, kind, reason)


def read_rows(folder: Path) -> dict[str, list[dict]]:
    """Every row of ``folder/*.jsonl`` grouped by its ``task`` (file order)."""
    out: dict[str, list[dict]] = {}
    for f in sorted(folder.glob("*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    r = json.loads(line)
                    out.setdefault(r.get("task", ""), []).append(r)
    return out


def duration(path: Path) -> float:
    import soundfile as sf

    return float(sf.info(str(path)).duration)


def limit_s(b: Bench, rel: str | None, default: float = 10.0) -> float:
    """Generation limit: 1.5 × the reference clip + 1 s."""
    return 1.5 * duration(b.path(rel)) + 1.0 if rel else default


def api_language(lang: str | None) -> str:
    return {"cmn": "zh", "zh": "zh", "yue": "yue"}.get(lang or "en", "en")


def mean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return float(np.mean(xs)) if xs else float("nan")


# ====================================================================== model calls
def call_model(b: Bench, task: str, rows: list[dict], fn: Callable[[dict], Any]) -> list[tuple[dict, Any]]:
    """Run ``fn(row)`` for each row (the model call); per-row failures are recorded, and if every row
    fails the first error is raised as :class:`Skip`."""
    if b.pipe is None:
        raise Skip(b.model_reason)
    out, errors = [], []
    for r in rows:
        try:
            out.append((r, fn(r)))
        except Exception as e:  # one bad row must not end the benchmark; it is counted and reported
            errors.append(f"{type(e).__name__}: {str(e)[:160]}")
    if errors:
        b.items.setdefault(task, []).append({"errors": errors})
    if not out:
        raise Skip(f"every model call failed: {errors[0] if errors else 'no rows'}")
    return out


def api() -> Any:
    from uniaudio_lm import api as A

    return A


def kw(b: Bench, **extra: Any) -> dict[str, Any]:
    return {"pipeline": b.pipe, "seed": b.seed, **extra}


# ====================================================================== learned metrics
def fit_speaker_embedder(b: Bench) -> E.SpeakerEmbedder:
    """LDA speaker embedding fitted on train clips of espeak voices (≤ 12 clips each, ≤ 60 voices)."""
    by_spk: dict[str, list[Path]] = {}
    for task in ("tts", "asr", "voice_tts", "instruct_tts"):
        for r in b.train_rows(task):
            spk = r.get("speaker")
            if spk and len(by_spk.setdefault(spk, [])) < 12:
                by_spk[spk].append(b.path(r["audio"]))
    spks = sorted(s for s, v in by_spk.items() if len(v) >= 3)[:60]
    if len(spks) < 2:
        raise Skip("speaker embedding: fewer than two train speakers with 3+ clips")
    feats, labels = [], []
    for s in spks:
        for p in by_spk[s]:
            feats.append(E.speaker_features(p))
            labels.append(s)
    emb = E.SpeakerEmbedder().fit(np.array(feats), labels)
    b.sanity["speaker_embedder"] = {"train_speakers": len(spks), "train_clips": len(feats), "dims": emb.proj.shape[1]}
    return emb


def speaker_sanity(b: Bench) -> None:
    """Same- vs different-voice cosine on held-out espeak_voice clips (target + prompt of each row)."""
    try:
        emb = b.speaker()
    except Skip as e:
        b.skip("voice_tts", "speaker-similarity sanity", str(e), "sanity")
        return
    rows = b.test.get("voice_tts", [])[: max(b.per_task, 30)]
    if len(rows) < 2:
        b.skip("voice_tts", "speaker-similarity sanity", "no voice_tts test rows", "sanity")
        return
    es, labels = [], []
    for r in rows:
        for rel in (r["audio"], r["voice"]):
            es.append(emb.embed(b.path(rel)))
            labels.append(r.get("speaker", ""))
    g = E.similarity_gap(np.array(es), labels)
    b.sanity["speaker_similarity_test"] = g.__dict__ | {"clips": len(es), "voices": len(set(labels))}
    b.add("voice_tts", "cosine, same voice (real test clips)", g.same, g.n_same, "sanity")
    b.add("voice_tts", "cosine, different voices (real test clips)", g.different, g.n_different, "sanity")
    b.add("voice_tts", "same-vs-different pair AUC (real test clips)", g.auc, g.n_same + g.n_different, "sanity")


def music_family(name: str) -> str:
    from reasoningcodec.data.sources_music import GM

    inv = {v: k for k, v in GM.items()}
    prog = inv.get(str(name).lower())
    return GM_FAMILIES[prog // 8] if prog is not None else str(name)


def fit_classifier(b: Bench, name: str, train: list[tuple[Path, str]], min_per_class: int = 3
                   ) -> E.AudioClassifier:
    counts = Counter(lab for _, lab in train)
    train = [(p, lab) for p, lab in train if counts[lab] >= min_per_class]
    if len({lab for _, lab in train}) < 2:
        raise Skip(f"{name} classifier: fewer than two classes with {min_per_class}+ clips")
    feats = np.array([E.clip_features(p) for p, _ in train])
    clf = E.AudioClassifier().fit(feats, [lab for _, lab in train])
    b.sanity[f"{name}_classifier"] = {"train_clips": len(train), "classes": len(clf.classes)}
    return clf


# ====================================================================== tasks
def everyday_rows(b: Bench, task: str) -> list[dict]:
    """The ``everyday_en`` test rows of ``task`` (everyday English sentences, not from the training
    grammar); empty for a data build without that recipe."""
    return [r for r in b.test.get(task, []) if r.get("everyday")]


def t_tts(b: Bench) -> None:
    rows = everyday_rows(b, "tts")[: b.tts_en_rows] or b.take(
        "tts", b.tts_en_rows, lambda r: r.get("language", "en") == "en")
    if not rows:
        raise Skip("no English tts test rows")
    w = b.whisper()
    refs = [r["text"] for r in rows]
    gt = [w.transcribe(b.path(r["audio"])) for r in rows]
    b.add("tts", "WER (Whisper tiny.en)", E.error_rate(zip(refs, gt)).rate, len(rows), "baseline",
          "ground-truth espeak audio (ceiling of the metric)")
    try:
        rs = [w.transcribe(b.resynth(b.path(r["audio"]))) for r in rows]
        b.add("tts", "WER (Whisper tiny.en)", E.error_rate(zip(refs, rs)).rate, len(rows), "baseline",
              "codec resynthesis of the ground truth (ceiling through the codec)")
    except Skip as e:
        b.skip("tts", "WER (Whisper tiny.en)", f"codec resynthesis: {e}", "baseline")
    A = api()
    out = call_model(b, "tts", rows, lambda r: A.tts(r["text"], **kw(b, language="en",
                                                                      max_seconds=limit_s(b, r["audio"]))))
    hyps = [b.transcribe(y) for _, y in out]
    b.add("tts", "WER (Whisper tiny.en)", E.error_rate((r["text"], h) for (r, _), h in zip(out, hyps)).rate,
          len(out))
    ref_s = [duration(b.path(r["audio"])) for r, _ in out]
    within = [abs(len(y) / SR - d) <= DURATION_TOLERANCE * d for (_, y), d in zip(out, ref_s)]
    b.add("tts", DURATION_METRIC, mean(within), len(out),
          note=f"output length within ±{DURATION_TOLERANCE:.0%} of espeak-ng's clip of the same text")
    b.items["tts"] = [{"text": r["text"], "whisper": h, "seconds": len(y) / SR, "espeak_seconds": d}
                      for (r, y), h, d in zip(out, hyps, ref_s)]


def _style_captions(r: dict, kind: str) -> tuple[str, str]:
    """Captions asking for (fast, slow) or (high, low) with everything else as in the row's voice; the
    wording comes from the recipe's caption writer with the same random draw for both."""
    try:
        from uniaudio_lm.recipes.common import Voice
        from uniaudio_lm.recipes.speech import PITCH_BINS, RATE_BINS, style_caption
    except ImportError:
        if kind == "rate":
            return "A fast, mid-pitched voice at a normal volume.", "A slow, mid-pitched voice at a normal volume."
        return "A steady, high-pitched voice at a normal volume.", "A steady, low-pitched voice at a normal volume."
    st = r.get("style", {})
    name = str(st.get("voice", r.get("speaker", "en-us+m3")))
    base, _, variant = name.partition("+")
    mid = lambda lo_hi: (lo_hi[0] + lo_hi[1]) // 2  # noqa: E731
    v = Voice("en", base or "en-us", variant or "m3", mid(RATE_BINS["normal"]), mid(PITCH_BINS["medium"]))
    if kind == "rate":
        a, c = v.with_(rate=mid(RATE_BINS["fast"])), v.with_(rate=mid(RATE_BINS["slow"]))
    else:
        a, c = v.with_(pitch=mid(PITCH_BINS["high"])), v.with_(pitch=mid(PITCH_BINS["low"]))
    seed = E.normalize_text(r["text"])
    return style_caption(random.Random(seed), a, "normal"), style_caption(random.Random(seed), c, "normal")


DURATION_TOLERANCE = 0.35
DURATION_METRIC = "duration within 35% of espeak-ng"
RATE_RATIO = 1.25  # fast / slow speaking rate a pair must reach (issue 22)
PITCH_SEMITONES = 2.0  # high − low median F0 a pair must reach
RATE_METRIC = "rate pairs: fast/slow >= 1.25"
PITCH_METRIC = "pitch pairs: high - low >= 2 semitones"


def instruct_rows(b: Bench) -> list[dict]:
    """``--instruct-pairs`` English held-out sentences with a voice: the everyday sentences, else the
    instruct_tts test rows, then the English tts test rows (the captions are written per pair, so any
    held-out sentence serves)."""
    rows = [r for r in b.test.get("instruct_tts", []) if r.get("language", "en") == "en"]
    more = [r for r in b.test.get("tts", []) if r.get("language", "en") == "en"]
    return (everyday_rows(b, "tts") or rows + more)[: b.instruct_pairs]


def t_instruct_tts(b: Bench) -> None:
    rows = instruct_rows(b)
    if not rows:
        raise Skip("no English instruct_tts test rows")
    from reasoningcodec.data.sources_espeak import synth

    # sanity of the measures on espeak renditions of the same requests (fast 240 vs slow 125 wpm; pitch 74 vs 26),
    # and the same renditions through the codec at the model's codebooks (what the codec keeps of them)
    n_ref = min(len(rows), 10) if shutil.which("espeak-ng") else 0
    refs: list[tuple[tuple, tuple]] = []
    for r in rows[:n_ref]:
        v = str(r.get("style", {}).get("voice", "en-us+m3"))
        refs.append(((synth(r["text"], v, 240, 50), synth(r["text"], v, 125, 50)),
                     (synth(r["text"], v, 170, 74), synth(r["text"], v, 170, 26))))
    if n_ref:
        _instruct_reference(b, refs, lambda x: x, "espeak-ng at 240 vs 125 wpm (what the measure gives real speech)",
                            "espeak-ng at pitch 74 vs 26")
        try:
            through = lambda x: (b.resynth(x), SR)  # noqa: E731
            _instruct_reference(b, refs, through, "the same espeak-ng renditions through the codec "
                                f"({b.pipe.recon_codebooks if b.pipe else 'all'} reconstruction codebooks)", None)
        except Skip as e:
            b.skip("instruct_tts", RATE_METRIC, f"codec resynthesis: {e}", "baseline")
    else:
        b.skip("instruct_tts", RATE_METRIC, "espeak-ng not installed", "baseline")
    A = api()
    lim = lambda r: 2.0 * duration(b.path(r["audio"])) + 1.0  # noqa: E731  (slow speech is longer)

    def pair(r: dict, kind: str) -> tuple[np.ndarray, np.ndarray]:
        hi, lo = _style_captions(r, kind)
        return (A.instruct_tts(r["text"], hi, **kw(b, max_seconds=lim(r))),
                A.instruct_tts(r["text"], lo, **kw(b, max_seconds=lim(r))))

    out = call_model(b, "instruct_tts", rows, lambda r: pair(r, "rate"))
    rates = [(E.speaking_rate(f).rate, E.speaking_rate(s).rate) for _, (f, s) in out]
    acc, n = E.pair_margin(rates, RATE_RATIO)
    lost = len(rows) - len(out)  # failed calls count as failed pairs
    acc = acc * n / (n + lost) if n + lost else float("nan")
    unmeasured = sum(math.isnan(a) or math.isnan(c) for a, c in rates)
    b.add("instruct_tts", RATE_METRIC, acc, n + lost,
          note=f"{unmeasured + lost} pairs without measurable speech count as failures")
    direction, nd = E.pair_accuracy(rates)
    b.add("instruct_tts", "rate pairs in requested direction (any margin)", direction, nd, note="measurable pairs only")
    pout = call_model(b, "instruct_tts", rows, lambda r: pair(r, "pitch"))
    f0s = [(E.median_f0(h), E.median_f0(lo)) for _, (h, lo) in pout]
    acc, n = E.pair_margin(f0s, 2 ** (PITCH_SEMITONES / 12))
    lost = len(rows) - len(pout)
    acc = acc * n / (n + lost) if n + lost else float("nan")
    unmeasured = sum(math.isnan(a) or math.isnan(c) for a, c in f0s)
    b.add("instruct_tts", PITCH_METRIC, acc, n + lost,
          note=f"{unmeasured + lost} pairs without voiced speech count as failures")
    direction, nd = E.pair_accuracy(f0s)
    b.add("instruct_tts", "pitch pairs in requested direction (any margin)", direction, nd,
          note="measurable pairs only")
    b.items["instruct_tts"] = (
        [{"text": r["text"], "rate_fast": a, "rate_slow": c} for (r, _), (a, c) in zip(out, rates)]
        + [{"text": r["text"], "f0_high": a, "f0_low": c} for (r, _), (a, c) in zip(pout, f0s)])


def _instruct_reference(b: Bench, refs: list[tuple[tuple, tuple]], prep: Callable[[Any], Any], rate_label: str,
                        pitch_label: str | None) -> None:
    """Reference rows of the InstructTTS measures on ``refs`` (``((fast, slow), (high, low))`` audio per
    sentence) after ``prep``."""
    rates = [(E.speaking_rate(prep(f)).rate, E.speaking_rate(prep(s)).rate) for (f, s), _ in refs]
    f0s = [(E.median_f0(prep(h)), E.median_f0(prep(lo))) for _, (h, lo) in refs]
    acc, n = E.pair_margin(rates, RATE_RATIO)          # unmeasurable pairs count as failures
    b.add("instruct_tts", RATE_METRIC, acc, n, "baseline", rate_label, "reference")
    acc, n = E.pair_margin(f0s, 2 ** (PITCH_SEMITONES / 12))
    b.add("instruct_tts", PITCH_METRIC, acc, n, "baseline", pitch_label or rate_label, "reference")


def t_voice_tts(b: Bench) -> None:
    speaker_sanity(b)
    rows = b.take("voice_tts")
    if not rows:
        raise Skip("no voice_tts test rows")
    emb = b.speaker()
    same = [emb.similarity(b.path(r["audio"]), b.path(r["voice"])) for r in rows]
    b.add("voice_tts", "speaker cosine to the voice prompt", mean(same), len(rows), "baseline",
          "real target clip of the prompt's voice (ceiling)")
    other = []
    for i, r in enumerate(rows):
        o = next((q for q in rows[i + 1:] + rows[:i] if q.get("speaker") != r.get("speaker")), None)
        if o is not None:
            other.append(emb.similarity(b.path(o["audio"]), b.path(r["voice"])))
    b.add("voice_tts", "speaker cosine to the voice prompt", mean(other), len(other), "baseline",
          "real clip of a different voice (floor)")
    A = api()
    out = call_model(b, "voice_tts", rows, lambda r: A.voice_tts(
        r["text"], str(b.path(r["voice"])), r.get("caption") or "", **kw(b, max_seconds=limit_s(b, r["audio"]))))
    sims = [emb.similarity(y, b.path(r["voice"])) if len(y) > SR // 10 else float("nan") for r, y in out]
    b.add("voice_tts", "speaker cosine to the voice prompt", mean(sims), sum(not math.isnan(s) for s in sims))
    b.items["voice_tts"] = [{"text": r["text"], "cosine": s} for (r, _), s in zip(out, sims)]


def _asr_like(b: Bench, task: str, fn_name: str) -> None:
    rows_all = b.test.get(task, [])
    if not rows_all:
        raise Skip(f"no {task} test rows")
    langs = sorted({r.get("language", "en") for r in rows_all}, key=lambda x: (x != "en", x))
    A = api()
    fn = getattr(A, fn_name)
    sets = []  # (metric suffix, rows, note)
    for lang in langs:
        if task == "asr" and lang == "en":
            every = everyday_rows(b, "asr")
            grammar = b.take(task, b.asr_en_rows, lambda r: r.get("language", "en") == "en" and not r.get("everyday"))
            if every:
                sets += [("en", every, f"everyday sentences ({len(every)}), not from the training grammar"),
                         ("en, grammar sentences", grammar, "held-out sentences of the training grammar")]
            else:
                sets.append(("en", grammar, "held-out sentences of the training grammar (no everyday_en rows built)"))
        else:
            sets.append((lang, b.take(task, b.per_task, lambda r, lang=lang: r.get("language", "en") == lang), ""))
    for suffix, rows, note in sets:
        if not rows:
            continue
        lang = suffix.split(",")[0]
        refs = [r["text"] for r in rows]
        unit_metrics = [("CER", "char")] + ([("WER", "word")] if lang == "en" else [])
        for m, unit in unit_metrics:
            b.add(task, f"{m} ({suffix})", E.error_rate(((t, "") for t in refs), unit).rate, len(rows), "baseline",
                  "empty output")
        try:
            extra: dict[str, Any] = {}
            if task == "asr":                                     # the English-only decoder is chosen by language
                extra = {"language": lang, **({"decoder": b.asr_decoder} if b.asr_decoder else {})}
            out = call_model(b, task, rows, lambda r: fn(str(b.path(r["audio"])),
                                                          **kw(b, max_new_tokens=TEXT_TOKENS[task]), **extra))
        except Skip as e:
            for m, _ in unit_metrics:
                b.skip(task, f"{m} ({suffix})", str(e))
            continue
        for m, unit in unit_metrics:
            b.add(task, f"{m} ({suffix})", E.error_rate(((r["text"], h) for r, h in out), unit).rate, len(out),
                  note=note)
        b.items.setdefault(task, []).extend({"ref": r["text"], "hyp": h, "set": suffix} for r, h in out)


def t_asr(b: Bench) -> None:
    _asr_like(b, "asr", "asr")


def t_dysarthric_asr(b: Bench) -> None:
    _asr_like(b, "dysarthric_asr", "dysarthric_asr")


def t_yue_asr(b: Bench) -> None:
    _asr_like(b, "yue_asr", "yue_asr")


def t_lyric_recognition(b: Bench) -> None:
    _asr_like(b, "lyric_recognition", "lyric_recognition")


def _answers(b: Bench, task: str, rows: list[dict], hyps: list[str] | None, train_task: str,
             key: Callable[[dict], str]) -> None:
    """Exact and lenient match; baseline: per-question majority answer of the train rows."""
    train = b.train_rows(train_task)
    overall = Counter(r.get("answer", r.get("text", "")) for r in train)
    by_q: dict[str, Counter] = {}
    for r in train:
        by_q.setdefault(key(r), Counter())[r.get("answer", r.get("text", ""))] += 1
    if overall:
        guess = [(by_q.get(key(r)) or overall).most_common(1)[0][0] for r in rows]
        refs = [r.get("answer", r.get("text", "")) for r in rows]
        b.add(task, "exact match", mean([E.exact_match(a, g) for a, g in zip(refs, guess)]), len(rows), "baseline",
              "majority train answer to the same question")
    if hyps is not None:
        refs = [r.get("answer", r.get("text", "")) for r in rows]
        b.add(task, "exact match", mean([E.exact_match(a, h) for a, h in zip(refs, hyps)]), len(rows))
        b.add(task, "lenient match (answer words in output)",
              mean([E.answer_match(a, h) for a, h in zip(refs, hyps)]), len(rows))
        b.items[task] = [{"answer": a, "hyp": h} for a, h in zip(refs, hyps)]


def t_spoken_qa(b: Bench) -> None:
    rows = b.take("spoken_qa")
    if not rows:
        raise Skip("no spoken_qa test rows")
    A = api()
    try:
        out = call_model(b, "spoken_qa", rows, lambda r: A.spoken_qa(str(b.path(r["audio"])),
                                                                      **kw(b, max_new_tokens=TEXT_TOKENS["spoken_qa"])))
    except Skip as e:
        _answers(b, "spoken_qa", rows, None, "spoken_qa", lambda r: r.get("family", ""))
        b.skip("spoken_qa", "exact match", str(e))
        return
    _answers(b, "spoken_qa", [r for r, _ in out], [h for _, h in out], "spoken_qa", lambda r: r.get("family", ""))


def t_audio_qa(b: Bench) -> None:
    rows = b.take("audio_qa")
    if not rows:
        raise Skip("no audio_qa test rows")
    A = api()
    try:
        out = call_model(b, "audio_qa", rows, lambda r: A.audio_qa(str(b.path(r["audio"])), r["question"],
                                                                    **kw(b, max_new_tokens=TEXT_TOKENS["audio_qa"])))
    except Skip as e:
        _answers(b, "audio_qa", rows, None, "audio_qa", lambda r: r.get("question", ""))
        b.skip("audio_qa", "exact match", str(e))
        return
    _answers(b, "audio_qa", [r for r, _ in out], [h for _, h in out], "audio_qa", lambda r: r.get("question", ""))


def t_spoken_qa_speech(b: Bench) -> None:
    rows = b.take("spoken_qa_speech")
    if not rows:
        raise Skip("no spoken_qa_speech test rows")
    ref = [E.answer_match(r["answer"], b.transcribe(b.path(r["audio"]))) for r in rows]
    b.add("spoken_qa_speech", "answer in Whisper transcript", mean(ref), len(rows), "baseline",
          "reference spoken answer (ceiling of the metric)")
    A = api()
    out = call_model(b, "spoken_qa_speech", rows, lambda r: A.spoken_qa_speech(
        str(b.path(r["source"])), **kw(b, max_seconds=limit_s(b, r["audio"]))))
    hyps = [b.transcribe(y) for _, y in out]
    b.add("spoken_qa_speech", "answer in Whisper transcript",
          mean([E.answer_match(r["answer"], h) for (r, _), h in zip(out, hyps)]), len(out))
    b.items["spoken_qa_speech"] = [{"answer": r["answer"], "whisper": h} for (r, _), h in zip(out, hyps)]


def edit_applied(row: dict, transcript: str) -> bool:
    """Whether a transcript shows the requested edit: it is closer (WER) to the edited sentence than to
    the source sentence, and the new word is present and the old one gone (replace), the old word gone
    (delete), or the inserted words present (insert). The first condition keeps an empty or garbled
    output from passing a deletion."""
    ed = row.get("edit", {})
    words = f" {E.normalize_text(transcript)} "
    if not E.wer(row["text"], transcript) < E.wer(row.get("source_text", ""), transcript):
        return False
    has = lambda w: f" {E.normalize_text(w)} " in words  # noqa: E731
    op = ed.get("op")
    if op == "replace":
        return has(ed["new"]) and not has(ed["old"])
    if op == "delete":
        return not has(ed["old"])
    if op == "insert":
        return has(ed["new"])
    return False


def t_speech_edit(b: Bench) -> None:
    rows = b.take("speech_edit")
    if not rows:
        raise Skip("no speech_edit test rows")
    for label, rel_key in (("copy the input (no edit)", "source"), ("reference edited audio (ceiling)", "audio")):
        tr = [b.transcribe(b.path(r[rel_key])) for r in rows]
        b.add("speech_edit", "WER to the edited sentence (Whisper)",
              E.error_rate((r["text"], t) for r, t in zip(rows, tr)).rate, len(rows), "baseline", label)
        b.add("speech_edit", "edit applied (Whisper)", mean([edit_applied(r, t) for r, t in zip(rows, tr)]),
              len(rows), "baseline", label)
    A = api()
    out = call_model(b, "speech_edit", rows, lambda r: A.speech_edit(str(b.path(r["source"])), r["instruction"],
                                                                      **kw(b, max_seconds=limit_s(b, r["audio"]))))
    tr = [b.transcribe(y) for _, y in out]
    b.add("speech_edit", "WER to the edited sentence (Whisper)",
          E.error_rate((r["text"], t) for (r, _), t in zip(out, tr)).rate, len(out))
    b.add("speech_edit", "edit applied (Whisper)", mean([edit_applied(r, t) for (r, _), t in zip(out, tr)]), len(out))
    b.items["speech_edit"] = [{"text": r["text"], "whisper": t} for (r, _), t in zip(out, tr)]


def t_speech_sound(b: Bench) -> None:
    rows = b.take("speech_sound")
    if not rows:
        raise Skip("no speech_sound test rows")
    tr = [b.transcribe(b.path(r["audio"])) for r in rows]
    b.add("speech_sound", "WER of the speech (Whisper)", E.error_rate((r["text"], t) for r, t in zip(rows, tr)).rate,
          len(rows), "baseline", "reference mixture (ceiling of the metric)")
    A = api()
    out = call_model(b, "speech_sound", rows, lambda r: A.speech_sound(
        r["text"], r.get("caption") or r.get("sound_tag", ""), **kw(b, max_seconds=limit_s(b, r["audio"]))))
    tr = [b.transcribe(y) for _, y in out]
    b.add("speech_sound", "WER of the speech (Whisper)",
          E.error_rate((r["text"], t) for (r, _), t in zip(out, tr)).rate, len(out))
    b.items["speech_sound"] = [{"text": r["text"], "whisper": t} for (r, _), t in zip(out, tr)]


SISDR, MELI = "SI-SDR improvement (dB)", "log-mel distance improvement"


def _sisdri_task(b: Bench, task: str, rows_task: str, call: Callable[[dict], np.ndarray]) -> None:
    """SI-SDR improvement and log-mel distance improvement over the noisy input, for the model and for
    three references: the noisy input itself (0 by definition), the noisy input through the codec (what
    doing nothing costs a codec-based model) and the clean target through the codec (the codec's ceiling)."""
    rows = b.take(rows_task)
    if not rows:
        raise Skip(f"no {rows_task} test rows")
    clean = lambda r: b.path(r["audio"])  # noqa: E731
    noisy = lambda r: b.path(r["source"])  # noqa: E731

    def both(ys: list[Any], rs: list[dict]) -> tuple[list[float], list[float]]:
        si = [E.si_sdr_improvement(clean(r), noisy(r), y) if len(y) else float("nan") for r, y in zip(rs, ys)]
        me = [E.mel_distance_improvement(clean(r), noisy(r), y) if len(y) else float("nan") for r, y in zip(rs, ys)]
        return si, me

    for m in (SISDR, MELI):
        b.add(task, m, 0.0, len(rows), "baseline", "copy the noisy input (0 by definition)")
    b.sanity[f"{task}_input_si_sdr_db"] = mean([E.si_sdr(E.load_audio(clean(r)), E.load_audio(noisy(r)), SR).value
                                                for r in rows])
    for label, src in (("codec resynthesis of the noisy input (do nothing, through the codec)", noisy),
                       ("codec resynthesis of the clean target (ceiling through the codec)", clean)):
        try:
            si, me = both([b.resynth(src(r)) for r in rows], rows)
            b.add(task, SISDR, mean(si), len(rows), "baseline", label)
            b.add(task, MELI, mean(me), len(rows), "baseline", label)
        except Skip as e:
            b.skip(task, SISDR, f"codec resynthesis: {e}", "baseline")
    out = call_model(b, task, rows, call)
    si, me = both([y for _, y in out], [r for r, _ in out])
    b.add(task, SISDR, mean(si), sum(not math.isnan(v) for v in si))
    b.add(task, MELI, mean(me), sum(not math.isnan(v) for v in me))
    b.items[task] = [{"audio": r["audio"], "si_sdri": v, "mel_improvement": w} for (r, _), v, w in zip(out, si, me)]


def t_denoise(b: Bench) -> None:
    A = api()
    _sisdri_task(b, "denoise", "denoise", lambda r: A.denoise(str(b.path(r["source"])),
                                                               **kw(b, max_seconds=limit_s(b, r["audio"]))))


def t_separation(b: Bench) -> None:
    A = api()
    _sisdri_task(b, "separation", "denoise", lambda r: A.separate(str(b.path(r["source"])),
                                                                   **kw(b, max_seconds=limit_s(b, r["audio"])))[0])


def t_fewshot_denoise(b: Bench) -> None:
    A = api()

    def call(r: dict) -> np.ndarray:
        ex = [(str(b.path(d["source"])), str(b.path(d["audio"]))) for d in r["demos"]]
        return A.fewshot_denoise(ex, str(b.path(r["source"])), **kw(b, max_seconds=limit_s(b, r["audio"])))

    _sisdri_task(b, "fewshot_denoise", "fewshot_denoise", call)


def t_fewshot_vc(b: Bench) -> None:
    rows = b.take("fewshot_vc")
    if not rows:
        raise Skip("no fewshot_vc test rows")
    emb = b.speaker()
    tgt = lambda r: b.path(r["demos"][0]["audio"])  # noqa: E731  (the demo's converted clip: the target voice)
    b.add("fewshot_vc", "speaker cosine to the target voice", mean([emb.similarity(b.path(r["source"]), tgt(r))
                                                                    for r in rows]),
          len(rows), "baseline", "copy the source query (no conversion)")
    b.add("fewshot_vc", "speaker cosine to the target voice", mean([emb.similarity(b.path(r["audio"]), tgt(r))
                                                                    for r in rows]),
          len(rows), "baseline", "reference converted clip (ceiling)")
    A = api()
    out = call_model(b, "fewshot_vc", rows, lambda r: A.fewshot_vc(
        [(str(b.path(d["source"])), str(b.path(d["audio"]))) for d in r["demos"]], str(b.path(r["source"])),
        **kw(b, max_seconds=limit_s(b, r["audio"]))))
    sims = [emb.similarity(y, tgt(r)) if len(y) > SR // 10 else float("nan") for r, y in out]
    b.add("fewshot_vc", "speaker cosine to the target voice", mean(sims), sum(not math.isnan(s) for s in sims))


def train_sound_classes(b: Bench) -> set[str]:
    """Every sound class a train row names: label, sound tag, few-shot class, a sound used as noise."""
    out: set[str] = set()
    for task in SOUND_TASKS:
        for r in b.train_rows(task):
            if "class" in r:  # few-shot rows of recipes.episodes: the labels are nonsense words
                out |= {r["class"], *(d.get("class", "") for d in r.get("demos", []))}
            else:
                out |= {r[k] for k in ("label", "sound_tag") if isinstance(r.get(k), str)}
                out |= {d["label"] for d in r.get("demos", []) if isinstance(d.get("label"), str)}
            if r.get("noise") == "sound" and isinstance(r.get("noise_detail"), str):
                out.add(r["noise_detail"])
    out.discard("")
    return out


def fewshot_pool(b: Bench) -> dict[str, dict[str, list[str]]]:
    """Held-out labelled sound clips of every test recipe: class → source recording → clip paths."""
    pool: dict[str, dict[str, list[str]]] = {}

    def put(cls: str, rec: str, path: str) -> None:
        clips = pool.setdefault(cls, {}).setdefault(rec, [])
        if path not in clips:
            clips.append(path)

    for task in ("audio_caption", "text_to_sound", "audio_qa"):
        for r in b.test.get(task, []):
            if r.get("label") and r.get("audio"):
                put(r["label"], recording_of(r, "audio"), r["audio"])
    for r in b.test.get("fewshot_classify", []):
        if "recording" in r:  # rows of recipes.episodes (older rows do not say their recordings)
            put(r["class"], r["recording"], r["audio"])
            for d in r["demos"]:
                put(d["class"], d["recording"], d["audio"])
    return pool


def fewshot_episodes(b: Bench) -> list[tuple[EP.Episode, list[str], str]]:
    """``--fewshot-episodes`` honest episodes (:mod:`uniaudio_lm.recipes.episodes`, nonsense names) over
    the held-out clips: ``(episode, demo clip paths in episode order, query clip path)``."""
    pool, train = fewshot_pool(b), train_sound_classes(b)
    rng = random.Random(f"fewshot|{b.seed}")
    try:
        eps = EP.episodes({c: list(recs) for c, recs in pool.items()}, b.fewshot_episodes, rng, train_classes=train)
    except EP.EpisodeError as e:
        raise Skip(f"no honest few-shot episodes: {e}") from None
    ok = EP.eligible(pool, train)
    b.sanity["fewshot_episodes"] = {
        "episodes": len(eps), "recordings_per_class": {c: len(v) for c, v in ok.items()},
        "real_classes": sorted(c for c, v in ok.items() if any(r.startswith("tuxpaint:") for r in v)),
        "left_out_train_classes": sorted(set(pool) & train),
        "left_out_single_recording": sorted(c for c in pool if c not in train and c not in ok)}
    out = []
    for ep in eps:
        used: set[str] = set()
        demos = [_pick_clip(pool[c][r], used, rng) for c, r in ep.demos]
        out.append((ep, demos, _pick_clip(pool[ep.query[0]][ep.query[1]], used, rng)))
    return out


def _pick_clip(clips: list[str], used: set[str], rng: random.Random) -> str:
    p = rng.choice([c for c in clips if c not in used] or clips)
    used.add(p)
    return p


@functools.lru_cache(maxsize=4096)
def _clip_features(path: str) -> np.ndarray:
    return E.clip_features(path)


def token_features(b: Bench, path: str) -> dict[str, np.ndarray]:
    """What a clip's tokens carry, as the language model reads them: per stream (the first reasoning and
    reconstruction codebooks the model reads), the codes turned back into the codec's quantised vectors
    (sum of the codebook entries), then their mean and standard deviation over time."""
    if path not in _TOKFEAT:
        codec = b.codec()
        x = torch.from_numpy(E.load_audio(path).astype(np.float32))[None]
        cfg = b.pipe.model.config if b.pipe is not None else None
        kr = cfg.num_reasoning_codebooks if cfg is not None else 2
        kq = cfg.num_recon_codebooks if cfg is not None else 4
        out = {}
        with torch.no_grad():
            c = codec.encode(x, sample_rate=SR, n_q=kq)
            for name, vq, codes in (("reasoning", codec.reasoning_vq, c.reasoning[:, :kr]),
                                    ("reconstruction", codec.recon_vq, c.recon[:, :kq])):
                z = vq.decode(codes.to(next(vq.parameters()).device))[0].double().cpu().numpy()  # [T, D]
                out[name] = np.concatenate([z.mean(axis=0), z.std(axis=0)])
        _TOKFEAT[path] = out
    return _TOKFEAT[path]


_TOKFEAT: dict[str, dict[str, np.ndarray]] = {}


def nearest_demo(query: np.ndarray, demos: Sequence[np.ndarray], classes: Sequence[str]) -> str:
    """The class whose mean demo is nearest the query (cosine of clip features standardised over the
    episode's clips): the acoustic baseline, no language model."""
    allf = np.array([*demos, query])
    mu, sd = allf.mean(axis=0), allf.std(axis=0) + 1e-6
    cent: dict[str, list[np.ndarray]] = {}
    for f, c in zip(demos, classes):
        cent.setdefault(c, []).append((f - mu) / sd)
    return max(cent, key=lambda c: E.cosine(np.mean(cent[c], axis=0), (query - mu) / sd))


def wilson(hits: Sequence[bool], z: float = 1.96) -> str:
    """95% Wilson interval of a proportion, as text."""
    n = len(hits)
    if not n:
        return "no items"
    p = sum(hits) / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return f"95% CI {max(0.0, c - h):.2f}-{min(1.0, c + h):.2f}"


def t_fewshot_classify(b: Bench) -> None:
    eps = fewshot_episodes(b)
    n = len(eps)
    info = b.sanity["fewshot_episodes"]
    what = (f"{len(info['recordings_per_class'])} held-out classes ({len(info['real_classes'])} real), "
            "query and demos from different recordings")
    b.add("fewshot_classify", "accuracy", 0.5, n, "baseline", "chance (2-way)")
    guess = [nearest_demo(_clip_features(str(b.path(q))), [_clip_features(str(b.path(p))) for p in demos],
                          [c for c, _ in ep.demos]) for ep, demos, q in eps]
    base = [g == ep.query[0] for g, (ep, _, _) in zip(guess, eps)]
    b.add("fewshot_classify", "accuracy", mean(base), n, "baseline",
          f"nearest demo by log-mel statistics (no language model); {wilson(base)}", "reference")
    try:  # what the model's input streams carry: the same rule on the clips' tokens
        for stream in ("reasoning", "reconstruction"):
            feats = [(token_features(b, str(b.path(q)))[stream],
                      [token_features(b, str(b.path(p)))[stream] for p in demos]) for _, demos, q in eps]
            tok = [nearest_demo(fq, fd, [c for c, _ in ep.demos]) == ep.query[0] for (fq, fd), (ep, _, _) in
                   zip(feats, eps)]
            b.add("fewshot_classify", "accuracy", mean(tok), n, "baseline",
                  f"nearest demo by {stream} tokens (their codebook vectors' mean and spread; no language "
                  f"model); {wilson(tok)}", "reference")
    except Skip:
        pass
    A = api()
    rng = random.Random(f"fewshot-names|{b.seed}")
    hyps: dict[str, list[Any]] = {}
    for naming, metric in (("nonsense", "accuracy"), ("shuffled", "accuracy (real names shuffled)")):
        runs = [(ep if ep.naming == naming else EP.renamed(ep, naming, rng), demos, q) for ep, demos, q in eps]
        out = call_model(b, "fewshot_classify", runs, lambda e: A.fewshot_classify(
            [(str(b.path(p)), e[0].names[c]) for p, (c, _) in zip(e[1], e[0].demos)], str(b.path(e[2])),
            labels=e[0].labels, **kw(b)))
        hits = [h == e[0].answer for e, h in out]
        b.add("fewshot_classify", metric, mean(hits), len(out),
              note=f"{naming} labels; {what}; {wilson(hits)}")
        hyps[naming] = [(e[0].names, h) for e, h in out]
    b.items["fewshot_classify"] = [
        {"classes": list(ep.classes), "answer": ep.query[0], "demos": [list(d) for d in ep.demos],
         "query": list(ep.query), "nearest_demo": g} for (ep, _, _), g in zip(eps, guess)]
    b.items["fewshot_classify_model"] = {k: [{"names": dict(nm), "hyp": h} for nm, h in v] for k, v in hyps.items()}


def _classify_generated(b: Bench, task: str, clf: E.AudioClassifier, rows: list[dict], label: Callable[[dict], str],
                        gen: Callable[[dict], np.ndarray], what: str) -> None:
    rows = [r for r in rows if label(r) in clf.classes]
    if not rows:
        raise Skip(f"no {task} test rows of a class the classifier knows")
    refs = [label(r) for r in rows]
    real = [clf.predict(b.path(r["audio"])) for r in rows]
    b.add(task, f"{what} classifier accuracy", E.accuracy(refs, real), len(rows), "sanity",
          f"real test clips ({len(clf.classes)} classes; chance {1 / len(clf.classes):.2f})")
    maj = Counter(refs).most_common(1)[0][1] / len(refs)
    b.add(task, f"{what} classifier accuracy", maj, len(rows), "baseline", "majority class of the test rows")
    out = call_model(b, task, rows, gen)
    hyps = [clf.predict(y) if len(y) > SR // 10 else "" for _, y in out]
    b.add(task, f"{what} classifier accuracy", E.accuracy([label(r) for r, _ in out], hyps), len(out))
    b.items[task] = [{"label": label(r), "predicted": h} for (r, _), h in zip(out, hyps)]


def t_text_to_sound(b: Bench) -> None:
    rows = b.take("text_to_sound")
    if not rows:
        raise Skip("no text_to_sound test rows")
    # test sound classes are held out of every train row (by design of the recipes), so the class
    # classifier learns them from the *other* test recipes' clips: audio_caption, audio_qa and the
    # few-shot demos/queries (different clips than the text_to_sound references it is checked on)
    train = []
    for task in ("audio_caption", "audio_qa"):
        train += [(b.path(r["audio"]), r["label"]) for r in b.test.get(task, []) if r.get("label")]
    for r in b.test.get("fewshot_classify", []):  # "class": the true class (labels are nonsense words)
        train += [(b.path(d["audio"]), d.get("class", d["label"])) for d in r.get("demos", [])]
    clf = fit_classifier(b, "sound_class", train)
    A = api()
    _classify_generated(b, "text_to_sound", clf, rows, lambda r: r["label"],
                        lambda r: A.text_to_sound(r["caption"], **kw(b, max_seconds=limit_s(b, r["audio"]))),
                        "sound-class")


def t_text_to_music(b: Bench) -> None:
    # rows whose caption names one instrument (a lead-over-accompaniment or mixed arrangement has no
    # single right answer for a family classifier)
    rows = b.take("text_to_music", None, lambda r: r.get("facts", {}).get("arrangement", "single") == "single")
    if not rows:
        raise Skip("no single-instrument text_to_music test rows")
    label = lambda r: music_family(r.get("instrument") or (r.get("instruments") or [""])[0])  # noqa: E731
    train = [(b.path(r["audio"]), label(r)) for t in ("text_to_music",) for r in b.train_rows(t)]
    clf = fit_classifier(b, "instrument_family", train)
    A = api()
    _classify_generated(b, "text_to_music", clf, rows, label,
                        lambda r: A.text_to_music(r["caption"], **kw(b, max_seconds=limit_s(b, r["audio"]))),
                        "instrument-family")


def sound_keywords(r: dict) -> list[Any]:
    return [r["label"]] if r.get("label") else []


def music_keywords(r: dict) -> list[Any]:
    keys: list[Any] = []
    inst = r.get("instrument") or (r.get("instruments") or [None])[0]
    if inst:
        keys.append([inst, str(inst).split()[-1]])
    if r.get("tempo_bpm"):
        bpm = int(r["tempo_bpm"])
        keys.append("slow" if bpm < 80 else ("fast" if bpm > 125 else "moderate"))
    if r.get("key"):
        keys.append(r["key"])
    return keys


def _caption_task(b: Bench, task: str, fn_name: str, keys: Callable[[dict], list[Any]]) -> None:
    rows = [r for r in b.take(task) if keys(r)]
    if not rows:
        raise Skip(f"no {task} test rows with key facts")
    ref = [E.keyword_accuracy(r.get("caption", r.get("text", "")), keys(r)) for r in rows]
    b.add(task, "key facts in caption", mean(ref), len(rows), "baseline", "reference caption (ceiling)")
    other = [E.keyword_accuracy(rows[(i + 1) % len(rows)].get("caption", ""), keys(r)) for i, r in enumerate(rows)]
    b.add(task, "key facts in caption", mean(other), len(rows), "baseline", "caption of another test clip (chance)")
    A = api()
    fn = getattr(A, fn_name)
    out = call_model(b, task, rows, lambda r: fn(str(b.path(r["audio"])), **kw(b, max_new_tokens=TEXT_TOKENS[task])))
    b.add(task, "key facts in caption", mean([E.keyword_accuracy(h, keys(r)) for r, h in out]), len(out))
    b.items[task] = [{"keys": keys(r), "caption": h} for r, h in out]


def t_audio_caption(b: Bench) -> None:
    _caption_task(b, "audio_caption", "audio_caption", sound_keywords)


def t_music_caption(b: Bench) -> None:
    _caption_task(b, "music_caption", "music_caption", music_keywords)


def t_song(b: Bench) -> None:
    rows = b.take("song", None, lambda r: r.get("language", "en") == "en")
    if not rows:
        raise Skip("no English song test rows")
    text = lambda r: r.get("lyric") or r.get("text", "")  # noqa: E731
    tr = [b.transcribe(b.path(r["audio"])) for r in rows]
    b.add("song", "WER of the lyrics (Whisper)", E.error_rate((text(r), t) for r, t in zip(rows, tr)).rate, len(rows),
          "baseline", "reference sung clip (ceiling of the metric)")
    A = api()
    out = call_model(b, "song", rows, lambda r: A.song(text(r), **kw(b, language="en", style=r.get("caption"),
                                                                       max_seconds=limit_s(b, r["audio"]))))
    tr = [b.transcribe(y) for _, y in out]
    b.add("song", "WER of the lyrics (Whisper)", E.error_rate((text(r), t) for (r, _), t in zip(out, tr)).rate,
          len(out))
    b.items["song"] = [{"lyric": text(r), "whisper": t} for (r, _), t in zip(out, tr)]


TASK_FNS: dict[str, Callable[[Bench], None]] = {
    "tts": t_tts, "instruct_tts": t_instruct_tts, "voice_tts": t_voice_tts, "asr": t_asr,
    "dysarthric_asr": t_dysarthric_asr, "yue_asr": t_yue_asr, "spoken_qa": t_spoken_qa,
    "spoken_qa_speech": t_spoken_qa_speech, "speech_edit": t_speech_edit, "speech_sound": t_speech_sound,
    "denoise": t_denoise, "separation": t_separation, "text_to_sound": t_text_to_sound,
    "audio_caption": t_audio_caption, "audio_qa": t_audio_qa, "text_to_music": t_text_to_music,
    "music_caption": t_music_caption, "song": t_song, "lyric_recognition": t_lyric_recognition,
    "fewshot_denoise": t_fewshot_denoise, "fewshot_vc": t_fewshot_vc, "fewshot_classify": t_fewshot_classify,
}
MAIN_METRIC = {"tts": "WER (Whisper tiny.en)", "instruct_tts": RATE_METRIC,
               "voice_tts": "speaker cosine to the voice prompt", "asr": "CER (en)", "dysarthric_asr": "CER (en)",
               "yue_asr": "CER (yue)", "spoken_qa": "exact match", "audio_qa": "exact match",
               "spoken_qa_speech": "answer in Whisper transcript",
               "speech_edit": "WER to the edited sentence (Whisper)",
               "speech_sound": "WER of the speech (Whisper)", "denoise": "SI-SDR improvement (dB)",
               "separation": "SI-SDR improvement (dB)", "fewshot_denoise": "SI-SDR improvement (dB)",
               "text_to_sound": "sound-class classifier accuracy",
               "text_to_music": "instrument-family classifier accuracy", "audio_caption": "key facts in caption",
               "music_caption": "key facts in caption", "song": "WER of the lyrics (Whisper)",
               "lyric_recognition": "CER (en)", "fewshot_vc": "speaker cosine to the target voice",
               "fewshot_classify": "accuracy"}


def registry_tasks() -> list[str]:
    """User-facing registry tasks (pre-training layouts left out), in registry order."""
    try:
        from uniaudio_lm import registry

        return [n for n, s in registry.TASKS.items() if s.category != "pretrain"]
    except ImportError:
        return list(TASK_FNS)


# ====================================================================== model loading and output
def load_pipeline(args: argparse.Namespace) -> tuple[Any, str, str]:
    """(pipeline or None, reason when None, description)."""
    if args.random_tiny:
        import reasoningcodec
        import uniaudio_lm as ul
        from uniaudio_lm.pipeline import Pipeline

        tok = ul.default_tokenizer()
        codec = reasoningcodec.load()
        torch.manual_seed(args.seed)
        cfg = ul.UniAudioConfig.preset("tiny", codec.config, text_vocab_size=tok.vocab_size)
        return Pipeline(ul.UniAudioLM(cfg), tok, codec), "", "RANDOMLY INITIALISED tiny model (smoke test only)"
    try:
        from uniaudio_lm import api as A

        pipe = A.load(args.model) if args.model else A.load()
        n = sum(p.numel() for p in pipe.model.parameters()) / 1e6
        return pipe, "", f"{args.model or 'installed default pipeline'} ({n:.1f} M parameters)"
    except Exception as e:  # no weights installed / unreadable folder: the benchmark still runs its baselines
        msg = str(e).strip().splitlines()
        return None, f"model not available: {msg[0] if msg else type(e).__name__}", "none"


def fmt(v: Any, metric: str) -> str:
    if v is None:
        return "—"
    if any(k in metric for k in ("dB", "cosine", "AUC", "log-mel")):
        return f"{v:.2f}"
    return f"{100 * v:.1f}%"


def markdown(b: Bench, meta: dict[str, Any]) -> str:
    lines = ["# uniaudio_lm per-task benchmark\n",
             f"Model: {meta['model']}. Data: `{meta['data']}` (held-out test rows). Date: {meta['date']}. "
             f"{meta['machine']['threads']} thread(s), {meta['seconds']:.0f} s in all. "
             f"Whisper: {meta['whisper']}.\n",
             "Rows: **model** = the model's output; *baseline* = a trivial output or a ceiling of the metric; "
             "*sanity* = the learned metric on real held-out audio. Percentages are rates or accuracies.\n",
             "| task | metric | kind | value | n | target | met? | note |", "|---|---|---|---|---|---|---|---|"]
    for r in b.rows:
        met = "" if r["met"] is None else ("yes" if r["met"] else "no")
        kind = f"**{r['kind']}**" if r["kind"] == "model" else f"*{r['kind']}*"
        lines.append(f"| {r['task']} | {r['metric']} | {kind} | {fmt(r['value'], r['metric'])} | {r['n']} | "
                     f"{r['target']} | {met} | {r['note']} |")
    lines.append("\nSeconds per task: " + ", ".join(f"{k} {v:.0f}" for k, v in b.timing.items()) + ".\n")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="pipeline folder for uniaudio_lm.load (default: the installed pipeline)")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "lm", help="recipe output folder (default data/lm)")
    p.add_argument("--per-task", type=int, default=20, help="test rows per task (default 20)")
    p.add_argument("--tts-en-rows", type=int, default=100, help="English tts rows (target task; default 100)")
    p.add_argument("--asr-en-rows", type=int, default=100,
                   help="English asr rows of grammar sentences (default 100; every everyday sentence is used)")
    p.add_argument("--tasks", default="", help="comma list of tasks (default: every registry task)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch and Whisper threads (default 1)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "lm_tasks.json")
    p.add_argument("--fewshot-episodes", type=int, default=200, help="few-shot episodes (default 200)")
    p.add_argument("--instruct-pairs", type=int, default=50, help="InstructTTS rate and pitch pairs (default 50)")
    p.add_argument("--random-tiny", action="store_true",
                   help="TESTS ONLY: a randomly initialised tiny model (write --out somewhere else, e.g. /tmp)")
    p.add_argument("--status-out", type=Path, default=None,
                   help="task status file (default: task_status.json beside the benchmarked weights)")
    p.add_argument("--no-status", action="store_true", help="do not write the task status file")
    p.add_argument("--merge", type=Path, nargs="+", default=None, metavar="RESULTS_JSON",
                   help="combine results files of task subsets run in parallel processes (same model, data, "
                        "seed) into --out and its table, then write the task status as --status-from does")
    p.add_argument("--status-from", type=Path, default=None, metavar="RESULTS_JSON",
                   help="only write the task status from an earlier results file, measured on the weights "
                        "of --model (default: the installed ones)")
    return p.parse_args(argv)


def weights_dir(a: argparse.Namespace) -> Path:
    from uniaudio_lm.pipeline import DEFAULT_DIR

    return Path(a.model) if a.model else DEFAULT_DIR


def write_status(rows: list[dict], tasks: Sequence[str], bench_meta: dict[str, Any], weights: Path,
                 out: Path | None) -> Path:
    """``task_status.json`` for the weights in ``weights`` from these result rows: the tasks in ``tasks``
    are (re)assessed, every other registry task keeps its entry if the file was written for the same
    weights, else it is experimental, not measured."""
    from uniaudio_lm.registry import TASKS

    path = out or weights / S.STATUS_NAME
    sha = S.weights_sha256(weights)
    try:
        old = S.StatusTable.from_json(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None
    except (ValueError, TypeError):
        old = None
    same = old is not None and old.weights_sha256 == sha
    keep = {t: v for t, v in old.tasks.items() if t not in tasks} if same and old is not None else {}
    table = S.from_rows(rows, [t for t in TASKS if t not in keep], MAIN_METRIC, bench_meta, sha)
    table.tasks.update(keep)
    if keep and old is not None:
        table.benchmark["kept_from"] = old.benchmark.get("date", "")
    table.save(path)
    return path


def status_from(a: argparse.Namespace) -> int:
    """``--status-from``: the task status of an earlier results file."""
    res = json.loads(a.status_from.read_text(encoding="utf-8"))
    meta = res.get("meta", {})
    tasks = sorted({r["task"] for r in res["rows"]})
    path = write_status(res["rows"], tasks, _status_meta(meta, a.status_from), weights_dir(a), a.status_out)
    table = S.StatusTable.from_json(json.loads(path.read_text(encoding="utf-8")))
    for t, st in table.tasks.items():
        print(f"{t:18s} {st.status:12s} {st.metric[:34]:34s} {'-' if st.score is None else f'{st.score:.3g}':>7s} "
              f"{st.note[:70]}")
    print(f"wrote {path}")
    return 0


def _status_meta(meta: dict[str, Any], results: Path) -> dict[str, Any]:
    try:
        rel = results.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        rel = str(results)
    return {"date": meta.get("date", ""), "results": rel, "model": meta.get("model", ""),
            "data": meta.get("data", "")}


def merge(a: argparse.Namespace) -> int:
    """``--merge``: one results file and table from several runs over disjoint task subsets."""
    parts = [json.loads(f.read_text(encoding="utf-8")) for f in a.merge]
    models = {p["meta"].get("model") for p in parts}
    if len(models) != 1:
        print(f"the results files are of different models: {sorted(map(str, models))}", file=sys.stderr)
        return 2
    order = {t: i for i, t in enumerate(registry_tasks())}
    b = Bench(a.data, None, "", a.per_task, a.tts_en_rows, a.asr_en_rows, a.seed, a.threads)
    for p in parts:
        b.rows += p["rows"]
        b.items.update(p.get("items", {}))
        b.sanity.update(p.get("sanity", {}))
        b.timing.update(p.get("timing_s", {}))
    b.rows.sort(key=lambda r: order.get(r["task"], len(order)))  # stable: each task keeps its row order
    meta = {**parts[0]["meta"], "seconds": max(p["meta"]["seconds"] for p in parts),
            "cpu_seconds": sum(p["meta"]["seconds"] for p in parts), "merged_from": [str(f) for f in a.merge]}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"meta": meta, "rows": b.rows, "sanity": b.sanity, "timing_s": b.timing,
                                 "items": b.items}, indent=1, default=float))
    a.out.with_suffix(".md").write_text(markdown(b, meta))
    print(f"wrote {a.out} and {a.out.with_suffix('.md')} from {len(parts)} files")
    if a.no_status:
        return 0
    a.status_from = a.out
    return status_from(a)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.merge:
        return merge(a)
    if a.status_from is not None:
        return status_from(a)
    torch.set_num_threads(a.threads)
    t_start = time.perf_counter()
    tasks = [t.strip() for t in a.tasks.split(",") if t.strip()] or registry_tasks()
    unknown = [t for t in tasks if t not in TASK_FNS]
    if unknown:
        print(f"unknown task(s) {unknown}; known: {', '.join(TASK_FNS)}", file=sys.stderr)
        return 2
    if not (a.data / "test").is_dir():
        print(f"no test metadata in {a.data / 'test'} (python -m uniaudio_lm.recipes build {a.data})", file=sys.stderr)
        return 2
    pipe, reason, desc = load_pipeline(a)
    if pipe is None:
        print(reason, file=sys.stderr)
    b = Bench(a.data, pipe, reason, a.per_task, a.tts_en_rows, a.asr_en_rows, a.seed, a.threads,
              a.fewshot_episodes, a.instruct_pairs, test=read_rows(a.data / "test"))
    for t in tasks:
        t0 = time.perf_counter()
        n0 = len(b.rows)
        try:
            TASK_FNS[t](b)
        except Skip as e:
            b.skip(t, MAIN_METRIC.get(t, "—"), str(e))
        except Exception as e:  # a bug in one task's scoring must not lose the others' results
            b.skip(t, MAIN_METRIC.get(t, "—"), f"benchmark error: {type(e).__name__}: {str(e)[:200]}")
            traceback.print_exc()
        if not any(r["kind"] == "model" for r in b.rows[n0:]):  # baselines ran, the model did not
            if b.pipe is None:
                b.skip(t, MAIN_METRIC.get(t, "—"), b.model_reason)
        b.timing[t] = time.perf_counter() - t0
        for r in b.rows[n0:]:
            print(f"{r['task']:18s} {r['kind']:8s} {r['metric'][:42]:42s} {fmt(r['value'], r['metric']):>8s} "
                  f"n={r['n']:<3d} {r['note'][:60]}", flush=True)
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "model": desc, "data": str(a.data),
            "whisper": E.whisper_status() if E.whisper_status() != "ok" else "tiny.en (CTranslate2 int8, beam 5)",
            "seconds": time.perf_counter() - t_start,
            "machine": {"python": platform.python_version(), "torch": torch.__version__,
                        "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine()},
            "args": {k: str(v) for k, v in vars(a).items()}}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"meta": meta, "rows": b.rows, "sanity": b.sanity, "timing_s": b.timing,
                                 "items": b.items}, indent=1, default=float))
    a.out.with_suffix(".md").write_text(markdown(b, meta))
    print(f"wrote {a.out} and {a.out.with_suffix('.md')} ({meta['seconds']:.0f} s)")
    if a.no_status or pipe is None or a.random_tiny:
        print("task status not written (--no-status, no model, or --random-tiny)")
    else:
        print(f"wrote {write_status(b.rows, tasks, _status_meta(meta, a.out), weights_dir(a), a.status_out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
