"""Autoregressive inference cases on a GPT-2-style decoder: what the four blocks mean.

    block             seq_len is        one timed call
    prefill           the prompt n      n tokens into an empty KV cache; the last token's logits
    decode            the context n     one token against a cache of n tokens (rolled back to
                                        n after every call, so each call sees the same n); the
                                        n cached keys and values are seeded N(0, 1) draws
                                        (`context_cache`), not a prefill's: a step's work does
                                        not depend on their values, and filling a cache of
                                        8,192 tokens by prefill would cost ~4 TFLOP per case.
                                        That a cached step equals the model's is the parity
                                        tests' job (tests/tfimpl/test_gpt2_parity.py).
    decode-recompute  the context n     the same token without a cache: all n + 1 tokens again
    generate          the prompt P      prefill P, then new_tokens - 1 decode steps, greedy
                                        (argmax; no sampling, no tokenisation): G = new_tokens
                                        tokens; per-step times recorded inside the call

The model (`gpt_config`): the case's sizes, pre-norm blocks with a final norm, learned
positions (a table of `max_position` rows, or just as many as the case needs when 0), the LM
head tied to the token table. Analytic facts come from tfimpl.costs.decode (`costs` below).
Generation records (GEN_KEYS): time to first token (the prefill call), inter-token latency
percentiles over the decode steps of the timed calls, tokens/s of each phase
(bench.trackers.generation), and the KV cache's bytes as allocated by the implementation
against 2·L·B·n·D·s.

Tests: tests/impls/test_gpt2_harness.py, tests/test_record.py.
"""

from __future__ import annotations

from bench import precision
from bench.case import Case
from bench.record import keys_of
from tfimpl import costs as tc
from tfimpl.config import ModelConfig
from tfimpl.costs import decode as td

GPT_BLOCKS = ("prefill", "decode", "decode-recompute", "generate")
GEN_KEYS = keys_of("blocks.gpt", "trackers.generation")   # the record's generation fields (bench.record)


def context_tokens(case: Case) -> int:
    """Positions the model must hold: the tokens fed to it in the case's calls."""
    if case.block == "prefill":
        return case.seq_len
    if case.block == "generate":
        return case.seq_len + max(case.new_tokens, 1) - 1
    return case.seq_len + 1                                   # decode, decode-recompute


def cache_tokens(case: Case) -> int | None:
    """Tokens the KV cache holds after a call (None: no cache)."""
    return None if case.block == "decode-recompute" else context_tokens(case)


def gpt_config(case: Case) -> ModelConfig:
    return ModelConfig(d_model=case.d_model, n_heads=case.n_heads, d_ff=case.d_ff,
                       n_layers=case.layers, vocab_size=case.vocab_size,
                       max_position=case.max_position or context_tokens(case),
                       type_vocab_size=0, activation=case.activation, norm_first=True,
                       layer_norm_eps=1e-5, final_norm=True, decoder_only=True)


def make_inputs(case: Case) -> dict:
    """Seeded token ids (B, tokens fed): the prompt, plus the decoded token for decode cases."""
    import numpy as np

    rng = np.random.default_rng(case.seed + 1)
    width = case.seq_len if case.block in ("prefill", "generate") else case.seq_len + 1
    return {"input_ids": rng.integers(0, case.vocab_size, size=(case.batch, width), dtype=np.int64)}


def context_cache(case: Case, cfg: ModelConfig) -> tuple[list, list]:
    """Seeded keys and values for block decode: per layer (B, H, n, d_k) float64 N(0, 1)."""
    import numpy as np

    rng = np.random.default_rng(case.seed + 2)
    shape = (case.batch, cfg.n_heads, case.seq_len, cfg.d_head)             # (B, H, n, d_k)
    keys, values = [], []
    for _ in range(cfg.n_layers):
        keys.append(rng.standard_normal(shape))
        values.append(rng.standard_normal(shape))
    return keys, values


def _flops(case: Case, cfg: ModelConfig) -> dict:
    b, n = case.batch, case.seq_len
    if case.block == "prefill":
        return tc.prefill_flops(cfg, b, n)
    if case.block == "decode":
        return tc.decode_flops(cfg, b, n)
    if case.block == "decode-recompute":
        return tc.decode_recompute_flops(cfg, b, n)
    total = dict(tc.prefill_flops(cfg, b, n))                  # generate
    for context in range(n, n + case.new_tokens - 1):
        for key, value in tc.decode_flops(cfg, b, context).items():
            total[key] += value
    return total


def costs(case: Case, cfg_unused=None) -> dict:
    """bench.plan's analytic facts of a GPT case, every number from tfimpl.costs. Peak and
    working set take the materialised attention (an upper side for the fused paths: their
    scores never exist, (B, H, T_q, T_k) elements fewer)."""
    cfg = gpt_config(case)
    e = precision.get(case.precision).bytes_per_element
    flops = _flops(case, cfg)
    tq = case.seq_len + 1 if case.block == "decode-recompute" else (
        1 if case.block == "decode" else case.seq_len)
    context = case.seq_len if case.block == "decode" else 0
    materialised = True
    return {"flops_analytic": flops["matmul"],
            "flops_by_component": {k: v for k, v in flops.items()
                                   if k not in ("matmul", "elementwise", "total")},
            "peak_bytes_predicted": td.step_peak_bytes(cfg, case.batch, tq, context, e, materialised),
            "working_set_bytes": td.step_working_set_bytes(cfg, case.batch, tq, context, e,
                                                           materialised=materialised),
            "params": tc.param_counts("gpt", cfg)["total"]}


def analytic_record(case: Case) -> dict:
    """The generation columns the analysis compares measurements against."""
    cfg = gpt_config(case)
    e = precision.get(case.precision).bytes_per_element
    held = cache_tokens(case)
    out = {"kv_bytes_analytic": None if held is None else tc.kv_cache_bytes(cfg, case.batch, held, e),
           "decode_bytes_min": None}
    if case.block == "decode":
        out["decode_bytes_min"] = tc.decode_bytes(cfg, case.batch, case.seq_len, e)["total"]
    return out


def rules(case: Case) -> tuple[str, str] | None:
    """Why a GPT case (or a non-GPT case asking for generation) cannot run, or None."""
    if case.block not in GPT_BLOCKS:
        if case.new_tokens:
            return "new_tokens", (f"new_tokens are generated only by block 'generate' (a model "
                                  f"with a KV cache); block {case.block!r} has no cache")
        if case.max_position:
            return "max_position", f"max_position applies to the {', '.join(GPT_BLOCKS)} blocks only"
        return None
    if case.mode != "forward":
        return "mode", f"block {case.block!r} is inference only: mode must be forward"
    if not case.causal:
        return "causal", f"block {case.block!r} is a causal decoder: causal must be true"
    if not case.norm_first:
        return "norm_first", f"block {case.block!r} is GPT-2's pre-norm block: norm_first must be true"
    if case.block == "generate" and case.new_tokens < 1:
        return "new_tokens", "block 'generate' needs new_tokens >= 1 (the tokens to generate)"
    if case.block != "generate" and case.new_tokens:
        return "new_tokens", f"new_tokens is for block 'generate'; {case.block!r} runs one call"
    needed = context_tokens(case)
    if case.max_position and needed > case.max_position:
        return "seq_len", (f"context of {needed} tokens is beyond the position table "
                           f"(max_position={case.max_position}); lower seq_len/new_tokens or "
                           f"raise max_position")
    return None
