"""Recurrent layers beside attention: the verdicts of configs/rnn_vs_transformer.yaml.

The guide: "Transformers: better parallelization, O(n²) memory; RNNs: O(n) memory, harder to
parallelize; the choice depends on sequence length, hardware, task." The blocks' own claims
(bench.blocks: lstm time and FLOPs n¹ and d², attention n²) are fitted by
bench.analysis.claims like every block's; this module adds the rows that compare the two:

    crossover    n* where the bare attention block (4·B·n²·d FLOPs) costs as much as the
                 recurrent layer (2·B·n·(d + d)·G, G = 4d LSTM | 3d GRU: 16·B·n·d² for the
                 LSTM; Vaswani et al. 2017, Table 1: n²·d against n·d²), at the same width
                 and batch. predicted: from tfimpl.costs (n* = 4d for the LSTM, 3d for the
                 GRU, less a step); measured: per (recurrent impl, attention impl) where the
                 median times are equal, with crossover.measured's bootstrap CI. They differ by
                 the rates: n*_measured ≈ n*_FLOPs × r_attention / r_recurrent near n*.
                 held: the CI within a factor 2 of the prediction (crossover.CROSSOVER_FACTOR).
    memory       the recurrent layer's peak-memory exponent in n (its claim: O(n), the output;
                 the state it carries is O(1)), beside attention's measured peaks and the
                 analytic state, score-matrix, KV-cache and training-activation bytes.
    parallelism  batching gain per token, B·t(1, n) / t(B, n) at the largest n measured at
                 both batch sizes (95% CI: bootstrap over both cases' samples): the recurrent
                 layer cannot spread one sequence's n dependent steps over the cores, attention
                 can, so batching should buy the recurrence more. held: the recurrent gain's CI
                 above every attention gain's; did not hold: below. The sentence gives the
                 sequential step counts (n against 1) and the achieved FLOP/s against the
                 machine's matmul peak at both batch sizes.

`conclusion(rows)`: one sentence for this machine on where each wins (the report prints it
under the verdict table). Read-only: records and meta.json, nothing re-run.

Tests: tests/analysis/test_recurrent_verdicts.py.
"""

from __future__ import annotations

import math

from bench.analysis import crossover
from bench.analysis.fits import median_ratio_ci
from bench.analysis.grouping import group_keys
from bench.analysis.verdict_row import HELD, NOT_ENOUGH, NOT_HELD, VerdictRow, band_verdict
from tfimpl import costs
from tfimpl.config import ModelConfig
from tfimpl.costs import recurrent as rc

RECURRENT = ("lstm", "gru")
ATTENTION = "attention"
N_BOOT = 400
DEFINITION = ("n* = the sequence length at which the bare attention block (4·B·n²·d FLOPs) "
              "costs as much as the recurrent layer of the same width (2·B·n·2d·G, G = 4d "
              "LSTM, 3d GRU): predicted from tfimpl.costs' matmul FLOPs, measured where the "
              "median times are equal")


def predicted(kind: str, d_model: int, n_heads: int, batch: int = 1,
              zero_state_matmul: bool = False) -> float:
    """n* where attention's matmul FLOPs equal the recurrent layer's (tfimpl.costs)."""
    cfg = ModelConfig(d_model=int(d_model), n_heads=int(n_heads), d_ff=int(d_model), n_layers=1)
    alpha = costs.forward_flops("attention", cfg, batch, 64)["matmul"] / 64 ** 2   # α·n²

    def rec(n):
        return rc.recurrent_flops(kind, batch, n, d_model, d_model, 1,
                                  initial_state=zero_state_matmul)["matmul"]
    beta = rec(129) - rec(128)                                                      # β·n + γ
    gamma = rec(128) - 128 * beta
    return (beta + math.sqrt(beta * beta + 4 * alpha * gamma)) / (2 * alpha)


def _ok(df):
    return df[df["ok"] & df["median_s"].notna() & (df["mode"].astype(str) == "forward")]


def pairs(df):
    """Yield (recurrent impl, attention impl, block, merged) at the same width, batch, ...:
    columns median_s_a/_f, samples_s_a/_f, flops_a/_f (a: attention, f: the recurrence)."""
    ok = _ok(df)
    keys = group_keys(ok.columns, exclude=("impl", "block", "n_heads", "d_ff"))
    attn = ok[ok["block"] == ATTENTION]
    for block in RECURRENT:
        rec = ok[ok["block"] == block]
        for r_impl in sorted(set(rec["impl"])):
            for a_impl in sorted(set(attn["impl"])):
                a = attn[attn["impl"] == a_impl][keys + ["median_s", "samples_s", "flops",
                                                         "n_heads"]]
                f = rec[rec["impl"] == r_impl][keys + ["median_s", "samples_s", "flops"]]
                m = a.merge(f, on=keys, suffixes=("_a", "_f"))
                if not m.empty:
                    yield r_impl, a_impl, block, m


def crossover_rows(df, rule) -> list[VerdictRow]:
    rows = []
    for r_impl, a_impl, block, merged in pairs(df):
        for (d, b), g in merged.groupby(["d_model", "batch"]):
            if g["seq_len"].nunique() < 2:
                continue
            zero = _zero_state(df, r_impl, block)
            pred = predicted(block, int(d), int(g["n_heads"].iloc[0]), int(b), zero)
            m = crossover.measured(g, seed=rule.seed, n_boot=N_BOOT)
            lo_n, hi_n = m["n_range"]
            side = None
            who = f"{r_impl} {block.upper()} vs {a_impl} attention (d = {int(d)}, B = {int(b)})"
            if m["value"] is None:
                side = "faster" if m["ratio_at_max"] < 1 else "slower"   # attention's
                # never crossed: n* lies beyond the range; that contradicts the prediction
                # when the range reaches a factor 2 past it on that side
                factor = crossover.CROSSOVER_FACTOR
                past = hi_n > factor * pred if side == "faster" else lo_n < pred / factor
                verdict = NOT_HELD if past else NOT_ENOUGH
                sentence = (f"{who}: attention stayed {side} than the {block.upper()} over n "
                            f"{lo_n:g}–{hi_n:g} (time ratio {m['ratio_at_max']:.2f} at n = "
                            f"{hi_n:g}); the FLOPs predict n* = {pred:.0f}.")
            else:
                verdict = band_verdict(m["ci_low"], m["ci_high"], pred,
                                       crossover.CROSSOVER_FACTOR)
                flops_a = dict(zip(g["seq_len"].astype(int), g["flops_a"]))
                flops_f = dict(zip(g["seq_len"].astype(int), g["flops_f"]))
                rate = crossover.rates_near(g, m["value"], flops_a, flops_f)
                ci = (f" [{m['ci_low']:.0f}, {m['ci_high']:.0f}]" if m["ci_low"] is not None
                      else " (CI: the bootstrap crossed in too few draws)")
                why = (f"; near n* attention ran at {rate:.2f}× the {block.upper()}'s FLOP "
                       f"rate, so n* ≈ {pred:.0f} × {rate:.2f} = {pred * rate:.0f}: "
                       + ("the recurrence's small per-step matmuls run far below the "
                          "machine's rate" if rate > 1 else "attention's n×n passes run "
                          "below the recurrence's rate") if rate else "")
                sentence = (f"{who}: measured n* = {m['value']:.0f}{ci} against {pred:.0f} "
                            f"from the FLOPs{why}.")
            rows.append(VerdictRow(
                id=f"recurrent.crossover.{block}", kind="recurrent-crossover",
                claim=f"attention's n² work overtakes the {block.upper()}'s n·d² at n* = "
                      f"{'4' if block == 'lstm' else '3'}d (by FLOPs)",
                block=f"attention/{block}", metric="time", variable="seq_len",
                impl=f"{r_impl} vs {a_impl}",
                ffn_impl=a_impl, precision=str(df["precision"].iloc[0]), d_model=int(d),
                theory=pred, theory_text=f"n* = {pred:.0f}", value=m["value"],
                ci_low=m["ci_low"], ci_high=m["ci_high"], unit="tokens",
                fit_range=f"seq_len {lo_n:g}–{hi_n:g}, batch {int(b)}", verdict=verdict,
                sentence=sentence, extra={"definition": DEFINITION, "batch": int(b),
                                          "attention_impl": a_impl, "attention_side": side,
                                          "n_max": float(hi_n),
                                          "recurrent_s_at_max": float(g.sort_values(
                                              "seq_len")["median_s_f"].iloc[-1])}))
    return rows


def _zero_state(df, impl: str, block: str) -> bool:
    """Whether the records' recurrent FLOPs count the zero initial state's product (nn.LSTM)."""
    sel = df[(df["impl"] == impl) & (df["block"] == block) & df["flops_by_component"].notna()]
    if sel.empty:
        return False
    row = sel.iloc[0]
    b, n, d = int(row["batch"]), int(row["seq_len"]), int(row["d_model"])
    steps = row["flops_by_component"].get("recurrent", 0) / (
        2 * b * d * rc.gate_rows(block, d) * int(row["layers"]))
    return round(steps) == n


def _entry(entries, block, metric, impl=None, path=None, batch=None):
    for e in entries:
        if (e["block"], e["metric"], e["variable"]) == (block, metric, "seq_len") and \
                (impl is None or e["impl"] == impl) and (path is None or
                                                         e.get("attention_path") == path) and \
                (batch is None or (e.get("fixed") or {}).get("batch") == batch):
            return e
    return None


def _growth(e) -> str:
    """'n^1.02 [0.98, 1.05]', or the exponent over all sizes when the fit range had too few."""
    if e.get("exponent") is not None:
        return f"n^{e['exponent']:.2f} [{e['ci_low']:.2f}, {e['ci_high']:.2f}]"
    if e.get("full_range_exponent") is not None:
        return f"n^{e['full_range_exponent']:.2f} over all sizes (too few in the fit range)"
    return "n^? (too few sizes to fit)"


def _mib(x) -> str:
    return f"{x / 2 ** 20:.3g} MiB" if x >= 2 ** 20 else f"{x / 2 ** 10:.3g} KiB"


def memory_rows(df, entries) -> list[VerdictRow]:
    ok = _ok(df)
    rows = []
    for block in RECURRENT:
        for impl in sorted(set(ok[ok["block"] == block]["impl"])):
            g = ok[(ok["block"] == block) & (ok["impl"] == impl) & ok["peak_bytes"].notna()]
            if g.empty:
                continue
            g = g[g["batch"] == g["batch"].min()].sort_values("seq_len")
            e = _entry(entries, block, "memory", impl, batch=int(g["batch"].iloc[0]))
            if e is None:
                continue
            top = g.iloc[-1]
            b, n, d = int(top["batch"]), int(top["seq_len"]), int(top["d_model"])
            e_bytes = int(top["bytes_per_element"])
            state = rc.recurrent_state_bytes(block, b, d, 1, e_bytes)
            saved = rc.recurrent_saved_bytes(block, b, n, d, 1, e_bytes, "torch")
            peaks = {}
            parts = [f"{block.upper()} ({impl}) peak {_mib(top['peak_bytes'])} at n = {n}, "
                     f"growing as {_growth(e)}: the output (B·n·d); the state it carries from "
                     f"step to step is {_mib(state)} at every n"]
            for path in ("materialised", "fused"):
                a = _entry(entries, ATTENTION, "memory", path=path, batch=b)
                at = ok[(ok["block"] == ATTENTION) & (ok["attention_path"] == path)
                        & (ok["batch"] == b) & (ok["seq_len"] == n) & ok["peak_bytes"].notna()]
                if a is not None and not at.empty:
                    peaks[path] = float(at["peak_bytes"].iloc[0])
                    parts.append(f"attention {path} ({a['impl']}) "
                                 f"{_mib(at['peak_bytes'].iloc[0])}, {_growth(a)}")
            h = int(ok[ok["block"] == ATTENTION]["n_heads"].max()) if (
                ok["block"] == ATTENTION).any() else 1
            cfg = ModelConfig(d_model=d, n_heads=h, d_ff=4 * d, n_layers=1)
            sentence = ("; ".join(parts) + f". By tfimpl.costs at n = {n}: the n×n scores "
                        f"{_mib(b * h * n * n * e_bytes)}, a KV cache "
                        f"{_mib(costs.kv_cache_bytes(cfg, b, n, e_bytes))} against the state's "
                        f"{_mib(state)}; training keeps ~{_mib(saved)} per {block.upper()} "
                        f"layer (O(n·d)).")
            rows.append(VerdictRow(
                id=f"recurrent.memory.{block}", kind="recurrent-memory",
                claim=f"{block.upper()} inference memory is O(n) (output), O(1) state; "
                      f"attention O(n²) materialised, O(n) fused",
                block=block, metric="memory", variable="seq_len", impl=impl,
                precision=e["precision"], theory=1.0, theory_text="n^1 (state n^0)",
                value=e["exponent"], ci_low=e["ci_low"], ci_high=e["ci_high"], unit="exponent",
                fit_range=f"seq_len {g['seq_len'].min():g}–{n:g}, batch {b}",
                verdict=e["verdict"], sentence=sentence,
                extra={"state_bytes": state, "saved_bytes_per_layer": saved, "seq_len": n,
                       "peak_bytes": float(top["peak_bytes"]), "attention_peaks": peaks}))
    return rows


def batching_gains(df, seed: int = 0) -> list[dict]:
    """Per (block, impl, d): gain = B·t(1, n) / t(B, n) at the largest n with both batches."""
    import numpy as np

    ok = _ok(df)
    out = []
    for (block, impl, d), g in ok.groupby(["block", "impl", "d_model"]):
        one = g[g["batch"] == 1]
        big = g[g["batch"] > 1]
        common = sorted(set(one["seq_len"]) & set(big["seq_len"]))
        if not common:
            continue
        n = common[-1]
        r1 = one[one["seq_len"] == n].iloc[0]
        rb = big[big["seq_len"] == n].sort_values("batch").iloc[-1]
        bsz = int(rb["batch"])
        s1 = np.asarray(r1["samples_s"] or [r1["median_s"]], float) * bsz
        sb = np.asarray(rb["samples_s"] or [rb["median_s"]], float)
        lo, hi = median_ratio_ci(s1, sb, N_BOOT, seed)
        out.append({"block": block, "impl": impl, "d_model": int(d), "seq_len": int(n),
                    "batch": bsz, "gain": bsz * r1["median_s"] / rb["median_s"],
                    "ci_low": lo, "ci_high": hi,
                    "token_s": (r1["median_s"] / n, rb["median_s"] / (bsz * n)),
                    "peak_fraction": (r1.get("peak_fraction"), rb.get("peak_fraction")),
                    "gflops": (r1.get("gflops"), rb.get("gflops"))})
    return out


def parallelism_rows(df, rule) -> list[VerdictRow]:
    gains = batching_gains(df, rule.seed)
    attn = [g for g in gains if g["block"] == ATTENTION]
    rows = []
    for g in (g for g in gains if g["block"] in RECURRENT):
        others = [a for a in attn if a["d_model"] == g["d_model"] and a["seq_len"] == g["seq_len"]]
        if not others:
            continue
        if all(g["ci_low"] > a["ci_high"] for a in others):
            verdict = HELD
        elif all(g["ci_high"] < a["ci_low"] for a in others):
            verdict = NOT_HELD
        else:
            verdict = NOT_ENOUGH
        steps = rc.recurrent_flops(g["block"], 1, g["seq_len"], g["d_model"],
                                   g["d_model"])["sequential_steps"]
        atext = "; ".join(f"{a['impl']} attention {a['gain']:.2f}× [{a['ci_low']:.2f}, "
                          f"{a['ci_high']:.2f}]{_rate(a)}" for a in others)
        sentence = (f"Per token, batch {g['batch']} ran {g['gain']:.2f}× [{g['ci_low']:.2f}, "
                    f"{g['ci_high']:.2f}] faster than batch 1 for the {g['block'].upper()} "
                    f"({g['impl']}, n = {g['seq_len']}, d = {g['d_model']}: "
                    f"{g['token_s'][0] * 1e6:.3g} → {g['token_s'][1] * 1e6:.3g} µs per token)"
                    f"{_rate(g)}; {atext}. The {g['block'].upper()} runs {steps} dependent "
                    f"steps, each a (B, d)·(d, {'4' if g['block'] == 'lstm' else '3'}d) "
                    f"matmul; attention one n×n product per head.")
        rows.append(VerdictRow(
            id=f"recurrent.parallelism.{g['block']}", kind="recurrent-parallelism",
            claim=f"the {g['block'].upper()} is harder to parallelize: batching buys it more "
                  f"per token than attention",
            block=g["block"], metric="time per token", variable="batch", impl=g["impl"],
            precision=str(df["precision"].iloc[0]), theory=max(a["gain"] for a in others),
            theory_text="> attention's " + ", ".join(f"{a['gain']:.2f}×" for a in others),
            value=g["gain"], ci_low=g["ci_low"], ci_high=g["ci_high"], unit="× per token",
            fit_range=f"n = {g['seq_len']}, batch 1 vs {g['batch']}", verdict=verdict,
            sentence=sentence, extra={"sequential_steps": steps}))
    return rows


def _rate(g) -> str:
    fr = g["peak_fraction"]
    if fr[0] is None or fr[1] is None or not all(math.isfinite(float(v)) for v in fr):
        gf = g["gflops"]
        return (f" ({gf[0]:.3g} → {gf[1]:.3g} GFLOP/s)" if gf[0] is not None and
                gf[1] is not None else "")
    return f" ({100 * fr[0]:.2g}% → {100 * fr[1]:.2g}% of the matmul peak)"


def rows(df, entries, rule) -> list[VerdictRow]:
    """Every row of this module (none when the run has no recurrent block)."""
    if df.empty or not df["block"].isin(RECURRENT).any():
        return []
    return crossover_rows(df, rule) + memory_rows(df, entries) + parallelism_rows(df, rule)


def _fastest_pairs(cross: list[VerdictRow]) -> list[VerdictRow]:
    """Per batch size, the rows of the fastest recurrent implementation (among those measured
    to the longest n, the lowest median time there) against each attention implementation."""
    out = []
    for b in sorted({r.extra["batch"] for r in cross}):
        at_b = [r for r in cross if r.extra["batch"] == b]
        best = min(at_b, key=lambda r: (-r.extra["n_max"], r.extra["recurrent_s_at_max"]))
        best = best.impl.split(" vs ")[0]
        out += [r for r in at_b if r.impl.split(" vs ")[0] == best]
    return out


def conclusion(rows: list[VerdictRow], cpu: str) -> str | None:
    """Where each wins on this machine, in one sentence, from the measured crossovers."""
    cross = [r for r in rows if r.kind == "recurrent-crossover"]
    if not cross:
        return None
    parts = []
    for r in _fastest_pairs(cross):
        b = r.extra["batch"]
        rec = r.impl.split(" vs ")[0]
        who = f"{r.extra['attention_impl']} attention vs {rec} {r.block.split('/')[1].upper()}"
        if r.value is not None:
            parts.append(f"{who} at batch {b}: attention faster below n ≈ {r.value:.0f}, the "
                         f"recurrence beyond")
        else:
            faster = "attention" if r.extra["attention_side"] == "faster" else "the recurrence"
            parts.append(f"{who} at batch {b}: {faster} faster over all of {r.fit_range}")
    text = (f"On this machine ({cpu}), by time: " + "; ".join(parts) + f" (the FLOPs alone put "
            f"the crossover at n* = {cross[0].theory:.0f}).")
    memory = [r for r in rows if r.kind == "recurrent-memory" and r.extra["attention_peaks"]]
    for r in sorted(memory, key=lambda r: -r.extra["seq_len"])[:1]:
        n, mine = r.extra["seq_len"], r.extra["peak_bytes"]
        ratios = ", ".join(f"{path} attention's {peak / mine:.2g}×"
                           for path, peak in r.extra["attention_peaks"].items())
        if ratios:
            text += (f" By memory at n = {n}: the {r.block.upper()} ({r.impl}) held "
                     f"{_mib(mine)}, {ratios} that.")
    return text
