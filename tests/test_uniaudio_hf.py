"""from_hf_llama: a Llama / Qwen2 checkpoint's logits are reproduced by the backbone (needs transformers)."""

from __future__ import annotations

import pytest
import torch

from reasoningcodec import CodecConfig
from uniaudio_lm import UniAudioConfig, from_hf_llama

transformers = pytest.importorskip("transformers")

CODEC = CodecConfig(num_reasoning_codebooks=2, reasoning_codebook_size=16, num_recon_codebooks=3, recon_codebook_size=32)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_backbone_matches_hf(tmp_path, arch):
    common = dict(vocab_size=100, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=False)
    torch.manual_seed(0)
    if arch == "llama":
        scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 16}
        hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**common, rope_scaling=scaling, rope_theta=500000.0))
    else:
        hf = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**common))
    hf.eval().save_pretrained(tmp_path)
    model = from_hf_llama(tmp_path, CODEC, UniAudioConfig.preset("tiny", CODEC), keep_text_embeddings=True).eval()
    assert model.config.n_backbone_layers == 2 and model.config.attn_bias == (arch == "qwen2")
    ids = torch.randint(0, 100, (2, 40))
    b, n = ids.shape
    with torch.no_grad():
        ref = hf(ids).logits
        g = model.hidden(ids, torch.zeros(b, n, model.K, dtype=torch.long), torch.zeros(b, n, dtype=torch.bool),
                         torch.ones(b, n, dtype=torch.bool))
        ours = model.text_logits(g.text_hidden)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)
    fresh = from_hf_llama(tmp_path, CODEC, UniAudioConfig.preset("tiny", CODEC), init_experts="copy")
    assert torch.equal(fresh.understanding[0].mlp.up_proj.weight, fresh.backbone[0].mlp.up_proj.weight)
    assert fresh.config.text_vocab_size == 4096  # the LLM's embeddings are not used with our tokenizer
