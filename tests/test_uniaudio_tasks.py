"""uniaudio_lm tasks: the registry (layouts, prompts), manifests, the Python functions and the CLI (fast)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

import reasoningcodec
import uniaudio_lm as ul
from reasoningcodec import CodecConfig, NoWeightsInstalledError, ReasoningCodec, WeightsError
from uniaudio_lm import api, cli, pipeline as pl, registry
from uniaudio_lm.data import Manifest
from uniaudio_lm.registry import TASKS, TaskError, render
from uniaudio_lm.sentence import AudioItem, PlainText, TaskPrompt, TextField, VoicePrompt, build, parse
from uniaudio_lm.tasks import KINDS, TASK_PROMPTS

# these tests run tasks on untrained pipelines; the experimental-task warning is tested in test_uniaudio_status.py
pytestmark = pytest.mark.filterwarnings("ignore::uniaudio_lm.status.ExperimentalTaskWarning")

CODEC = CodecConfig(enc_dim=32, latent_dim=48, dec_dim=32, reasoning_dim=32, reasoning_heads=2, reasoning_layers=1,
                    num_recon_codebooks=3, recon_codebook_size=32, num_reasoning_codebooks=2,
                    reasoning_codebook_size=16, dec_blocks=1, enc_blocks=1, model_id="test-tiny")

PAPER_TASKS = {
    "speech": {"tts", "instruct_tts", "voice_tts", "asr", "dysarthric_asr", "yue_asr", "spoken_qa", "spoken_qa_speech",
               "speech_edit", "speech_sound", "denoise", "separation"},
    "sound": {"text_to_sound", "audio_caption", "audio_qa"},
    "music": {"text_to_music", "music_caption", "song", "lyric_recognition"},
    "fewshot": {"fewshot_denoise", "fewshot_vc", "fewshot_classify"},
    "pretrain": {"text_only", "audio_only", "reason_to_recon", "recon_to_reason"},
}
FUNCTIONS = {"tts", "instruct_tts", "voice_tts", "asr", "dysarthric_asr", "yue_asr", "spoken_qa", "spoken_qa_speech",
             "speech_edit", "speech_sound", "text_to_sound", "audio_caption", "audio_qa", "text_to_music",
             "music_caption", "song", "lyric_recognition", "fewshot_denoise", "fewshot_vc", "fewshot_classify",
             "continue_text", "continue_audio", "reason_to_recon", "recon_to_reason", "denoise", "separate"}


@pytest.fixture(scope="module")
def tok():
    return ul.default_tokenizer()


@pytest.fixture(scope="module")
def vocab():
    return ul.AudioVocab.from_codec_config(CODEC)


@pytest.fixture(scope="module")
def pipe():
    torch.manual_seed(0)
    codec = ReasoningCodec(CODEC).eval()
    model = ul.UniAudioLM(ul.UniAudioConfig.preset("tiny", CODEC))
    return ul.Pipeline(model, ul.default_tokenizer(), codec)


def codes(g: torch.Generator, tr: int = 2, tq: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.randint(0, CODEC.reasoning_codebook_size, (CODEC.num_reasoning_codebooks, tr), generator=g),
            torch.randint(0, CODEC.recon_codebook_size, (CODEC.num_recon_codebooks, tq), generator=g))


def all_fields(spec: registry.TaskSpec, g: torch.Generator, n_demos: int = 2) -> dict:
    """Every field of a task (optional ones included) with fake codes."""
    text = {"text": "hello world", "caption": "a calm low voice", "lyric": "la la la", "question": "what is it?",
            "instruction": "say it more slowly", "language": spec.languages[-1] if spec.languages else None}
    out = {}
    for f in spec.fields:
        if f in ("audio", "source", "second", "prefix"):
            out[f] = codes(g, 2 + len(out), 5 + len(out))
        elif f == "voice":
            out[f] = codes(g, 1, 7)[1]
        elif f == "demos":
            out[f] = [(codes(g), f"label{i}") if spec.name == "fewshot_classify" else (codes(g), codes(g))
                      for i in range(n_demos)]
        elif f in text:
            out[f] = text[f]
    return out


def expected_layout(layout: str, n_demos: int) -> str:
    """The human layout string → the bare form :func:`registry.render` writes (roles dropped, optional parts
    kept, demonstrations repeated ``n_demos`` times)."""
    s = re.sub(r"<(\w+)>[^<]*</\1>", r"<\1>", layout)
    s = re.sub(r"(\w+)\([^)]*\)", r"\1", s)
    s = s.replace("[", "").replace("]", "")
    return re.sub(r"\{([^}]*)\}×n", lambda m: " · ".join([m.group(1)] * n_demos), s)


# ---------------------------------------------------------------- the registry
def test_registry_has_every_paper_task_with_recipe_and_function():
    assert set(TASKS) == set().union(*PAPER_TASKS.values())
    for cat, names in PAPER_TASKS.items():
        assert {n for n, s in TASKS.items() if s.category == cat} == names
    assert {s.function for s in TASKS.values()} == FUNCTIONS
    assert {s.recipe for s in TASKS.values()} == set(registry.RECIPES)
    assert all(s.kind in KINDS for s in TASKS.values())
    expect = {"tts": "espeak_tts", "voice_tts": "espeak_voice", "dysarthric_asr": "espeak_dysarthric",
              "yue_asr": "espeak_yue", "spoken_qa_speech": "espeak_qa", "speech_sound": "speech_sound_mix",
              "audio_qa": "sfx_qa", "music_caption": "midi_caption", "lyric_recognition": "sung_lyrics",
              "fewshot_vc": "vc_pairs", "fewshot_classify": "sfx_fewshot", "text_only": "text_corpus",
              "reason_to_recon": "any_audio", "denoise": "noise_pairs"}
    assert {n: TASKS[n].recipe for n in expect} == expect
    assert TASKS["dysarthric_asr"].zero_shot and TASKS["speech_sound"].zero_shot and not TASKS["asr"].zero_shot
    assert TASKS["tts"].languages == ("en", "zh", "yue") and TASKS["song"].languages == ("en", "zh")


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_round_trips_in_its_layout(name, tok, vocab):
    spec = TASKS[name]
    g = torch.Generator().manual_seed(len(name))
    n_demos = 2
    fields = all_fields(spec, g, n_demos)
    ex = spec.example(random.Random(0), **fields)
    assert ex.task == name and ex.kind == spec.kind
    st = build(ex.segments, tok, vocab)
    assert parse(st, tok, vocab) == ex.segments
    # the layout string says exactly which segments, in which order, with which tags, are targets
    assert render(ex.segments) == expected_layout(spec.layout, n_demos)
    # targets come last and carry the loss, and so does the final <eot>
    flags = [s.target for s in ex.segments]
    first = flags.index(True)
    assert all(flags[first:]) and not any(flags[:first])
    assert st.text_ids[-1] == tok.eot_id and st.loss_mask[-1]
    assert not st.loss_mask[:-1].all() or name == "text_only"
    if spec.prompt_keys:
        assert isinstance(ex.segments[0], TaskPrompt) and ex.segments[0].text in spec.prompts
    # the generation prompt is the example without its targets: the same positions, no loss
    if spec.targets:
        conds = {k: v for k, v in fields.items() if k not in spec.targets}
        pr = spec.prompt(random.Random(0), **conds)
        assert pr.segments == ex.segments[:first]
        pst = build(pr.segments, tok, vocab, eot=False)
        assert torch.equal(pst.text_ids, st.text_ids[: len(pst)]) and not pst.loss_mask.any()


def test_layout_details(tok, vocab):
    g = torch.Generator().manual_seed(1)
    a, b, c = codes(g), codes(g), codes(g)
    segs = TASKS["asr"].example(audio=a, text="hi").segments
    assert [type(s) for s in segs] == [TaskPrompt, AudioItem, TextField]
    assert segs[2].tag == "transcription" and segs[2].target and not segs[1].target
    assert TASKS["lyric_recognition"].example(audio=a, text="la").segments[-1].tag == "lyric"
    assert TASKS["music_caption"].example(audio=a, text="jazz").segments[-1].tag == "caption"
    assert TASKS["spoken_qa"].example(audio=a, text="yes").segments[-1].tag == "answer"
    qa = TASKS["audio_qa"].example(audio=a, question="loud?", text="yes").segments
    assert [type(s) for s in qa] == [TaskPrompt, PlainText, AudioItem, TextField] and qa[1].text == "loud?"
    v = TASKS["voice_tts"].example(voice=b[1], caption="calm", text="hi", audio=a).segments
    assert [type(s) for s in v] == [TaskPrompt, VoicePrompt, TextField, TextField, AudioItem]
    assert [s.tag for s in v[2:4]] == ["caption", "transcription"] and v[-1].target
    ss = TASKS["speech_sound"].example(caption="rain", text="hi", audio=a).segments
    assert (ss[1].tag, ss[1].text, ss[2].tag, ss[2].text) == ("caption", "rain", "transcription", "hi")
    ed = TASKS["speech_edit"].example(instruction="slower", source=b, audio=a).segments
    assert ed[1] == PlainText("slower") and ed[2] == AudioItem(*b) and ed[3] == AudioItem(*a, True)
    sep = TASKS["separation"].example(source=a, audio=b, second=c).segments
    assert sep[1:] == [AudioItem(*a), AudioItem(*b, True), AudioItem(*c, True)]
    fc = TASKS["fewshot_classify"].example(demos=[(a, "dog"), (b, "cat")], audio=c, text="dog").segments
    assert [s.text for s in fc if isinstance(s, TextField)] == ["dog", "cat", "dog"]
    assert [s.target for s in fc] == [False] * 6 + [True] and fc[-1].tag == "answer"
    fd = TASKS["fewshot_denoise"].example(demos=[(a, b)], source=c, audio=a).segments
    assert fd[1:] == [AudioItem(*a), AudioItem(*b), AudioItem(*c), AudioItem(*a, True)]
    # reasoning → reconstruction: one item, the loss on its reconstruction frames only
    st = build(TASKS["reason_to_recon"].example(audio=a).segments, tok, vocab)
    first = st.audio_ids[:, 0]
    r_end = int((first == vocab.end_reasoning).nonzero()[0])
    assert not st.loss_mask[: r_end + 1].any() and st.loss_mask[r_end + 1:].all()
    rr = TASKS["recon_to_reason"].example(audio=a).segments
    assert rr[1:] == [AudioItem(None, a[1]), AudioItem(a[0], None, True)]
    assert TASKS["reason_to_recon"].prompt(audio=(a[0], None)).segments[1:] == [AudioItem(a[0], None)]
    # continuation with and without a prefix; text-only data is raw text
    assert TASKS["audio_only"].example(audio=a, prefix=b).segments[1:] == [AudioItem(*b), AudioItem(*a, True)]
    assert TASKS["audio_only"].example(audio=a).segments[1:] == [AudioItem(*a, True)]
    assert TASKS["text_only"].example(text="hello").segments == [PlainText("hello", True)]


def test_prompts_varied_and_per_language():
    for name, spec in TASKS.items():
        if name == "text_only":  # raw text, as the backbone LLM read it: no prompt by design
            assert spec.prompts == () and "<task>" not in spec.layout
            continue
        assert len(set(spec.prompts)) >= 5, name
        english = [p for p in spec.prompts if p.isascii()]
        assert len(set(english)) >= 5, name
    for key in ("tts", "tts_zh", "tts_yue", "song", "song_zh"):
        assert len(set(TASK_PROMPTS[key])) >= 5
    # the language picks the prompt list; a random draw varies the prompt
    g = torch.Generator().manual_seed(0)
    a = codes(g)
    tts = TASKS["tts"]
    for lang, key in (("en", "tts"), ("zh", "tts_zh"), ("yue", "tts_yue")):
        drawn = {tts.example(random.Random(i), text="hi", audio=a, language=lang).segments[0].text for i in range(40)}
        assert drawn <= set(TASK_PROMPTS[key]) and len(drawn) >= 3
    assert TASKS["song"].example(lyric="la", audio=a, language="zh").segments[0].text in TASK_PROMPTS["song_zh"]
    assert TASKS["tts"].example(random.Random(3), text="hi", audio=a, language="cmn").segments == \
        TASKS["tts"].example(random.Random(3), text="hi", audio=a, language="zh").segments  # ISO 639-3 Mandarin
    with pytest.raises(TaskError, match="languages"):
        TASKS["song"].example(lyric="la", audio=a, language="yue")
    with pytest.raises(TaskError, match=r"no field\(s\) \['language'\]"):
        TASKS["asr"].example(audio=a, text="x", language="zh")


def test_get_and_field_errors():
    assert registry.get("continue") is TASKS["audio_only"] and registry.get("lyric") is TASKS["lyric_recognition"]
    with pytest.raises(TaskError, match="unknown task 'karaoke'.*asr.*fewshot_classify"):
        registry.get("karaoke")
    g = torch.Generator().manual_seed(0)
    with pytest.raises(TaskError, match=r"needs the field\(s\) \['text'\]"):
        TASKS["asr"].example(audio=codes(g))
    with pytest.raises(TaskError, match="has no field"):
        TASKS["asr"].example(audio=codes(g), text="x", caption="y")
    with pytest.raises(TaskError, match="at least one demonstration"):
        TASKS["fewshot_vc"].example(demos=[], source=codes(g), audio=codes(g))
    with pytest.raises(TaskError, match="leaves out"):
        TASKS["tts"].prompt(text="x", audio=codes(g))


# ---------------------------------------------------------------- manifests
def test_manifest_rows_for_every_kind(tmp_path):
    g = torch.Generator().manual_seed(2)
    saved = [codes(g) for _ in range(6)]
    for i, (r, q) in enumerate(saved):
        save_file({"reasoning": r, "recon": q}, str(tmp_path / f"c{i}.safetensors"))
    rows = [
        {"task": "asr", "codes": "c0.safetensors", "text": "hello", "id": "x1"},
        {"task": "dysarthric_asr", "codes": "c1.safetensors", "text": "hello"},
        {"task": "tts", "codes": "c0.safetensors", "text": "你好", "language": "zh"},
        {"task": "separation", "source": "c0.safetensors", "codes": "c1.safetensors", "second": "c2.safetensors"},
        {"task": "song", "codes": "c3.safetensors", "lyric": "la", "voice": "c4.safetensors"},
        {"task": "continue", "codes": "c2.safetensors"},
        {"task": "text_only", "text": "plain text"},
        {"task": "fewshot_classify", "demos": [{"codes": "c0.safetensors", "label": "dog"},
                                               {"codes": "c1.safetensors", "label": "cat"}],
         "codes": "c2.safetensors", "text": "dog"},
        {"task": "fewshot_denoise", "demos": [{"source": "c3.safetensors", "codes": "c4.safetensors"}],
         "source": "c5.safetensors", "codes": "c0.safetensors"},
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    m = Manifest(path, "fewshot")
    assert len(m) == 2 and len(Manifest(path, "understanding")) == 2 and len(Manifest(path, "generation")) == 3
    assert len(Manifest(path, "audio")) == 1 and len(Manifest(path, "text")) == 1
    seen = set()
    for seed in range(12):
        ex = m(random.Random(seed))
        seen.add(ex.task)
        row = next(r for r in rows if r["task"] == ex.task)
        ref = registry.get(ex.task).example(random.Random(seed), **m.fields(row)).segments
        assert ex.segments[1:] == ref[1:] and ex.kind == "fewshot"
    assert seen == {"fewshot_classify", "fewshot_denoise"}
    gen = Manifest(path, "generation")
    tts_row = gen.fields(rows[2])
    assert tts_row["language"] == "zh" and all(torch.equal(tts_row["audio"][i], saved[0][i]) for i in (0, 1))
    assert gen.fields(rows[4])["voice"].shape == (CODEC.num_recon_codebooks, 5)
    # a model reading a prefix of the residual stages gets truncated codes; asking for more is an error
    pre = Manifest(path, "generation", codebooks=(1, 2)).fields(rows[2])["audio"]
    assert torch.equal(pre[0], saved[0][0][:1]) and torch.equal(pre[1], saved[0][1][:2])
    with pytest.raises(TaskError, match="codebooks"):
        Manifest(path, "generation", codebooks=(1, CODEC.num_recon_codebooks + 1)).fields(rows[2])
    # train.build_sources picks up few-shot rows from manifests
    from uniaudio_lm.train import TrainConfig, build_sources

    src = build_sources(TrainConfig(manifests=[str(path)]), ul.default_tokenizer(), ul.UniAudioConfig.preset("tiny", CODEC))
    assert {k for k, v in src.items() if any(isinstance(s, Manifest) for s in v)} == {
        "text", "audio", "understanding", "generation", "fewshot"}
    # bad rows are reported with their line
    path.write_text(json.dumps({"task": "asr", "codes": "c0.safetensors"}) + "\n", encoding="utf-8")
    with pytest.raises(TaskError, match=r"m\.jsonl:1: .*asr.*\['text'\]"):
        Manifest(path, "understanding")
    path.write_text(json.dumps({"task": "fewshot_vc", "demos": [{"codes": "c0.safetensors"}], "source": "c1",
                                "codes": "c2"}) + "\n", encoding="utf-8")
    with pytest.raises(TaskError, match="demos"):
        Manifest(path, "fewshot")
    path.write_text(json.dumps({"task": "karaoke"}) + "\n", encoding="utf-8")
    with pytest.raises(TaskError, match="m.jsonl:1: unknown task"):
        Manifest(path, "generation")


# ---------------------------------------------------------------- Python functions
def test_every_task_has_a_function():
    for spec in TASKS.values():
        fn = getattr(api, spec.function)
        assert callable(fn) and getattr(ul, spec.function) is fn
        assert "pipeline" in fn.__code__.co_varnames and "seed" in fn.__code__.co_varnames


def test_load_without_weights_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(pl, "DEFAULT_DIR", tmp_path / "default")
    with pytest.raises(NoWeightsInstalledError, match="no trained uniaudio_lm weights are installed.*train"):
        ul.load()
    with pytest.raises(WeightsError, match="not found"):
        ul.load(tmp_path / "nowhere")
    monkeypatch.setattr(api, "_DEFAULT", None)
    with pytest.raises(NoWeightsInstalledError):
        api.asr(np.zeros(2400, np.float32))


def test_pipeline_save_load_and_codec_check(tmp_path, pipe, monkeypatch):
    d = tmp_path / "pipe"
    pipe.save_pretrained(d)
    meta = json.loads((d / "pipeline.json").read_text())
    assert meta["codec_model_id"] == "test-tiny" and meta["recon_codebooks"] == CODEC.num_recon_codebooks
    p2 = ul.load(d, codec=pipe.codec)
    for k, v in pipe.model.state_dict().items():
        assert torch.equal(v, p2.model.state_dict()[k])
    other = ReasoningCodec(dataclasses.replace(CODEC, model_id="another-codec"))
    with pytest.raises(WeightsError, match="trained on tokens of codec 'test-tiny'.*'another-codec'"):
        ul.load(d, codec=other)
    monkeypatch.setattr(reasoningcodec, "load", lambda device="cpu": other)
    with pytest.raises(WeightsError, match="another-codec"):
        ul.load(d)
    (d / "pipeline.json").write_text("{not json")
    with pytest.raises(WeightsError, match="not valid JSON"):
        ul.load(d, codec=pipe.codec)


def test_functions_end_to_end_on_a_tiny_pipeline(pipe, tmp_path):
    sr = pipe.sample_rate
    t = np.arange(sr) / sr
    x = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    wav = tmp_path / "x.wav"
    sf.write(wav, x, sr, subtype="FLOAT")
    # the three input forms give the same codes; another rate is resampled
    c1, c2, c3 = pipe.encode(x), pipe.encode(str(wav)), pipe.encode((x, sr))
    assert all(torch.equal(c1[i], c[i]) for c in (c2, c3) for i in (0, 1))
    assert c1[1].shape == (CODEC.num_recon_codebooks, -(-sr // CODEC.recon_hop))
    assert pipe.encode((x[::2], sr // 2))[1].shape == c1[1].shape
    assert torch.equal(pipe.encode(np.stack([x, x]))[1], c1[1])  # [C, T] is mixed to mono
    for bad, msg in (((x, -5), "sample rate"), (np.stack([x, x]).T, "channels first"), ([0.0, 1.0], "got list"),
                     (np.array([np.nan, 0.0], np.float32), "NaN"), (str(tmp_path / "none.wav"), "not found")):
        with pytest.raises(reasoningcodec.AudioError, match=msg):
            pipe.encode(bad)

    text = ul.asr(str(wav), pipeline=pipe, max_new_tokens=6)
    assert isinstance(text, str)
    out = ul.tts("hello there", pipeline=pipe, max_seconds=0.4, seed=3)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.ndim == 1
    assert 0 < len(out) <= pipe.frames_for(0.4) * CODEC.recon_hop and len(out) % CODEC.recon_hop == 0
    assert np.array_equal(out, ul.tts("hello there", pipeline=pipe, max_seconds=0.4, seed=3))
    zh = ul.tts("你好", language="zh", pipeline=pipe, max_seconds=0.3)
    assert zh.dtype == np.float32 and zh.ndim == 1
    with pytest.raises(TaskError, match="languages"):
        ul.tts("hi", language="fr", pipeline=pipe)

    examples = [(x, "tone"), ((0.1 * np.random.default_rng(0).standard_normal(sr // 2)).astype(np.float32), "noise")]
    label = ul.fewshot_classify(examples, (x, sr), pipeline=pipe)
    scores = ul.fewshot_scores(examples, x, pipeline=pipe)
    assert label in ("tone", "noise") and label == max(scores, key=scores.get)
    assert all(np.isfinite(v) and v < 0 for v in scores.values())
    assert ul.fewshot_classify(examples, x, labels=["noise", "siren"], pipeline=pipe) in ("noise", "siren")
    a, b = ul.separate(x, pipeline=pipe, max_seconds=0.3)
    assert a.dtype == b.dtype == np.float32
    r = ul.recon_to_reason(x, pipeline=pipe, max_seconds=0.6)
    assert r.dtype == np.int64 and r.shape[0] == CODEC.num_reasoning_codebooks and r.shape[1] <= 3
    assert ul.reason_to_recon(x, pipeline=pipe, max_seconds=0.3).ndim == 1
    assert isinstance(ul.continue_text("Once upon", pipeline=pipe, max_new_tokens=3), str)


def test_score_is_the_teacher_forced_log_likelihood(pipe, tok):
    g = torch.Generator().manual_seed(5)
    ex = TASKS["fewshot_classify"].example(demos=[(codes(g), "dog"), (codes(g), "cat")], audio=codes(g), text="dog")
    s = ul.score(pipe.model, tok, ex.segments)
    batch = ul.collate([build(ex.segments, tok, pipe.model.vocab)], tok, pipe.model.vocab)
    with torch.no_grad():
        out = pipe.model(batch)
    assert out.n_audio == 0 and out.n_text == len(tok.encode("dog")) + 3  # <answer>, label, </answer>, <eot>
    assert s == pytest.approx(-float(out.text_loss) * out.n_text, rel=1e-5)
    gen = TASKS["tts"].example(text="hi", audio=codes(g)).segments
    with torch.no_grad():
        o2 = pipe.model(ul.collate([build(gen, tok, pipe.model.vocab)], tok, pipe.model.vocab))
    assert ul.score(pipe.model, tok, gen) < -float(o2.text_loss) * o2.n_text  # audio targets add to it


# ---------------------------------------------------------------- the CLI
def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_task_has_a_cli_subcommand_with_help():
    subs = _subparsers(cli.build_parser())
    assert {"list", "install"} <= set(subs)
    for spec in TASKS.values():
        assert spec.function in subs and spec.name in subs, spec.name
        h = subs[spec.function].format_help()
        assert "--model" in h and "--seed" in h and "--device" in h and spec.name in h
        for name, _, _ in cli.COMMANDS[spec.function]["pos"]:
            assert name in h
    a = cli.build_parser().parse_args(["fewshot_classify", "--example", "a.wav", "dog", "--example", "b.wav",
                                       "cat", "q.wav", "--seed", "4"])
    assert a.example == [["a.wav", "dog"], ["b.wav", "cat"]] and a.query == "q.wav" and a.seed == 4
    a = cli.build_parser().parse_args(["tts", "hello", "-o", "out.wav", "--language", "yue"])
    assert (a.text, a.output, a.language, a.function) == ("hello", "out.wav", "yue", "tts")
    assert cli.build_parser().parse_args(["text_only", "hi"]).function == "continue_text"


def test_cli_list(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for spec in TASKS.values():
        assert spec.name in out and spec.layout in out
    assert cli.main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["task"] for r in rows} == set(TASKS) and all(r["prompts"] == len(TASKS[r["task"]].prompts) for r in rows)


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pl, "DEFAULT_DIR", tmp_path / "default")
    cases = [(["asr", str(tmp_path / "missing.wav")], "audio file not found")]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00garbage" * 10)
    cases.append((["asr", str(bad)], "cannot read"))
    good = tmp_path / "good.wav"
    sf.write(good, np.zeros(2400, np.float32), 24000)
    cases.append((["asr", str(good)], "no trained uniaudio_lm weights are installed"))
    cases.append((["tts", "hi", "-o", str(tmp_path / "out.mp4")], "must end with"))
    cases.append((["tts", "hi", "-o", str(tmp_path / "no" / "out.wav")], "does not exist"))
    cases.append((["tts", "hi", "-o", str(good)], "exists; use -f"))
    cases.append((["asr", str(good), "--model", str(tmp_path / "nowhere")], "pipeline folder not found"))
    for argv, msg in cases:
        assert cli.main(argv) == 1, argv
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    assert sf.read(good)[0].shape == (2400,)  # an existing output is kept
    with pytest.raises(SystemExit) as e:
        cli.main(["tts"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "required" in err


def test_cli_runs_tasks_with_a_saved_pipeline(tmp_path, pipe, capsys, monkeypatch):
    d = tmp_path / "pipe"
    pipe.save_pretrained(d)
    monkeypatch.setattr(reasoningcodec, "load", lambda device="cpu": pipe.codec)
    x = (0.2 * np.sin(2 * np.pi * 330 * np.arange(12000) / 24000)).astype(np.float32)
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    sf.write(a, x, 24000)
    sf.write(b, x[::-1].copy(), 24000)
    common = ["--model", str(d), "-q"]
    assert cli.main(["asr", str(a), "--max-new-tokens", "3", *common]) == 0
    assert isinstance(capsys.readouterr().out, str)
    out = tmp_path / "out.wav"
    assert cli.main(["tts", "hi", "-o", str(out), "--max-seconds", "0.3", *common]) == 0
    y, sr = sf.read(out)
    assert sr == 24000 and y.ndim == 1 and len(y) > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left behind
    assert cli.main(["fewshot_classify", "--example", str(a), "tone", "--example", str(b), "other", str(a),
                     *common]) == 0
    assert capsys.readouterr().out.strip() in ("tone", "other")
    s1, s2 = tmp_path / "s1.wav", tmp_path / "s2.flac"
    assert cli.main(["separate", str(a), "-o", str(s1), str(s2), "--max-seconds", "0.2", *common]) == 0
    assert s1.is_file() and s2.is_file()
    assert cli.main(["recon_to_reason", str(a), "--max-seconds", "0.4", *common]) == 0
    assert len(json.loads(capsys.readouterr().out)["reasoning"]) == CODEC.num_reasoning_codebooks
    # install: from UniAudioLM.save_pretrained output into a pipeline folder
    pipe.model.save_pretrained(tmp_path / "run")
    dest = tmp_path / "installed"
    assert cli.main(["install", str(tmp_path / "run"), "--dest", str(dest), "--codec-model-id", "test-tiny"]) == 0
    assert json.loads((dest / "pipeline.json").read_text())["codec_model_id"] == "test-tiny"
    from safetensors.torch import load_file
    stored = load_file(str(dest / "model.safetensors"))
    assert all(v.dtype == torch.float16 for v in stored.values() if v.is_floating_point())  # fp16 on disk
    reloaded = ul.UniAudioLM.from_pretrained(dest)
    for k, v in reloaded.state_dict().items():
        if v.is_floating_point():
            assert v.dtype == torch.float32 and torch.allclose(v, pipe.model.state_dict()[k].float(), atol=1e-2)
    assert cli.main(["install", str(tmp_path / "run"), "--dest", str(dest)]) == 1  # already installed, no -f


def test_python_m_uniaudio_lm_error_exit(tmp_path):
    r = subprocess.run([sys.executable, "-m", "uniaudio_lm", "asr", str(tmp_path / "missing.wav")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "audio file not found" in r.stderr and "Traceback" not in r.stderr


def test_pipeline_reads_a_prefix_of_the_reasoning_stages(pipe):
    cfg = ul.UniAudioConfig.preset("tiny", CODEC, text_vocab_size=ul.default_tokenizer().vocab_size,
                                   num_reasoning_codebooks=1)
    p1 = ul.Pipeline(ul.UniAudioLM(cfg), ul.default_tokenizer(), pipe.codec)
    wav = np.random.default_rng(0).standard_normal(24000).astype(np.float32) * 0.1
    r1, q1 = p1.encode(wav)
    r2, q2 = pipe.encode(wav)
    assert r1.shape[0] == 1 and r2.shape[0] == CODEC.num_reasoning_codebooks
    assert torch.equal(r1, r2[:1]) and torch.equal(q1, q2)
    too_many = ul.UniAudioConfig.preset("tiny", CODEC, text_vocab_size=ul.default_tokenizer().vocab_size,
                                        num_reasoning_codebooks=CODEC.num_reasoning_codebooks + 1)
    with pytest.raises(WeightsError, match="reasoning codes"):
        ul.Pipeline(ul.UniAudioLM(too_many), ul.default_tokenizer(), pipe.codec)


def test_shipped_model_loads_offline_and_runs():
    """The committed default pipeline matches the embedded codec and answers through the public API."""
    from uniaudio_lm.pipeline import DEFAULT_DIR

    meta = json.loads((DEFAULT_DIR / "pipeline.json").read_text())
    p = ul.load()
    assert meta["codec_model_id"] == p.codec.config.model_id == reasoningcodec.load().config.model_id
    assert p.model.num_parameters() * 2 <= 50e6  # ships ≤ 50 MB in fp16
    assert (DEFAULT_DIR / "model.safetensors").stat().st_size <= 50e6
    t = np.arange(24000) / 24000
    wav = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    out = ul.asr(wav, pipeline=p, max_new_tokens=8)
    assert isinstance(out, str)
    label = ul.fewshot_classify([(wav, "tone"), (wav[::-1].copy() * 0.1, "hum")], wav, pipeline=p)
    assert label in ("tone", "hum")


def test_tts_duration_sets_the_output_length(pipe):
    """With ``duration`` the speech lasts within the duration model's tolerance of it (no duration model:
    ±15%), whatever the (untrained) model would do; a bad duration is a clear error."""
    sr = pipe.sample_rate
    for seconds in (0.4, 0.8):
        y = ul.tts("hello there", pipeline=pipe, duration=seconds, max_seconds=5.0, seed=1)
        assert 0.85 * seconds - 0.1 <= len(y) / sr <= 1.15 * seconds + 0.1
    with pytest.raises(ValueError, match="duration must be a positive number"):
        ul.tts("hello", pipeline=pipe, duration=0.0)
