"""uniaudio_lm core: tokenizer, vocabulary, auditory sentences, model, generation invariants (fast)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from reasoningcodec import CodecConfig, ReasoningCodec
from uniaudio_lm import (AudioItem, AudioVocab, GenerationConfig, PlainText, SamplingConfig, TaskPrompt, TextField,
                         UniAudioConfig, UniAudioLM, VoicePrompt, build, codes_from_items, collate, decode_audio,
                         default_tokenizer, drop_conditions, generate, parse, sample)
from uniaudio_lm.codec_inputs import VAR_EPS
from uniaudio_lm.tasks import few_shot, generation, understanding

# a small codec with Kr != Kq so that codebook padding is exercised
CODEC = CodecConfig(enc_dim=32, latent_dim=48, dec_dim=32, reasoning_dim=32, reasoning_heads=2, reasoning_layers=1,
                    num_recon_codebooks=3, recon_codebook_size=32, num_reasoning_codebooks=2,
                    reasoning_codebook_size=16, dec_blocks=1, enc_blocks=1)


@pytest.fixture(scope="module")
def tok():
    return default_tokenizer()


@pytest.fixture(scope="module")
def vocab():
    return AudioVocab.from_codec_config(CODEC)


def codes(g: torch.Generator, tr: int, tq: int, cc: CodecConfig = CODEC) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.randint(0, cc.reasoning_codebook_size, (cc.num_reasoning_codebooks, tr), generator=g),
            torch.randint(0, cc.recon_codebook_size, (cc.num_recon_codebooks, tq), generator=g))


def tiny_model(seed: int = 0, dtype: torch.dtype = torch.float32) -> UniAudioLM:
    torch.manual_seed(seed)
    return UniAudioLM(UniAudioConfig.preset("tiny", CODEC)).to(dtype).eval()


# ---------------------------------------------------------------- tokenizer / vocab
def test_tokenizer_round_trip_and_specials(tok):
    assert 3500 <= tok.vocab_size <= 4200
    for s in ["Hello, world!", "今天天气很好。", "我哋一齊去飲茶啦", "  spaces\tand\nnewlines  ", "emoji 🎵 ok",
              "literal <answer> and <eot> stay text"]:
        ids = tok.encode(s)
        assert tok.decode(ids) == s
        assert not any(tok.is_special(i) for i in ids)
    assert tok.pad_id == 0 and len({tok.eot_id, tok.audio_id, *tok.tag_ids("answer")}) == 4


@pytest.mark.parametrize("cc", [CODEC, CodecConfig(), CodecConfig(num_reasoning_codebooks=4, reasoning_codebook_size=64,
                                                                  num_recon_codebooks=2, recon_codebook_size=8)])
def test_vocab_derived_from_codec_config(cc):
    v = AudioVocab.from_codec_config(cc)
    nr, nq = cc.reasoning_codebook_size, cc.recon_codebook_size
    assert v.num_codebooks == max(cc.num_reasoning_codebooks, cc.num_recon_codebooks)
    assert v.recon_offset == nr and v.codebook_pad == nr + nq and v.size == nr + nq + 8
    specials = [v.begin_reasoning, v.end_reasoning, v.begin_recon, v.end_recon, v.audio_pad, v.begin_voice, v.end_voice]
    assert sorted(specials) == list(range(nr + nq + 1, v.size))
    g = torch.Generator().manual_seed(1)
    r, q = codes(g, 3, 7, cc)
    fr, fq = v.reasoning_frames(r), v.recon_frames(q)
    assert fr.shape == fq.shape[1:] + (3,) or fr.shape == (3, v.num_codebooks)
    assert torch.equal(v.frames_to_reasoning(fr), r) and torch.equal(v.frames_to_recon(fq), q)
    assert int(fq[:, : cc.num_recon_codebooks].min()) >= nr
    m = v.allowed_mask("recon")
    assert m.shape == (v.num_codebooks, v.size) and not m[:, :nr].any() and m[0, v.end_recon]
    m = v.allowed_mask("reasoning")
    assert not m[:, nr : nr + nq].any() and m[0, v.end_reasoning]
    mc = UniAudioConfig.preset("tiny", cc)
    assert (mc.num_codebooks, mc.audio_vocab_size) == (v.num_codebooks, v.size)


# ---------------------------------------------------------------- sentences
def test_sentence_round_trip_every_segment_type(tok, vocab):
    g = torch.Generator().manual_seed(0)
    r, q = codes(g, 3, 8)
    segs = [TaskPrompt("Transcribe the speech exactly as it is spoken."),
            *[TextField(tag, f"{tag} 文本 text", tag == "answer") for tag in ("transcription", "lyric", "caption", "answer")],
            PlainText("plain text, 廣東話 <caption> literal"), PlainText(" and a target", True),
            VoicePrompt(q[:, :5]), VoicePrompt(q[:2, :3], True),
            AudioItem(r, q), AudioItem(r, q, True), AudioItem(r, q, True, "recon"), AudioItem(r, q, True, "reasoning"),
            AudioItem(None, q[:, :4]), AudioItem(r[:1], None, True), PlainText("x"), AudioItem(r, q[:, :0])]
    st = build(segs, tok, vocab)
    assert st.audio_ids.shape == (len(st), vocab.num_codebooks)
    assert parse(st, tok, vocab) == segs
    assert st.text_ids[-1] == tok.eot_id and not st.loss_mask[-1]  # last segment is not a target
    assert parse(build(segs, tok, vocab, eot=False), tok, vocab) == segs
    # audio positions hold <audio> as text id, text positions hold audio-pad frames
    assert (st.text_ids[st.is_audio] == tok.audio_id).all()
    assert (st.audio_ids[~st.is_audio] == vocab.audio_pad).all()


def test_task_layouts_round_trip_and_condition_dropout(tok, vocab):
    g = torch.Generator().manual_seed(3)
    a, b, c, d = (codes(g, 2, 5) for _ in range(4))
    exs = [understanding("asr", a, "hello"), understanding("audio_qa", a, "yes", question="Is it raining?"),
           generation("voice_tts", a, text="hi there", caption="calm voice", voice=b[1]),
           few_shot("fewshot_denoise", [([AudioItem(*a)], [AudioItem(*b)])], [AudioItem(*c)], [AudioItem(*d)])]
    for ex in exs:
        st = build(ex.segments, tok, vocab)
        assert parse(st, tok, vocab) == ex.segments
        assert st.text_ids[-1] == tok.eot_id and st.loss_mask[-1]  # the target is last: <eot> is a target
        un = drop_conditions(st, tok, vocab)
        assert len(un) == len(st) and torch.equal(un.loss_mask, st.loss_mask)
        assert (un.text_ids[st.cond_mask] == tok.pad_id).all() and not un.is_audio[st.cond_mask].any()
        assert torch.equal(un.text_ids[~st.cond_mask], st.text_ids[~st.cond_mask])
    items = [build(ex.segments, tok, vocab) for ex in exs]
    for side in ("left", "right"):
        bt = collate(items, tok, vocab, pad_side=side)
        assert bt.text_ids.shape == (4, max(len(x) for x in items))
        assert bt.valid.sum(1).tolist() == [len(x) for x in items]


# ---------------------------------------------------------------- model
def test_presets_and_config_json():
    with torch.device("meta"):
        small = UniAudioLM(UniAudioConfig.preset("small", CodecConfig()))
    assert 10e6 < small.num_parameters() < 100e6
    p = UniAudioConfig.preset("paper")
    assert (p.n_understanding_layers, p.n_backbone_layers, p.n_generation_layers, p.dim) == (3, 28, 2, 3072)
    assert (p.n_heads, p.n_kv_heads, p.ffn_dim, p.recon_codebook_size) == (24, 8, 8192, 8192)
    assert UniAudioConfig.from_json(p.to_json()) == p


def test_tiny_overfits_one_mixed_batch(tok, vocab):
    g = torch.Generator().manual_seed(0)
    exs = [understanding("asr", codes(g, 3, 7), "hello world"),
           generation("tts", codes(g, 3, 7), text="你好世界"),
           generation("text_to_sound", codes(g, 2, 5), caption="a dog barks twice"),
           understanding("caption", codes(g, 2, 5), "rain on a metal roof")]
    batch = collate([build(e.segments, tok, vocab) for e in exs] + [build([PlainText("我哋去飲茶啦。", True)], tok, vocab)],
                    tok, vocab)
    model = tiny_model(0).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for step in range(150):
        out = model(batch)
        if first is None:
            first = (float(out.text_loss), float(out.audio_loss))
            assert out.n_text > 0 and out.n_audio > 0
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        if float(out.text_loss) < 0.1 * first[0] and float(out.audio_loss) < 0.1 * first[1]:
            break
    assert float(out.text_loss) < 0.1 * first[0], (first, float(out.text_loss))
    assert float(out.audio_loss) < 0.1 * first[1], (first, float(out.audio_loss))


def test_save_load_pretrained(tmp_path):
    m = tiny_model(1)
    m.save_pretrained(tmp_path)
    m2 = UniAudioLM.from_pretrained(tmp_path)
    assert m2.config == m.config
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k


def test_ctc_auxiliary_loss_spans_training_and_loading(tok, vocab, tmp_path):
    g = torch.Generator().manual_seed(3)
    exs = [understanding("asr", codes(g, 4, 9), "hello world"),          # audio → transcription: a CTC span
           generation("tts", codes(g, 3, 7), text="not a span"),          # transcription → audio: not one
           understanding("caption", codes(g, 2, 5), "rain on a roof")]    # another tag: not one
    batch = collate([build(e.segments, tok, vocab) for e in exs], tok, vocab)
    torch.manual_seed(0)
    model = UniAudioLM(UniAudioConfig.preset("tiny", CODEC, ctc_weight=0.5)).train()
    spans = model.ctc_spans(batch)
    assert [(b, e - s) for b, s, e, _ in spans] == [(0, 4 + 2 + 9 + 2)]       # both segments with their tags
    assert tok.decode(spans[0][3].tolist()) == "hello world"
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def greedy() -> str:
        with torch.no_grad():
            h = model.hidden(batch.text_ids, batch.audio_ids, batch.is_audio, batch.valid).text_hidden
        return tok.decode(model.ctc_greedy(h[0, spans[0][1]:spans[0][2]]))

    first = None
    for _ in range(300):
        out = model(batch)
        first = first if first is not None else float(out.ctc_loss)
        if float(out.ctc_loss) < 0.05 * first and greedy() == "hello world":
            break
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert float(out.ctc_loss) < 0.05 * first and greedy() == "hello world"
    # a model without the head gains a fresh one from the override and keeps every other weight
    plain = tiny_model(1)
    plain.save_pretrained(tmp_path)
    with_ctc = UniAudioLM.from_pretrained(tmp_path, overrides={"ctc_weight": 0.5})
    assert with_ctc.ctc_blank is not None and torch.equal(with_ctc.text_head.weight, plain.text_head.weight)
    assert UniAudioLM(UniAudioConfig.preset("tiny", CODEC)).ctc_blank is None
    with pytest.raises(ValueError, match="ctc_weight"):
        UniAudioConfig.preset("tiny", CODEC, ctc_weight=-1.0)


def test_codec_vector_inputs(tok, vocab, tmp_path):
    codec = ReasoningCodec(CODEC).eval()
    torch.manual_seed(0)
    model = UniAudioLM(UniAudioConfig.preset("tiny", CODEC, codec_codebook_dim=CODEC.recon_codebook_dim)).eval()
    model.set_codec_vectors(codec)
    assert torch.allclose(model.codec_vectors_q[1], codec.recon_vq.stages[1].normalized_codebook())
    g = torch.Generator().manual_seed(1)
    batch = collate([build(understanding("asr", codes(g, 3, 6), "hi").segments, tok, vocab)], tok, vocab)
    plain = model.embed(batch.text_ids, batch.audio_ids, batch.is_audio)
    assert torch.equal(plain, torch.where(batch.is_audio[..., None],
                                          model.audio_embed(batch.audio_ids + model._audio_offsets).sum(-2),
                                          model.text_embed(batch.text_ids)))     # the projection starts at zero
    with torch.no_grad():
        model.codec_proj_r.weight.normal_()
        model.codec_proj_q.weight.normal_()
    extra = model._codec_vector_embed(model._frame_vectors(batch.audio_ids))[0]
    frames = batch.audio_ids[0]
    is_code = frames[:, 0] < vocab.codebook_pad                                  # real code frames only
    assert bool((extra[is_code].abs().sum(-1) > 0).all()) and bool((extra[~is_code] == 0).all())
    # a reasoning frame: its codebook vectors, concatenated, through the reasoning projection
    i = int(is_code.nonzero()[0])
    want = model.codec_proj_r(torch.cat([model.codec_vectors_r[k, frames[i, k]] for k in range(2)]))
    assert torch.allclose(extra[i], want, atol=1e-6)
    model.save_pretrained(tmp_path)
    again = UniAudioLM.from_pretrained(tmp_path)
    assert torch.equal(again.codec_vectors_r, model.codec_vectors_r)
    with pytest.raises(ValueError, match="codec vectors"):
        tiny_model(0).set_codec_vectors(codec)
    # codec_vectors_only: real codes no longer reach the learned table; the least-squares start fits it
    only = UniAudioLM.from_pretrained(tmp_path, overrides={"codec_vectors_only": True})
    only.set_codec_vectors(codec)
    fit = only.fit_codec_projection()
    assert set(fit) == {"reasoning_0", "reasoning_1", "recon_0", "recon_1", "recon_2"}
    assert all(-1e-4 <= v <= 1 for v in fit.values())
    e1 = only.embed(batch.text_ids, batch.audio_ids, batch.is_audio)
    with torch.no_grad():
        for k in range(only.K):                                       # the learned rows of real codes
            only.audio_embed.weight[k * only.Va : k * only.Va + vocab.codebook_pad] += 1.0
    assert torch.equal(e1, only.embed(batch.text_ids, batch.audio_ids, batch.is_audio))
    with torch.no_grad():
        only.audio_embed.weight[vocab.codebook_pad + 1 :] += 1.0      # special and padding rows still count
    e2 = only.embed(batch.text_ids, batch.audio_ids, batch.is_audio)
    assert not torch.equal(e1[0, ~is_code & batch.is_audio[0]], e2[0, ~is_code & batch.is_audio[0]])
    # the fit recovers embeddings that are linear in the codec vectors
    with torch.no_grad():
        w = torch.randn(CODEC.recon_codebook_dim, only.config.dim)
        for k in range(CODEC.num_recon_codebooks):
            lo = k * only.Va + vocab.recon_offset
            only.audio_embed.weight[lo : lo + CODEC.recon_codebook_size] = only.codec_vectors_q[k] @ w + 0.5
    assert only.fit_codec_projection()["recon_0"] > 0.999
    with pytest.raises(ValueError, match="codec_vectors_only"):
        model.fit_codec_projection()
    with pytest.raises(ValueError, match="codec_codebook_dim"):
        UniAudioConfig.preset("tiny", CODEC, codec_vectors_only=True)


def test_clip_summary_and_clip_attention_inputs(tok, vocab, tmp_path):
    codec = ReasoningCodec(CODEC).eval()
    torch.manual_seed(0)
    d = CODEC.recon_codebook_dim
    model = UniAudioLM(UniAudioConfig.preset("tiny", CODEC, codec_codebook_dim=d, audio_summary=True,
                                             clip_attention=True)).eval()
    model.set_codec_vectors(codec)
    g = torch.Generator().manual_seed(2)
    clips = [codes(g, 3, 5), codes(g, 4, 6)]
    clips.append(clips[0])                                                   # the query: clip 1 again
    ex = few_shot("fewshot_classify", [([AudioItem(*c)], [TextField("answer", n)]) for c, n in zip(clips, "ab")],
                  [AudioItem(*clips[2])], [TextField("answer", "a")])
    batch = collate([build(ex.segments, tok, vocab)], tok, vocab)
    args = (batch.text_ids, batch.audio_ids, batch.is_audio, batch.valid)
    x = model.embed(*args[:3])
    frames = model._frame_vectors(batch.audio_ids)
    assert torch.equal(model._clip_inputs(x, frames, *args[2:], None)[0], x)            # both maps start at zero
    with torch.no_grad():
        model.summary_proj.weight.normal_()
    zero = torch.zeros_like(x)                           # zero inputs: the clip attention reads nothing
    s = model._clip_inputs(zero, frames, *args[2:], None)[0][0]
    audio = batch.is_audio[0].tolist()
    first = audio.index(True)
    assert bool((s[:first] == 0).all())                                      # nothing before the first clip
    after = first + audio[first:].index(False)                               # the text right after clip 1
    nxt = after + audio[after:].index(True)
    r, q = clips[0]
    want_r = torch.cat([model.codec_vectors_r[k, r[k]] for k in range(2)], -1)            # [3 frames, 2 d]
    want_q = torch.cat([model.codec_vectors_q[k, q[k]] for k in range(3)], -1)            # [5 frames, 3 d]
    std = [(x.var(0, unbiased=False) + VAR_EPS).sqrt() for x in (want_r, want_q)]
    want = model.summary_proj(torch.cat([want_r.mean(0), want_q.mean(0), *std]))
    for t in range(after - 1, nxt):            # the clip's last delimiter and every text position after it
        assert torch.allclose(s[t], want, atol=1e-4)
    assert not torch.allclose(s[nxt + 2], want, atol=1e-2)                  # the next clip starts afresh
    # clip attention: the text after the query clip reads the text after the demo that sounds the same
    with torch.no_grad():
        model.clip_attn.out.weight.copy_(torch.eye(model.config.dim))
        model.clip_attn.log_sharpness.fill_(7.0)
    feats, clip, _ = model._clip_features(frames, *args[2:], None)
    text = batch.valid & ~batch.is_audio
    read = model.clip_attn(x, feats, clip, text)[0]
    assert clip[0, first].item() == 1 and clip[0, -1].item() == 3
    assert bool((read[clip[0] <= 1] == 0).all())                             # nothing before it to read
    demo_a = (clip[0] == 1) & text[0]
    assert torch.allclose(read[-1], x[0, demo_a].mean(0), atol=1e-4)
    # fed in pieces through the KV cache = all at once; right padding changes nothing
    with torch.no_grad():
        model.clip_attn.out.weight.normal_(std=0.1)
    full = model.hidden(*args).text_hidden
    cache = model.new_cache(1, batch.text_ids.shape[1])
    parts = []
    for a, b in ((0, first + 2), (first + 2, after), (after, after + 1), (after + 1, nxt + 3),
                 (nxt + 3, batch.text_ids.shape[1])):
        parts.append(model.hidden(*(x[:, a:b] for x in args), cache).text_hidden)
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-4)
    padded = collate([build(ex.segments, tok, vocab), build(ex.segments[:3], tok, vocab)], tok, vocab)
    h = model.hidden(padded.text_ids, padded.audio_ids, padded.is_audio, padded.valid).text_hidden
    assert torch.allclose(h[:1], full, atol=1e-4)
    beams = cache.select(torch.tensor([0, 0]))                               # beams carry their state
    assert all(t.shape[0] == 2 for v in beams.extra.values() for t in v)
    with pytest.raises(ValueError, match="audio_summary"):
        UniAudioConfig.preset("tiny", CODEC, audio_summary=True)
    with pytest.raises(ValueError, match="clip_attention"):
        UniAudioConfig.preset("tiny", CODEC, codec_codebook_dim=d, clip_attention=True)
    # added to a model trained without them: the maps start at zero, everything else loads
    plain = UniAudioLM(UniAudioConfig.preset("tiny", CODEC, codec_codebook_dim=d))
    plain.save_pretrained(tmp_path)
    more = UniAudioLM.from_pretrained(tmp_path, overrides={"audio_summary": True, "clip_attention": True})
    assert bool((more.summary_proj.weight == 0).all()) and bool((more.clip_attn.out.weight == 0).all())
    assert torch.equal(more.audio_embed.weight, plain.audio_embed.weight)


# ---------------------------------------------------------------- generation
def prompts(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [[TaskPrompt("Transcribe the speech."), AudioItem(*codes(g, 3, 7))],
            [TaskPrompt("Read the following text aloud in a natural voice."), TextField("transcription", "hi")],
            [TaskPrompt("Generate the sound described by the caption."),
             TextField("caption", "a very long caption about heavy rain falling on a metal roof at night")]]


def clip_model(seed: int, encoder: bool = False) -> UniAudioLM:
    """A tiny model with the clip-summary and clip-attention inputs (and with ``encoder`` the audio
    encoder) switched on (maps not at zero)."""
    torch.manual_seed(seed)
    model = UniAudioLM(UniAudioConfig.preset("tiny", CODEC, codec_codebook_dim=CODEC.recon_codebook_dim,
                                             audio_summary=True, clip_attention=True,
                                             audio_encoder_layers=2 if encoder else 0, audio_encoder_dim=32)
                       ).to(torch.float64).eval()
    model.set_codec_vectors(ReasoningCodec(CODEC).eval())
    with torch.no_grad():
        model.summary_proj.weight.normal_(std=0.1)
        model.clip_attn.out.weight.normal_(std=0.1)
        if encoder:
            model.audio_encoder.out.weight.normal_(std=0.1)
    return model


@pytest.mark.parametrize("mode,inputs", [("text", "codes"), ("audio", "codes"), ("text", "clips"), ("audio", "clips"),
                                         ("text", "encoder"), ("audio", "encoder"), ("text", "whisper"),
                                         ("audio", "whisper")])
def test_greedy_kv_cache_equals_no_cache_and_batched_equals_single(tok, mode, inputs):
    if inputs == "whisper":     # the whisper block design: learned positions, LayerNorm, full attention
        torch.manual_seed(2)
        model = UniAudioLM(UniAudioConfig.preset("tiny", CODEC, block_style="whisper", n_kv_heads=4)
                           ).to(torch.float64).eval()
    else:
        model = tiny_model(2, torch.float64) if inputs == "codes" else clip_model(2, inputs == "encoder")
    cfg = GenerationConfig(max_new_positions=24, mode=mode, audio=SamplingConfig(0.0), max_segment_frames=6)
    ps = prompts()
    if inputs in ("clips", "encoder"):     # labelled clips before the query: the clip attention has keys
        g = torch.Generator().manual_seed(9)
        ps.append([TaskPrompt("Label the last clip."), AudioItem(*codes(g, 3, 6)), TextField("answer", "dog"),
                   AudioItem(*codes(g, 2, 5)), TextField("answer", "cat"), AudioItem(*codes(g, 3, 4))])
    batched = generate(model, tok, ps, cfg)
    nocache = generate(model, tok, ps, dataclasses.replace(cfg, use_cache=False))
    single = [generate(model, tok, [p], cfg)[0] for p in ps]
    for a, b, c in zip(batched, nocache, single):
        assert a.text_ids == b.text_ids == c.text_ids
        assert torch.equal(a.frames, b.frames) and torch.equal(a.frames, c.frames)
        assert a.stop_reason == b.stop_reason == c.stop_reason
    if mode == "audio":
        assert all(len(o.frames) > 0 for o in batched)


def test_no_reasoning_id_in_reconstruction_phase(tok, vocab):
    model = tiny_model(3)
    cfg = GenerationConfig(max_new_positions=120, mode="audio", audio=SamplingConfig(1.5), seed=0)
    outs = generate(model, tok, prompts() * 2, cfg)
    nr, pad, kr, kq = vocab.recon_offset, vocab.codebook_pad, CODEC.num_reasoning_codebooks, CODEC.num_recon_codebooks
    saw_recon = 0
    for o in outs:
        phase = None
        for f in o.frames.tolist():
            if f[0] == vocab.begin_reasoning:
                phase = "r"
            elif f[0] == vocab.begin_recon:
                phase = "q"
            elif vocab.is_special_id(f[0]):
                assert f == [f[0]] * len(f)  # special frames are whole
                assert f[0] in (vocab.end_reasoning, vocab.end_recon)
            elif phase == "q":
                saw_recon += 1
                assert all(nr <= x < pad for x in f[:kq]) and all(x == pad for x in f[kq:])
            else:
                assert phase == "r" and all(0 <= x < nr for x in f[:kr]) and all(x == pad for x in f[kr:])
        for item in o.audio:
            assert item.recon is None or item.recon.shape[0] == kq
    assert saw_recon > 10


def test_cfg_scale_one_equals_no_cfg(tok):
    model = tiny_model(4, torch.float64)
    for audio in (SamplingConfig(0.0), SamplingConfig(0.9, 50)):
        cfg = GenerationConfig(max_new_positions=20, mode="audio", audio=audio, seed=5)
        plain = generate(model, tok, prompts(), cfg)
        guided = generate(model, tok, prompts(), dataclasses.replace(cfg, cfg_scale=1.0))
        for a, b in zip(plain, guided):
            assert torch.equal(a.frames, b.frames) and a.text_ids == b.text_ids
    strong = generate(model, tok, prompts(), dataclasses.replace(cfg, cfg_scale=3.0))
    assert all(len(o.frames) > 0 for o in strong)


def test_sampling_filters():
    logits = torch.randn(6, 50, generator=torch.Generator().manual_seed(0))
    greedy = logits.argmax(-1)
    assert torch.equal(sample(logits, SamplingConfig(1.0, top_k=1)), greedy)
    assert torch.equal(sample(logits, SamplingConfig(1.0, top_p=1e-6)), greedy)
    s = sample(logits, SamplingConfig(1.0, top_k=5), torch.Generator().manual_seed(1))
    assert all(int(i) in logits[r].topk(5).indices.tolist() for r, i in enumerate(s))


def test_generated_audio_decodes_with_codec(tok):
    model = tiny_model(5)
    outs = generate(model, tok, prompts()[1:], GenerationConfig(max_new_positions=40, mode="audio",
                                                                audio=SamplingConfig(1.0), seed=2,
                                                                max_segment_frames=8))
    items = [o.audio[0] for o in outs]
    c = codes_from_items(items, CODEC)
    assert c.recon.shape[:2] == (2, CODEC.num_recon_codebooks)
    torch.manual_seed(0)
    wav = decode_audio(ReasoningCodec(CODEC).eval(), items)
    assert wav.shape == (2, 1, int(c.lengths.max()))
