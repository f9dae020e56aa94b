"""Token files: one audio file → its raw tokens (``.npz`` or ``.json``), or a dataset → a folder of them.

A dataset is a folder (every audio file under it, by extension) or a ``.txt`` list (one path per line,
relative to the list's folder; blank lines and ``#`` comments skipped). Each input ``ROOT/a/b.wav`` gets
``OUT/a/b.npz`` (``ROOT``: the folder, or the deepest folder holding every listed file). The work is
resumable (a token file that exists, opens and holds tokens of the same model is done; files are written
to a temp file and renamed) and shards over processes: with ``RANK`` / ``WORLD_SIZE`` set (``torchrun``
sets them) each process takes every ``WORLD_SIZE``-th file of the sorted list, starting at ``RANK``.
:func:`write_index` writes ``OUT/index.json``, listing every input, its token file and its length.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import audio as audio_io
from .atomic import temp_file_next_to
from .errors import AudioError, OptionError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".caf", ".w64")
LIST_EXTENSION = ".txt"
INDEX_NAME = "index.json"
TOKEN_KEYS = ("reasoning", "recon", "num_samples", "model_id")


@dataclass(frozen=True)
class TokenJob:
    """One input file and where its tokens go (``tokens`` relative to the output folder)."""

    audio: Path
    tokens: Path


def file_tokens(codec: Any, path: Any, progress: Any = None) -> dict[str, Any]:
    """Encode one audio file (in blocks: bounded memory) → the token file's fields: ``reasoning
    [C, Kr, Tr]``, ``recon [C, Kq, Tq]`` (one row per channel), ``num_samples`` at the model rate, the
    rates and the model's id and weights hash. The tokens equal ``codec.encode`` of each channel."""
    from .compress import chunk_samples, encode_chunks
    from .sources import blocks_from_file

    meta = audio_io.info(path)
    sr_in = audio_io.check_sample_rate(meta.samplerate)
    if meta.frames <= 0:
        raise AudioError(f"{audio_io.source_name(path)} has no samples")
    total = audio_io.resampled_length(meta.frames, sr_in, codec.sample_rate)  # as encode(path) and .rc
    c = int(meta.channels)
    r, q = [], []
    with torch.no_grad():
        blocks = blocks_from_file(path, sr_in, codec.sample_rate, c, total, 1.0, progress)
        cs = chunk_samples(codec, 600.0)
        for ch in encode_chunks(codec, blocks, total, c, cs, codec.num_recon_codebooks):
            r.append(ch.reasoning)
            q.append(ch.recon)
    return {"reasoning": np.concatenate(r, -1), "recon": np.concatenate(q, -1), "num_samples": total,
            "sample_rate": codec.sample_rate, "reasoning_frame_rate": codec.reasoning_frame_rate,
            "recon_frame_rate": codec.recon_frame_rate, "model_id": codec.config.model_id,
            "weights_hash": codec.weights_hash().hex()}


def save_tokens(path: Path, tokens: dict[str, Any], fmt: str = ".npz") -> None:
    """Write :func:`file_tokens`' fields to ``path`` as ``.npz`` (compressed) or ``.json``."""
    if fmt == ".npz":
        with open(path, "wb") as f:
            np.savez_compressed(f, **{k: np.asarray(v) for k, v in tokens.items()})
    else:
        Path(path).write_text(json.dumps({k: v.tolist() if isinstance(v, np.ndarray) else v
                                          for k, v in tokens.items()}))


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` into a temp file next to ``path`` (mode ``0666 & ~umask``), renamed onto it when complete;
    removed on any error or signal."""
    with temp_file_next_to(path, ".part" + path.suffix) as tmp:
        write(tmp)
        os.replace(tmp, path)


def read_token_meta(path: Path) -> dict[str, Any] | None:
    """``num_samples``, ``model_id`` and ``weights_hash`` (or None in older files) of a complete ``.npz``
    token file; None if it is missing, truncated or lacks a field."""
    try:
        with np.load(path) as z:
            if not set(TOKEN_KEYS) <= set(z.files):
                return None
            return {"num_samples": int(z["num_samples"]), "model_id": str(z["model_id"]),
                    "weights_hash": str(z["weights_hash"]) if "weights_hash" in z.files else None}
    except Exception:  # missing, not a zip, truncated: not done
        return None


def list_dataset(source: Path, out_dir: Path) -> list[TokenJob]:
    """A folder or ``.txt`` list → one :class:`TokenJob` per audio file, sorted by path.

    Raises:
        OptionError: no audio files, a listed file that does not exist, or two inputs whose token files
            would be the same (``a.wav`` and ``a.flac`` in one folder).
    """
    if source.is_dir():
        out = out_dir.resolve()
        files = [f for f in source.rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file()
                 and not any(part.startswith(".") for part in f.relative_to(source).parts)
                 and out not in f.resolve().parents]
        root = source
    elif source.suffix.lower() == LIST_EXTENSION:
        files = _read_list(source)
        root = Path(os.path.commonpath([f.resolve().parent for f in files])) if files else source.parent
    else:
        raise OptionError(f"a dataset is a folder or a {LIST_EXTENSION} list of audio files, got {source}")
    if not files:
        raise OptionError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in {source}")
    jobs = sorted({TokenJob(f, _relative(f, root).with_suffix(".npz")) for f in files}, key=lambda j: str(j.audio))
    seen: dict[Path, Path] = {}
    for j in jobs:
        if j.tokens in seen:
            raise OptionError(f"{seen[j.tokens]} and {j.audio} would both write {out_dir / j.tokens}: "
                              f"rename one or tokenise them separately")
        seen[j.tokens] = j.audio
    return jobs


def _read_list(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise OptionError(f"cannot read the file list {path}: {e}") from None
    files = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        f = Path(line) if Path(line).is_absolute() else path.parent / line
        if not f.is_file():
            raise OptionError(f"{path}, line {n}: {f} is not a file")
        files.append(f)
    return files


def _relative(f: Path, root: Path) -> Path:
    try:
        return f.relative_to(root)
    except ValueError:
        return f.resolve().relative_to(root.resolve())


def shard(jobs: list[TokenJob], rank: int, world_size: int) -> list[TokenJob]:
    """The jobs of process ``rank`` of ``world_size``: every ``world_size``-th, from ``rank``."""
    return jobs[rank::world_size]


def rank_from_env() -> tuple[int, int, int]:
    """``(RANK, WORLD_SIZE, LOCAL_RANK)`` from the environment (``torchrun`` sets them); ``(0, 1, 0)``.

    Raises:
        OptionError: values that are not whole numbers with ``0 <= RANK < WORLD_SIZE``.
    """
    try:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise OptionError("RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers") from None
    if not 0 <= rank < world:
        raise OptionError(f"RANK must be in 0..WORLD_SIZE-1, got RANK={rank}, WORLD_SIZE={world}")
    return rank, world, local


def pending(jobs: list[TokenJob], out_dir: Path, codec: Any) -> list[TokenJob]:
    """The jobs whose token file is not complete yet.

    Raises:
        OptionError: a complete token file of another model (replacing it needs ``-f``).
    """
    todo, model = [], (codec.config.model_id, codec.weights_hash().hex())
    for j in jobs:
        meta = read_token_meta(out_dir / j.tokens)
        if meta is None:
            todo.append(j)
        elif meta["model_id"] != model[0] or meta["weights_hash"] not in (None, model[1]):
            raise OptionError(f"{out_dir / j.tokens} holds tokens of another model ({meta['model_id']!r}); "
                              f"use another output folder, or -f to replace them")
    return todo


def tokenize_files(codec: Any, jobs: list[TokenJob], out_dir: Path, progress: Any = None,
                   report: Callable[[str], None] = print) -> list[tuple[TokenJob, str]]:
    """Encode each job's file into its token file; a file that cannot be read is reported and skipped.
    Returns the failures as ``(job, message)``."""
    from .errors import ReasoningCodecError

    failed = []
    for j in jobs:
        target = out_dir / j.tokens
        try:
            tokens = file_tokens(codec, j.audio)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, lambda tmp: save_tokens(tmp, tokens))
        except (ReasoningCodecError, OSError) as e:
            failed.append((j, str(e)))
            report(f"skipped {j.audio}: {e}")
        if progress is not None:
            progress.update(1)
    return failed


@dataclass
class IndexSummary:
    """What :func:`write_index` found: files with complete tokens, and inputs without them."""

    done: int
    missing: list[Path]


def write_index(jobs: list[TokenJob], out_dir: Path) -> IndexSummary:
    """Write ``out_dir/index.json``: ``files`` (``audio``, ``tokens`` relative to ``out_dir``,
    ``num_samples``) for every input with a complete token file, ``missing`` for the others, and the
    model's id.

    Raises:
        OptionError: token files of different models in one folder.
    """
    files, missing, models = [], [], set()
    for j in jobs:
        meta = read_token_meta(out_dir / j.tokens)
        if meta is None:
            missing.append(j.audio)
            continue
        models.add(meta["model_id"])
        files.append({"audio": str(j.audio), "tokens": j.tokens.as_posix(), "num_samples": meta["num_samples"]})
    if len(models) > 1:
        raise OptionError(f"{out_dir} holds tokens of several models ({', '.join(sorted(models))}); "
                             f"tokenise each model into its own folder")
    index = {"model_id": next(iter(models), None), "num_files": len(files), "num_missing": len(missing),
             "files": files, "missing": [str(m) for m in missing]}
    write_atomic(out_dir / INDEX_NAME, lambda tmp: tmp.write_text(json.dumps(index, indent=1) + "\n"))
    return IndexSummary(len(files), missing)


def tokenize_dataset(source: Path, out_dir: Path, load_codec: Callable[[str], Any], device: str = "cpu",
                     force: bool = False, merge: bool = False, quiet: bool = False,
                     log: Callable[[str], None] = print) -> None:
    """``rcodec tokens FOLDER|LIST.txt OUT``: this process's shard of the dataset (by ``RANK`` /
    ``WORLD_SIZE``), then ``OUT/index.json``: written by rank 0 after a barrier under ``torchrun``, at
    once by a single process, or by a later run with ``merge`` (which only writes the index).

    ``load_codec(device)`` loads the model (once); ``device="cuda"`` becomes ``cuda:LOCAL_RANK`` under
    ``torchrun``. ``log`` gets one line per skipped file and the summaries (these unless ``quiet``).

    Raises:
        OptionError: files that could not be tokenised (each logged), inputs without tokens in the index,
            or a bad dataset (see :func:`list_dataset`, :func:`pending`).
    """
    from tqdm import tqdm

    jobs = list_dataset(source, out_dir)
    if merge:
        return _index(jobs, out_dir, quiet, log)
    rank, world, local = rank_from_env()
    synced = _join_process_group(world)
    out_dir.mkdir(parents=True, exist_ok=True)
    codec = load_codec(f"cuda:{local}" if device == "cuda" and "LOCAL_RANK" in os.environ else device)
    mine = shard(jobs, rank, world)
    todo = mine if force else pending(mine, out_dir, codec)
    where = f" (rank {rank} of {world})" if world > 1 else ""
    with tqdm(total=len(todo), unit="file", desc="tokens", disable=quiet or rank > 0) as bar:
        failed = tokenize_files(codec, todo, out_dir, bar, log)
    if not quiet:
        log(f"{len(todo) - len(failed)} of {len(mine)} files tokenised now, {len(mine) - len(todo)} were "
            f"already done{where}")
    if synced:
        _barrier()  # every rank's token files are written
    try:
        if rank == 0 and (synced or world == 1):
            _index(jobs, out_dir, quiet, log)
        elif not synced and not quiet:
            log(f"rank {rank} done; once every rank is, run the same command with --merge to write "
                f"{out_dir / INDEX_NAME}")
    finally:
        if synced:  # the others wait for rank 0's index, so that torchrun does not stop it while it writes
            _barrier()
            _leave_process_group()
    if failed:
        raise OptionError(f"{len(failed)} of {len(mine)} files could not be tokenised{where} (listed above)")


def _index(jobs: list[TokenJob], out_dir: Path, quiet: bool, log: Callable[[str], None]) -> None:
    summary = write_index(jobs, out_dir)
    if not quiet:
        log(f"{out_dir / INDEX_NAME}: {summary.done} of {len(jobs)} files")
    if summary.missing:
        more = f" and {len(summary.missing) - 1} more" if len(summary.missing) > 1 else ""
        raise OptionError(f"{len(summary.missing)} of {len(jobs)} files have no tokens (listed under \"missing\" "
                          f"in {out_dir / INDEX_NAME}): {summary.missing[0]}{more}")


def _join_process_group(world: int) -> bool:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1 and ``MASTER_ADDR`` set): join a gloo process group, used
    only for the barriers around the index; False otherwise (the index is then ``merge``'s job)."""
    import datetime

    import torch.distributed as dist

    if world == 1 or "MASTER_ADDR" not in os.environ or not dist.is_available():
        return False
    if not dist.is_initialized():  # ranks finish at different times: wait days, not gloo's 30 minutes
        dist.init_process_group("gloo", timeout=datetime.timedelta(days=7))
    return True


def _barrier() -> None:
    import torch.distributed as dist

    dist.barrier()


def _leave_process_group() -> None:
    import torch.distributed as dist

    dist.destroy_process_group()
