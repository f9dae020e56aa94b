"""Does a uniaudio_lm model bind labels in context? Accuracy on fresh few-shot episodes of training
material (not a test set): symbolic episodes (made-up code sequences) or episodes of the labelled
training clips of a tokenised manifest.

For each episode the query is its first target clip (a class shown before, from a new recording); the
candidates are the labels shown before it; the model's answer is the candidate with the highest
teacher-forced log-likelihood (as ``uniaudio_lm.fewshot_classify``). Only episodes with two or more
candidates count; chance is the mean of 1 / candidates.

    python scripts/binding_probe.py MODEL_DIR [MODEL_DIR ...] --symbolic
    python scripts/binding_probe.py MODEL_DIR --manifest data/lm/tokens/train.jsonl
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from uniaudio_lm import default_tokenizer, registry  # noqa: E402
from uniaudio_lm.episode_stream import EpisodeStream, SymbolicEpisodes  # noqa: E402
from uniaudio_lm.model import UniAudioLM  # noqa: E402
from uniaudio_lm.inference import score  # noqa: E402
from uniaudio_lm.sentence import AudioItem, TextField  # noqa: E402


def episodes(a: argparse.Namespace, model: UniAudioLM) -> list[tuple[list, tuple, str]]:
    """``(demos [(codes, label)], query codes, answer)`` of ``--episodes`` episodes (fixed seed) whose
    query has two or more candidate labels."""
    cfg = model.config
    kr, kq = cfg.num_reasoning_codebooks, cfg.num_recon_codebooks
    rng = random.Random(a.seed)
    out = []
    if a.symbolic:
        src = SymbolicEpisodes((kr, kq), (cfg.reasoning_codebook_size, cfg.recon_codebook_size))
        while len(out) < a.episodes:
            segs = src(rng).segments
            items = [s for s in segs if isinstance(s, AudioItem)]
            labels = [s for s in segs if isinstance(s, TextField)]
            k = next((i for i, lab in enumerate(labels) if lab.target), None)
            if k is not None and len({lab.text for lab in labels[:k]}) >= 2:
                out.append(([((x.reasoning, x.recon), lab.text) for x, lab in zip(items[:k], labels[:k])],
                            (items[k].reasoning, items[k].recon), labels[k].text))
        return out
    stream = EpisodeStream(a.manifest, (kr, kq), families={"sound": 1.0, "category": 0.5, "speaker": 1.0})
    while len(out) < a.episodes:
        ep = stream.draw(rng)
        k = next((i for i, e in enumerate(ep) if e[3]), None)
        if k is not None and len({e[2] for e in ep[:k]}) >= 2:
            out.append(([(stream._codes(c.codes), name) for _, c, name, _ in ep[:k]],
                        stream._codes(ep[k][1].codes), ep[k][2]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="model folders (config.json + model.safetensors)")
    ap.add_argument("--symbolic", action="store_true", help="symbolic episodes instead of --manifest clips")
    ap.add_argument("--manifest", type=Path, default=ROOT / "data" / "lm" / "tokens" / "train.jsonl")
    ap.add_argument("--episodes", type=int, default=150)
    ap.add_argument("--seed", type=int, default=123)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    tok, spec = default_tokenizer(), registry.get("fewshot_classify")
    for d in a.models:
        model = UniAudioLM.from_pretrained(d).eval()
        hits, chance = [], []
        for demos, q, answer in episodes(a, model):
            cands = list(dict.fromkeys(lab for _, lab in demos))
            with torch.no_grad():
                sc = {c: score(model, tok, spec.example(demos=demos, audio=q, text=c).segments) for c in cands}
            hits.append(max(sc, key=sc.__getitem__) == answer)
            chance.append(1 / len(cands))
        print(f"{d}: {'symbolic' if a.symbolic else 'training-clip'} episodes: accuracy "
              f"{sum(hits) / len(hits):.3f} on {len(hits)} (chance {sum(chance) / len(chance):.3f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
