"""Helper of `bench flops` for gpt2* presets: a decoder-only model's FLOPs, and the decode view.

The numbers come from tfimpl.costs.decode (formulas derived there). A forward over T tokens
(every position's logits, as a training step or `GPT2LMHeadModel(ids)` computes them) is shown
dense (what tfimpl computes: the whole T×T score matrix, masked afterwards) beside causal (only
the T·(T+1)/2 pairs a query may see, the count of Kaplan et al. and FlashAttention), and per
token beside Kaplan's 2N + 2·L·n_ctx·D and PaLM's 6N + 12·L·H·Q·T, each gap explained. Then
what generation costs at that context: a decode step with the cache, the same token recomputed
without it, the KV cache, and the bytes a decode step must read.

Tests: tests/commands/test_gpt2_commands.py.
"""

from __future__ import annotations

from bench.commands.model_args import human_bytes, human_flops, table
from tfimpl import costs


def summarize(name: str, cfg, batch: int, seq_len: int) -> dict:
    dense = costs.prefill_flops(cfg, batch, seq_len, "dense", logits="all")
    causal = costs.prefill_flops(cfg, batch, seq_len, "causal", logits="all")
    components = [k for k in dense if k not in ("matmul", "elementwise", "total")]
    tokens = batch * seq_len
    quadratic = dense["attn_scores"] + dense["attn_weighted_sum"]
    thumb = costs.rules_of_thumb(cfg, seq_len)
    n, d, layers = thumb["N"], cfg.d_model, cfg.n_layers
    counts = costs.param_counts("gpt", cfg)
    extra = counts["blocks"] + counts["final_norm"] - layers * (4 * d * d + 2 * d * cfg.d_ff)
    linear = (dense["matmul"] - quadratic - dense["lm_head"]) / tokens
    per_token = {
        "ours_forward_dense": dense["matmul"] / tokens, "ours_forward_causal": causal["matmul"] / tokens,
        "ours_forward_backward_dense": 3 * dense["matmul"] / tokens,
        "ours_linear_forward": linear, "lm_head": dense["lm_head"] / tokens,
        "kaplan_forward": thumb["kaplan_forward"], "kaplan_train": thumb["kaplan_train"],
        "palm_forward": thumb["palm_forward"], "palm_train": thumb["palm_train"], "kaplan_2n": 2 * n}
    context = seq_len - 1                          # the last token of a T-token sequence
    decode = costs.decode_flops(cfg, batch, context)
    recompute = costs.decode_recompute_flops(cfg, batch, context)
    return {
        "model": name, "block": "gpt", "batch": batch, "seq_len": seq_len,
        "config": _config(cfg), "components": components,
        "forward": dense, "forward_causal": causal,
        "backward": {k: 2 * v for k, v in dense.items()},
        "forward_backward": {k: 3 * v for k, v in dense.items()},
        "attention_flops": quadratic, "attention_flops_causal":
            causal["attn_scores"] + causal["attn_weighted_sum"],
        "linear_flops": dense["matmul"] - quadratic, "attention_share": quadratic / dense["matmul"],
        "crossover_seq_len": {"block": costs.crossover_seq_len(cfg)},
        "non_embedding_params": n, "bias_and_norm_params": extra, "per_token": per_token,
        "differences": _differences(cfg, seq_len, per_token, extra, quadratic / tokens),
        "decode": {
            "context": context, "step_flops": decode["matmul"], "recompute_flops": recompute["matmul"],
            "recompute_over_cached": recompute["matmul"] / decode["matmul"],
            "kv_cache_bytes": {dt: costs.kv_cache_bytes(cfg, batch, seq_len, b)
                               for dt, b in (("fp32", 4), ("bf16", 2))},
            "step_bytes_fp32": costs.decode_bytes(cfg, batch, context, 4),
            "prefill_flops_last_logits": costs.prefill_flops(cfg, batch, seq_len)["matmul"]},
    }


def _config(cfg) -> dict:
    import dataclasses

    return dataclasses.asdict(cfg)


def _differences(cfg, seq_len, pt, extra, dense_attn_per_token) -> list[str]:
    d, layers = cfg.d_model, cfg.n_layers
    kaplan_attn = 2 * layers * seq_len * d
    causal_attn = pt["ours_forward_causal"] - pt["ours_linear_forward"] - pt["lm_head"]
    return [
        f"attention, Kaplan: 2·L·n_ctx·D = {human_flops(kaplan_attn)}/token is one T×T product "
        f"dense, or both at the causal half; our causal count of both is 2·L·D·(T+1) = "
        f"{human_flops(causal_attn)}/token (the diagonal adds 2·L·D), our dense count "
        f"4·L·D·T = {human_flops(dense_attn_per_token)}/token.",
        f"attention, PaLM: 12·L·H·Q·T / 3 = 4·L·H·Q·T = {human_flops(dense_attn_per_token)}/token "
        f"forward is exactly our dense count (H·Q = D; no causal saving).",
        f"2N vs our linear matmuls ({human_flops(pt['kaplan_2n'])} vs "
        f"{human_flops(pt['ours_linear_forward'])}/token): 2N also charges 2 FLOPs to each of the "
        f"{extra:,} biases and norm parameters (element-wise work, not matmul): "
        f"{human_flops(2 * extra)}/token.",
        f"LM head: ours counts the tied de-embedding hidden·wordᵀ, 2·D·V = "
        f"{human_flops(pt['lm_head'])}/token; N leaves the token table out, so neither 2N nor "
        f"6N has it (Kaplan's Table 1 lists it apart).",
        "training: 6N and PaLM's 6N + 12·L·H·Q·T rest on backward = 2 × forward, as ours does "
        "(3 × our dense forward, LM head included).",
    ]


def render(s: dict) -> str:
    cfg, fwd, causal, both = s["config"], s["forward"], s["forward_causal"], s["forward_backward"]
    matmul = fwd["matmul"]
    head = (f"{s['model']} (decoder-only, all logits): B={s['batch']} T={s['seq_len']} "
            f"D={cfg['d_model']} H={cfg['n_heads']} d_ff={cfg['d_ff']} L={cfg['n_layers']} "
            f"V={cfg['vocab_size']}")
    rows = [[k, f"{fwd[k]:,}", human_flops(fwd[k]), human_flops(causal[k]), human_flops(both[k]),
             f"{100 * fwd[k] / matmul:.1f}%"] for k in s["components"]]
    rows.append(None)
    rows.append(["matmul total", f"{matmul:,}", human_flops(matmul), human_flops(causal["matmul"]),
                 human_flops(both["matmul"]), "100.0%"])
    ew = fwd["elementwise"]
    rows.append(["element-wise (apart)", f"{ew:,}", human_flops(ew),
                 human_flops(causal["elementwise"]), human_flops(3 * ew), f"{100 * ew / matmul:.1f}%"])
    out = [head, "", table(["component", "forward FLOPs (dense)", "dense", "causal", "fwd+bwd",
                            "of matmul"], rows)]
    pt = s["per_token"]
    out += ["", f"T² terms: {100 * s['attention_share']:.1f}% of dense matmul work; quadratic "
                f"overtakes linear at T* = 2·D + d_ff = {s['crossover_seq_len']['block']:,}",
            "", "per token (matmul FLOPs)",
            table(["", "ours", "Kaplan et al. 2020", "PaLM (Chowdhery et al. 2022)"], [
                ["forward", f"{human_flops(pt['ours_forward_dense'])} dense, "
                            f"{human_flops(pt['ours_forward_causal'])} causal",
                 f"{human_flops(pt['kaplan_forward'])}  (2N + 2·L·n_ctx·D)",
                 f"{human_flops(pt['palm_forward'])}  (2N + 4·L·H·Q·T)"],
                ["forward+backward", human_flops(pt["ours_forward_backward_dense"]),
                 f"{human_flops(pt['kaplan_train'])}  (6N)",
                 f"{human_flops(pt['palm_train'])}  (6N + 12·L·H·Q·T)"]], "llll"),
            f"N = {s['non_embedding_params']:,} non-embedding parameters"]
    out += [f"- {line}" for line in s["differences"]]
    dec = s["decode"]
    b = dec["step_bytes_fp32"]
    out += ["", f"generation at context n = {dec['context']:,} (the T-th token):",
            f"- decode step with the KV cache: {human_flops(dec['step_flops'])} (dense = causal: one "
            f"query sees every key); recomputing the prefix instead: "
            f"{human_flops(dec['recompute_flops'])} ({dec['recompute_over_cached']:.0f}x)",
            f"- KV cache for {s['seq_len']:,} tokens: 2·L·B·n·D·s = "
            f"{human_bytes(dec['kv_cache_bytes']['fp32'])} fp32, "
            f"{human_bytes(dec['kv_cache_bytes']['bf16'])} bf16",
            f"- one fp32 decode step reads at least {human_bytes(b['total'])}: weights "
            f"{human_bytes(b['weights'])} + cache {human_bytes(b['kv_read'])}; at batch 1 that is "
            f"{dec['step_flops'] / b['total']:.2f} FLOP/byte, memory-bound (time floor = bytes / "
            "bandwidth)"]
    return "\n".join(out)
