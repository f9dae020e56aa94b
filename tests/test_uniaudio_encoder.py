"""The ``audio_encoder_layers`` option: a small per-clip recogniser inside uniaudio_lm."""

from __future__ import annotations

import pytest
import torch

from reasoningcodec import CodecConfig, ReasoningCodec
from uniaudio_lm import UniAudioConfig, UniAudioLM, build, collate
from uniaudio_lm.audio_encoder import CHARS, spell
from uniaudio_lm.sentence import AudioItem, TextField
from uniaudio_lm.tasks import generation, understanding
from uniaudio_lm.train import TrainConfig, train

from .test_uniaudio_core import CODEC, codes, tok, vocab  # noqa: F401  (tok, vocab: shared fixtures)


def encoder_model(seed: int = 0, ctc: float = 1.0) -> UniAudioLM:
    torch.manual_seed(seed)
    model = UniAudioLM(UniAudioConfig.preset("tiny", CODEC, codec_codebook_dim=CODEC.recon_codebook_dim,
                                             audio_summary=True, audio_encoder_layers=2, audio_encoder_dim=32,
                                             audio_encoder_ctc_weight=ctc)).to(torch.float64)
    model.set_codec_vectors(ReasoningCodec(CODEC).eval())
    with torch.no_grad():
        model.audio_encoder.out.weight.normal_(std=0.1)
        model.audio_encoder.stream.normal_(std=0.1)
    return model


def test_spell():
    assert spell("Hello, World!") == [CHARS.index(c) for c in "hello world"]
    assert spell("don't  stop") == [CHARS.index(c) for c in "don't stop"]
    assert spell("12 34") is None and spell("你好 hello") is None and spell("café") is None


def test_encoder_is_causal_within_its_clip_and_cache_equals_full(tok, vocab):
    g = torch.Generator().manual_seed(1)
    clips = [codes(g, 3, 7), codes(g, 2, 5)]
    ex = understanding("asr", clips[0], "hello there")
    segs = [*ex.segments, AudioItem(*clips[1]), TextField("answer", "x")]
    batch = collate([build(segs, tok, vocab)], tok, vocab)
    model = encoder_model().eval()
    args = (batch.text_ids, batch.audio_ids, batch.is_audio, batch.valid)
    g0 = model.hidden(*args)
    enc = g0.encoder_hidden[0]
    audio = batch.is_audio[0].tolist()
    first = audio.index(True)
    end1 = first + audio[first:].index(False)
    second = end1 + audio[end1:].index(True)
    assert bool((enc[:first] == 0).all()) and bool(enc[first + 1].abs().sum() > 0)
    # a later frame of clip 1 changed: earlier frames and the whole of clip 2 read the same
    changed = batch.audio_ids.clone()
    t = end1 - 3                                                    # a reconstruction frame near the end of clip 1
    changed[0, t, 0] = vocab.recon_offset + (int(changed[0, t, 0]) - vocab.recon_offset + 1) % 32
    enc2 = model.hidden(batch.text_ids, changed, batch.is_audio, batch.valid).encoder_hidden[0]
    assert torch.allclose(enc2[:t], enc[:t]) and not torch.allclose(enc2[t], enc[t])
    assert torch.allclose(enc2[second:], enc[second:])
    # the output reaches the model's input; fed in pieces through the KV cache = all at once
    n = batch.text_ids.shape[1]
    cache = model.new_cache(1, n)
    parts = [model.hidden(*(x[:, a:b] for x in args), cache) for a, b in
             ((0, first + 2), (first + 2, end1 - 1), (end1 - 1, second + 1), (second + 1, n))]
    assert torch.allclose(torch.cat([p.text_hidden for p in parts], 1), g0.text_hidden, atol=1e-8)
    assert torch.allclose(torch.cat([p.encoder_hidden for p in parts], 1), g0.encoder_hidden, atol=1e-8)
    beams = cache.select(torch.tensor([0, 0, 0]))
    assert all(x.shape[0] == 3 for x in beams.extra["audio_encoder"])
    # right padding changes nothing
    padded = collate([build(segs, tok, vocab), build(segs[:2], tok, vocab)], tok, vocab)
    h = model.hidden(padded.text_ids, padded.audio_ids, padded.is_audio, padded.valid).text_hidden
    assert torch.allclose(h[:1], g0.text_hidden, atol=1e-8)


def test_encoder_ctc_learns_a_transcription_and_trains_alone(tok, vocab, tmp_path):
    g = torch.Generator().manual_seed(3)
    exs = [understanding("asr", codes(g, 4, 12), "hi you"),
           understanding("asr", codes(g, 4, 12), "你好"),                # not English: no CTC target
           generation("tts", codes(g, 3, 7), text="not a span")]
    batch = collate([build(e.segments, tok, vocab) for e in exs], tok, vocab)
    model = encoder_model(ctc=1.0).float().train()
    others = {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith("audio_encoder.")}
    opt = torch.optim.Adam([p for n, p in model.named_parameters() if n.startswith("audio_encoder.")], lr=3e-3)
    def greedy() -> str:
        with torch.no_grad():
            h = model.hidden(batch.text_ids, batch.audio_ids, batch.is_audio, batch.valid).encoder_hidden[0]
            (_, _), (_, q_ok) = model._frame_vectors(batch.audio_ids)
        return model.audio_encoder.greedy(h[q_ok[0] & batch.is_audio[0]])

    first = None
    for _ in range(400):
        out = model.encoder_forward(batch)
        first = first if first is not None else float(out.encoder_ctc_loss)
        if float(out.encoder_ctc_loss) < 0.05 * first and greedy() == "hi you":
            break
        opt.zero_grad()
        out.loss.backward()
        assert all(p.grad is None for n, p in model.named_parameters() if not n.startswith("audio_encoder."))
        opt.step()
    assert float(out.encoder_ctc_loss) < 0.05 * first and greedy() == "hi you"
    assert all(torch.equal(p, others[n]) for n, p in model.named_parameters() if n in others)
    # the full loss includes it; a batch with no English recognition row has none
    assert model(batch).encoder_ctc_loss is not None
    tts = collate([build(exs[2].segments, tok, vocab)], tok, vocab)
    assert model(tts).encoder_ctc_loss is None and model.encoder_forward(tts).encoder_ctc_loss is None


def test_encoder_config_and_loading(tmp_path):
    with pytest.raises(ValueError, match="audio_encoder_layers needs audio_summary"):
        UniAudioConfig.preset("tiny", CODEC, codec_codebook_dim=8, audio_encoder_layers=2)
    with pytest.raises(ValueError, match="audio_encoder_dim"):
        UniAudioConfig.preset("tiny", CODEC, codec_codebook_dim=8, audio_summary=True, audio_encoder_layers=1,
                              audio_encoder_dim=20)
    plain = UniAudioLM(UniAudioConfig.preset("tiny", CODEC, codec_codebook_dim=8, audio_summary=True))
    plain.save_pretrained(tmp_path / "plain")
    more = UniAudioLM.from_pretrained(tmp_path / "plain", overrides={"audio_encoder_layers": 1})
    assert bool((more.audio_encoder.out.weight == 0).all())
    assert torch.equal(more.summary_proj.weight, plain.summary_proj.weight)
    more.save_pretrained(tmp_path / "more")
    again = UniAudioLM.from_pretrained(tmp_path / "more")
    assert torch.equal(again.audio_encoder.inp.weight, more.audio_encoder.inp.weight)


def test_train_refuses_an_unknown_objective_and_an_encoder_objective_without_encoder(tmp_path):
    base = dict(out_dir=str(tmp_path / "run"), synthetic=True, steps=1, preset="tiny", threads=1)
    with pytest.raises(ValueError, match="objective must be one of"):
        train(TrainConfig.from_dict({**base, "objective": "nope"}), quiet=True)
    with pytest.raises(ValueError, match="needs a model with audio_encoder_layers"):
        train(TrainConfig.from_dict({**base, "objective": "audio_encoder_ctc"}), quiet=True)


def test_asr_decoders_api_and_cli(tmp_path, capsys, monkeypatch):
    import numpy as np
    import soundfile as sf

    import reasoningcodec
    import uniaudio_lm as ul
    from uniaudio_lm import api, cli

    cc = CodecConfig(**{**CODEC.__dict__, "model_id": "test-tiny-enc"})
    torch.manual_seed(0)
    codec = ReasoningCodec(cc).eval()
    model = UniAudioLM(UniAudioConfig.preset("tiny", cc, codec_codebook_dim=cc.recon_codebook_dim,
                                             audio_summary=True, audio_encoder_layers=1, audio_encoder_dim=32,
                                             audio_encoder_ctc_weight=1.0))
    model.set_codec_vectors(codec)
    with torch.no_grad():                       # the CTC head says "a" at every slot: repeats merge to one
        model.audio_encoder.ctc.weight.zero_()
        model.audio_encoder.ctc.bias.copy_(torch.tensor(([0.0, 30.0] + [0.0] * 27) * 2))
    pipe = ul.Pipeline(model, ul.default_tokenizer(), codec)
    x = (0.2 * np.sin(2 * np.pi * 330 * np.arange(12000) / 24000)).astype(np.float32)
    import warnings

    with warnings.catch_warnings():             # the experimental-task warning is tested in test_uniaudio_status
        warnings.simplefilter("ignore")
        assert api.asr(x, pipeline=pipe) == "a" == api.asr(x, pipeline=pipe, decoder="ctc")
        assert isinstance(api.asr(x, pipeline=pipe, decoder="lm", max_new_tokens=3), str)
        assert isinstance(api.asr(x, pipeline=pipe, language="zh", max_new_tokens=3), str)    # not English: the LM
        with pytest.raises(ValueError, match="English only"):
            api.asr(x, pipeline=pipe, decoder="ctc", language="zh")
        with pytest.raises(ValueError, match="decoder must be one of"):
            api.asr(x, pipeline=pipe, decoder="beam")
        plain = ul.Pipeline(UniAudioLM(UniAudioConfig.preset("tiny", cc)), ul.default_tokenizer(), codec)
        with pytest.raises(ValueError, match="trained with a CTC loss"):
            api.asr(x, pipeline=plain, decoder="ctc")
        assert isinstance(api.asr(x, pipeline=plain, max_new_tokens=3), str)                # auto: the LM
    d = tmp_path / "pipe"
    pipe.save_pretrained(d)
    monkeypatch.setattr(reasoningcodec, "load", lambda device="cpu": codec)
    wav = tmp_path / "a.wav"
    sf.write(wav, x, 24000)
    assert cli.main(["asr", str(wav), "--model", str(d), "-q", "--decoder", "ctc"]) == 0
    assert capsys.readouterr().out.strip() == "a"
    assert cli.main(["asr", str(wav), "--model", str(d), "-q", "--decoder", "ctc", "--language", "zh"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "English only" in err[0]


def test_char_ngram_is_a_distribution_and_learns_its_text():
    from uniaudio_lm.ctc_decode import CharNgram

    lm = CharNgram(["the cat sat", "the cat ran", "a cat"], order=4)
    for hist in ([], spell("the c"), spell("zzz")):
        p = torch.tensor(lm.log_probs(hist), dtype=torch.float64).exp()
        assert abs(float(p.sum()) - 1) < 1e-9
    after = lm.log_probs(spell("the c"))
    assert after[CHARS.index("a")] > after[CHARS.index("e")] + 2
    with pytest.raises(ValueError, match="at least one line"):
        CharNgram(["123", "你好"])


def test_beam_search_sums_alignments_and_reads_the_language_model():
    from uniaudio_lm.ctc_decode import CharNgram, beam_search

    blank, a, e = len(CHARS), CHARS.index("a"), CHARS.index("e")

    def frames(*rows):                              # rows: {symbol: prob}, the rest share what is left
        out = torch.full((len(rows), blank + 1), 1e-6)
        for t, r in enumerate(rows):
            for k, v in r.items():
                out[t, k] = v
        return (out / out.sum(-1, keepdim=True)).log()

    # greedy reads blank, blank ("") but "a" has more probability over all its alignments
    lp = frames({blank: 0.4, a: 0.35, e: 0.25}, {blank: 0.4, a: 0.35, e: 0.25})
    assert beam_search(lp, beam=1, char_bonus=0.0) == ""
    assert beam_search(lp, beam=8, char_bonus=0.0) == "a"
    # "cat" vs "cet" sound alike; the character model of "cat" sentences decides
    c, t_ = CHARS.index("c"), CHARS.index("t")
    lp = frames({c: 0.9}, {blank: 0.9}, {e: 0.5, a: 0.45}, {blank: 0.9}, {t_: 0.9})
    assert beam_search(lp, beam=8, char_bonus=0.0) == "cet"
    lm = CharNgram(["the cat", "a cat sat", "cat"], order=3)
    assert beam_search(lp, lm, beam=8, lm_weight=1.0, char_bonus=0.0) == "cat"
    with pytest.raises(ValueError, match="log_probs must be"):
        beam_search(torch.zeros(3, 5))


def test_encoder_states_alone_equal_the_full_pass(tok, vocab):
    g = torch.Generator().manual_seed(5)
    batch = collate([build(understanding("asr", codes(g, 3, 8), "a b").segments, tok, vocab),
                     build(understanding("asr", codes(g, 2, 5), "c").segments, tok, vocab)], tok, vocab)
    model = encoder_model().eval()
    full = model.hidden(batch.text_ids, batch.audio_ids, batch.is_audio, batch.valid).encoder_hidden
    alone, q_ok = model.encoder_states(batch)
    assert torch.allclose(alone, full) and int(q_ok.sum()) == 8 + 5
    with pytest.raises(ValueError, match="no audio encoder"):
        UniAudioLM(UniAudioConfig.preset("tiny", CODEC)).encoder_states(batch)
