"""Trainer: a few steps of a tiny config (fast), and 2-process torchrun with resume (slow)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reasoningcodec.data import build as data_build
from reasoningcodec.data.sources_real import find_fsdd

pytestmark = pytest.mark.skipif(find_fsdd() is None, reason="shared/data/train/fsdd not available")

TINY = {"enc_dim": 32, "latent_dim": 48, "dec_dim": 32, "reasoning_dim": 32, "reasoning_heads": 2,
        "reasoning_layers": 1, "num_recon_codebooks": 2, "recon_codebook_size": 64,
        "num_reasoning_codebooks": 2, "reasoning_codebook_size": 32, "dec_blocks": 1, "enc_blocks": 1}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    assert data_build.main(["build", str(out), "--sources", "fsdd", "--max-clips", "40", "--seed", "1"]) == 0
    return out


def recipe(tmp: Path, corpus: Path, steps: int) -> Path:
    r = {"corpus": str(corpus), "out_dir": str(tmp / "run"), "codec": TINY, "steps": steps, "batch_size": 2,
         "segment_seconds": 0.4, "gan_start": 2, "align_every": 2, "align_batch": 2, "threads": 1,
         "log_every": 1, "val_every": 2, "val_clips": 2, "disc_channels": 4, "ckpt_minutes": 100,
         "recon0_ctc_weight": 0.5, "stft_weight": 1.0}
    p = tmp / "recipe.json"
    p.write_text(json.dumps(r))
    return p


def test_train_steps_and_resume(tmp_path, corpus):
    from reasoningcodec import ReasoningCodec
    from reasoningcodec.train import TrainConfig, train

    cfg = TrainConfig.from_json(recipe(tmp_path, corpus, 3))
    state = train(cfg, quiet=True)
    assert state["step"] == 3
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert len(log) >= 4 and "mel" in log[0]
    header = log[0].split(",")
    ctc = [r.split(",")[header.index("ctc")] for r in log[1:] if r.split(",")[header.index("ctc")]]
    assert ctc and all(0 <= float(v) < 1e4 for v in ctc)  # FSDD digits carry transcripts: CTC is trained
    rc0 = [r.split(",")[header.index("recon0_ctc")] for r in log[1:] if r.split(",")[header.index("recon0_ctc")]]
    assert rc0 and all(0 <= float(v) < 1e4 for v in rc0)  # and so is codebook 0's pronunciation target
    st = [float(r.split(",")[header.index("stft")]) for r in log[1:]]
    assert st and all(0 < v < 1e4 for v in st)  # the linear-frequency spectral loss is on and logged
    cfg.steps = 5
    state = train(cfg, quiet=True)  # resumes from run/last
    assert state["step"] == 5
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert [r for r in log if r.startswith("step,")] == [log[0]]  # a resume appends rows, not a header
    assert [int(r.split(",")[0]) for r in log[1:] if r.split(",")[1]] == [0, 1, 2, 3, 4]  # rows of both runs
    m = ReasoningCodec.from_pretrained(tmp_path / "run" / "last" / "codec")
    assert m.config.num_recon_codebooks == 2
    assert m.config.model_id == "run-s5"  # a snapshot names its run and step, not "untrained"
    header = log[0]
    older = [header.replace(",stft", "")] + log[1:]  # as if an older trainer, without that column, wrote it
    (tmp_path / "run" / "log.csv").write_text("\n".join(older) + "\n")
    cfg.steps = 6
    train(cfg, quiet=True)
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert [r for r in log if r.startswith("step,")] == [older[0], header]  # columns changed: a new header
    cfg.steps = 7
    train(cfg, quiet=True)  # and the next resume goes on under that latest header
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert [r for r in log if r.startswith("step,")] == [older[0], header]


def test_stft_loss():
    import torch

    from reasoningcodec.train.losses import MultiResolutionSTFTLoss

    loss = MultiResolutionSTFTLoss(24000, max_hz=8000.0)
    assert loss.bins == [342, 683]  # 0–8 kHz of the 1024- and 2048-point spectra
    t = torch.arange(24000) / 24000
    a = torch.sin(2 * torch.pi * 200 * t)[None]
    assert float(loss(a, a)) == 0.0
    near, far = torch.sin(2 * torch.pi * 210 * t)[None], torch.sin(2 * torch.pi * 400 * t)[None]
    assert 0 < float(loss(near, a)) and float(loss(a * 0.5, a)) > 0
    # 11.7 Hz bins tell 200 Hz from 210 Hz, which share a mel band
    assert float(loss(near, a)) > 0.5 * float(loss(far, a))
    y = a.clone().requires_grad_(True)
    loss(y * 0.9, a).backward()
    assert torch.isfinite(y.grad).all() and float(y.grad.abs().sum()) > 0


@pytest.mark.slow
def test_torchrun_two_processes_and_resume(tmp_path, corpus):
    rp = recipe(tmp_path, corpus, 3)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "reasoningcodec.train", str(rp), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    st = json.loads((tmp_path / "run" / "last" / "state.json").read_text())
    assert st["step"] == 3
    p = subprocess.run(cmd + ["--steps", "5"], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    st = json.loads((tmp_path / "run" / "last" / "state.json").read_text())
    assert st["step"] == 5
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    losses = [float(r.split(",")[7]) for r in rows[1:] if r.split(",")[7]]
    assert losses and all(l == l and abs(l) < 1e6 for l in losses)  # finite


def test_transcript_ctc_targets_and_gradient():
    import torch

    from reasoningcodec.train.text_head import TranscriptCTC, encode_transcripts

    tg, lens = encode_transcripts(["Zero!", "", "天黑"])
    assert lens.tolist() == [4, 0, 6] and tg[:4].tolist() == [b + 1 for b in b"zero"]
    head = TranscriptCTC(16, slots=4)
    mem = torch.randn(3, 3, 16, requires_grad=True)
    loss = head(mem, torch.tensor([3, 2, 3]), tg, lens)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert mem.grad[1].abs().sum() == 0  # the clip without a transcript contributes nothing
    assert mem.grad[0].abs().sum() > 0


def _fake_teacher(window: int = 3200):
    """A WhisperTeacher whose encoder returns, for every state, its position and the input length
    (no Whisper model needed)."""
    import numpy as np

    from reasoningcodec.train import whisper_teacher as wt

    t = wt.WhisperTeacher.__new__(wt.WhisperTeacher)
    t.window, t.per_window = window, window // wt.STATE_HOP
    calls = []

    def encode(x):
        assert len(x) % 160 == 0 and len(x) <= wt.CHUNK
        calls.append(x.copy())
        out = np.zeros((len(x) // wt.STATE_HOP, wt.DIM), np.float32)
        out[:, 0] = np.arange(len(out))
        out[:, 1] = len(x)
        return out

    t._encode = encode
    return t, calls


def test_whisper_teacher_encodes_each_clip_alone_with_a_silent_tail():
    import numpy as np

    from reasoningcodec.train import whisper_teacher as wt

    t, calls = _fake_teacher()
    rng = np.random.default_rng(0)
    lengths = [1000, 3200, 50_000, 700_000, 10]  # short, exact, long, > 30 s
    clips = [rng.standard_normal(n).astype(np.float32) for n in lengths]
    out = list(t.window_states(iter(clips)))
    assert len(out) == len(clips)
    for x, s in zip(clips, out):
        assert s.shape == (-(-len(x) // t.window), wt.DIM)
    # window w averages states 10w .. 10w+9 of its own input: mean position 10w + 4.5
    assert np.allclose(out[2][:, 0], 10 * np.arange(len(out[2])) + 4.5)
    # each input is the clip, then silence: >= 1 s of it, rounded up to whole seconds
    assert np.array_equal(calls[0][:1000], clips[0]) and not calls[0][1000:].any()
    assert len(calls[0]) == 32_000 and len(calls[2]) == 80_000  # 51,200 + 16,000 → 5 s
    # a clip longer than 29 s is cut into window-aligned pieces that each keep a silent tail
    long = [c for c in calls if c.shape[0] == wt.CHUNK]
    assert long and all(not c[-16_000:].any() for c in long)
    assert out[3].shape[0] == -(-700_000 // 3200)
    assert np.allclose(out[3][:, 0] % 1, 0.5)  # every window averages whole states of one piece


def test_teacher_targets_follow_aligned_crops(tmp_path, corpus):
    import numpy as np

    from reasoningcodec.train import whisper_teacher as wt
    from reasoningcodec.train.dataset import ClipStore, Sampler, TeacherCache, crop_batch, read_manifest

    clips = read_manifest(corpus, "train")
    hop = 4800
    store = ClipStore(24_000)
    for c in clips:  # audio constant (w + 1) / 100 over window w; the cached state of window w is w
        n = len(store.get(c))
        store.cache[c.path] = ((np.arange(n) // hop + 1) / 100).astype(np.float32)
        p = wt.cache_path(corpus, c.path)
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, np.repeat(np.arange(-(-n // hop), dtype=np.float16)[:, None], wt.DIM, axis=1))
    try:
        cache = TeacherCache(corpus, clips)
        assert cache.coverage == 1.0
        assert np.allclose(cache.get(clips[0])[:, 0] * cache.std[0] + cache.index_mean[:len(cache.get(clips[0])), 0],
                           np.arange(len(cache.get(clips[0]))), atol=0.05)  # index mean and std undo exactly
        cache.cache = {c.path: np.load(wt.cache_path(corpus, c.path)) for c in clips}  # raw window indices
        rng = np.random.default_rng(0)
        wav, tgt, mask = crop_batch(store, Sampler(clips, {"*": 1.0}, 0), 16, 3 * hop, rng, noise_prob=0.0,
                                    hop=hop, teacher=cache)
        assert wav.shape == (16, 3 * hop) and tgt.shape == (16, 3, wt.DIM) and mask.shape == (16, 3)
        for i in range(16):
            w = wav[i].numpy().reshape(3, hop)
            for k in range(3):
                if mask[i, k]:  # a crop starts on a window boundary: constant audio over the window
                    assert np.allclose(w[k], w[k, 0])
                else:
                    assert not w[k].any() and not tgt[i, k].any()  # padding
            g = [w[k, 0] / (float(tgt[i, k, 0]) + 1) for k in range(3) if mask[i, k]]
            assert np.allclose(g, g[0], rtol=1e-3)  # one gain per crop: targets follow the audio
        assert mask.sum() > 16 and (tgt[..., 0][mask] > 0).any()
    finally:
        for c in clips:
            wt.cache_path(corpus, c.path).unlink()


def test_reasoning_phase_trains_only_the_reasoning_branch(tmp_path, corpus):
    import numpy as np
    import torch

    from reasoningcodec import ReasoningCodec
    from reasoningcodec.train import TrainConfig, train
    from reasoningcodec.train import whisper_teacher as wt
    from reasoningcodec.train.dataset import ClipStore, read_manifest

    store = ClipStore(24_000)
    clips = read_manifest(corpus, "train")
    for c in clips:
        n = -(-len(store.get(c)) // 4800)
        p = wt.cache_path(corpus, c.path)
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, np.random.default_rng(0).standard_normal((n, wt.DIM)).astype(np.float16))
    try:
        cfg = TrainConfig.from_json(recipe(tmp_path, corpus, 2))
        train(cfg, quiet=True)  # a joint start
        before = ReasoningCodec.from_pretrained(tmp_path / "run" / "last" / "codec").state_dict()
        cfg.phase, cfg.steps = "reasoning", 5
        cfg.loss_weights["distill"] = 1.0
        cfg.out_dir, cfg.init_from = str(tmp_path / "run2"), str(tmp_path / "run" / "last")
        train(cfg, quiet=True)
        after = ReasoningCodec.from_pretrained(tmp_path / "run2" / "last" / "codec").state_dict()
        changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
        assert "reasoning_encoder" in changed
        assert changed <= {"reasoning_encoder", "reasoning_vq", "film", "null_reasoning", "enc_norm"}
        log = (tmp_path / "run2" / "log.csv").read_text().splitlines()
        rows = [r.split(",") for r in log]
        head = next(r for r in reversed(rows) if "distill" in r)
        vals = [r for r in rows if r is not head and len(r) == len(head) and r[0].isdigit()]
        d = [float(r[head.index("distill")]) for r in vals if r[head.index("distill")]]
        pr = [float(r[head.index("preserve")]) for r in vals if r[head.index("preserve")]]
        assert d and all(0 < v < 1e4 for v in d) and pr and all(0 <= v < 1e4 for v in pr)
        with pytest.raises(ValueError, match="phase"):
            train(TrainConfig(**{**cfg.__dict__, "phase": "decoder"}), quiet=True)
    finally:
        for c in clips:
            wt.cache_path(corpus, c.path).unlink(missing_ok=True)


def test_reasoning_init_whitening_and_residual_vq_fit():
    import torch

    from reasoningcodec.quantize import ResidualVQ
    from reasoningcodec.train.reasoning_init import fit_residual_vq, set_whitening

    g = torch.Generator().manual_seed(0)
    # features with one dominant direction and a weak but structured part (as the front-end's are)
    x = torch.randn(6000, 24, generator=g) * torch.linspace(0.1, 1.0, 24) + 30.0 * torch.randn(6000, 1, generator=g)
    proj = torch.nn.Linear(24, 16)
    y = set_whitening(proj, x, top=8)
    assert torch.allclose(y[:, :8].std(0), torch.ones(8), atol=0.02)
    assert torch.allclose(y[:, :8].mean(0), torch.zeros(8), atol=1e-3)
    assert float(y[:, 8:].abs().max()) == 0.0
    vq = ResidualVQ(16, 4, 64, 4).eval()
    left = fit_residual_vq(vq, y, iters=5)
    total = float(y.var(0).sum())
    assert left[0] < total and all(b <= a + 1e-3 for a, b in zip(left, left[1:]))
    # the fitted stages are what the codec's own quantiser computes
    with torch.no_grad():
        q = vq(y[None]).quantized[0]
    assert abs(float((y - q).var(0).sum()) - left[-1]) < 0.05 * left[-1]


def test_decoder_only_training_of_a_reasoning_conditioned_decoder_keeps_the_tokens(tmp_path, corpus):
    import torch

    from reasoningcodec import ReasoningCodec
    from reasoningcodec.train import TrainConfig, train

    cfg = TrainConfig.from_json(recipe(tmp_path, corpus, 2))
    train(cfg, quiet=True)  # a plain codec to start from
    start = tmp_path / "run" / "last"
    before = ReasoningCodec.from_pretrained(start / "codec").state_dict()
    encoder = ["null_reasoning", "reasoning_encoder.", "reasoning_vq.", "enc_in.", "enc.", "enc_down.", "latent.",
               "film.", "enc_norm.", "recon_vq."]
    cfg.codec = {**TINY, "decoder_reasoning": True}
    cfg.freeze, cfg.align_every, cfg.decoder_null_prob = encoder, 0, 0.5
    cfg.loss_weights["recon0_ctc"] = 0.0
    cfg.out_dir, cfg.init_from, cfg.steps, cfg.lr = str(tmp_path / "run2"), str(start), 6, 5e-3
    train(cfg, quiet=True)
    m = ReasoningCodec.from_pretrained(tmp_path / "run2" / "last" / "codec")
    after = m.state_dict()
    assert m.config.decoder_reasoning and float(m.dec_film.proj.weight.abs().sum()) > 0  # it learned to use them
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= {"dec_latent", "dec_up", "dec", "dec_norm", "head"}  # tokens stay valid


def test_a_codec_grown_by_decoder_blocks_starts_as_the_checkpoint(tmp_path):
    import torch

    from reasoningcodec import ReasoningCodec
    from reasoningcodec.config import CodecConfig
    from reasoningcodec.train import checkpoint as ckpt
    from reasoningcodec.train.state import identity_new_blocks

    torch.manual_seed(0)
    small = ReasoningCodec(CodecConfig.from_dict({**CodecConfig().to_dict(), **TINY})).eval()
    ckpt.save_modules(tmp_path / "modules.safetensors", {"codec": small})
    grown = ReasoningCodec(CodecConfig.from_dict({**CodecConfig().to_dict(), **TINY, "dec_blocks": 3})).eval()
    ckpt.load_modules(tmp_path / "modules.safetensors", {"codec": grown}, partial=("codec",))
    with torch.no_grad():
        codes = small.encode(torch.randn(1, 12_000) * 0.1, sample_rate=24_000)
        assert not torch.allclose(small.decode(codes), grown.decode(codes))  # new blocks at their default init
        assert identity_new_blocks(grown, tmp_path / "modules.safetensors") == ["dec.blocks.1", "dec.blocks.2"]
        assert torch.equal(small.decode(codes), grown.decode(codes))
        assert identity_new_blocks(small, tmp_path / "modules.safetensors") == []


def test_weight_average_is_validated_exported_and_resumed(tmp_path, corpus):
    import torch
    from safetensors.torch import load_file

    from reasoningcodec import ReasoningCodec
    from reasoningcodec.train import TrainConfig, train

    cfg = TrainConfig.from_json(recipe(tmp_path, corpus, 3))
    cfg.ema_decay, cfg.lr = 0.5, 5e-3
    train(cfg, quiet=True)
    last = tmp_path / "run" / "last"
    saved = load_file(str(last / "modules.safetensors"))
    raw = {k[len("codec."):]: v for k, v in saved.items() if k.startswith("codec.")}
    avg = {k[len("codec_ema."):]: v for k, v in saved.items() if k.startswith("codec_ema.")}
    assert raw.keys() == avg.keys()
    moved = [k for k in raw if raw[k].is_floating_point() and not torch.equal(raw[k], avg[k])]
    assert moved  # the average lags the trained weights
    exported = ReasoningCodec.from_pretrained(last / "codec").state_dict()
    assert all(torch.equal(exported[k].float(), avg[k].float()) for k in moved)  # last/codec is the average
    cfg.steps = 5
    assert train(cfg, quiet=True)["step"] == 5  # resumes with its average
    again = load_file(str(last / "modules.safetensors"))
    assert any(not torch.equal(again[f"codec_ema.{k}"], avg[k]) for k in moved)
    # the git checkpoint keeps one codec: the average, under the codec's own names
    from reasoningcodec.train import export_resumable

    export_resumable(tmp_path / "run", tmp_path / "ckpt")
    ck = load_file(str(tmp_path / "ckpt" / "modules.safetensors"))
    assert not any(k.startswith("codec_ema.") for k in ck)
    avg2 = {k[len("codec_ema."):]: v for k, v in again.items() if k.startswith("codec_ema.")}
    assert {k for k in ck if k.startswith("codec.")} == {f"codec.{k}" for k in avg2}
    assert all(torch.equal(ck[f"codec.{k}"], v.half() if v.is_floating_point() else v) for k, v in avg2.items())
    assert any(k.startswith("disc.") for k in ck)  # the other modules stay


def test_gpu_burst_round_trip_packs_trains_and_merges_the_trained_parts(tmp_path, corpus):
    """pack_init → a joint burst with the reasoning branch frozen → export only the trained parts of the
    weight average → merge them over the packed start: the frozen branch is the start's, the rest the
    burst's average, and training resumes from the merged folder."""
    import torch
    from safetensors.torch import load_file

    from reasoningcodec.train import TrainConfig, train
    from reasoningcodec.train.pack import pack_init
    from reasoningcodec.train.export import export_shards, merge_shards

    frozen = ("null_reasoning", "reasoning_encoder.", "reasoning_vq.")
    cfg = TrainConfig.from_json(recipe(tmp_path, corpus, 2))
    cfg.ema_decay, cfg.val_every = 0.5, 1000
    train(cfg, quiet=True)
    pack_init(tmp_path / "run" / "last", tmp_path / "pack")
    init = load_file(str(tmp_path / "pack" / "init" / "modules.safetensors"))
    run = load_file(str(tmp_path / "run" / "last" / "modules.safetensors"))
    assert {k.split(".", 1)[0] for k in init} == {"codec", "disc"}  # no heads, no second codec copy
    assert all(init[k].dtype == torch.float16 for k in init if run[k].is_floating_point())
    ema = {k[len("codec_ema."):]: v for k, v in run.items() if k.startswith("codec_ema.")}
    assert all(torch.equal(init[f"codec.{k}"], v.half() if v.is_floating_point() else v) for k, v in ema.items())

    burst = TrainConfig.from_json(recipe(tmp_path, corpus, 6))
    burst.out_dir, burst.init_from = str(tmp_path / "burst"), str(tmp_path / "pack" / "init")
    burst.ema_decay, burst.val_every, burst.freeze, burst.lr = 0.5, 1000, list(frozen), 5e-3
    assert train(burst, quiet=True)["step"] == 6
    export_shards(tmp_path / "burst", tmp_path / "out", max_mb=0.05, only=("codec_ema.", "disc."), skip=frozen)
    shards = sorted((tmp_path / "out").glob("modules-*.safetensors"))
    sent = {k for f in shards for k in load_file(str(f))}
    assert len(shards) > 1 and sent and not any(k.split(".", 1)[1].startswith(frozen) for k in sent)
    merge_shards(tmp_path / "out", tmp_path / "merged", base=tmp_path / "pack" / "init" / "modules.safetensors")
    merged = load_file(str(tmp_path / "merged" / "modules.safetensors"))
    after = load_file(str(tmp_path / "burst" / "last" / "modules.safetensors"))
    assert {k for k in merged if k.startswith("codec.")} == {k for k in init if k.startswith("codec.")}
    for k, v in merged.items():
        name = k.split(".", 1)[1]
        if k.startswith("codec.") and name.startswith(frozen):
            assert torch.equal(v, init[k])
        elif k.startswith("codec."):
            ref = after[f"codec_ema.{name}"]
            assert torch.equal(v, ref.half() if ref.is_floating_point() else ref)
    assert json.loads((tmp_path / "merged" / "state.json").read_text())["step"] == 6
    with pytest.raises(ValueError, match="no tensors"):
        export_shards(tmp_path / "burst", tmp_path / "none", only=("nothing.",))
    again = TrainConfig.from_json(recipe(tmp_path, corpus, 7))
    again.out_dir, again.init_from, again.val_every = str(tmp_path / "again"), str(tmp_path / "merged"), 1000
    assert train(again, quiet=True)["step"] == 7


def test_period_discriminator_matches_conv2d():
    """The folded 1-D period discriminator gives the numbers of the textbook Conv2d on the [B, 1, T/p, p]
    view (same weights, so old checkpoints load and train on unchanged)."""
    import torch
    import torch.nn.functional as F

    from reasoningcodec.train.discriminators import PeriodDiscriminator

    torch.manual_seed(0)
    for p in (2, 3, 7):
        d = PeriodDiscriminator(p, 8)
        x = torch.randn(3, 1001)
        scores, feats = d(x)
        h = F.pad(x, (0, (-1001) % p), mode="reflect").reshape(3, 1, -1, p)
        for conv, f in zip(d.convs, feats):
            h = F.leaky_relu(conv(h), 0.1)
            assert f.shape[0] == 3  # batch first: the trainer splits real and fake on it
            torch.testing.assert_close(f.permute(0, 2, 3, 1), h)
        ref = d.post(h)  # [B, 1, T', p]
        torch.testing.assert_close(scores, ref[:, 0].transpose(1, 2).reshape(3, -1))


def test_generator_gan_losses_match_one_joint_pass():
    """The generator step's cheaper discriminator pass gives the losses and fake-audio gradients of the
    textbook pass over cat([real, fake]), and leaves the discriminators trainable and without grads."""
    import torch

    from reasoningcodec.train.discriminators import Discriminators
    from reasoningcodec.train.losses import feature_matching_loss, generator_loss
    from reasoningcodec.train.trainer import generator_gan_losses

    torch.manual_seed(0)
    disc = Discriminators(periods=(2, 3), resolutions=((256, 64),), ch=4)
    real = torch.randn(2, 2400)
    fake = torch.randn(2, 2400, requires_grad=True)
    scores, feats = disc(torch.cat([real, fake]))
    adv = generator_loss([s[2:] for s in scores])
    fm = feature_matching_loss([[f[:2] for f in fs] for fs in feats], [[f[2:] for f in fs] for fs in feats])
    (g_ref,) = torch.autograd.grad(adv + 2 * fm, fake)
    a, m = generator_gan_losses(disc, real, fake)
    torch.testing.assert_close(a, adv)
    torch.testing.assert_close(m, fm)
    (a + 2 * m).backward()
    torch.testing.assert_close(fake.grad, g_ref)
    assert all(p.requires_grad and p.grad is None for p in disc.parameters())


def test_bf16_autocast_keeps_the_quantiser_and_losses_in_float32():
    """Under ``autocast: "bf16"`` the quantiser picks the float32 codes and the GAN losses come out
    float32, close to the float32 ones, with gradients for the fake audio."""
    import torch

    from reasoningcodec.quantize import ResidualVQ
    from reasoningcodec.train.discriminators import Discriminators
    from reasoningcodec.train.trainer import TrainConfig, autocast_context, generator_gan_losses

    torch.manual_seed(0)
    vq = ResidualVQ(48, 4, 256, 8).train()
    x = torch.randn(2, 30, 48)
    ref = vq(x)
    amp = lambda: autocast_context(TrainConfig(autocast="bf16"), "cpu")  # noqa: E731
    with amp():
        got = vq(x)
    assert got.quantized.dtype == torch.float32
    assert torch.equal(got.codes, ref.codes)
    torch.testing.assert_close(got.quantized, ref.quantized)

    disc = Discriminators(periods=(2, 3), resolutions=((256, 64),), ch=4)
    real, fake = torch.randn(2, 2400), torch.randn(2, 2400, requires_grad=True)
    a32, m32 = generator_gan_losses(disc, real, fake)
    a16, m16 = generator_gan_losses(disc, real, fake, amp)
    assert a16.dtype == m16.dtype == torch.float32
    torch.testing.assert_close(a16, a32, rtol=0.05, atol=0.01)
    torch.testing.assert_close(m16, m32, rtol=0.05, atol=0.01)
    (g16,) = torch.autograd.grad(a16 + 2 * m16, fake)
    (g32,) = torch.autograd.grad(a32 + 2 * m32, fake)
    assert float(torch.nn.functional.cosine_similarity(g16.flatten(), g32.flatten(), dim=0)) > 0.9
    with pytest.raises(ValueError, match="autocast must be"):
        from reasoningcodec.train import train

        train(TrainConfig(autocast="fp8", out_dir="/nonexistent/never-created"), quiet=True)


def test_train_steps_bf16_autocast(tmp_path, corpus):
    """A few steps of the tiny recipe with bf16 autocast: finite losses, a float32 checkpoint."""
    import torch
    from safetensors import safe_open

    from reasoningcodec.train import TrainConfig, train

    cfg = TrainConfig.from_json(recipe(tmp_path, corpus, 4))
    cfg.autocast = "bf16"
    state = train(cfg, quiet=True)
    assert state["step"] == 4
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    header = log[0].split(",")
    for col in ("mel", "adv", "fm", "disc"):
        vals = [r.split(",")[header.index(col)] for r in log[1:] if r.split(",")[header.index(col)]]
        assert vals and all(0 <= float(v) < 1e4 for v in vals), col
    with safe_open(str(tmp_path / "run" / "last" / "modules.safetensors"), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F32"}
    assert torch.get_default_dtype() == torch.float32


def test_train_speed_benchmark(tmp_path, corpus):
    """benchmarks/train_speed.py runs the trainer on a recipe and reports its per-step time."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "train_speed", Path(__file__).resolve().parents[1] / "benchmarks" / "train_speed.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    r = mod.run(recipe(tmp_path, corpus, 10), minutes=0.15, nproc=1, threads=1, skip=1)
    assert r["steps_timed"] >= 2 and r["sec_per_step_median"] > 0
    assert r["audio_s_per_s_median"] == pytest.approx(2 * 0.4 / r["sec_per_step_median"], rel=0.01)
    assert not (tmp_path / "run").exists()  # it trained in its own temporary folder
    assert mod.parse_overrides(["autocast=bf16", "batch_size=3", "lr=1e-4"]) == {
        "autocast": "bf16", "batch_size": 3, "lr": 1e-4}
    r = mod.run(recipe(tmp_path, corpus, 10), minutes=0.1, nproc=1, threads=1, skip=1,
                overrides={"autocast": "bf16", "batch_size": 3})
    assert r["overrides"] == {"autocast": "bf16", "batch_size": 3}
    assert r["audio_s_per_s_median"] == pytest.approx(3 * 0.4 / r["sec_per_step_median"], rel=0.01)
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        mod.parse_overrides(["autocast"])
    with pytest.raises(SystemExit, match="training failed"):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"corpus": str(tmp_path / "missing"), "batch_size": 2, "segment_seconds": 0.4}))
        mod.run(bad, minutes=0.05, nproc=1, threads=1, skip=1)


def _with_val_clips(corpus: Path, dest: Path, n: int = 3) -> Path:
    """A copy of the tiny corpus with its first ``n`` clips moved to the val split."""
    import shutil

    shutil.copytree(corpus, dest)
    lines = (dest / "manifest.tsv").read_text(encoding="utf-8").splitlines()
    col = lines[0].split("\t").index("split")
    for i in range(1, n + 1):
        cells = lines[i].split("\t")
        cells[col] = "val"
        lines[i] = "\t".join(cells)
    (dest / "manifest.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dest


def test_heldout_eval_script(tmp_path, corpus):
    """scripts/heldout_eval.py scores codec folders (and Opus, when installed) on the corpus' val split."""
    import importlib.util
    import shutil

    from reasoningcodec import CodecConfig, ReasoningCodec

    spec = importlib.util.spec_from_file_location(
        "heldout_eval", Path(__file__).resolve().parents[1] / "scripts" / "heldout_eval.py")
    he = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(he)
    ReasoningCodec(CodecConfig(**TINY)).save_pretrained(tmp_path / "tiny")
    corpus = _with_val_clips(corpus, tmp_path / "corpus")
    opus = ["--opus", "6"] if shutil.which("opusenc") and shutil.which("opusdec") else []
    out = tmp_path / "rows.json"
    assert he.main([str(tmp_path / "tiny"), "--corpus", str(corpus), "--val-clips", "2", "--speech-clips", "2",
                    "--json", str(out), *opus]) == 0
    rows = json.loads(out.read_text())
    assert rows[0]["model"] == str(tmp_path / "tiny") and rows[0]["speech_clips"] == 2
    assert 0 < rows[0]["val_mel"] < 100 and -1 <= rows[0]["stoi"] <= 1 and 1 <= rows[0]["pesq_wb"] <= 4.7
    if opus:  # a real codec at 6 kbit/s beats an untrained one on the same clips
        assert rows[1]["model"] == "opus@6kbps" and rows[1]["val_mel"] is None and rows[1]["speech_clips"] == 2
        assert rows[1]["stoi"] > rows[0]["stoi"] and rows[1]["pesq_wb"] > rows[0]["pesq_wb"]


def test_learning_curve_script(tmp_path, corpus, monkeypatch):
    """scripts/learning_curve.py scores each committed version of a checkpoint, skips versions of another
    architecture, and fits each speech metric against log2(hours of audio)."""
    import importlib.util

    import numpy as np
    import torch
    from safetensors.torch import save_file

    from reasoningcodec import CodecConfig, ReasoningCodec

    spec = importlib.util.spec_from_file_location(
        "learning_curve", Path(__file__).resolve().parents[1] / "scripts" / "learning_curve.py")
    lc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lc)

    # the fit: a metric that rises exactly 0.1 per doubling reaches 1.5 at 2 ** 10 hours
    rows = [{"audio_hours": h, "pesq_wb": 0.5 + 0.1 * np.log2(h), "stoi": 0.9, "step": i}
            for i, h in enumerate((4, 16, 64))]
    f = lc.fit(rows, "pesq_wb")
    assert f["per_doubling"] == pytest.approx(0.1, abs=1e-4) and f["rms_residual"] < 1e-4
    assert lc.x_for(f, 1.5) == pytest.approx(1024, rel=1e-3)
    assert lc.x_for(lc.fit(rows, "stoi"), 0.95) is None  # a flat metric never gets there

    corpus = _with_val_clips(corpus, tmp_path / "corpus")
    repo = tmp_path / "repo"
    ck = repo / "checkpoints" / "c"
    ck.mkdir(parents=True)
    monkeypatch.chdir(repo)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    subprocess.run(["git", "init", "-q"], check=True)
    for step, hours in ((10, 1.0), (20, 2.0), (30, 4.0)):
        torch.manual_seed(step)
        codec = ReasoningCodec(CodecConfig(**TINY))
        tensors = {f"codec.{k}": v.half() if v.is_floating_point() else v for k, v in codec.state_dict().items()}
        if step == 20:  # a version of another architecture: skipped with a message, not half-loaded
            tensors = {k: v for k, v in tensors.items() if not k.startswith("codec.dec.")}
        save_file(tensors, str(ck / "modules.safetensors"))
        (ck / "state.json").write_text(json.dumps({"step": step, "audio_seconds": hours * 3600,
                                                   "config": {"codec": TINY}}))
        subprocess.run(["git", "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", f"step {step}"], check=True)
    assert len(lc.checkpoint_commits("checkpoints/c")) == 3
    out = tmp_path / "curve.json"
    png = tmp_path / "curve.png"
    assert lc.main(["--checkpoint", "checkpoints/c", "--corpus", str(corpus), "--val-clips", "2",
                    "--speech-clips", "2", "--json", str(out), "--plot", str(png)]) == 0
    got = json.loads(out.read_text())
    assert [(r["step"], r["audio_hours"]) for r in got["rows"]] == [(10, 1.0), (30, 4.0)]
    assert all(0 < r["val_mel"] < 100 and 1 <= r["pesq_wb"] <= 4.7 for r in got["rows"])
    assert "fit" not in got  # two points are too few to fit
    assert png.stat().st_size > 0


def _loss_rows(log_path: Path, skip=("time", "cpu_s", "sec_per_step", "audio_s_per_s")) -> list[dict]:
    import csv

    with open(log_path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in skip} for r in csv.DictReader(f)]


def test_two_runs_from_one_seed_log_identical_losses(tmp_path, corpus):
    from reasoningcodec.train import TrainConfig, train

    rows = []
    for name in ("a", "b"):
        cfg = TrainConfig.from_json(recipe(tmp_path, corpus, 4), out_dir=str(tmp_path / name))
        train(cfg, quiet=True)
        rows.append(_loss_rows(tmp_path / name / "log.csv"))
    assert len(rows[0]) >= 4 and rows[0] == rows[1]
    cfg = TrainConfig.from_json(recipe(tmp_path, corpus, 4), out_dir=str(tmp_path / "c"), seed=1)
    train(cfg, quiet=True)
    assert _loss_rows(tmp_path / "c" / "log.csv") != rows[0]  # the seed does choose the data


def test_cpu_budget_snapshots_and_sparse_discriminator_steps(tmp_path, corpus):
    from reasoningcodec import ReasoningCodec
    from reasoningcodec.train import TrainConfig, train

    cfg = TrainConfig.from_json(recipe(tmp_path, corpus, 1000), gan_start=0, disc_every=3,
                                max_cpu_seconds=1e-9, snapshot_cpu_seconds=1e-9)
    state = train(cfg, quiet=True)
    assert state["step"] == 1 and state["cpu_seconds"] > 0  # stopped by the CPU budget after one step
    snaps = sorted((tmp_path / "run" / "snap").iterdir())
    assert len(snaps) == 1 and ReasoningCodec.from_pretrained(snaps[0]).config.model_id == "run-s1"
    cfg = TrainConfig.from_json(recipe(tmp_path, corpus, 7), out_dir=str(tmp_path / "k"), gan_start=0,
                                disc_every=3)
    train(cfg, quiet=True)
    disc = [r["disc"] for r in _loss_rows(tmp_path / "k" / "log.csv") if r["mel"]]
    assert [bool(v) for v in disc] == [True, False, False, True, False, False, True]


def test_whisper_feature_loss_is_zero_on_the_input_and_trains_the_output():
    import torch

    from reasoningcodec import CodecConfig, ReasoningCodec
    from reasoningcodec.train.feature_loss import whisper_feature_loss

    torch.manual_seed(0)
    c = ReasoningCodec(CodecConfig(**{**TINY, "reasoning_frontend": "whisper", "whisper_dim": 32,
                                      "whisper_heads": 2})).eval()
    wav = torch.randn(2, 9600) * 0.1
    assert float(whisper_feature_loss(c, torch.cat([wav, wav[:, :300]], 1), wav)) == 0.0  # longer output: cut
    y = (wav + 0.05 * torch.randn_like(wav)).requires_grad_(True)
    loss = whisper_feature_loss(c, y, wav)
    loss.backward()
    assert float(loss) > 0 and y.grad is not None and float(y.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="whisper"):
        whisper_feature_loss(ReasoningCodec(CodecConfig(**TINY)), wav, wav)


def test_old_recipe_weights_map_to_loss_weights_and_log_identical_losses(tmp_path, corpus):
    """Old ``*_weight`` fields are read into ``loss_weights`` (every recipe in recipes/ keeps its
    meaning), and a new-style recipe with the same weights logs the same losses, bit for bit."""
    from reasoningcodec.train import TrainConfig, train
    from reasoningcodec.train.config import DEFAULT_LOSS_WEIGHTS, LEGACY_WEIGHT_FIELDS

    old = TrainConfig.from_json(recipe(tmp_path, corpus, 4), out_dir=str(tmp_path / "old"))
    assert old.loss_weights == {**DEFAULT_LOSS_WEIGHTS, "recon0_ctc": 0.5, "stft": 1.0}
    root = Path(__file__).resolve().parents[1] / "recipes"
    for p in sorted([*root.glob("codec_*.json"), *root.glob("arms/*.json")]):
        d = json.loads(p.read_text())
        w = TrainConfig.from_json(p).loss_weights
        for field, names in LEGACY_WEIGHT_FIELDS.items():
            for name in names:
                assert w[name] == d.get(field, DEFAULT_LOSS_WEIGHTS[name]), (p.name, field)
    r = json.loads(recipe(tmp_path, corpus, 4).read_text())
    del r["recon0_ctc_weight"], r["stft_weight"]
    r.update(out_dir=str(tmp_path / "new"), loss_weights={"recon0_ctc": 0.5, "stft": 1.0, "mel": 15})
    (tmp_path / "new.json").write_text(json.dumps(r))
    new = TrainConfig.from_json(tmp_path / "new.json")
    assert new.loss_weights == old.loss_weights
    train(old, quiet=True)
    train(new, quiet=True)
    rows = _loss_rows(tmp_path / "old" / "log.csv")
    assert len(rows) >= 4 and rows == _loss_rows(tmp_path / "new" / "log.csv")
    assert [k for k in rows[0]][:4] == ["step", "audio_h", "gnorm", "total"]  # the log's columns are unchanged
    with pytest.raises(ValueError, match="two weights"):
        TrainConfig.from_dict({"stft_weight": 1.0, "loss_weights": {"stft": 2.0}})
    with pytest.raises(AttributeError, match="loss_weights"):
        new.stft_weight = 2.0  # an old field set on a config would otherwise be silently ignored
    with pytest.raises(ValueError, match="unknown losses"):
        train(TrainConfig.from_dict({**r, "loss_weights": {"mell": 1.0}, "out_dir": str(tmp_path / "typo")}),
              quiet=True)


def test_a_new_loss_is_one_function_and_one_recipe_key(tmp_path, corpus):
    """A registered reconstruction loss is computed, logged under its name and weighted into the total."""
    from reasoningcodec.train import TrainConfig, train
    from reasoningcodec.train.objective import RECONSTRUCTION_LOSSES, reconstruction_loss

    @reconstruction_loss("wav_l1")
    def wav_l1(x):
        return (x.y_hat[:, : x.wav.shape[1]] - x.wav).abs().mean()

    try:
        cfg = TrainConfig.from_json(recipe(tmp_path, corpus, 3), gan_start=100, align_every=0)
        cfg.loss_weights["wav_l1"] = 3.0
        train(cfg, quiet=True)
    finally:
        RECONSTRUCTION_LOSSES.pop("wav_l1")
    rows = _loss_rows(tmp_path / "run" / "log.csv")
    assert list(rows[0])[-2:] == ["wav_l1", "val_mel"]  # a new column, after the old ones
    w = cfg.loss_weights
    for r in (r for r in rows if r["mel"]):
        assert float(r["wav_l1"]) > 0
        total = sum(w[k] * float(v) for k, v in r.items() if k in w and v)
        assert float(r["total"]) == pytest.approx(total, rel=1e-4, abs=1e-3)


def test_training_code_uses_the_quantiser_interface():
    """ResidualVQ behind BaseQuantizer: codebooks, trainability, code replacement and dead-code restarts
    through its methods; a quantiser without learned codes (as FSQ) needs only the abstract methods."""
    import torch

    from reasoningcodec.quantize import BaseQuantizer, QuantizerOutput, ResidualVQ
    from reasoningcodec.train.revive import CodeReviver

    torch.manual_seed(0)
    vq = ResidualVQ(16, 3, 32, 4).train()
    assert isinstance(vq, BaseQuantizer) and (vq.num_codebooks, vq.cardinality) == (3, 32)
    books = vq.codebooks()
    assert len(books) == 3 and all(b is s.codebook for b, s in zip(books, vq.stages))
    assert vq.is_trainable()
    books[1].requires_grad_(False)
    assert not vq.is_trainable()  # a partly frozen quantiser is left alone
    books[1].requires_grad_(True)
    before = [b.detach().clone() for b in books]
    vq.replace_codes(1, torch.tensor([3, 5]), torch.ones(2, 4))
    assert torch.equal(books[1][[3, 5]], torch.ones(2, 4)) and torch.equal(books[0], before[0])
    changed = (books[1] != before[1]).any(1).nonzero().flatten().tolist()
    assert changed == [3, 5]

    reviver = CodeReviver(every=2, threshold=0.5)
    x = torch.randn(4, 50, 16) * 0.01 + torch.randn(16)  # nearly constant: few codes used
    reviver.observe("recon", vq, vq(x))
    kept = [b.detach().clone() for b in vq.codebooks()]
    assert reviver.maybe_revive(2, "recon", vq) > 0
    assert any(not torch.equal(a, b) for a, b in zip(kept, vq.codebooks()))

    class Rounding(BaseQuantizer):  # an FSQ-like quantiser: fixed grid, nothing to restart
        num_codebooks, cardinality = 1, 5

        def forward(self, x: torch.Tensor, n_q: int | None = None) -> QuantizerOutput:
            q = x.clamp(-2, 2).round()
            zero = x.new_zeros(())
            return QuantizerOutput(x + (q - x).detach(), (q[..., 0] + 2).long()[:, None], zero, zero)

        def decode(self, codes: torch.Tensor) -> torch.Tensor:
            return (codes[:, 0] - 2).float()[..., None]

    r = Rounding()
    assert r.codebooks() == [] and not r.is_trainable()
    with pytest.raises(NotImplementedError):
        r.replace_codes(0, torch.tensor([0]), torch.zeros(1, 1))


def test_harmonic_teacher_forcing_and_learning_rate_scales(tmp_path, corpus):
    import torch

    from reasoningcodec.train import TrainConfig, train
    from reasoningcodec.train.state import param_groups
    from reasoningcodec.train.train_model import TrainModel
    from reasoningcodec.train.text_head import TextHead
    from reasoningcodec import CodecConfig, ReasoningCodec

    codec = {**TINY, "harmonic_source": True}
    model = TrainModel(ReasoningCodec(CodecConfig(**codec)), TextHead(32))
    groups = param_groups(model, {"harm_gain": 10.0, "f0_head": 10.0})
    assert sorted(g["lr_scale"] for g in groups) == [1.0, 10.0, 10.0]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="match no codec parameter"):
        param_groups(model, {"no_such_part": 2.0})
    rows = {}
    for name, forced in (("free", False), ("forced", True)):
        cfg = TrainConfig.from_json(recipe(tmp_path, corpus, 3), out_dir=str(tmp_path / name), codec=codec,
                                    harmonic_teacher_forcing=forced, lr_scales={"harm_gain": 10.0})
        train(cfg, quiet=True)
        rows[name] = _loss_rows(tmp_path / name / "log.csv")
    assert all(r["f0"] for r in rows["forced"] if r["mel"])  # the F0 head still learns
    # step 0 decodes with a zero gain either way; the forced comb changes what the gain learns
    assert rows["free"][0]["mel"] == rows["forced"][0]["mel"] and rows["free"] != rows["forced"]
    st = json.loads((tmp_path / "forced" / "last" / "state.json").read_text())
    assert st["config"]["lr_scales"] == {"harm_gain": 10.0}
    cfg.steps = 4
    train(cfg, quiet=True)  # resumes with its two optimiser groups
