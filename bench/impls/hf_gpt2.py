"""`hf-gpt2`: HuggingFace GPT2LMHeadModel (attn_implementation="sdpa", its default) with our
seeded weights (tfimpl.loaders.to_hf_gpt2_state_dict), the library reference of the GPT blocks.

The loop is a manual one with its `cache` (past key values, a DynamicCache), the loop `generate`
runs per step, without `generate`'s logits processors and stopping checks:
    prefill           model(ids, use_cache=True, logits_to_keep=1): a fresh cache each call
    decode            model(token, cache=cache, use_cache=True, logits_to_keep=1) on an n-token
                      DynamicCache holding bench.blocks.gpt.context_cache's keys and values, then
                      cache.crop(-1) back to n (its next update concatenates n + 1)
    decode-recompute  model(ids, use_cache=False, logits_to_keep=1) over all n + 1 tokens
    generate          prefill, then new_tokens - 1 decode steps, greedy argmax

Tests: tests/impls/test_gpt2_harness.py.
"""

from __future__ import annotations

import time

from bench.blocks import gpt as decode
from bench.case import Case
from bench.impls.base import Impl, Prepared
from bench.impls.common import load_state, torch_device, torch_precision, torch_runner
from bench.impls.gpt_ours import GEN_REPEATS
from bench.trackers.generation import generation_record
from bench.impls.torch_ours import PRECISIONS
from tfimpl.loaders import to_hf_gpt2_state_dict
from tfimpl.params import init_params


def hf_gpt2(case: Case, cfg, dtype, device):
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    act = {"relu": "relu", "gelu": "gelu", "gelu_tanh": "gelu_new"}[case.activation]
    config = GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.max_position, n_embd=cfg.d_model,
                        n_layer=cfg.n_layers, n_head=cfg.n_heads, n_inner=cfg.d_ff,
                        activation_function=act, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        layer_norm_epsilon=cfg.layer_norm_eps, bos_token_id=0, eos_token_id=0,
                        attn_implementation="sdpa")
    torch.manual_seed(case.seed)
    model = GPT2LMHeadModel(config).to(device=device, dtype=dtype).eval()
    load_state(model, to_hf_gpt2_state_dict(init_params("gpt", cfg, case.seed)), "hf-gpt2")
    return model


def _cache_bytes(cache) -> int | None:
    if cache is None:
        return None
    return int(sum(t.untyped_storage().nbytes() for layer in cache.layers
                   for t in (layer.keys, layer.values)))


def build(case: Case) -> Prepared:
    import torch

    cfg = decode.gpt_config(case)
    device = torch_device(case)
    dtype, _ = torch_precision(case)
    model = hf_gpt2(case, cfg, dtype, device)
    ids = torch.from_numpy(decode.make_inputs(case)["input_ids"]).to(device)
    n, state, marks = case.seq_len, {"cache": None}, []
    sync = torch.cuda.synchronize if case.device == "cuda" else (lambda: None)
    if case.block == "decode":                                   # the same seeded context cache
        from transformers import DynamicCache

        cache = DynamicCache(config=model.config)
        with torch.inference_mode():
            for layer, (k, v) in enumerate(zip(*decode.context_cache(case, cfg))):
                convert = lambda a: torch.from_numpy(a).to(device=device, dtype=dtype)  # noqa: E731
                cache.update(convert(k), convert(v), layer)
        state["cache"] = cache

    def step(tokens, cache):
        return model(tokens, cache=cache, use_cache=True, logits_to_keep=1)

    def call():
        if case.block == "prefill":
            out = model(ids, use_cache=True, logits_to_keep=1)
            state["cache"] = out.cache
            return out.logits[:, -1]
        if case.block == "decode":
            logits = step(ids[:, n:n + 1], state["cache"]).logits[:, -1]
            state["cache"].crop(-1)                              # back to n tokens
            return logits
        if case.block == "decode-recompute":
            return model(ids, use_cache=False, logits_to_keep=1).logits[:, -1]
        start = time.perf_counter()                              # generate
        out = model(ids, use_cache=True, logits_to_keep=1)
        cache, token = out.cache, out.logits[:, -1].argmax(dim=-1, keepdim=True)
        sync()
        steps, last = [time.perf_counter() - start], time.perf_counter()
        for _ in range(case.new_tokens - 1):
            out = step(token, cache)
            token = out.logits[:, -1].argmax(dim=-1, keepdim=True)
            sync()
            now = time.perf_counter()
            steps.append(now - last)
            last = now
        marks.append(steps)
        state["cache"] = cache
        return out.logits[:, -1]

    fn, output = torch_runner(case, call, [])

    def extra():
        out = {**decode.analytic_record(case)}
        if case.block == "generate":
            marks.clear()
            for _ in range(GEN_REPEATS):
                fn()
            out.update(generation_record(case, marks, {}))
        out["kv_bytes_measured"] = _cache_bytes(state["cache"])   # decode: the step's n + 1
        return out

    fn.record_extra = extra
    return Prepared(fn=fn, output=output, backend="torch", device=case.device)


IMPL = Impl(
    name="hf-gpt2", description="HuggingFace GPT2LMHeadModel (sdpa), manual loop with its cache",
    backend="torch", blocks=decode.GPT_BLOCKS, precisions=PRECISIONS, modes=("forward",),
    devices=("cpu", "cuda"), attention="sdpa", exposes_weights=False, build=build,
    rules=decode.rules, requires=("transformers",), install='pip install -e ".[hf]"')
