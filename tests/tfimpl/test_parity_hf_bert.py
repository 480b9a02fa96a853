"""The whole BERT model against HuggingFace `BertModel` (eager and sdpa attention), same weights.

A small non-BERT-base config is built offline from `BertConfig`; our seeded weights are written
into it with tfimpl.loaders.to_hf_bert_state_dict. Hidden states and the pooled output must agree
to ~1e-10 in float64; in float32 ours may be at most a small multiple of HuggingFace's own
float32 error against its float64 result.
"""

import os

import numpy as np
import pytest
import torch

import tfimpl.numpy as tn
import tfimpl.torch as tt
from tfimpl import loaders
from tfimpl import params as P

transformers = pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RTOL64 = 1e-10
FP32_FACTOR, FP32_FLOOR = 4.0, 4 * float(np.finfo(np.float32).eps)


def rel_err(got, ref) -> float:
    got = got.detach().double().numpy() if isinstance(got, torch.Tensor) else np.asarray(got, np.float64)
    ref = ref.detach().double().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-300))


def hf_config(attn_implementation, hidden_act="gelu"):
    return transformers.BertConfig(vocab_size=50, hidden_size=24, num_hidden_layers=2,
                                   num_attention_heads=4, intermediate_size=40,
                                   max_position_embeddings=32, type_vocab_size=2,
                                   hidden_act=hidden_act, hidden_dropout_prob=0.0,
                                   attention_probs_dropout_prob=0.0,
                                   attn_implementation=attn_implementation)


def hf_model(config, params, dtype):
    model = transformers.BertModel(config).to(dtype).eval()
    model.load_state_dict(loaders.to_hf_bert_state_dict(params))
    return model


def batch(seq_len, seed=0):
    r = np.random.default_rng(seed)
    ids = r.integers(0, 50, (3, seq_len))
    types = (np.arange(seq_len)[None, :] >= seq_len // 2).astype(np.int64).repeat(3, 0)
    lengths = np.maximum(seq_len - np.array([0, 2, 4]), 1)
    mask = (np.arange(seq_len)[None, :] < lengths[:, None]).astype(np.int64)
    return ids, types, mask


def ours(params, cfg, ids, types, mask, np_dtype, torch_dtype):
    p32 = {k: v.astype(np_dtype) for k, v in params.items()}
    results = [tn.bert(p32, ids, cfg, token_type_ids=types, attention_mask=mask)]
    pt = P.to_torch(params, torch_dtype)
    for impl in ("explicit", "sdpa"):
        results.append(tt.bert(pt, torch.from_numpy(ids), cfg, token_type_ids=torch.from_numpy(types),
                               attention_mask=torch.from_numpy(mask), attn_impl=impl))
    return results


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("seq_len", [1, 7])
def test_bert_matches_huggingface(attn_implementation, seq_len):
    config = hf_config(attn_implementation)
    cfg = loaders.config_from_hf_bert(config)
    params = P.init_params("bert", cfg, seed=3)
    ids, types, mask = batch(seq_len)
    inputs = {k: torch.from_numpy(v) for k, v in
              dict(input_ids=ids, token_type_ids=types, attention_mask=mask).items()}
    with torch.no_grad():
        ref = hf_model(config, params, torch.float64)(**inputs)
        lib32 = hf_model(config, params, torch.float32)(**inputs)
    for hidden, pooled in ours(params, cfg, ids, types, mask, np.float64, torch.float64):
        assert rel_err(hidden, ref.last_hidden_state) < RTOL64
        assert rel_err(pooled, ref.pooler_output) < RTOL64
    for hidden, pooled in ours(params, cfg, ids, types, mask, np.float32, torch.float32):
        for got, lib, ref64 in ((hidden, lib32.last_hidden_state, ref.last_hidden_state),
                                (pooled, lib32.pooler_output, ref.pooler_output)):
            assert rel_err(got, ref64) <= FP32_FACTOR * rel_err(lib, ref64) + FP32_FLOOR


def test_bert_with_tanh_gelu_matches_huggingface():
    config = hf_config("eager", hidden_act="gelu_pytorch_tanh")
    cfg = loaders.config_from_hf_bert(config)
    assert cfg.activation == "gelu_tanh"
    params = P.init_params("bert", cfg, seed=4)
    ids, types, mask = batch(5, seed=1)
    with torch.no_grad():
        ref = hf_model(config, params, torch.float64)(input_ids=torch.from_numpy(ids),
                                                      token_type_ids=torch.from_numpy(types),
                                                      attention_mask=torch.from_numpy(mask))
    hidden, pooled = tn.bert(params, ids, cfg, token_type_ids=types, attention_mask=mask)
    assert rel_err(hidden, ref.last_hidden_state) < RTOL64 and rel_err(pooled, ref.pooler_output) < RTOL64
