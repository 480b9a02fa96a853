"""bench.trackers.flops: dispatched FLOPs equal hand-computed matmul counts, fused paths included."""

import warnings

import pytest
import torch
import torch.nn.functional as F

from bench.trackers.flops import count_flops, count_flops_by_op, self_attention_block_flops

B, H, T, DK = 2, 4, 16, 8
D, DFF = H * DK, 64


def qkv(seed=0, dtype=torch.float32, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, T, DK, generator=g, dtype=dtype, requires_grad=requires_grad)
            for _ in range(3)]


def explicit_attention(q, k, v):
    scores = q @ k.transpose(-2, -1) / DK ** 0.5          # (B, H, T, T)
    return torch.softmax(scores, dim=-1) @ v               # (B, H, T, d_k)


def test_mm_is_two_mnk():
    a, b = torch.randn(5, 7), torch.randn(7, 3)
    assert count_flops(lambda: a @ b) == 2 * 5 * 7 * 3


def test_explicit_attention_counts_4_b_h_t_t_dk():
    q, k, v = qkv()
    assert count_flops(lambda: explicit_attention(q, k, v)) == 4 * B * H * T * T * DK


def test_fused_cpu_sdpa_counts_the_same_as_explicit():
    q, k, v = qkv()
    by_op = count_flops_by_op(lambda: F.scaled_dot_product_attention(q, k, v))
    assert by_op == {"aten._scaled_dot_product_flash_attention_for_cpu": 4 * B * H * T * T * DK}


def test_without_our_mapping_torch_counts_zero():
    """The reason for the custom mapping (if torch learns this op, the test tells us)."""
    from torch.utils.flop_counter import FlopCounterMode
    q, k, v = qkv()
    with FlopCounterMode(display=False) as counter:
        F.scaled_dot_product_attention(q, k, v)
    assert counter.get_total_flops() == 0


def test_cross_attention_lengths():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(B, H, 10, DK, generator=g)
    k = torch.randn(B, H, 24, DK, generator=g)
    v = torch.randn(B, H, 24, DK, generator=g)
    assert count_flops(lambda: F.scaled_dot_product_attention(q, k, v)) == 4 * B * H * 10 * 24 * DK


def test_backward_of_fused_sdpa():
    q, k, v = qkv(requires_grad=True)

    def fwd_bwd():
        F.scaled_dot_product_attention(q, k, v).sum().backward()
    by_op = count_flops_by_op(fwd_bwd)
    assert by_op["aten._scaled_dot_product_flash_attention_for_cpu"] == 4 * B * H * T * T * DK
    # recomputed scores + dScores + dV + dQ + dK: five (B·H, T, T, d_k) matmuls
    assert by_op["aten._scaled_dot_product_flash_attention_for_cpu_backward"] == \
        5 * 2 * B * H * T * T * DK


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_dtype_does_not_change_the_count(dtype):
    q, k, v = qkv(dtype=dtype)
    assert count_flops(lambda: F.scaled_dot_product_attention(q, k, v)) == 4 * B * H * T * T * DK


def test_autocast_bf16_same_count():
    x, w = torch.randn(B, T, D), torch.randn(DFF, D)
    plain = count_flops(lambda: F.linear(x, w))

    def under_autocast():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            F.linear(x, w)
    assert count_flops(under_autocast) == plain == 2 * B * T * D * DFF


def _mha():
    torch.manual_seed(0)
    return torch.nn.MultiheadAttention(D, H, batch_first=True).eval()


def test_mha_fast_path_counts_like_the_slow_path():
    x = torch.randn(B, T, D)
    mha = _mha()
    expected = B * self_attention_block_flops(T, T, D)
    assert expected == B * (8 * T * D * D + 4 * T * T * D)
    with torch.no_grad():
        fast = count_flops_by_op(lambda: mha(x, x, x, need_weights=False))
        assert "aten._native_multi_head_attention" in fast     # the fast path was taken
        slow = count_flops(lambda: mha(x, x, x, need_weights=True))   # weights: no fast path
    assert sum(fast.values()) == slow == expected


def test_encoder_layer_fast_path():
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(D, H, DFF, batch_first=True).eval()
    x = torch.randn(B, T, D)
    with torch.no_grad():
        by_op = count_flops_by_op(lambda: layer(x))
    assert list(by_op) == ["aten._transformer_encoder_layer_fwd"]
    assert by_op["aten._transformer_encoder_layer_fwd"] == \
        B * (8 * T * D * D + 4 * T * T * D + 4 * T * D * DFF)
    layer.train()                                  # training mode: no fast path, plain ops
    layer.dropout.p = layer.dropout1.p = layer.dropout2.p = 0.0
    assert count_flops(lambda: layer(x)) == sum(by_op.values())


def test_nested_fast_path_counts_each_sequence_at_its_length():
    torch.manual_seed(0)
    enc = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(D, H, DFF, batch_first=True), 1,
        enable_nested_tensor=True).eval()
    x = torch.randn(B, T, D)
    pad = torch.zeros(B, T, dtype=torch.bool)
    pad[0, 6:] = True                               # sequence 0 has 6 real tokens, sequence 1 has T
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)     # "nested tensors are a prototype"
        total = count_flops(lambda: enc(x, src_key_padding_mask=pad))
    per_seq = [8 * t * D * D + 4 * t * t * D + 4 * t * D * DFF for t in (6, T)]
    assert total == sum(per_seq)


def test_nothing_counted_for_elementwise():
    x = torch.randn(100)
    assert count_flops(lambda: torch.softmax(x * 2 + 1, dim=0)) == 0
    assert count_flops_by_op(lambda: None) == {}


# Every built-in torch implementation and block, small: on fake tensors the count is the real one.
_FAKE_CASES = [(impl, block, mode) for impl, block, mode in (
    ("torch", "attention", "forward"), ("torch", "mha", "forward"), ("torch", "ffn", "forward"),
    ("torch", "encoder_layer", "forward"), ("torch", "encoder", "forward"),
    ("torch", "model", "forward"), ("torch-sdpa", "attention", "forward"),
    ("torch-sdpa", "encoder_layer", "forward"), ("torch-nn", "attention", "forward"),
    ("torch-nn", "ffn", "forward"), ("torch-nn", "encoder_layer", "forward"),
    ("hf-bert", "model", "forward"), ("torch", "encoder_layer", "train"),
    ("torch", "prefill", "forward"), ("torch", "decode", "forward"))]


@pytest.mark.parametrize("impl,block,mode", _FAKE_CASES)
def test_fake_tensor_count_equals_the_real_one(impl, block, mode):
    from bench.case import Case
    from bench.impls.prepare import Unsupported, prepare

    case = Case(impl=impl, block=block, mode=mode, seq_len=16, d_model=32, n_heads=4, d_ff=64,
                layers=2, vocab_size=50, threads=1, causal=block in ("prefill", "decode"),
                norm_first=block in ("prefill", "decode"))
    try:
        prepared = prepare(case)
    except (Unsupported, ValueError) as exc:
        pytest.skip(f"{impl}/{block}/{mode}: {exc}")
    try:
        assert count_flops(prepared.flops_fn, fake=True) == count_flops(prepared.flops_fn) > 0
    finally:
        prepared.teardown()


def test_count_as_run_uses_fake_tensors_only_for_slow_calls_and_falls_back():
    from bench.trackers.flops import FAKE, REAL, count_flops_as_run

    a, b = torch.randn(5, 7), torch.randn(7, 3)
    assert count_flops_as_run(lambda: a @ b, 0.001) == (2 * 5 * 7 * 3, REAL)
    assert count_flops_as_run(lambda: a @ b, 1.0) == (2 * 5 * 7 * 3, FAKE)

    def data_dependent():                  # an output shape fake tensors cannot know
        return torch.nonzero(a > 0).float().sum() + (a @ b).sum()

    assert count_flops_as_run(data_dependent, 1.0) == (2 * 5 * 7 * 3, REAL)
