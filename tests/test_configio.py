"""Every config class of both packages reads JSON through ``reasoningcodec.configio``: one error type
(``ConfigError``, still a ``ValueError``) whose message names the file and the problem, and a round trip
through JSON that gives the same config."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from reasoningcodec import CodecConfig, ConfigError, ReasoningCodec, ReasoningCodecError, WeightsError
from reasoningcodec.train.config import TrainConfig as CodecTrainConfig
from uniaudio_lm.config import UniAudioConfig
from uniaudio_lm.train import TrainConfig as LMTrainConfig

CONFIGS = [CodecConfig, CodecTrainConfig, UniAudioConfig, LMTrainConfig]

#: One non-default value per config, so that a round trip that dropped fields would not compare equal.
CHANGED = {
    CodecConfig: dict(num_recon_codebooks=4, f_max=8000.0, decoder_reasoning=True, model_id="rt", extra={"a": [1]}),
    CodecTrainConfig: dict(steps=7, lr=1e-3, freeze=["dec."], codec={"enc_dim": 32}, loss_weights={"stft": 2.0},
                           source_weights={"speech": 2.0}),
    UniAudioConfig: dict(dim=96, n_heads=4, n_kv_heads=2, rope_scaling={"factor": 2.0}, tie_text_embeddings=True),
    LMTrainConfig: dict(stage=3, codec={"num_recon_codebooks": 2}, lr=3e-4, manifests=["m.jsonl"], synthetic=True),
}


def _write(tmp_path: Path, name: str, d: object) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(d), encoding="utf-8")
    return p


def test_config_error_is_a_project_error_and_a_value_error():
    assert issubclass(ConfigError, ReasoningCodecError) and issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_unknown_key_names_key_and_file(cls, tmp_path):
    d = {**dataclasses.asdict(cls()), "bogus_field": 1, "another_typo": "x"}
    p = _write(tmp_path, "cfg.json", d)
    with pytest.raises(ConfigError) as e:
        cls.from_json(p)
    msg = str(e.value)
    assert str(p) in msg and "'another_typo'" in msg and "'bogus_field'" in msg and "unknown field" in msg
    with pytest.raises(ConfigError, match="unknown field.*'bogus_field'"):
        cls.from_dict(d)


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_malformed_json_names_file_line_and_column(cls, tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{\n  "steps": 3,\n  oops\n}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(str(p)) + r".*not valid JSON.*line 3, column 3"):
        cls.from_json(p)


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: f"{c.__module__}.{c.__name__}")
@pytest.mark.parametrize("value, kind", [([1, 2], "an array"), ("text", "a string"), (3, "a number")])
def test_a_file_that_is_not_an_object(cls, value, kind, tmp_path):
    p = _write(tmp_path, "list.json", value)
    with pytest.raises(ConfigError, match=re.escape(str(p)) + f".*expected a JSON object, got {kind}"):
        cls.from_json(p)


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_round_trip_through_json_gives_the_same_config(cls, tmp_path):
    cfg = cls(**CHANGED[cls])
    assert cfg != cls()
    d = dataclasses.asdict(cfg)
    assert cls.from_dict(json.loads(json.dumps(d))) == cfg
    assert cls.from_json(_write(tmp_path, "cfg.json", d)) == cfg


def test_codec_config_wrong_type_names_field_and_file(tmp_path):
    p = _write(tmp_path, "config.json", {**CodecConfig().to_dict(), "num_recon_codebooks": "eight"})
    expected = re.escape(str(p)) + r".*field 'num_recon_codebooks' should be int, got 'eight'"
    with pytest.raises(ConfigError, match=expected):
        CodecConfig.from_json(p)


def test_from_pretrained_still_reports_a_broken_config_as_weights(tmp_path):
    ReasoningCodec(CodecConfig(enc_dim=32, latent_dim=48, dec_dim=32, reasoning_dim=32, reasoning_heads=2,
                               reasoning_layers=1)).save_pretrained(tmp_path)
    cfg = tmp_path / "config.json"
    cfg.write_text("{not json", encoding="utf-8")
    with pytest.raises(WeightsError, match=re.escape(str(cfg)) + ".*not valid JSON.*line 1, column 2"):
        ReasoningCodec.from_pretrained(tmp_path)


def test_uniaudio_config_reads_json_text_too():
    cfg = UniAudioConfig(**CHANGED[UniAudioConfig])
    assert UniAudioConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ConfigError, match=r"invalid UniAudioConfig \(JSON text\): not valid JSON"):
        UniAudioConfig.from_json('{"dim": 64,')
    with pytest.raises(ConfigError, match=r"\(JSON text\): unknown field\(s\) \['dimm'\]"):
        UniAudioConfig.from_json('{"dimm": 64}')


def test_codec_recipe_keeps_legacy_fields_and_overrides(tmp_path):
    p = _write(tmp_path, "recipe.json", {"steps": 5, "stft_weight": 1.5, "commit_weight": 0.5})
    cfg = CodecTrainConfig.from_json(p, steps=9, out_dir=None)
    assert cfg.steps == 9 and cfg.out_dir == CodecTrainConfig().out_dir
    assert cfg.loss_weights["stft"] == 1.5 and cfg.loss_weights["recon_commit"] == 0.5
    p = _write(tmp_path, "twice.json", {"stft_weight": 1.0, "loss_weights": {"stft": 2.0}})
    with pytest.raises(ConfigError, match=re.escape(str(p)) + r".*loss 'stft' gets two weights"):
        CodecTrainConfig.from_json(p)


def test_a_missing_file_is_still_what_it_was(tmp_path):
    with pytest.raises(WeightsError, match="config file not found"):
        CodecConfig.from_json(tmp_path / "nope.json")
    for cls in (CodecTrainConfig, UniAudioConfig, LMTrainConfig):
        with pytest.raises(FileNotFoundError):
            cls.from_json(tmp_path / "nope.json")
