"""The GPT blocks (bench/blocks/gpt.py) on tfimpl.numpy.gpt and tfimpl.torch.gpt.

One build per backend; the timed call per block is `_calls(...)`, the same for both (the two
modules mirror each other). The KV cache is made in build, outside the timed region, with room
for every token the case feeds: prefill and generate reset its length to 0 on each call and
fill it again; decode starts from bench.blocks.gpt.context_cache's seeded n-token cache and rolls
the length back to n after each step. `fn.record_extra` (read by the runner after the measurements) adds the generation
columns: the cache's allocated bytes against 2·L·B·n·D·s, and for generate TTFT, inter-token
latency percentiles and tokens/s from GEN_REPEATS further generations timed step by step.

Tests: tests/impls/test_gpt2_harness.py.
"""

from __future__ import annotations

import importlib
import time

import tfimpl.numpy.gpt as numpy_gpt
from bench.blocks import gpt as decode
from bench import precision
from bench.case import Case
from bench.impls.base import Prepared
from bench.trackers.generation import generation_record
from bench.impls.common import (float64_output, seeded_params, torch_device, torch_precision,
                                 torch_runner)
from tfimpl.params import to_torch

GEN_REPEATS = 5


def _calls(case: Case, gpt, p, ids, cfg, cache, argmax, sync, **kw):
    """(call, step_marks) where call() runs the block once and returns its logits (B, V)."""
    n = case.seq_len
    marks: list = []
    if case.block == "prefill":
        def call():
            cache.length = 0
            return gpt.gpt(p, ids, cfg, cache=cache, logits="last", **kw)[1][:, 0]
    elif case.block == "decode":
        token = ids[:, n]

        def call():
            logits, _ = gpt.decode_step(p, token, cfg, cache, **kw)
            cache.length = n                                    # roll back: same context each call
            return logits
    elif case.block == "decode-recompute":
        def call():
            return gpt.gpt(p, ids, cfg, logits="last", **kw)[1][:, 0]
    else:                                                       # generate
        def call():
            start = time.perf_counter()
            cache.length = 0
            logits = gpt.gpt(p, ids, cfg, cache=cache, logits="last", **kw)[1][:, 0]
            token = argmax(logits)
            sync()
            steps, last = [time.perf_counter() - start], time.perf_counter()
            for _ in range(case.new_tokens - 1):
                logits, _ = gpt.decode_step(p, token, cfg, cache, **kw)
                token = argmax(logits)
                sync()
                now = time.perf_counter()
                steps.append(now - last)
                last = now
            marks.append(steps)
            return logits
    return call, marks


def _extra(case: Case, fn, cache_bytes, marks) -> dict:
    out = {**decode.analytic_record(case), "kv_bytes_measured": cache_bytes()}
    if case.block == "generate":
        marks.clear()
        for _ in range(GEN_REPEATS):
            fn()
        out.update(generation_record(case, marks, {}))
    return out


def _fill(cache, keys, values, convert) -> None:
    """Write the n context keys and values into a fresh cache: length = n."""
    n = keys[0].shape[2]
    for layer, (k, v) in enumerate(zip(keys, values)):
        cache.keys[layer][:, :, :n] = convert(k)                  # (B, H, n, d_k)
        cache.values[layer][:, :, :n] = convert(v)
    cache.length = n


def _params(case: Case, cfg):
    return seeded_params("gpt", cfg, case.seed)                 # float64, cast by the backend


def build_numpy(case: Case) -> Prepared:
    gpt = numpy_gpt
    cfg = decode.gpt_config(case)
    dtype = precision.cast_dtype(case.precision, "numpy")
    p = {k: v.astype(dtype) for k, v in _params(case, cfg).items()}
    ids = decode.make_inputs(case)["input_ids"]                 # (B, n) or (B, n + 1)
    cache = None
    if case.block != "decode-recompute":
        cache = gpt.new_cache(cfg, case.batch, decode.context_tokens(case), dtype)
        if case.block == "decode":
            _fill(cache, *decode.context_cache(case, cfg), lambda a: a.astype(dtype))
    call, marks = _calls(case, gpt, p, ids, cfg, cache, lambda lg: lg.argmax(axis=-1), lambda: None)
    last: list = [None]

    def fn():
        last[0] = call()
        return last[0]

    nbytes = (lambda: None) if cache is None else (
        lambda: int(sum(a.nbytes for a in cache.keys + cache.values)))
    fn.record_extra = lambda: _extra(case, fn, nbytes, marks)
    return Prepared(fn=fn, output=lambda: float64_output(last[0]), backend="numpy", device="cpu")


def build_torch(case: Case, attn_impl: str) -> Prepared:
    import torch

    gpt = importlib.import_module("tfimpl.torch.gpt")            # imports torch: only when used
    cfg = decode.gpt_config(case)
    device = torch_device(case)
    dtype, _ = torch_precision(case)
    # generation's layout: fused Q/K/V, (in, out) weights, the head's (D, V) copy
    p = gpt.pack_for_inference(to_torch(_params(case, cfg), dtype=dtype, device=device))
    ids = torch.from_numpy(decode.make_inputs(case)["input_ids"]).to(device)
    cache = None
    with torch.inference_mode():                                 # the cache is written in place
        if case.block != "decode-recompute":
            cache = gpt.new_cache(cfg, case.batch, decode.context_tokens(case), dtype, device)
            if case.block == "decode":
                _fill(cache, *decode.context_cache(case, cfg),
                      lambda a: torch.from_numpy(a).to(device=device, dtype=dtype))
    sync = torch.cuda.synchronize if case.device == "cuda" else (lambda: None)
    call, marks = _calls(case, gpt, p, ids, cfg, cache, lambda lg: lg.argmax(dim=-1), sync,
                         attn_impl=attn_impl)
    fn, output = torch_runner(case, call, [])
    nbytes = (lambda: None) if cache is None else (
        lambda: int(sum(t.untyped_storage().nbytes() for t in cache.keys + cache.values)))
    fn.record_extra = lambda: _extra(case, fn, nbytes, marks)
    return Prepared(fn=fn, output=output, backend="torch", device=case.device)
