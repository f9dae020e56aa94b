"""Length conditioning of speech generation (uniaudio_lm.duration and GenerationConfig.segment_frames)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from reasoningcodec import CodecConfig
from uniaudio_lm import GenerationConfig, SamplingConfig, TaskPrompt, TextField, UniAudioConfig, UniAudioLM
from uniaudio_lm import default_tokenizer
from uniaudio_lm.duration import DurationError, DurationModel, fit, manifest_samples, pace_factor, syllables
from uniaudio_lm.generate import generate

CODEC = CodecConfig(num_reasoning_codebooks=2, reasoning_codebook_size=16, num_recon_codebooks=3, recon_codebook_size=32)


def test_syllables_of_english_chinese_and_digits():
    assert syllables("cat") == 1 and syllables("table") == 2 and syllables("banana") == 3
    assert syllables("The kids are playing football.") == 7
    assert syllables("你好，请问") == 4 and syllables("42") == 4 and syllables("") == 1


def test_fit_recovers_a_line_and_the_caption_pace_scales_it():
    samples = [(" ".join(["ba"] * n), "en", 0.3 + 0.2 * n) for n in range(2, 30)]
    m = fit(samples)
    off, per = m.lines["en"]
    assert off == pytest.approx(0.3, abs=1e-6) and per == pytest.approx(0.2, abs=1e-6)
    assert m.seconds("ba ba ba ba ba", "en") == pytest.approx(1.3)
    slow, fast = m.seconds("ba ba ba", caption="Speak slowly, please."), m.seconds("ba ba ba", caption="A fast voice")
    assert slow > 0.9 > fast and slow / fast == pytest.approx(pace_factor("slow") / pace_factor("fast"))
    assert m.seconds("ba", "yue") is None  # no line for that language: no length conditioning
    assert DurationModel.from_dict(m.to_dict()).lines["en"] == pytest.approx(m.lines["en"], abs=1e-4)
    lo, hi = m.window(2.0)
    assert lo < 2.0 < hi
    with pytest.raises(DurationError):
        fit([("a", "en", 1.0)])
    with pytest.raises(DurationError):
        DurationModel.from_dict({"lines": {"en": "fast"}})


def test_manifest_samples_read_seconds_from_the_code_files(tmp_path):
    (tmp_path / "c").mkdir()
    save_file({"reasoning": torch.zeros(2, 10, dtype=torch.long), "recon": torch.zeros(3, 25, dtype=torch.long)},
              str(tmp_path / "c" / "a.safetensors"))
    rows = [{"task": "asr", "codes": "c/a.safetensors", "text": "hello there", "language": "en"},
            {"task": "audio_caption", "codes": "c/a.safetensors", "text": "a dog"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert manifest_samples(tmp_path / "m.jsonl") == [("hello there", "en", 2.0)]


def test_segment_frames_refuse_and_force_the_end_frame():
    torch.manual_seed(0)
    model = UniAudioLM(UniAudioConfig.preset("tiny", CODEC)).eval()
    v = model.vocab
    start = model.depth.start

    def eager_to_end(h):  # a model that wants to end every segment at once
        state, lg = start(h)
        lg = lg.clone()
        lg[:, [v.end_reasoning, v.end_recon]] += 50.0
        return state, lg

    model.depth.start = eager_to_end
    tok = default_tokenizer()
    prompt = [[TaskPrompt("Read the following text aloud in a natural voice."), TextField("transcription", "hi")]]
    base = GenerationConfig(max_new_positions=60, mode="audio", audio=SamplingConfig(0.0), seed=0)
    free = generate(model, tok, prompt, base)[0].audio[0]
    assert free.recon is None or free.recon.shape[-1] == 0
    out = generate(model, tok, prompt, GenerationConfig(**{**base.__dict__, "segment_frames": ((4, 6), (9, 12))}))[0]
    item = out.audio[0]
    assert item.reasoning.shape[-1] == 4 and item.recon.shape[-1] == 9  # refused until the minimum, then taken
    model.depth.start = start
    capped = generate(model, tok, prompt, GenerationConfig(**{**base.__dict__, "segment_frames": ((1, 3), (1, 5))}))
    it = capped[0].audio[0]
    assert it.reasoning.shape[-1] <= 3 and it.recon.shape[-1] <= 5


def test_install_fits_and_keeps_the_duration_model(tmp_path):
    from uniaudio_lm.pipeline import install, read_meta

    (tmp_path / "c").mkdir()
    rows = []
    for n in range(1, 26):
        save_file({"reasoning": torch.zeros(2, 2 * n, dtype=torch.long),
                   "recon": torch.zeros(3, 5 * n, dtype=torch.long)}, str(tmp_path / "c" / f"{n}.safetensors"))
        rows.append({"task": "tts", "codes": f"c/{n}.safetensors", "text": " ".join(["ba"] * n), "language": "en"})
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    torch.manual_seed(0)
    UniAudioLM(UniAudioConfig.preset("tiny", CODEC, text_vocab_size=default_tokenizer().vocab_size)).save_pretrained(
        tmp_path / "model")
    d = install(tmp_path / "model", tmp_path / "pipe", "test-codec", duration_from=tmp_path / "train.jsonl")
    line = read_meta(d)["duration"]["lines"]["en"]
    assert line[1] == pytest.approx(0.4, abs=1e-3)  # 5 frames at 12.5 Hz per "ba"
    assert (d.stat().st_mode & 0o777, (d / "model.safetensors").stat().st_mode & 0o777) == (0o755, 0o644)
    install(tmp_path / "model", tmp_path / "pipe", "test-codec")  # a re-install keeps the fitted model
    assert read_meta(d)["duration"]["lines"]["en"] == line
