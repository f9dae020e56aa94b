"""The reasoning branch's window attention: query blocks and the mask cache do not change its output."""

import torch

from reasoningcodec.reasoning import WindowAttentionLayer


def test_query_blocks_give_the_same_output_and_the_mask_cache_stays_small():
    torch.manual_seed(0)
    layer = WindowAttentionLayer(dim=32, heads=4, context_windows=3, tokens_per_window=5).double().eval()
    x = torch.randn(2, 40, 5, 32, dtype=torch.float64)
    with torch.no_grad():
        ref, (k_ref, v_ref) = layer(x, None, block=256)
        for block in (1, 2, 3, 7, 16):
            y, (k, v) = layer(x, None, block=block)
            assert float((y - ref).abs().max()) < 1e-12
            assert torch.equal(k, k_ref) and torch.equal(v, v_ref)
        # window by window with the cache, as the streaming encoder runs it
        cache, outs = None, []
        for i in range(x.shape[1]):
            y, cache = layer(x[:, i:i + 1], cache)
            outs.append(y)
        assert float((torch.cat(outs, 1) - ref).abs().max()) < 1e-12
    assert 0 < len(layer._masks) <= 32
    # a window sees itself and the previous context_windows windows, nothing later
    with torch.no_grad():
        x2 = x.clone()
        x2[:, 20:] += 1.0
        y2, _ = layer(x2, None)
    assert torch.equal(y2[:, :20], ref[:, :20]) or float((y2[:, :20] - ref[:, :20]).abs().max()) < 1e-12
    assert float((y2[:, 20:] - ref[:, 20:]).abs().max()) > 1e-3
