"""The ``style_conditioning`` option: rate, pitch and gender as numbers added to generated speech."""

from __future__ import annotations

import json
import random

import pytest
import torch
from safetensors.torch import save_file

from uniaudio_lm import UniAudioConfig, UniAudioLM, build, collate
from uniaudio_lm.data import Manifest, TextLines
from uniaudio_lm.generate import GenerationConfig, generate
from uniaudio_lm.stages import STAGES, BucketBatcher
from uniaudio_lm.style import FEATURES, Style, from_caption, from_row
from uniaudio_lm.tasks import generation
from uniaudio_lm.train import TrainConfig, train

from .test_uniaudio_core import CODEC, codes, tok, vocab  # noqa: F401  (tok, vocab: shared fixtures)


def style_model(seed: int = 0) -> UniAudioLM:
    torch.manual_seed(seed)
    model = UniAudioLM(UniAudioConfig.preset("tiny", CODEC, style_conditioning=True)).to(torch.float64).eval()
    with torch.no_grad():
        model.style_proj.out.weight.normal_(std=0.5)
    return model


def test_every_caption_the_recipe_writes_reads_back_as_its_style():
    from uniaudio_lm.recipes.common import Voice
    from uniaudio_lm.recipes.speech import PITCH_BINS, RATE_BINS, style_caption

    rng = random.Random(0)
    for i in range(300):
        rc, pc = rng.choice(tuple(RATE_BINS)), rng.choice(tuple(PITCH_BINS))
        gender = rng.choice(("male", "female", None))
        variant = {"male": "m3", "female": "f2", None: "croak"}[gender]
        v = Voice("en", "en-us", variant, rng.randint(*RATE_BINS[rc]), rng.randint(*PITCH_BINS[pc]))
        cap = style_caption(rng, v, rng.choice(("quiet", "normal", "loud")))
        s = from_caption(cap)
        assert s.rate_wpm == {"slow": 125.0, "normal": 172.5, "fast": 240.0}[rc], cap
        assert s.pitch == {"low": 26.0, "medium": 50.0, "high": 74.0}[pc], cap
        assert s.gender == v.gender, cap


def test_caption_words_style_values_and_errors():
    assert from_caption("A FAST, deep woman's voice.") == Style(240.0, 26.0, "female")
    assert from_caption("a man's voice") == Style(gender="male")
    assert from_caption("fast and slow, male and female").empty        # contradictions: left to the model
    assert from_caption("a breakfast at the highlands").empty           # words inside words do not count
    assert from_caption(None).empty and Style().features() == (0.0,) * len(FEATURES)
    f = Style(240.0, 74.0, "male").features()
    assert f[2:] == (1.0, 1.0, 1.0, 0.0) and f[0] > 1 and f[1] > 0.9
    assert Style(2000.0).features()[0] == 3.0                          # clipped
    with pytest.raises(ValueError, match="gender"):
        Style(gender="child")
    with pytest.raises(ValueError, match="finite"):
        Style(rate_wpm=float("nan"))
    assert from_row({"style": {"rate_wpm": 200, "pitch": 30, "gender": "female", "voice": "x"}}) == \
        Style(200.0, 30.0, "female")
    assert from_row({"style": {"voice": "x"}}) is None and from_row({}) is None
    s = Style(200.0, 30.0, "female")
    drops = [s.dropped(random.Random(i)) for i in range(400)]
    assert 0.15 < sum(d.rate_wpm is None for d in drops) / 400 < 0.35
    assert any(d == s for d in drops) and any(d.empty for d in drops)


def test_style_reaches_only_the_generated_frames_and_starts_at_zero(tok, vocab):
    g = torch.Generator().manual_seed(0)
    ex = generation("instruct_tts", codes(g, 3, 7), caption="A fast voice.", text="hello there")
    batch = collate([build(ex.segments, tok, vocab)], tok, vocab)
    batch.style = torch.tensor([Style(240.0, 74.0, "male").features()], dtype=torch.float64)
    model = style_model()
    at = batch.is_audio & batch.loss_mask
    h1 = model.hidden(batch.text_ids, batch.audio_ids, batch.is_audio, batch.valid, style=batch.style, style_at=at)
    h0 = model.hidden(batch.text_ids, batch.audio_ids, batch.is_audio, batch.valid)
    first = int(at[0].nonzero()[0])
    assert torch.allclose(h1.text_hidden[:, :first], h0.text_hidden[:, :first])     # the prompt reads no style
    assert not torch.allclose(h1.audio_hidden[:, first:], h0.audio_hidden[:, first:])
    with torch.no_grad():
        assert float(model(batch).loss) != float(model(collate([build(ex.segments, tok, vocab)], tok, vocab)).loss)
    # a fresh map adds nothing; an empty style adds nothing
    model.style_proj.reset_parameters()
    assert torch.allclose(model.hidden(batch.text_ids, batch.audio_ids, batch.is_audio, batch.valid,
                                       style=batch.style, style_at=at).audio_hidden, h0.audio_hidden)


def test_generation_with_style_cache_equals_full_and_cfg_copies_get_none(tok, vocab):
    model = style_model(1)
    prompt = generation("tts", None, text="hi").segments
    runs = {}
    for name, style in (("none", None), ("fast", Style(240.0, 74.0, "male").features()),
                        ("slow", Style(125.0, 26.0, "female").features())):
        outs = [generate(model, tok, [prompt], GenerationConfig(max_new_positions=14, mode="audio", seed=0, style=style,
                                                                use_cache=c, max_segment_frames=5))[0]
                for c in (True, False)]
        assert torch.equal(outs[0].frames, outs[1].frames)
        runs[name] = outs[0].frames
    assert not torch.equal(runs["fast"], runs["slow"]) and not torch.equal(runs["none"], runs["fast"])
    cfg = generate(model, tok, [prompt], GenerationConfig(max_new_positions=14, mode="audio", seed=0,
                                                          style=Style(240.0).features(), cfg_scale=2.0,
                                                          max_segment_frames=5))[0]
    assert cfg.frames.shape[0] > 0


def test_manifest_rows_carry_their_style_into_the_batch_and_dropped_conditions_carry_none(tmp_path, tok, vocab):
    g = torch.Generator().manual_seed(2)
    r, q = codes(g, 3, 7)
    save_file({"reasoning": r, "recon": q}, str(tmp_path / "c0.safetensors"))
    st = {"rate_wpm": 240, "pitch": 70, "gender": "male", "voice": "en+m3"}
    rows = [{"task": "tts", "codes": "c0.safetensors", "text": "hello", "style": st},
            {"task": "asr", "codes": "c0.safetensors", "text": "hello", "style": st}]
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in rows))
    gen, und = Manifest(path, "generation"), Manifest(path, "understanding")
    assert gen(random.Random(0)).style == Style(240.0, 70.0, "male")
    assert und(random.Random(0)).style is None                                  # recognition rows: no style
    stage = STAGES[3]
    b = BucketBatcher(stage, {"text": [TextLines()], "generation": [gen]}, tok, vocab, max_tokens=400, seed=1)
    seen = []
    for step in range(12):
        batch, info = b.batch(step)
        assert batch.style is not None and batch.style.shape == (len(info.kinds), len(FEATURES))
        assert not bool(batch.style[-stage.text_per_batch:].any())               # text rows: none
        seen += batch.style[: -stage.text_per_batch].tolist()
    full = Style(240.0, 70.0, "male").features()
    assert any(tuple(round(x, 5) for x in s) == tuple(round(x, 5) for x in full) for s in seen)
    assert any(s[2] == 0.0 for s in seen)                                       # parts left out at random


def test_loading_adds_a_zero_style_map_and_trainable_prefixes(tmp_path):
    plain = UniAudioLM(UniAudioConfig.preset("tiny", CODEC))
    plain.save_pretrained(tmp_path / "plain")
    more = UniAudioLM.from_pretrained(tmp_path / "plain", overrides={"style_conditioning": True})
    assert bool((more.style_proj.out.weight == 0).all())
    assert torch.equal(more.depth.heads, plain.depth.heads)
    base = dict(out_dir=str(tmp_path / "run"), synthetic=True, steps=2, preset="tiny", threads=1, stage=3,
                model={"style_conditioning": True}, max_tokens=512)
    with pytest.raises(ValueError, match="trainable names no parameter"):
        train(TrainConfig.from_dict({**base, "trainable": ["nope."]}), quiet=True)
    train(TrainConfig.from_dict({**base, "out_dir": str(tmp_path / "r2"), "trainable": ["generation.", "depth."]}),
          quiet=True)
    torch.manual_seed(0)
    done = UniAudioLM.from_pretrained(tmp_path / "r2" / "model")
    torch.manual_seed(0)
    fresh = UniAudioLM(done.config)
    same = {n for n, p in done.named_parameters() if torch.equal(p, dict(fresh.named_parameters())[n])}
    assert all(n in same for n, _ in done.named_parameters() if not n.startswith(("generation.", "depth.")))
    assert any(n.startswith("generation.") and n not in same for n, _ in done.named_parameters())
    # resuming that run with a recipe whose model lacks the style map is a clear error, not a raw one
    with pytest.raises(ValueError, match="only in the checkpoint: style_proj"):
        train(TrainConfig.from_dict({**base, "out_dir": str(tmp_path / "r2"), "steps": 3, "model": {}}), quiet=True)


def test_style_guidance_moves_generation_and_its_pipeline_default(tmp_path, tok, vocab, capsys):
    import numpy as np

    from reasoningcodec import ReasoningCodec
    from uniaudio_lm import api, cli
    from uniaudio_lm.inference import audio_config
    from uniaudio_lm.pipeline import install, load, read_meta

    model = style_model(2)
    prompt = generation("tts", None, text="hi").segments
    fast = Style(240.0, 74.0, "male").features()
    run = lambda **k: generate(model, tok, [prompt], GenerationConfig(  # noqa: E731
        max_new_positions=14, mode="audio", seed=0, max_segment_frames=5, **k))[0].frames
    assert torch.equal(run(style=fast, style_scale=3.0), run(style=fast, style_scale=3.0))
    assert not torch.equal(run(style=fast, style_scale=3.0), run(style=fast))
    assert torch.equal(run(style_scale=3.0), run())                     # no style: nothing to guide
    with pytest.raises(ValueError, match="cfg_scale or style_scale"):
        run(style=fast, style_scale=2.0, cfg_scale=2.0)
    # the pipeline's default comes from pipeline.json; install writes it and a re-install keeps it
    model.float().save_pretrained(tmp_path / "model")
    d = install(tmp_path / "model", tmp_path / "pipe", CODEC.model_id, style_scale=2.5)
    install(tmp_path / "model", tmp_path / "pipe", CODEC.model_id)
    assert read_meta(d)["style_scale"] == 2.5
    pipe = load(d, codec=ReasoningCodec(CODEC).eval())
    assert pipe.style_scale == 2.5
    cap = Style(125.0, 26.0, "female")
    assert audio_config(pipe, 1.0, 0.9, 50, None, 0, style=cap).style_scale == 2.5
    assert audio_config(pipe, 1.0, 0.9, 50, None, 0, style=cap, style_scale=1.0).style_scale is None
    assert audio_config(pipe, 1.0, 0.9, 50, None, 0).style is None      # no style asked: none given
    with pytest.raises(ValueError, match="style_scale must be a number >= 1"):
        audio_config(pipe, 1.0, 0.9, 50, None, 0, style=cap, style_scale=0.5)
    with pytest.raises(ValueError, match="style_scale must be a number >= 1"):
        install(tmp_path / "model", tmp_path / "pipe", CODEC.model_id, style_scale=float("nan"))
    assert cli.main(["install", str(tmp_path / "model"), "--dest", str(tmp_path / "pipe"), "-f",
                     "--codec-model-id", CODEC.model_id, "--style-scale", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "style_scale must be a number >= 1" in err[0]
    assert read_meta(d)["style_scale"] == 2.5                           # the failed install changed nothing
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wav = api.instruct_tts("hi", "A fast, high-pitched male voice.", pipeline=pipe, max_seconds=0.5)
    assert isinstance(wav, np.ndarray) and wav.dtype == np.float32
