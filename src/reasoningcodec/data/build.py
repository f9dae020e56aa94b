"""Build the codec training corpus: ``python -m reasoningcodec.data build OUT_DIR``.

Layout written under ``OUT_DIR``::

    clips/<source>/<id>.flac   24 kHz mono 16-bit FLAC, 1-12 s each
    parts/<source>.jsonl       per-item records (resume state; one line per input item)
    manifest.tsv               all clips of all sources built so far (atomic rewrite)

Resuming: items already recorded in ``parts/`` are skipped, so re-running the same
command is cheap, and adding sources later keeps the earlier ones in the manifest.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from tqdm import tqdm

from . import audio
from .items import (
    DEFAULT_GCOMPRIS_DIR, GCOMPRIS_URL, MANIFEST_COLUMNS, BuildConfig, Item, clean_field, safe_id, split_for,
)

SourceFn = Callable[[BuildConfig], Iterable[Item]]


def _registry() -> Dict[str, SourceFn]:
    """Source name -> item generator, in priority order."""
    from . import sources_espeak, sources_gcompris, sources_music, sources_real

    return {
        "fsdd": sources_real.fsdd,
        "tuxpaint": sources_real.tuxpaint,
        "fillets": sources_real.fillets,
        "ktuberling": sources_real.ktuberling,
        "asterisk_tel": sources_real.asterisk,
        "gcompris": sources_gcompris.gcompris,
        "espeak": sources_espeak.espeak,
        "warzone": sources_music.warzone,
        "midi": sources_music.midi,
    }


DEFAULT_SOURCES = ("fsdd", "tuxpaint", "fillets", "ktuberling", "asterisk_tel", "espeak", "warzone", "midi")
"""All but ``gcompris``: it needs a git checkout (``--gcompris-dir``) and stops the build without one."""


def load_parts(parts_file: Path) -> Dict[str, List[Dict[str, str]]]:
    """Read a source's resume file: item id -> manifest rows (last record wins)."""
    done: Dict[str, List[Dict[str, str]]] = {}
    if not parts_file.exists():
        return done
    with parts_file.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # torn last line after a crash
                continue
            done[rec["item_id"]] = rec["rows"]
    return done


def process_item(item: Item, out_dir: Path) -> List[Dict[str, str]]:
    """Decode/render one item, write its clips, return their manifest rows."""
    extra: Dict[str, str] = {}
    if item.render is not None:
        x, sr, extra = item.render()
    else:
        assert item.path is not None
        x, sr = audio.decode(item.path)
    clips = audio.prepare_clips(x, sr, trim=item.trim, seg_s=item.seg_s)
    fields = {
        "language": item.language, "speaker": item.speaker, "transcript": item.transcript,
        "phonemes": item.phonemes, "analysis_text": item.analysis_text,
    }
    fields.update(extra)
    split = split_for(item.source, item.group)
    rows: List[Dict[str, str]] = []
    base = safe_id(item.item_id)
    for i, clip in enumerate(clips):
        name = f"{base}.flac" if len(clips) == 1 else f"{base}__{i:03d}.flac"
        rel = Path("clips") / item.source / name
        audio.write_flac(out_dir / rel, clip)
        row = {
            "path": rel.as_posix(), "source": item.source, "category": item.category,
            "split": split, "duration_s": f"{clip.size / audio.TARGET_SR:.3f}",
            "license": item.license, **fields,
        }
        if len(clips) > 1 and item.category == "speech":
            # A transcript cannot be aligned to a segment: keep it only as context.
            row["transcript"] = ""
            row["phonemes"] = ""
            row["analysis_text"] = (row["analysis_text"] + f" segment {i + 1} of {len(clips)}.").strip()
        rows.append({k: clean_field(row.get(k, "")) for k in MANIFEST_COLUMNS})
    return rows


def build_source(name: str, fn: SourceFn, cfg: BuildConfig) -> int:
    """Build one source; returns how many clips it has in total."""
    parts_dir = cfg.out_dir / "parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    parts_file = parts_dir / f"{name}.jsonl"
    done = load_parts(parts_file)
    items = list(fn(cfg))
    random.Random(f"{cfg.seed}|{name}").shuffle(items)
    n_clips = sum(len(r) for r in done.values())
    secs = sum(float(r["duration_s"]) for rows in done.values() for r in rows)
    max_s = cfg.max_hours_per_source * 3600 if cfg.max_hours_per_source else None
    todo = [it for it in items if it.item_id not in done]
    failures = 0
    with parts_file.open("a", encoding="utf-8") as fh, tqdm(
        total=len(todo), desc=f"{name:>10}", unit="item", dynamic_ncols=True, file=sys.stderr,
        mininterval=2.0
    ) as bar:
        for item in todo:
            if max_s is not None and secs >= max_s:
                break
            if cfg.max_clips_per_source is not None and n_clips >= cfg.max_clips_per_source:
                break
            try:
                rows = process_item(item, cfg.out_dir)
            except Exception as exc:  # one bad file must not stop a long build
                failures += 1
                tqdm.write(f"[{name}] {item.item_id}: {type(exc).__name__}: {exc}", file=sys.stderr)
                bar.update(1)
                continue
            fh.write(json.dumps({"item_id": item.item_id, "rows": rows}, ensure_ascii=False) + "\n")
            fh.flush()
            n_clips += len(rows)
            secs += sum(float(r["duration_s"]) for r in rows)
            bar.update(1)
            bar.set_postfix(clips=n_clips, hours=f"{secs / 3600:.2f}", refresh=False)
    if failures:
        print(f"[{name}] {failures} items failed", file=sys.stderr)
    return n_clips


def write_manifest(out_dir: Path) -> int:
    """Rewrite ``manifest.tsv`` from every ``parts/*.jsonl`` atomically; returns row count."""
    rows: List[Dict[str, str]] = []
    for parts_file in sorted((out_dir / "parts").glob("*.jsonl")):
        for item_rows in load_parts(parts_file).values():
            rows.extend(r for r in item_rows if (out_dir / r["path"]).exists())
    rows.sort(key=lambda r: (r["source"], r["path"]))
    tmp = out_dir / f".manifest.tsv.tmp{os.getpid()}"
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(MANIFEST_COLUMNS), delimiter="\t",
                           quoting=csv.QUOTE_NONE, quotechar=None, escapechar=None,
                           lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: clean_field(r.get(k, "")) for k in MANIFEST_COLUMNS})
    os.replace(tmp, out_dir / "manifest.tsv")
    return len(rows)


def read_manifest(path: Path) -> List[Dict[str, str]]:
    """Read a manifest written by :func:`write_manifest`."""
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def summarise(rows: Sequence[Dict[str, str]]) -> str:
    """Per-source and per-category clip counts and hours, as text."""
    by: Dict[str, List[float]] = defaultdict(lambda: [0, 0.0])
    for r in rows:
        for key in (f"source {r['source']}", f"category {r['category']}", f"split {r['split']}"):
            by[key][0] += 1
            by[key][1] += float(r["duration_s"])
    lines = [f"{k:<22} {int(v[0]):>7} clips {v[1] / 3600:8.2f} h" for k, v in sorted(by.items())]
    return "\n".join(lines)


def build(cfg: BuildConfig, sources: Sequence[str]) -> int:
    """Build the named sources into ``cfg.out_dir`` and rewrite the manifest."""
    reg = _registry()
    unknown = [s for s in sources if s not in reg]
    if unknown:
        raise SystemExit(f"unknown sources: {', '.join(unknown)} (known: {', '.join(reg)})")
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    for name in sources:
        build_source(name, reg[name], cfg)
        write_manifest(cfg.out_dir)  # publish progress after every source
    return write_manifest(cfg.out_dir)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="python -m reasoningcodec.data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build or extend a corpus")
    b.add_argument("out_dir", type=Path)
    b.add_argument("--sources", default=",".join(DEFAULT_SOURCES),
                   help=f"comma-separated (default: {','.join(DEFAULT_SOURCES)})")
    b.add_argument("--max-hours-per-source", type=float, default=None)
    b.add_argument("--max-clips", type=int, default=None, help="max clips per source")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--espeak-clips", type=int, default=2000)
    b.add_argument("--midi-renders", type=int, default=300)
    b.add_argument("--fsdd-dir", type=Path, default=None)
    b.add_argument("--gcompris-dir", type=Path, default=DEFAULT_GCOMPRIS_DIR,
                   help=f"checkout of {GCOMPRIS_URL} (default: {DEFAULT_GCOMPRIS_DIR})")
    s = sub.add_parser("summary", help="print clip counts and hours of a manifest")
    s.add_argument("out_dir", type=Path)
    args = p.parse_args(argv)
    if args.cmd == "summary":
        print(summarise(read_manifest(args.out_dir / "manifest.tsv")))
        return 0
    cfg = BuildConfig(out_dir=args.out_dir, seed=args.seed,
                      max_hours_per_source=args.max_hours_per_source,
                      max_clips_per_source=args.max_clips, espeak_clips=args.espeak_clips,
                      midi_renders=args.midi_renders, fsdd_dir=args.fsdd_dir,
                      gcompris_dir=args.gcompris_dir)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    n = build(cfg, sources)
    print(f"manifest: {cfg.out_dir / 'manifest.tsv'} ({n} clips)")
    print(summarise(read_manifest(cfg.out_dir / "manifest.tsv")))
    return 0
