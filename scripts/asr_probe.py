"""How much of the spoken words the codec's token streams carry, measured by a small CTC recogniser.

Trains a bidirectional transformer with a CTC head over characters on the English speech rows of a
token manifest (``asr``, ``tts``, ``instruct_tts``, ``voice_tts``: every clip with its transcript) and
reports greedy-decoded character error rate on a validation split held out *by sentence* (no validation
sentence is spoken in any training clip). ``--inputs`` picks what the recogniser reads:

* ``reasoning``: the 5 Hz reasoning frames (``--reasoning-codebooks`` stages),
* ``recon``: the 12.5 Hz reconstruction frames (``--recon-codebooks`` stages),
* ``both``: the two summed on a common 25 Hz grid,
* with ``--dequantize`` the codes are first turned back into the codec's quantised vectors (the sum of
  their codebook entries, frozen) and a learned linear map reads those, instead of a learned embedding
  per code,
* ``mel``: 80-band log-mel frames of the audio itself at 25 Hz (the reference: what the recogniser learns
  from the signal before any tokenisation; the clip is the code file's ``audio/<...>.flac`` sibling).

This is a diagnostic for the language model's token layout (which stream understanding tasks should
read), not a shipped recogniser. One thread, a fixed CPU-time budget (``--cpu-minutes``)::

    python scripts/asr_probe.py data/lm/tokens/train.jsonl --inputs reasoning --cpu-minutes 8
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.lm_eval import edit_counts  # noqa: E402

SPEECH_TASKS = ("asr", "tts", "instruct_tts", "voice_tts")
ALPHABET = " abcdefghijklmnopqrstuvwxyz'"
GRID_HZ = 25.0


def normalise(text: str) -> str:
    return re.sub(r" +", " ", re.sub(r"[^a-z' ]", " ", text.lower())).strip()


def load_rows(manifest: Path, limit: int | None) -> list[dict]:
    rows = []
    for line in manifest.read_text().splitlines():
        r = json.loads(line)
        if r.get("task") in SPEECH_TASKS and r.get("language") == "en" and r.get("text") and r.get("codes"):
            rows.append(r)
    return rows[:limit] if limit else rows


def to_grid(r: torch.Tensor | None, q: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Index the streams on the 25 Hz grid: ``[T, K]`` each (or None)."""
    n = []
    if r is not None:
        n.append(int(r.shape[1] * GRID_HZ / 5.0))
    if q is not None:
        n.append(int(q.shape[1] * GRID_HZ / 12.5))
    t = min(n)
    j = torch.arange(t)
    rr = r[:, (j * 5.0 / GRID_HZ).long()].T if r is not None else None
    qq = q[:, (j * 12.5 / GRID_HZ).long()].T if q is not None else None
    return rr, qq


class Probe(nn.Module):
    def __init__(self, kr: int, kq: int, vr: int, vq: int, dim: int, layers: int, mel: bool = False,
                 dq: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.kr, self.kq = kr, kq
        self.causal = False
        self.mel = nn.Linear(80, dim) if mel else None
        self.dq = nn.ModuleList([nn.Linear(dq[0], dim), nn.Linear(dq[1], dim)]) if dq else None
        self.r_embed = nn.Embedding(kr * vr, dim) if kr and not (mel or dq) else None
        self.q_embed = nn.Embedding(kq * vq, dim) if kq and not (mel or dq) else None
        self.register_buffer("r_off", torch.arange(max(kr, 1)) * vr, persistent=False)
        self.register_buffer("q_off", torch.arange(max(kq, 1)) * vq, persistent=False)
        self.pos = nn.Embedding(1024, dim)
        layer = nn.TransformerEncoderLayer(dim, 4, 3 * dim, 0.1, batch_first=True, norm_first=True)
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, len(ALPHABET) + 1)

    def forward(self, r: torch.Tensor | None, q: torch.Tensor | None, valid: torch.Tensor) -> torch.Tensor:
        x = 0
        if self.mel is not None:
            x = self.mel(r.float())
        elif self.dq is not None:
            x = (self.dq[0](r) if self.kr else 0) + (self.dq[1](q) if self.kq else 0)
        else:
            if self.r_embed is not None:
                x = x + self.r_embed(r + self.r_off[: self.kr]).sum(-2)
            if self.q_embed is not None:
                x = x + self.q_embed(q + self.q_off[: self.kq]).sum(-2)
        x = x + self.pos(torch.arange(valid.shape[1]))[None]
        mask = nn.Transformer.generate_square_subsequent_mask(valid.shape[1]) if self.causal else None
        return self.head(self.enc(x, mask=mask, src_key_padding_mask=~valid, is_causal=self.causal)).log_softmax(-1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest", type=Path)
    p.add_argument("--inputs", choices=("reasoning", "recon", "both", "mel"), default="both")
    p.add_argument("--reasoning-codebooks", type=int, default=2)
    p.add_argument("--recon-codebooks", type=int, default=4)
    p.add_argument("--dequantize", action="store_true", help="read the codes' codebook vectors (frozen)")
    p.add_argument("--causal", action="store_true", help="causal attention (each frame sees only the past)")
    p.add_argument("--cpu-minutes", type=float, default=8.0)
    p.add_argument("--dim", type=int, default=192)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--val-fraction", type=float, default=0.08)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="append the result as one JSON line")
    p.add_argument("--test", type=Path, action="append", default=[],
                   help="a token manifest whose English asr rows are scored once, after training (repeatable)")
    p.add_argument("--train-also", type=Path, action="append", default=[],
                   help="another token manifest whose speech rows join the training side (repeatable)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    from safetensors.torch import load_file

    rows = [dict(r, _root=str(a.manifest.parent)) for r in load_rows(a.manifest, a.limit)]
    for extra in a.train_also:
        rows += [dict(r, _root=str(extra.parent), _train=True) for r in load_rows(extra, a.limit)]
    sentences = sorted({normalise(r["text"]) for r in rows if not r.get("_train")})
    rng.shuffle(sentences)
    val_sent = set(sentences[: max(1, int(len(sentences) * a.val_fraction))])
    kr = a.reasoning_codebooks if a.inputs in ("reasoning", "both") else 0
    kq = a.recon_codebooks if a.inputs in ("recon", "both") else 0
    data: dict[str, list] = {"train": [], "val": []}
    if a.inputs == "mel":
        import soundfile as sf
        from reasoningcodec.features import WhisperLogMel

        melspec = WhisperLogMel(24000, 480)
    codec = None
    if a.dequantize:
        import reasoningcodec

        codec = reasoningcodec.load().eval()
        dq_dims = (codec.reasoning_vq.stages[0].out_proj.out_features, codec.recon_vq.stages[0].out_proj.out_features)
    def features(r: dict) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        root = Path(r["_root"])
        if a.inputs == "mel":
            wav, sr = sf.read(str(root.parent / r["codes"].replace("codes/", "audio/", 1).replace(
                ".safetensors", ".flac")), dtype="float32")
            if sr != 24000 or wav.ndim != 1:
                raise SystemExit(f"expected 24 kHz mono clips, got {sr} Hz {wav.shape}")
            w = torch.from_numpy(wav)[: len(wav) // 960 * 960]
            m = melspec(w[None])[0][0]
            return m[: m.shape[0] // 2 * 2].reshape(-1, 2, 80).mean(1), None
        t = load_file(str(root / r["codes"]))
        rr, qq = to_grid(t["reasoning"][:kr].long() if kr else None, t["recon"][:kq].long() if kq else None)
        if codec is not None:
            with torch.no_grad():
                rr = codec.reasoning_vq.decode(rr.T[None])[0] if rr is not None else None
                qq = codec.recon_vq.decode(qq.T[None])[0] if qq is not None else None
        return rr, qq

    for r in rows:
        rr, qq = features(r)
        text = normalise(r["text"])
        y = torch.tensor([ALPHABET.index(c) + 1 for c in text])
        n = (rr if rr is not None else qq).shape[0]
        if n > 1000 or n < len(y) + 1:
            continue
        if text in val_sent and r.get("_train"):
            continue                      # a validation sentence never reaches the training side
        data["val" if text in val_sent else "train"].append((rr, qq, y, text))
    print(f"{a.inputs}: {len(data['train'])} train / {len(data['val'])} val clips "
          f"({len(sentences) - len(val_sent)} / {len(val_sent)} sentences)", flush=True)
    model = Probe(kr, kq, 4096, 1024, a.dim, a.layers, mel=a.inputs == "mel", dq=dq_dims if codec else None)
    model.causal = a.causal
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)

    def batch(items):
        t = max((i[0] if i[0] is not None else i[1]).shape[0] for i in items)
        valid = torch.zeros(len(items), t, dtype=torch.bool)
        if codec is not None:
            r = torch.zeros(len(items), t, dq_dims[0])
            q = torch.zeros(len(items), t, dq_dims[1])
        else:
            r = torch.zeros(len(items), t, 80 if a.inputs == "mel" else max(kr, 1),
                            dtype=torch.float if a.inputs == "mel" else torch.long)
            q = torch.zeros(len(items), t, max(kq, 1), dtype=torch.long)
        for b, (rr, qq, _, _) in enumerate(items):
            n = (rr if rr is not None else qq).shape[0]
            valid[b, :n] = True
            if rr is not None:
                r[b, :n] = rr
            if qq is not None:
                q[b, :n] = qq
        return r, q, valid

    def evaluate(split: str = "val") -> float:
        model.eval()
        errs = chars = 0
        with torch.no_grad():
            for s in range(0, len(data[split]), 32):
                items = data[split][s : s + 32]
                r, q, valid = batch(items)
                best = model(r, q, valid).argmax(-1)
                for b, it in enumerate(items):
                    ids = best[b, : int(valid[b].sum())].tolist()
                    out = [i for k, i in enumerate(ids) if i and (k == 0 or ids[k - 1] != i)]
                    hyp = "".join(ALPHABET[i - 1] for i in out)
                    errs += edit_distance(hyp, it[3])
                    chars += len(it[3])
        model.train()
        return errs / max(chars, 1)

    t0, step, curve = time.process_time(), 0, []
    budget = a.cpu_minutes * 60
    next_eval = budget / 4
    while True:
        used = time.process_time() - t0
        if used >= next_eval or used >= budget:
            cer = evaluate()
            curve.append({"cpu_min": round(used / 60, 2), "step": step, "cer": round(cer, 4)})
            print(f"  cpu {used / 60:5.1f} min  step {step:5d}  val CER {cer:.3f}", flush=True)
            next_eval += budget / 4
            if used >= budget:
                break
        items = rng.sample(data["train"], a.batch)
        r, q, valid = batch(items)
        lr = a.lr * min(1.0, (step + 1) / 100)
        for g in opt.param_groups:
            g["lr"] = lr
        logp = model(r, q, valid)
        ys = torch.cat([i[2] for i in items])
        loss = F.ctc_loss(logp.transpose(0, 1), ys, valid.sum(1), torch.tensor([len(i[2]) for i in items]),
                          zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
    tests = {}
    for m in a.test:
        data["test"] = []
        for r in load_rows(m, None):
            if r.get("task") != "asr":
                continue
            rr, qq = features(dict(r, _root=str(m.parent)))
            text = normalise(r["text"])
            data["test"].append((rr, qq, torch.tensor([ALPHABET.index(c) + 1 for c in text]), text))
        tests[str(m)] = {"clips": len(data["test"]), "cer": round(evaluate("test"), 4)}
        print(f"  test {m}: {tests[str(m)]}", flush=True)
    res = {"inputs": a.inputs, "causal": a.causal, "tests": tests, "train_also": [str(x) for x in a.train_also], "dequantize": a.dequantize, "reasoning_codebooks": kr, "recon_codebooks": kq, "manifest": str(a.manifest),
           "train_clips": len(data["train"]), "val_clips": len(data["val"]), "curve": curve,
           "val_cer": curve[-1]["cer"], "date": time.strftime("%Y-%m-%d")}
    if a.json:
        with a.json.open("a") as f:
            f.write(json.dumps(res) + "\n")
    return 0


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance of two strings (the benchmarks' alignment, :func:`benchmarks.lm_eval.edit_counts`)."""
    return edit_counts(list(b), list(a)).errors


if __name__ == "__main__":
    sys.exit(main())
