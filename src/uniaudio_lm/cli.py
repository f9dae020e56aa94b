"""The ``uniaudio`` command line: one subcommand per task of :mod:`uniaudio_lm.registry`, plus ``list``
and ``install``.

Examples::

    uniaudio list
    uniaudio tts "Hello there." -o hello.wav --language en
    uniaudio asr speech.wav
    uniaudio audio_qa clip.wav "What animal is it?"
    uniaudio fewshot_classify --example a.wav dog --example b.wav cat query.wav
    uniaudio fewshot_denoise --example noisy.wav clean.wav query.wav -o out.wav
    uniaudio install runs/lm/model

Text results go to stdout (or ``-o FILE``); audio to ``-o FILE`` (.wav, .flac, .ogg at 24 kHz). Outputs are
written to a temp file and renamed into place when complete, and an existing file is kept unless ``-f``.
Every expected failure prints one line on stderr and exits 1 (2 for bad arguments). A task that is
``experimental`` for the weights in use (``uniaudio list`` shows each task's measured status) prints one
warning line on stderr before it runs; ``-q`` or ``UNIAUDIO_NO_WARN=1`` hides it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
AUDIO_EXTS = (".wav", ".flac", ".ogg")


class CliError(Exception):
    """A user-facing problem found by the CLI itself (existing output, bad option...)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ---------------------------------------------------------------- subcommand table
# per task function: positional arguments, options and the output kind. An argument is
# (name, type, help) with type "text", "audio" (an input file) or "float"; options are passed to
# argparse as they are. Output kinds: "audio", "audio2" (two files), "text", "codes".
_TEXT_OUT = "text"
_AUDIO_OUT = "audio"

_UNDERSTAND = {"asr": "speech", "dysarthric_asr": "dysarthric speech", "yue_asr": "Cantonese speech",
               "spoken_qa": "a spoken question", "audio_caption": "a sound", "music_caption": "music",
               "lyric_recognition": "singing"}


def _commands() -> dict[str, dict[str, Any]]:
    c: dict[str, dict[str, Any]] = {}
    for name, what in _UNDERSTAND.items():
        c[name] = {"pos": [("audio", "audio", f"{what} (audio file)")], "out": _TEXT_OUT}
    c["asr"]["opts"] = [(["--decoder"], {"choices": ["auto", "lm", "ctc"], "default": None,
                                         "help": "lm: the language model writes the transcript; ctc: the audio "
                                                 "encoder spells it (English); auto (default): ctc where the "
                                                 "model has one"}),
                        (["--language"], {"default": "en", "help": "language of the speech (default en)"})]
    c["audio_qa"] = {"pos": [("audio", "audio", "a sound (audio file)"), ("question", "text", "the question")],
                     "out": _TEXT_OUT}
    c["tts"] = {"pos": [("text", "text", "text to speak")], "out": _AUDIO_OUT,
                "opts": [(["--language"], {"choices": ["en", "zh", "yue"], "default": "en"})]}
    c["instruct_tts"] = {"pos": [("text", "text", "text to speak")], "out": _AUDIO_OUT,
                         "opts": [(["--style"], {"required": True, "help": "style caption (voice, emotion, pace)"})]}
    c["voice_tts"] = {"pos": [("text", "text", "text to speak")], "out": _AUDIO_OUT, "audio_opts": ["voice"],
                      "opts": [(["--voice"], {"required": True, "help": "voice prompt (audio file; ≈3 s used)"}),
                               (["--style"], {"required": True, "help": "style caption"}),
                               (["--voice-seconds"], {"type": float, "default": None})]}
    c["spoken_qa_speech"] = {"pos": [("audio", "audio", "a spoken question (audio file)")], "out": _AUDIO_OUT}
    c["speech_edit"] = {"pos": [("audio", "audio", "speech to edit (audio file)"),
                                ("instruction", "text", "what to change")], "out": _AUDIO_OUT}
    c["speech_sound"] = {"pos": [("text", "text", "text to speak")], "out": _AUDIO_OUT,
                         "opts": [(["--sound"], {"required": True, "help": "background sound tag, e.g. rain"})]}
    c["denoise"] = {"pos": [("audio", "audio", "noisy speech (audio file)")], "out": _AUDIO_OUT}
    c["separate"] = {"pos": [("audio", "audio", "a speech + background mixture (audio file)")], "out": "audio2"}
    c["text_to_sound"] = {"pos": [("caption", "text", "sound description")], "out": _AUDIO_OUT}
    c["text_to_music"] = {"pos": [("caption", "text", "music description")], "out": _AUDIO_OUT}
    c["song"] = {"pos": [("lyrics", "text", "lyrics to sing")], "out": _AUDIO_OUT, "audio_opts": ["voice"],
                 "opts": [(["--language"], {"choices": ["en", "zh"], "default": "en"}),
                          (["--style"], {"default": None, "help": "style caption"}),
                          (["--voice"], {"default": None, "help": "singer voice prompt (audio file)"}),
                          (["--voice-seconds"], {"type": float, "default": None})]}
    for name, (a, b) in {"fewshot_denoise": ("NOISY", "CLEAN"), "fewshot_vc": ("SOURCE", "CONVERTED")}.items():
        c[name] = {"pos": [("query", "audio", "the query clip (audio file)")], "out": _AUDIO_OUT, "pairs": True,
                   "opts": [(["--example"], {"nargs": 2, "action": "append", "required": True, "metavar": (a, b),
                                             "help": "a demonstration pair of audio files (repeatable)"})]}
    c["fewshot_classify"] = {"pos": [("query", "audio", "the clip to classify (audio file)")], "out": _TEXT_OUT,
                             "labelled": True,
                             "opts": [(["--example"], {"nargs": 2, "action": "append", "required": True,
                                                       "metavar": ("AUDIO", "LABEL"),
                                                       "help": "a labelled example clip (repeatable)"}),
                                      (["--labels"], {"nargs": "+", "default": None,
                                                      "help": "candidate labels (default: the examples' labels)"})]}
    c["continue_text"] = {"pos": [("text", "text", "text to continue")], "out": _TEXT_OUT}
    c["continue_audio"] = {"pos": [("audio", "audio", "audio prefix (audio file)")], "out": _AUDIO_OUT}
    c["reason_to_recon"] = {"pos": [("audio", "audio", "audio whose reasoning tokens are resynthesised")],
                            "out": _AUDIO_OUT}
    c["recon_to_reason"] = {"pos": [("audio", "audio", "audio whose reasoning tokens are predicted")],
                            "out": "codes"}
    return c


COMMANDS = _commands()


def build_parser() -> argparse.ArgumentParser:
    from . import registry

    ap = _Parser(prog="uniaudio", description="UniAudio 2.0 tasks with uniaudio_lm (text ⇄ audio with one "
                                               "language model over ReasoningCodec tokens).")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND", parser_class=_Parser)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", default=None, metavar="DIR",
                        help="pipeline folder (default: the installed uniaudio_lm weights)")
    common.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... (default cpu)")
    common.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    common.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    common.add_argument("-q", "--quiet", action="store_true",
                        help="no messages on stderr (not even the experimental-task warning)")

    ls = sub.add_parser("list", help="print the task registry")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_list)
    ins = sub.add_parser("install", help="install trained weights (UniAudioLM.save_pretrained output)")
    ins.add_argument("model_dir", help="e.g. <train out_dir>/model")
    ins.add_argument("--dest", default=None, help="pipeline folder to write (default: the package's)")
    ins.add_argument("--codec-model-id", default=None, help="codec the model was trained on (default: installed)")
    ins.add_argument("--recon-codebooks", type=int, default=None)
    ins.add_argument("--duration-from", default=None, metavar="TOKENS_JSONL",
                     help="fit the speech-duration model on this tokenised training manifest "
                          "(default: keep the replaced folder's)")
    ins.add_argument("--style-scale", type=float, default=None,
                     help="default guidance on a requested speaking style, >= 1 (default: keep the replaced "
                          "folder's)")
    ins.add_argument("-f", "--force", action="store_true", help="replace installed weights")
    ins.set_defaults(func=cmd_install)

    for spec in registry.TASKS.values():
        fn = spec.function
        c = COMMANDS[fn]
        aliases = [spec.name] if spec.name != fn else []
        p = sub.add_parser(fn, aliases=aliases, parents=[common], help=f"{spec.inputs} → {spec.outputs}",
                           description=f"{spec.name}: {spec.inputs} → {spec.outputs}. Layout: {spec.layout}")
        for name, _kind, help_ in c["pos"]:
            p.add_argument(name, help=help_)
        for flags, kw in c.get("opts", []):
            p.add_argument(*flags, **kw)
        out = c["out"]
        if out == _AUDIO_OUT:
            p.add_argument("-o", "--output", required=True, help="output audio (.wav, .flac, .ogg)")
        elif out == "audio2":
            p.add_argument("-o", "--output", required=True, nargs=2, metavar=("SPEECH", "BACKGROUND"),
                           help="two output audio files")
        elif out == "codes":
            p.add_argument("-o", "--output", default=None, help="write the codes to FILE.safetensors "
                                                                 "(default: print them as JSON)")
        else:
            p.add_argument("-o", "--output", default=None, help="write the text to FILE (default: stdout)")
        if out in (_AUDIO_OUT, "audio2"):
            p.add_argument("--max-seconds", type=float, default=None, help="longest output (default per task)")
            p.add_argument("--temperature", type=float, default=None, help="sampling temperature (default 0.9)")
            p.add_argument("--top-k", type=int, default=None, help="top-k sampling (default 50; 0: off)")
            if fn not in ("continue_audio", "reason_to_recon"):
                p.add_argument("--cfg-scale", type=float, default=None, help="classifier-free guidance scale")
            if fn in ("tts", "instruct_tts", "voice_tts"):
                p.add_argument("--duration", type=float, default=None,
                               help="seconds of speech (default: predicted from the text)")
        elif fn != "fewshot_classify" and out == _TEXT_OUT:
            p.add_argument("--max-new-tokens", type=int, default=None, help="longest answer in tokens")
        elif out == "codes":
            p.add_argument("--max-seconds", type=float, default=None)
        p.set_defaults(func=cmd_task, function=fn)
    return ap


# ---------------------------------------------------------------- commands
def cmd_list(a: argparse.Namespace) -> None:
    from . import registry, status
    from .pipeline import DEFAULT_DIR

    specs = list(registry.TASKS.values())
    table = status.read(DEFAULT_DIR)
    if a.json:
        rows = [{"task": s.name, "category": s.category, "kind": s.kind, "function": s.function,
                 "inputs": s.inputs, "outputs": s.outputs, "layout": s.layout, "prompts": len(s.prompts),
                 "recipe": s.recipe, "languages": list(s.languages), "zero_shot": s.zero_shot,
                 "status": table.get(s.name).to_json()} for s in specs]
        print(json.dumps(rows, indent=1, ensure_ascii=False))
        return
    print(f"{'task':<18} {'category':<9} {'kind':<13} {'command':<18} {'status':<12} {'prompts':>7}  "
          f"{'recipe':<17} layout")
    for s in specs:
        print(f"{s.name:<18} {s.category:<9} {s.kind:<13} {s.function:<18} {table.get(s.name).status:<12} "
              f"{len(s.prompts):>7}  {s.recipe:<17} {s.layout}")
    date = table.benchmark.get("date", "")
    print(f"\nstatus: {table.reason or 'last benchmark of the installed weights'}{f', {date}' if date else ''}; "
          "works = meets its target or clearly beats its trivial baseline (scores: uniaudio list --json)")


def cmd_install(a: argparse.Namespace) -> None:
    from .pipeline import DEFAULT_DIR, install

    dest = Path(a.dest) if a.dest else DEFAULT_DIR
    if (dest / "model.safetensors").exists() and not a.force:
        raise CliError(f"{dest} already holds weights; use -f to replace them")
    try:
        d = install(a.model_dir, dest, a.codec_model_id, a.recon_codebooks, a.duration_from, a.style_scale)
    except ValueError as e:
        raise CliError(str(e)) from None
    print(f"installed {a.model_dir} → {d}", file=sys.stderr)


def _check_output(path: str, force: bool, exts: Sequence[str] | None) -> Path:
    p = Path(path)
    if exts is not None and p.suffix.lower() not in exts:
        raise CliError(f"output {p.name!r} must end with {' / '.join(exts)}")
    if p.is_dir():
        raise CliError(f"{p} is a directory")
    if p.exists() and not force:
        raise CliError(f"{p} exists; use -f to overwrite")
    if not p.resolve().parent.is_dir():
        raise CliError(f"output folder {p.resolve().parent} does not exist")
    return p


def _write_atomic(outputs: Sequence[tuple[Path, Callable[[str], None]]]) -> None:
    """Write every output to a temp file next to it, then rename them all into place (nothing is
    left behind when a write fails)."""
    from reasoningcodec.atomic import temp_next_to, write_keeping_mode

    tmps: list[str] = []
    try:
        for path, write in outputs:
            tmp = str(temp_next_to(path, ".part" + path.suffix))  # 0666 & ~umask, as open() makes; not 0600
            tmps.append(tmp)
            write_keeping_mode(tmp, write)
        for (path, _), tmp in zip(outputs, tmps):
            os.replace(tmp, path)
    finally:
        for tmp in tmps:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _audio_writer(wav: Any, sr: int) -> Callable[[str], None]:
    from reasoningcodec import audio as audio_io

    return lambda tmp: audio_io.save(tmp, wav, sr)


def _show_task_warnings(quiet: bool) -> None:
    """Inside ``warnings.catch_warnings()``: an experimental-task warning is one ``uniaudio: warning:``
    line on stderr (nothing with ``quiet``)."""
    from .status import ExperimentalTaskWarning

    if quiet:
        warnings.simplefilter("ignore", ExperimentalTaskWarning)
        return
    warnings.simplefilter("always", ExperimentalTaskWarning)  # the task functions warn once per task
    default = warnings.showwarning

    def show(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
        if issubclass(category, ExperimentalTaskWarning):
            print(f"uniaudio: warning: {message} (-q hides this)", file=sys.stderr, flush=True)
        else:
            default(message, category, *args, **kwargs)

    warnings.showwarning = show


def cmd_task(a: argparse.Namespace) -> None:
    import numpy as np

    from reasoningcodec import audio as audio_io

    from . import api
    from .pipeline import load

    fn, c = a.function, COMMANDS[a.function]
    # inputs and outputs are checked before the (slow) model load
    inputs = [getattr(a, n) for n, kind, _ in c["pos"] if kind == "audio"]
    inputs += [getattr(a, n) for n in c.get("audio_opts", []) if getattr(a, n, None) is not None]
    if c.get("pairs"):
        inputs += [x for pair in a.example for x in pair]
    if c.get("labelled"):
        inputs += [pair[0] for pair in a.example]
    for path in inputs:
        audio_io.info(path)
    out = c["out"]
    outs: list[Path] = []
    if out == _AUDIO_OUT:
        outs = [_check_output(a.output, a.force, AUDIO_EXTS)]
    elif out == "audio2":
        outs = [_check_output(o, a.force, AUDIO_EXTS) for o in a.output]
        if outs[0].resolve() == outs[1].resolve():
            raise CliError("the two outputs must be different files")
    elif a.output is not None:
        outs = [_check_output(a.output, a.force, (".safetensors",) if out == "codes" else None)]

    args = [getattr(a, n) for n, _, _ in c["pos"]]
    if c.get("pairs") or c.get("labelled"):
        args = [[tuple(p) for p in a.example], *args]
    kwargs: dict[str, Any] = {}
    for key in ("language", "style", "voice", "voice_seconds", "sound", "labels", "max_seconds", "temperature",
                "max_new_tokens", "cfg_scale", "duration", "decoder"):
        v = getattr(a, key, None)
        if v is not None:
            kwargs[key] = v
    if getattr(a, "top_k", None) is not None:
        kwargs["top_k"] = a.top_k if a.top_k > 0 else None
    kwargs["seed"] = a.seed
    pipe = load(a.model, a.device)
    with warnings.catch_warnings():
        _show_task_warnings(a.quiet)
        result = getattr(api, fn)(*args, pipeline=pipe, **kwargs)

    if out in (_AUDIO_OUT, "audio2"):
        wavs = [result] if out == _AUDIO_OUT else list(result)
        _write_atomic([(p, _audio_writer(w, pipe.sample_rate)) for p, w in zip(outs, wavs)])
        if not a.quiet:
            for p, w in zip(outs, wavs):
                print(f"wrote {p} ({len(w) / pipe.sample_rate:.2f} s)", file=sys.stderr)
    elif out == "codes":
        if outs:
            import torch
            from safetensors.torch import save_file

            t = torch.from_numpy(np.ascontiguousarray(result))
            _write_atomic([(outs[0], lambda tmp: save_file({"reasoning": t}, tmp))])
        else:
            print(json.dumps({"reasoning": result.tolist()}))
    elif outs:
        _write_atomic([(outs[0], lambda tmp: Path(tmp).write_text(result + "\n", encoding="utf-8"))])
    else:
        print(result)


def main(argv: Sequence[str] | None = None) -> int:
    from reasoningcodec import ReasoningCodecError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
        return 0
    except (ReasoningCodecError, CliError, ValueError) as e:
        print(f"uniaudio: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except FileNotFoundError as e:
        print(f"uniaudio: error: file not found: {e.filename or e}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:
        print(f"uniaudio: error: {e.strerror or e}: {getattr(e, 'filename', '') or ''}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("uniaudio: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # never a traceback for users; UNIAUDIO_DEBUG=1 shows it
        if os.environ.get("UNIAUDIO_DEBUG"):
            raise
        print(f"uniaudio: internal error: {type(e).__name__}: {e} (set UNIAUDIO_DEBUG=1 for details)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
