"""Core invariants of the codec: batch == single, streaming == offline, shapes, bitrate slicing."""

import math
import random

import pytest
import torch

from reasoningcodec import Codes, CodecConfig, ReasoningCodec

from .conftest import signal


def test_default_config_bitrate_and_properties(codec_cpu):
    c = codec_cpu
    assert c.sample_rate == 24000
    assert c.reasoning_frame_rate == 5.0
    assert c.recon_frame_rate == 12.5
    assert (c.num_reasoning_codebooks, c.num_recon_codebooks) == (8, 8)
    assert c.bitrate <= 2000
    expected = 5 * 8 * math.log2(c.reasoning_codebook_size) + 12.5 * 8 * math.log2(c.recon_codebook_size)
    assert c.bitrate == pytest.approx(expected)
    assert c.config.bitrate_with(4) < c.bitrate
    assert c.latency_ms == pytest.approx(110.0)


def test_batch_equals_single(codec):
    lengths = [24000 * 2 + 17, 24000, 5000]
    x = signal(max(lengths), seed=1, batch=3)
    for i, n in enumerate(lengths):
        x[i, n:] = 7.0  # garbage beyond the length must not matter
    batch = codec.encode(x.to(codec.device), lengths=lengths)
    assert batch.lengths.tolist() == lengths
    for i, n in enumerate(lengths):
        one = codec.encode(x[i:i + 1, :n].to(codec.device))
        nr, nq = codec.num_frames(n)
        assert one.reasoning.shape[-1] == nr and one.recon.shape[-1] == nq
        assert torch.equal(one.reasoning, batch.reasoning[i:i + 1, :, :nr])
        assert torch.equal(one.recon, batch.recon[i:i + 1, :, :nq])
        # padding frames are zero
        assert int(batch.recon[i, :, nq:].abs().sum()) == 0


def test_list_of_clips_encodes_like_each_clip_alone(codec_whisper_cpu):
    c = codec_whisper_cpu
    x = signal(30000, seed=2, batch=3)
    clips = [x[0, :30000], x[1, :7001].numpy(), torch.stack([x[2, :12345], x[2, :12345]])]  # [T], numpy, [C, T]
    batch = c.encode(clips)
    assert batch.lengths.tolist() == [30000, 7001, 12345]
    items = c.split(batch)
    assert len(items) == 3
    for clip, item in zip(clips, items):
        one = c.encode(clip if not isinstance(clip, torch.Tensor) or clip.dim() == 1 else clip[None])
        assert torch.equal(one.reasoning, item.reasoning) and torch.equal(one.recon, item.recon)
        assert item.lengths.tolist() == one.lengths.tolist()
        assert torch.equal(c.decode(one), c.decode(item))
    # int16 clips are scaled like an int16 array
    pcm = (x[0, :5000] * 16000).to(torch.int16)
    assert torch.equal(c.encode([pcm.numpy()]).recon, c.encode(pcm.numpy()).recon)


def test_list_of_clips_resamples_each_clip(codec_cpu):
    x = signal(16000, seed=3, batch=2)
    batch = codec_cpu.encode([x[0], x[1, :8000]], sample_rate=16000)
    assert batch.lengths.tolist() == [24000, 12000]
    one = codec_cpu.encode(x[1, :8000], sample_rate=16000)
    item = codec_cpu.split(batch)[1]
    assert torch.equal(item.recon, one.recon) and torch.equal(item.reasoning, one.reasoning)


@pytest.mark.parametrize("clips, match", [
    ([], "list of clips is empty"),
    ([torch.zeros(100), torch.zeros(0)], "clip 1 is empty"),
    ([torch.zeros(2, 3, 100)], "clip 0 must have shape"),
    (["a.wav"], "clip 0: expected a numpy array or torch tensor"),
    ([torch.zeros(100, dtype=torch.bool)], "clip 0: audio tensor must be floating point"),
    ([torch.tensor([0.0, float("nan")])], "NaN"),
])
def test_bad_lists_of_clips(codec_cpu, clips, match):
    from reasoningcodec import AudioError

    with pytest.raises(AudioError, match=match):
        codec_cpu.encode(clips)


def test_lengths_with_a_list_is_an_error(codec_cpu):
    from reasoningcodec import AudioError

    with pytest.raises(AudioError, match="lengths cannot be given"):
        codec_cpu.encode([torch.zeros(100)], lengths=[100])
    with pytest.raises(TypeError, match="split expects a Codes"):
        codec_cpu.split(torch.zeros(1, 8, 3))


@pytest.mark.parametrize("seed", [0, 1])
def test_streaming_equals_offline(codec, seed):
    rng = random.Random(seed)
    n = 24000 * 2 + rng.randint(0, 5000)
    x = signal(n, seed=seed, batch=3).to(codec.device)
    offline = codec.encode(x)
    enc = codec.stream_encoder(batch_size=3)
    pieces, pos = [], 0
    while pos < n:
        # chunk sizes from 1 sample to 1 s: bursts of tiny pushes between larger ones
        size = rng.choice([1, 2, 3, rng.randint(1, 500), rng.randint(1, 24000), rng.randint(1, 24000)])
        pieces.append(enc.push(x[:, pos:pos + size]))
        pos += size
    pieces.append(enc.finish())
    r = torch.cat([p.reasoning for p in pieces], dim=-1)
    q = torch.cat([p.recon for p in pieces], dim=-1)
    assert torch.equal(r, offline.reasoning)
    assert torch.equal(q, offline.recon)
    assert pieces[-1].lengths.tolist() == [n] * 3

    y_off = codec.decode(offline)
    dec = codec.stream_decoder(batch_size=3)
    # decode in uneven groups of frames, each with the reasoning windows completed by its end
    frames = offline.recon
    outs, t, w = [], 0, 0
    while t < frames.shape[-1]:
        k = rng.randint(1, 4)
        w_end = min(offline.reasoning.shape[-1], -(-(t + k) * codec.config.recon_hop // codec.config.reasoning_hop))
        outs.append(dec.push(Codes(offline.reasoning[..., w:w_end], frames[..., t:t + k], offline.lengths)))
        t, w = t + k, w_end
    outs.append(dec.finish())
    y = torch.cat(outs, dim=-1)
    assert y.shape == y_off.shape == (3, 1, n)
    assert float((y - y_off).abs().max()) <= 1e-4


def test_stream_of_encoder_pieces_decodes_like_offline(codec_cpu):
    c = codec_cpu
    x = signal(30000, seed=3)
    enc, dec = c.stream_encoder(), c.stream_decoder()
    outs = [dec.push(enc.push(x[:, i:i + 2400])) for i in range(0, 30000, 2400)]
    outs += [dec.push(enc.finish()), dec.finish()]
    y = torch.cat(outs, dim=-1)
    assert torch.allclose(y, c.decode(c.encode(x)), atol=1e-4)


@pytest.mark.parametrize("n", [1, 239, 1919, 1920, 1921, 4799, 4800, 4801, 9600, 24000 + 3])
def test_frame_counts(codec_cpu, n):
    codes = codec_cpu.encode(signal(n))
    assert codes.reasoning.shape == (1, 8, math.ceil(n / 4800))
    assert codes.recon.shape == (1, 8, math.ceil(n / 1920))
    assert codes.reasoning.dtype == codes.recon.dtype == torch.long
    assert codec_cpu.decode(codes).shape == (1, 1, n)


def test_input_shapes_and_unpacking(codec_cpu):
    x = signal(6000)
    a = codec_cpu.encode(x[0])  # [T]
    b = codec_cpu.encode(x)  # [B, T]
    c = codec_cpu.encode(torch.stack([x, x], dim=1))  # [B, C, T], identical channels
    d = codec_cpu.encode(x[0].numpy())
    for other in (b, c, d):
        assert torch.equal(a.recon, other.recon) and torch.equal(a.reasoning, other.reasoning)
    reasoning, recon = a
    assert reasoning is a.reasoning and recon is a.recon


def test_fewer_recon_codebooks_decode(codec_cpu):
    x = signal(12000)
    codes = codec_cpu.encode(x)
    for k in (1, 4, 8):
        sub = codes.with_recon_codebooks(k)
        assert sub.recon.shape[1] == k
        y = codec_cpu.decode(sub)
        assert y.shape == (1, 1, 12000) and torch.isfinite(y).all()
    assert torch.equal(codec_cpu.encode(x, n_q=3).recon, codes.recon[:, :3])


def test_resampling_input(codec_cpu):
    x = signal(16000)  # 1 s at 16 kHz
    codes = codec_cpu.encode(x, sample_rate=16000)
    assert codes.lengths.tolist() == [24000]
    assert codes.recon.shape[-1] == math.ceil(24000 / 1920)


def test_small_config_runs():
    cfg = CodecConfig(enc_dim=32, latent_dim=48, dec_dim=32, reasoning_dim=32, reasoning_heads=2,
                      reasoning_layers=1, num_recon_codebooks=2, recon_codebook_size=16,
                      num_reasoning_codebooks=1, reasoning_codebook_size=8)
    m = ReasoningCodec(cfg).eval()
    y = m.decode(m.encode(signal(5000)))
    assert y.shape == (1, 1, 5000)
    assert m.bitrate == pytest.approx(5 * 3 + 12.5 * 2 * 4)


def test_reasoning_conditioned_decoder_uses_the_reasoning_tokens(codec_decr_cpu):
    c = codec_decr_cpu
    x = signal(24000 * 2, seed=5, batch=2)
    codes = c.encode(x)
    y = c.decode(codes)
    # other reasoning tokens give other audio (after the first window closes at 200 ms)
    other = Codes(torch.roll(codes.reasoning, 1, dims=-1), codes.recon, codes.lengths)
    assert float((c.decode(other) - y)[..., 4800:].abs().max()) > 1e-3
    # a bare reconstruction stream decodes with the null window, and cannot take reasoning codes later
    dec = c.stream_decoder(batch_size=2)
    y0 = torch.cat([dec.push(codes.recon), dec.finish()], dim=-1)
    assert y0.shape[-1] >= 2 * 24000 and torch.isfinite(y0).all()
    assert float((y0[..., :48000] - y[..., :48000]).abs().max()) > 1e-3
    # so do codes with no reasoning frames, through the offline API and uniaudio_lm's decoding of items
    # that lack reasoning codebooks (the LM keeps only some)
    assert torch.allclose(c.decode(Codes(codes.reasoning[..., :0], codes.recon, codes.lengths)), y0[..., :48000],
                          atol=1e-5)
    from uniaudio_lm.generate import decode_audio
    from uniaudio_lm.sentence import AudioItem

    items = [AudioItem(codes.reasoning[b, :2], codes.recon[b]) for b in range(2)]
    assert torch.allclose(decode_audio(c, items), y0[..., :48000], atol=1e-5)
    full = [AudioItem(codes.reasoning[b], codes.recon[b]) for b in range(2)]
    assert torch.allclose(decode_audio(c, full), y, atol=1e-5)
    dec = c.stream_decoder(batch_size=2)
    dec.push(codes.recon[..., :2])
    with pytest.raises(ValueError, match="started without reasoning codes"):
        dec.push(Codes(codes.reasoning[..., :1], codes.recon[..., 2:4], codes.lengths))
    # frames whose reasoning window has not arrived yet are refused, not decoded with a wrong window
    dec = c.stream_decoder(batch_size=2)
    with pytest.raises(ValueError, match="needs reasoning window 1, which has not arrived"):
        dec.push(Codes(codes.reasoning[..., :1], codes.recon[..., :5], codes.lengths))


def test_a_plain_decoder_ignores_the_reasoning_tokens(codec_whisper_cpu):
    c = codec_whisper_cpu
    codes = c.encode(signal(24000, seed=6))
    other = Codes(torch.roll(codes.reasoning, 1, dims=-1), codes.recon, codes.lengths)
    assert torch.equal(c.decode(other), c.decode(codes))


def test_codes_without_frames_decode_to_empty_audio_or_a_clear_error(codec_cpu, codec_decr_cpu):
    for c in (codec_cpu, codec_decr_cpu):
        empty = lambda n: Codes(torch.zeros(2, 8, 0, dtype=torch.long), torch.zeros(2, 8, 0, dtype=torch.long),  # noqa: E731
                                torch.tensor([n, 0]))
        assert c.decode(empty(0)).shape == (2, 1, 0)
        with pytest.raises(ValueError, match="exceed what 0 frames cover"):
            c.decode(empty(100))


def test_decode_takes_raw_token_tensors_as_a_language_model_gives_them(codec_cpu, codec_decr_cpu):
    from reasoningcodec import OptionError

    for c in (codec_cpu, codec_decr_cpu):
        codes = c.encode(signal(6000, batch=2))
        n = codes.recon.shape[-1] * c.config.recon_hop
        raw = c.decode(codes.recon, reasoning=codes.reasoning)
        assert raw.shape == (2, 1, n) and torch.equal(raw[..., :6000], c.decode(codes))
        assert torch.equal(c.decode(codes.recon.int(), reasoning=codes.reasoning.short()), raw)
    plain = codec_cpu.encode(signal(6000))
    assert torch.equal(codec_cpu.decode(plain.recon)[..., :6000], codec_cpu.decode(plain))
    with pytest.raises(OptionError, match="integer tensor"):
        codec_cpu.decode(plain.recon.float())
    with pytest.raises(OptionError, match=r"must be \[B, K, T\]"):
        codec_cpu.decode(plain.recon[0])
    with pytest.raises(OptionError, match=r"reasoning tokens must be \[B, Kr, Tr\] with B = 1"):
        codec_cpu.decode(plain.recon, reasoning=torch.zeros(2, 8, 1, dtype=torch.long))
    with pytest.raises(OptionError, match="Codes carry their own"):
        codec_cpu.decode(plain, reasoning=plain.reasoning)
    with pytest.raises(TypeError, match="decode expects Codes or a reconstruction token tensor"):
        codec_cpu.decode([1, 2, 3])


def test_encode_and_decode_inside_autocast_give_the_plain_results(codec_whisper_cpu):
    """Tokenising on the fly inside a bf16 training loop: autocast is switched off for the codec."""
    c = codec_whisper_cpu
    x = signal(24000, seed=21, batch=2)
    ref = c.encode(x)
    y_ref = c.decode(ref)
    for dtype in (torch.bfloat16, torch.float16):
        with torch.autocast("cpu", dtype=dtype):
            codes = c.encode(x)
            y = c.decode(codes)
            enc = c.stream_encoder(2)
            streamed = [enc.push(x[:, :7000]), enc.push(x[:, 7000:]), enc.finish()]
        assert torch.equal(codes.recon, ref.recon) and torch.equal(codes.reasoning, ref.reasoning)
        assert y.dtype == torch.float32 and torch.equal(y, y_ref)
        assert torch.equal(torch.cat([s.recon for s in streamed], -1), ref.recon)
