"""`hf-bert`: HuggingFace BertLayer / BertEncoder / BertModel from a BertConfig (eager attention:
scores and probabilities at once -> attention path "library"), with the same seeded weights.
int8: torch's quantize_dynamic on every nn.Linear (bench.impls.quantize), forward only.

Tests: tests/tfimpl/test_costs_counted.py, tests/test_precision.py, tests/run/test_runner.py.
"""

from __future__ import annotations

from bench.case import Case
from bench.impls.base import Impl, Prepared, Unsupported
from bench.impls.common import (load_state, make_params, model_config, needs_grad,
                                torch_device, torch_inputs, torch_precision, torch_runner)
from bench.impls.quantize import linear_weight_bytes, quantize_torch
from bench.impls.torch_ours import PRECISIONS
from tfimpl.config import ModelConfig
from tfimpl import loaders
from tfimpl.loaders import to_hf_bert_state_dict
from tfimpl.params import init_params


def hf_bert_config(case: Case, cfg: ModelConfig):
    """A BertConfig of the case's sizes: no dropout, eager (materialised) attention."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if case.norm_first:
        raise Unsupported("BERT is post-norm; hf-bert has no norm_first")
    return loaders.hf_bert_config(cfg, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                  attn_implementation="eager")


def _hf_state(case: Case, cfg: ModelConfig) -> dict:
    """Our seeded weights of the case's block in HF layout (tfimpl.loaders.to_hf_bert_state_dict).

    For a layer or the encoder the block's own parameters (the same numbers numpy and torch get
    for that block) are placed into a BERT whose embeddings are a dummy one-token table, and the
    block's part of the HF state dict is kept.
    """
    if case.block == "model":
        return to_hf_bert_state_dict(make_params(case, cfg))
    tiny = cfg.replace(vocab_size=1, max_position=1, n_layers=1)
    bert = {k: v for k, v in init_params("bert", tiny, case.seed).items()
            if not k.startswith("encoder.")}
    block = make_params(case, cfg)
    if case.block == "encoder_layer":
        bert.update({f"encoder.layers.0.{k}": v for k, v in block.items()})
        prefix = "encoder.layer.0."
    else:
        bert.update({f"encoder.{k}": v for k, v in block.items()})
        prefix = "encoder."
    full = to_hf_bert_state_dict(bert)
    return {k[len(prefix):]: v for k, v in full.items() if k.startswith(prefix)}


def hf_module(case: Case, dtype, device):
    """The case's HF BertLayer / BertEncoder / BertModel in eval mode with our seeded weights."""
    import torch
    from transformers.models.bert import modeling_bert as hf

    cfg = model_config(case)
    if case.block == "encoder_layer":
        cfg = cfg.replace(n_layers=1)
    bert_cfg = hf_bert_config(case, cfg)
    torch.manual_seed(case.seed)        # the module's own init runs first; our weights replace it
    module = {"encoder_layer": hf.BertLayer, "encoder": hf.BertEncoder,
              "model": hf.BertModel}[case.block](bert_cfg)
    module.to(device=device, dtype=dtype).eval()           # first: loading copies into its dtype
    load_state(module, _hf_state(case, cfg), f"hf-bert {case.block}")
    return module


def build(case: Case) -> Prepared:
    device = torch_device(case)
    dtype, _ = torch_precision(case)
    grad = needs_grad(case)
    module = hf_module(case, dtype, device)
    module.requires_grad_(grad)
    if case.precision == "int8":           # every nn.Linear: q, k, v, outputs, FFN, pooler
        module = quantize_torch(module)
    inputs = torch_inputs(case, dtype, device, requires_grad=grad)
    if case.block == "model":
        ids = inputs["input_ids"]

        def call():
            out = module(input_ids=ids)
            return out.last_hidden_state, out.pooler_output
    elif case.block == "encoder":
        x = inputs["x"]
        call = lambda: module(x).last_hidden_state                    # noqa: E731
    else:
        x = inputs["x"]
        call = lambda: module(x)                                      # noqa: E731
    leaves = [t for t in list(module.parameters()) + list(inputs.values()) if t.requires_grad]
    fn, output = torch_runner(case, call, leaves)
    return Prepared(fn=fn, output=output, backend="torch", device=case.device,
                    weight_bytes=linear_weight_bytes(module))


def rules(case: Case) -> tuple[str, str] | None:
    if case.norm_first:
        return "norm_first", "hf-bert (BERT) is post-norm only; norm_first must be false"
    if case.causal:
        return "causal", "hf-bert runs BERT's bidirectional encoder; causal must be false"
    if case.precision == "int8" and case.mode != "forward":
        return "mode", "int8 (dynamic quantization) runs forward only"
    return None


IMPL = Impl(
    name="hf-bert", description="HuggingFace BertLayer / BertEncoder / BertModel, eager attention",
    backend="torch", blocks=("encoder_layer", "encoder", "model"), precisions=PRECISIONS + ("int8",),
    modes=("forward", "forward+backward"), devices=("cpu", "cuda"),
    attention="library", exposes_weights=False, build=build, rules=rules,
    extra={"int8_scheme": "per_tensor", "int8_attention": True},
    requires=("transformers",), install='pip install -e ".[hf]"')
