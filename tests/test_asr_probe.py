"""scripts/asr_probe.py: its grid, its split by sentence and its output (tiny synthetic run)."""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import asr_probe  # noqa: E402


def test_helpers():
    assert asr_probe.normalise("Hello, World!  It's 5 o'clock.") == "hello world it's o'clock"
    assert asr_probe.edit_distance("kitten", "sitting") == 3 and asr_probe.edit_distance("", "abc") == 3
    r = torch.arange(4)[None].repeat(2, 1)            # 4 reasoning frames = 0.8 s
    q = torch.arange(10)[None].repeat(3, 1)           # 10 reconstruction frames = 0.8 s
    rr, qq = asr_probe.to_grid(r, q)
    assert rr.shape == (20, 2) and qq.shape == (20, 3)
    assert rr[:, 0].tolist() == [i // 5 for i in range(20)] and qq[:, 0].tolist() == [i // 2 for i in range(20)]


def _manifest(folder: Path, texts: list[str], task: str = "asr") -> Path:
    (folder / "codes").mkdir(parents=True)
    g = torch.Generator().manual_seed(len(texts))
    with (folder / "train.jsonl").open("w") as f:
        for i, t in enumerate(texts):
            save_file({"reasoning": torch.randint(0, 4096, (2, 20), generator=g).short(),
                       "recon": torch.randint(0, 1024, (4, 50), generator=g).short()},
                      str(folder / "codes" / f"{i}.safetensors"))
            f.write(json.dumps({"task": task, "language": "en", "text": t, "codes": f"codes/{i}.safetensors"}) + "\n")
    return folder / "train.jsonl"


def test_tiny_run_keeps_validation_sentences_out(tmp_path, capsys):
    sentences = [f"sentence number {w}" for w in ("one", "two", "three", "four", "five", "six", "seven", "eight")]
    main = _manifest(tmp_path / "a", sentences * 2)
    extra = _manifest(tmp_path / "b", sentences)               # every sentence again: val ones must be dropped
    out = tmp_path / "res.jsonl"
    assert asr_probe.main([str(main), "--cpu-minutes", "0.01", "--val-fraction", "0.25", "--batch", "4",
                           "--train-also", str(extra), "--test", str(main), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["val_clips"] == 4 and res["train_clips"] == 12 + 6      # 2 of 8 sentences held out
    assert 0 <= res["val_cer"] and res["tests"][str(main)]["clips"] == 16
