"""Recipe registry and the ``build`` driver (one process, one thread: it must not compete with training)."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .common import SPLITS, Context, RecipeError, audio_refs

RecipeFn = Callable[[Context], Dict[str, List[dict]]]


@dataclass(frozen=True)
class Recipe:
    name: str
    tasks: Tuple[str, ...]
    fn: RecipeFn
    summary: str


def _recipes() -> Dict[str, Recipe]:
    from . import music, pairs, pretrain, real_speech, sounds, speech

    table = [
        Recipe("espeak_tts", ("tts",), speech.espeak_tts, "espeak-ng TTS, English/Mandarin/Cantonese"),
        Recipe("espeak_asr", ("asr",), speech.espeak_asr, "espeak-ng ASR, English and Mandarin"),
        Recipe("espeak_yue", ("yue_asr",), speech.espeak_yue, "espeak-ng Cantonese ASR"),
        Recipe("espeak_instruct", ("instruct_tts",), speech.espeak_instruct, "style-captioned TTS"),
        Recipe("espeak_voice", ("voice_tts",), speech.espeak_voice, "voice-prompted TTS"),
        Recipe("everyday_en", ("asr", "tts"), speech.everyday_en, "everyday English test sentences (test only)"),
        Recipe("wordnet_speech", ("asr", "tts"), speech.wordnet_speech, "WordNet usage examples read by espeak-ng"),
        Recipe("real_asr", ("asr",), real_speech.real_asr, "real transcribed English recordings (train only)"),
        Recipe("espeak_dysarthric", ("dysarthric_asr",), speech.espeak_dysarthric, "distorted speech ASR (test)"),
        Recipe("espeak_qa", ("spoken_qa", "spoken_qa_speech"), speech.espeak_qa, "templated spoken QA"),
        Recipe("espeak_edit", ("speech_edit",), speech.espeak_edit, "word-level speech editing"),
        Recipe("speech_sound_mix", ("speech_sound",), sounds.speech_sound_mix, "speech over a sound effect"),
        Recipe("sfx_caption", ("text_to_sound", "audio_caption"), sounds.sfx_caption, "sound effects and captions"),
        Recipe("sfx_qa", ("audio_qa",), sounds.sfx_qa, "questions about sound effects"),
        Recipe("sfx_fewshot", ("fewshot_classify",), sounds.sfx_fewshot, "2-way few-shot sound classes"),
        Recipe("midi_caption", ("text_to_music", "music_caption"), music.midi_caption, "FluidSynth score excerpts"),
        Recipe("sung_lyrics", ("song", "lyric_recognition"), music.sung_lyrics, "pitch-following espeak singing"),
        Recipe("noise_pairs", ("denoise", "fewshot_denoise"), pairs.noise_pairs, "noisy/clean speech pairs"),
        Recipe("vc_pairs", ("fewshot_vc",), pairs.vc_pairs, "same text in two espeak voices"),
        Recipe("pretrain", ("continue", "reason_to_recon", "recon_to_reason"), pretrain.pretrain,
               "audio-only and token-translation rows over the clips above"),
    ]
    return {r.name: r for r in table}


RECIPES: Dict[str, Recipe] = _recipes()


def read_rows(out_dir: Path, split: str, recipes: Optional[Sequence[str]] = None) -> List[dict]:
    """All rows of ``OUT_DIR/<split>/*.jsonl`` (registry order), optionally only some recipes."""
    rows: List[dict] = []
    names = list(RECIPES) if recipes is None else list(recipes)
    extra = sorted(p.stem for p in (Path(out_dir) / split).glob("*.jsonl") if p.stem not in RECIPES)
    for name in names + ([] if recipes is not None else extra):
        f = Path(out_dir) / split / f"{name}.jsonl"
        if f.exists():
            rows += [json.loads(ln) for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return rows


def _write_jsonl(path: Path, rows: List[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, path)


def _check(recipe: Recipe, out_dir: Path, rows: Dict[str, List[dict]]) -> None:
    for split, rs in rows.items():
        if split not in SPLITS:
            raise ValueError(f"{recipe.name}: unknown split {split!r}")
        for r in rs:
            if r.get("task") not in recipe.tasks or r.get("recipe") != recipe.name or "audio" not in r:
                raise ValueError(f"{recipe.name}: bad row {r}")
            for a in audio_refs(r):
                if not (out_dir / a).is_file():
                    raise ValueError(f"{recipe.name}: row refers to a missing clip {a}")


def _load_info(out_dir: Path) -> Dict[str, Any]:
    f = out_dir / "build_info.json"
    return json.loads(f.read_text(encoding="utf-8")) if f.exists() else {"recipes": {}, "skipped": {}}


def build(out_dir: Path | str, recipes: Optional[Sequence[str]] = None, scale: float = 1.0, seed: int = 0,
          force: bool = False, options: Optional[Dict[str, object]] = None,
          log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Build the selected recipes (default: all, registry order) into ``out_dir``; returns ``build_info``.

    A recipe whose ``train``/``test`` JSONL files exist is skipped unless ``force`` (then its clips are
    deleted and rebuilt). A recipe that cannot run (missing tool or source) is reported and skipped.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    out_dir = Path(out_dir)
    names = list(RECIPES) if not recipes else list(recipes)
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise ValueError(f"unknown recipe(s) {unknown}; known: {', '.join(RECIPES)}")
    if "pretrain" in names:  # it lists clips of the others, so it runs last
        names = [n for n in names if n != "pretrain"] + ["pretrain"]
    out_dir.mkdir(parents=True, exist_ok=True)
    info = _load_info(out_dir)
    info.setdefault("recipes", {})
    info.setdefault("skipped", {})
    for name in names:
        recipe = RECIPES[name]
        files = [out_dir / s / f"{name}.jsonl" for s in SPLITS]
        prev = info["recipes"].get(name)
        if all(f.exists() for f in files) and not force:
            if prev and (prev.get("seed"), prev.get("scale")) != (seed, scale):
                raise ValueError(f"{name} in {out_dir} was built with seed {prev.get('seed')}, scale "
                                 f"{prev.get('scale')}; pass --force to rebuild it with seed {seed}, scale {scale}")
            log(f"[{name}] already built, skipped (use --force to rebuild)")
            continue
        shutil.rmtree(out_dir / "audio" / name, ignore_errors=True)
        for f in files:
            f.unlink(missing_ok=True)
        ctx = Context(out_dir=out_dir, recipe=name, seed=seed, scale=scale, options=dict(options or {}))
        t0 = time.monotonic()
        try:
            rows = recipe.fn(ctx)
        except RecipeError as e:
            log(f"[{name}] SKIPPED: {e}")
            info["skipped"][name] = str(e)
            info["recipes"].pop(name, None)
            _write_info(out_dir, info)
            continue
        _check(recipe, out_dir, rows)
        for split, f in zip(SPLITS, files):
            _write_jsonl(f, rows.get(split, []))
        secs = time.monotonic() - t0
        counts = {s: _count(rows.get(s, [])) for s in SPLITS}
        info["recipes"][name] = {"seconds": round(secs, 1), "clips": ctx.written, "rows": counts, "seed": seed,
                                 "scale": scale}
        info["skipped"].pop(name, None)
        _write_info(out_dir, info)
        log(f"[{name}] {secs:.1f} s, {ctx.written} clips, rows " +
            "; ".join(f"{s}: {', '.join(f'{t} {n}' for t, n in c.items()) or '-'}" for s, c in counts.items()))
    return info


def _count(rows: List[dict]) -> Dict[str, int]:
    c: Dict[str, int] = {}
    for r in rows:
        c[r["task"]] = c.get(r["task"], 0) + 1
    return dict(sorted(c.items()))


def _write_info(out_dir: Path, info: Dict[str, Any]) -> None:
    tmp = out_dir / f"build_info.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / "build_info.json")


TEXT_FIELDS = ("text", "transcript", "source_text", "voice_text", "lyric", "answer_text")


def _texts(r: dict) -> List[str]:
    out = [r[k] for k in TEXT_FIELDS if isinstance(r.get(k), str) and r.get("task") not in _LABEL_TASKS]
    out += [d["transcript"] for d in r.get("demos", []) if "transcript" in d]
    return out


_LABEL_TASKS = ("fewshot_classify", "audio_qa", "audio_caption", "spoken_qa")


def _sound_labels(r: dict) -> List[str]:
    if "class" in r:  # few-shot rows: labels are nonsense words, the true classes are in "class"
        return [r["class"]] + [d["class"] for d in r.get("demos", []) if "class" in d]
    out = [r[k] for k in ("label", "sound_tag") if k in r]
    out += list(r.get("labels", [])) + [d["label"] for d in r.get("demos", []) if "label" in d]
    if r.get("noise") == "sound":
        out.append(r["noise_detail"])
    return out


def check(out_dir: Path | str) -> List[str]:
    """Problems of a built folder (empty list: fine): missing or malformed clips (24 kHz mono, 1-6 s),
    a sentence/transcript or a question used in both splits, a held-out sound class in a train row."""
    import soundfile as sf

    from .sound_classes import held_out

    out_dir = Path(out_dir)
    problems: List[str] = []
    texts: Dict[str, set] = {s: set() for s in SPLITS}
    checked: set = set()
    for split in SPLITS:
        for r in read_rows(out_dir, split):
            for a in audio_refs(r):
                if a in checked:
                    continue
                checked.add(a)
                f = out_dir / a
                if not f.is_file():
                    problems.append(f"missing clip {a}")
                    continue
                i = sf.info(str(f))
                if i.samplerate != 24_000 or i.channels != 1 or not 0.99 <= i.duration <= 6.001:
                    problems.append(f"{a}: {i.samplerate} Hz, {i.channels} channels, {i.duration:.2f} s")
            texts[split] |= set(_texts(r))
            if r["task"] in ("spoken_qa", "spoken_qa_speech"):
                texts[split].add("Q: " + r["transcript"])
            if split == "train":
                problems += [f"held-out sound class {lab!r} in a train row of {r['recipe']}"
                             for lab in _sound_labels(r) if held_out(lab)]
    problems += [f"text in both splits: {t!r}" for t in sorted(texts["train"] & texts["test"])]
    return problems


def summary(out_dir: Path | str) -> str:
    """Rows per split and task, clips and hours of audio."""
    import soundfile as sf

    out_dir = Path(out_dir)
    lines = []
    for split in SPLITS:
        rows = read_rows(out_dir, split)
        c = _count(rows)
        lines.append(f"{split}: {len(rows)} rows")
        lines += [f"  {t:20s} {n}" for t, n in c.items()]
    files = sorted((out_dir / "audio").rglob("*.flac"))
    hours = sum(sf.info(str(f)).duration for f in files) / 3600.0
    lines.append(f"clips: {len(files)} ({hours:.2f} h)")
    info = _load_info(out_dir)
    if info.get("recipes"):
        lines.append("build seconds: " + ", ".join(f"{k} {v['seconds']}" for k, v in info["recipes"].items()) +
                     f" (total {sum(v['seconds'] for v in info['recipes'].values()):.0f} s)")
    for k, v in info.get("skipped", {}).items():
        lines.append(f"skipped {k}: {v}")
    return "\n".join(lines)
