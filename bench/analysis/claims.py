"""The claims under test: which exponent the theory predicts, which points may test it, verdicts.

Theory (per forward; backward is 2x the same matmuls, so the same exponents):

    block      variable  metric  exponent  why
    attention  seq_len   time    2         Q·Kᵀ and P·V: 4·B·T²·D FLOPs
    attention  seq_len   flops   2
    attention  seq_len   memory  2         materialised path: the (B, H, T, T) matrix
                                 1         fused SDPA: never holds it; q, k, v, out are B·T·D
    attention  d_model   time    1         4·B·T²·D (H grows with D, d_k fixed)
    attention  d_model   flops   1
    ffn        seq_len   time    1         2 matmuls of 2·B·T·D·d_ff
    ffn        seq_len   flops   1
    ffn        seq_len   memory  1         the (B, T, d_ff) hidden
    ffn        d_model   time    2         d_ff = 4·D: 4·B·T·D·d_ff = 16·B·T·D²
    ffn        d_model   flops   2
    layer      d_model   params  2         4·D² + 2·D·d_ff = 12·D² weights (+ 13·D biases)

Blocks mixing both (mha, encoder_layer, encoder, model) have no single exponent in T; the
two-term model (fits.fit_two_term) describes them instead.

Fit range (bench.analysis.rule, stated in the report): per metric. FLOPs and parameter counts
use every size (exact counts); peak memory the top three octaves; time the rate plateau of the
top sizes (bench.analysis.window), or with FitRule(window="cache") the sizes past 2x the LLC.
Fewer than `min_points` such points: "not enough data", never a fit of what is left.

Verdict (an equivalence test against the theory, at the CI's confidence):
    held             the whole CI lies within theory ± tolerance
    did not hold     the whole CI lies outside theory ± tolerance
    not enough data  fewer than min_points asymptotic points, or the CI straddles a band edge
Tolerance: 0.3 for measured time and memory, 0.05 for FLOPs (exact counts: the exponent is
exact unless the count is not a pure power law).
"""

from __future__ import annotations

import math

from bench import blocks, metrics
from bench.analysis import fits
from bench.analysis.crossover import analytic_crossover, composed_layer_times
from bench.analysis.grouping import CO_VARYING, as_strings, group_keys
from bench.analysis.verdict_row import HELD, NOT_ENOUGH, NOT_HELD
from bench.analysis.rule import (REGIME_ALL, REGIME_CACHE_UNKNOWN, REGIME_IN_CACHE,  # noqa: F401
                                 REGIME_NO_PLATEAU, REGIME_PAST_CACHE, REGIME_PLATEAU, REGIME_TOP,
                                 FitRule, fmt_bytes)
from bench.analysis.window import left_out_note, plateau_window
from tfimpl import costs, params
from tfimpl.config import ModelConfig




def theory_exponent(block: str, metric: str, variable: str, attention_path: str | None = None,
                    ffn_ratio_fixed: bool = True) -> float | None:
    """The exponent the theory predicts, or None when it makes no single-power claim.

    Read from the block's declaration (bench.blocks: each Block lists its Claims); the table in
    this module's docstring is what the built-in declarations say.
    """
    return blocks.theory_exponent(block, metric, variable, attention_path, ffn_ratio_fixed)


def verdict(fit: fits.PowerFit, theory: float | None, tolerance: float) -> str | None:
    """held / did not hold / not enough data (see module docstring); None without a theory."""
    if theory is None:
        return None
    if not fit.ok:
        return NOT_ENOUGH
    lo, hi = theory - tolerance, theory + tolerance
    if fit.ci_low >= lo and fit.ci_high <= hi:
        return HELD
    if fit.ci_high < lo or fit.ci_low > hi:
        return NOT_HELD
    return NOT_ENOUGH


def fit_points(group, variable: str, metric: str, rule: FitRule):
    """(mask, regime): the rows of an ok-only sweep that may test `metric`'s claim, and why.

    By the metric's declared fit_range (bench.metrics; bench.analysis.rule): "all" (flops,
    params) all sizes; "top_octaves" (memory) the top octaves; "time" the rate plateau
    (rule.window "plateau", bench.analysis.window), or with window "cache" past ws_factor x
    LLC when the working set gets there in the sweep, else the sizes at or above
    the time floor in the top octaves (cache-resident, or cache size unknown). The top octaves
    are counted down from the largest size that has a value of the metric.
    """
    import numpy as np

    m = metrics.get(metric)
    x = group[variable].to_numpy(float)
    if m.fit_range == "all":
        return np.ones(x.shape, bool), REGIME_ALL
    y = group[m.column].to_numpy(float)
    has = np.isfinite(y) & (y > 0)
    x_max = x[has].max() if has.any() else np.inf
    top = x >= x_max / 2 ** rule.top_octaves
    if m.fit_range == "top_octaves":
        return top, REGIME_TOP
    floor = group["median_s"].to_numpy(float) >= rule.min_time_s
    if rule.window == "plateau":
        mask, start = plateau_window(x, y, floor, rule.min_points, rule.plateau_band)
        return mask, REGIME_PLATEAU if start is not None else REGIME_NO_PLATEAU
    ratio = group["ws_over_llc"].to_numpy(float)
    if not np.isfinite(ratio).any():
        return floor & top, REGIME_CACHE_UNKNOWN
    past = np.nan_to_num(ratio, nan=0.0) >= rule.ws_factor
    if past.any():
        return floor & past, REGIME_PAST_CACHE
    return floor & top, REGIME_IN_CACHE


def sweep_groups(df, variable: str, min_distinct: int = 2):
    """Yield (fixed: dict, group frame sorted by variable) for each sweep of `variable`.

    Rows are grouped by every case field except the co-varying ones (and seed); a group is a
    sweep when it holds at least `min_distinct` distinct values of the variable.
    """
    ok = df[df["ok"]]
    keys = group_keys(ok.columns, exclude=CO_VARYING[variable])
    if ok.empty:
        return
    filled = as_strings(ok, keys)
    for values, idx in filled.groupby(keys, dropna=False, sort=True).groups.items():
        group = ok.loc[idx].sort_values(variable)
        if group[variable].nunique() >= min_distinct:
            yield dict(zip(keys, values)), group


def _local(group, variable: str, column: str) -> list[dict]:
    return fits.local_slopes(group[variable].to_numpy(float), group[column].to_numpy(float))


def fit_group(group, fixed: dict, variable: str, metric: str, rule: FitRule) -> dict:
    """One summary entry: the asymptotic fit of `metric` against `variable` in one sweep."""
    import numpy as np

    column = metrics.get(metric).column
    block, impl = fixed["block"], fixed["impl"]
    path = group["attention_path"].iloc[0]
    ratio_fixed = bool((group["d_ff"] / group["d_model"]).nunique() == 1)
    theory = theory_exponent(block, metric, variable, path, ratio_fixed)
    mask, regime = fit_points(group, variable, metric, rule)
    x = group[variable].to_numpy(float)
    y = group[column].to_numpy(float)
    fit = fits.fit_power_law(x[mask], y[mask], min_points=rule.min_points, n_boot=rule.n_boot,
                             ci=rule.ci, seed=rule.seed)
    floor = group["median_s"].to_numpy(float) >= rule.min_time_s
    full = fits.fit_power_law(x[floor], y[floor], min_points=3, n_boot=200, ci=rule.ci,
                              seed=rule.seed)
    method = "theil-sen, bootstrap over points"
    if metric == "flops":
        sources = sorted(set(group["flops_source"].dropna()))
        method += f"; flops {'+'.join(sources) or 'none'}"
    entry = {
        "impl": impl, "block": block, "precision": fixed["precision"], "metric": metric,
        "variable": variable, "exponent": _num(fit.exponent), "ci_low": _num(fit.ci_low),
        "ci_high": _num(fit.ci_high), "theory": theory,
        "verdict": verdict(fit, theory, rule.tolerance_for(metric)),
        "r2": _num(fit.r2), "n_points": fit.n_points,
        "range": [_num(fit.x_min), _num(fit.x_max)] if fit.ok else None,
        "method": method, "status": fit.status, "reason": fit.reason,
        "theory_in_ci": (bool(fit.ci_low <= theory <= fit.ci_high)
                         if theory is not None and fit.ok else None),
        "tolerance": rule.tolerance_for(metric) if theory is not None else None,
        "mode": fixed.get("mode"), "attention_path": path, "ratio_fixed": ratio_fixed,
        "regime": regime,
        "regime_text": rule.regime_text(regime, float(group["llc_bytes"].iloc[0]),
                                        x[mask].min() if mask.any() else None, variable),
        "fixed": {k: _plain(v) for k, v in fixed.items()
                  if k not in ("impl", "block", "precision")},
        "points_total": int(np.isfinite(y).sum()), "points_asymptotic": int(mask.sum()),
        "points_under_time_floor": int((~floor).sum()),
        "full_range_exponent": _num(full.exponent),
        "full_range": [_num(full.x_min), _num(full.x_max)] if full.ok else None,
        "local_slopes": _local(group, variable, column),
    }
    entry["notes"] = departure_notes(group, entry, variable, column, rule)
    return entry


def departure_notes(group, entry: dict, variable: str, column: str, rule: FitRule) -> list[str]:
    """Plain sentences explaining why points were left out and where the law departs.

    - sizes under the time floor (overhead-dominated) and sizes inside the cache;
    - the exponent over all sizes above the floor, when it differs from the asymptotic one;
    - the steepest local slope when it exceeds the theory by more than 1, and whether the
      working set crossed the last-level cache there;
    - a power-of-two size as slow as the next larger size (cache-set aliasing suspected).
    """
    import numpy as np

    notes = []
    x = group[variable].to_numpy(float)
    y = group[column].to_numpy(float)
    ws = group["working_set_bytes"].to_numpy(float)
    llc = float(group["llc_bytes"].iloc[0])
    t = group["median_s"].to_numpy(float)
    under = t < rule.min_time_s
    if under.any():
        notes.append(f"{int(under.sum())} size(s) under {rule.min_time_s * 1e3:g} ms left out "
                     f"(fixed per-call costs dominate there): {variable} ≤ {x[under].max():g}.")
    regime = entry.get("regime")
    in_cache = ~under & (np.nan_to_num(ws / llc, nan=np.inf) < rule.ws_factor)
    if regime == REGIME_PAST_CACHE and in_cache.any():
        notes.append(f"{int(in_cache.sum())} size(s) whose working set is under "
                     f"{rule.ws_factor:g}× the {fmt_bytes(llc)} last-level cache left out "
                     f"({variable} {x[in_cache].min():g}–{x[in_cache].max():g}).")
    if regime in (REGIME_IN_CACHE, REGIME_CACHE_UNKNOWN):
        low = ~under & (x < x[np.isfinite(y)].max() / 2 ** rule.top_octaves)
        why = ("the working set stays under "
               f"{rule.ws_factor:g}× the {fmt_bytes(llc)} last-level cache at every size "
               "(the cache-resident regime)" if regime == REGIME_IN_CACHE
               else "the cache size is unknown")
        notes.append(f"{why[0].upper()}{why[1:]}: fitted on {rule.octaves_text}"
                     + (f"; {int(low.sum())} smaller size(s) left out ({variable} "
                        f"{x[low].min():g}–{x[low].max():g})." if low.any() else "."))
    if regime == REGIME_PLATEAU and entry["range"]:
        notes += left_out_note(x, ~under, entry["range"][0], variable, rule.plateau_band)
    theory, k, full = entry["theory"], entry["exponent"], entry["full_range_exponent"]
    tol = rule.tolerance_for(entry["metric"])
    if full is not None and (k is None or abs(full - k) > tol):
        notes.append(f"Over all sizes above the time floor the exponent would be {full:.2f}"
                     + (f" instead of {k:.2f}" if k is not None else "") + ".")
    slopes = entry["local_slopes"]
    if theory is not None and slopes:
        steep = max(slopes, key=lambda r: r["slope"])
        if steep["slope"] > theory + 1:
            lo, hi = steep["x_lo"], steep["x_hi"]
            ws_lo, ws_hi = ws[x == lo].max(), ws[x == hi].max()
            ratio = y[x == hi].mean() / y[x == lo].mean()
            where = cache_boundary_words(ws_lo, ws_hi, llc, rule.ws_factor)
            notes.append(f"{entry['metric'].capitalize()} jumped ×{ratio:.2f} from {variable} "
                         f"{lo:g} to {hi:g} (local slope {steep['slope']:.2f}), {where}.")
    xs = np.unique(x)
    for a, b in zip(xs[:-1], xs[1:]):
        if column == "median_s" and a >= 64 and int(a) & (int(a) - 1) == 0:
            ya, yb = y[x == a].mean(), y[x == b].mean()
            if ya >= 0.9 * yb:
                notes.append(f"{variable} {a:g} (a power of two) took {ya / yb:.2f}× as long as "
                             f"{b:g}: cache-set aliasing suspected; the robust fit down-weights "
                             f"such a point.")
    return notes


def cache_boundary_words(ws_lo: float, ws_hi: float, llc: float, factor: float) -> str:
    """Where a steep step sits relative to the last-level cache, in words.

    Crossed: the working set passes the LLC or factor x LLC between the two sizes; near: both
    lie within [LLC / factor, factor x LLC] without crossing; else no cache boundary there.
    """
    if not math.isfinite(llc):
        return "cache size unknown"
    span = f"{fmt_bytes(ws_lo)} to {fmt_bytes(ws_hi)}"
    for edge, name in ((llc, f"the {fmt_bytes(llc)} last-level cache"),
                       (factor * llc, f"{factor:g}× the {fmt_bytes(llc)} last-level cache")):
        if ws_lo < edge <= ws_hi:
            return f"where the working set grew from {span}, across {name}"
    if ws_lo >= llc / factor and ws_hi <= factor * llc:
        return (f"where the working set ({span}) is near the {fmt_bytes(llc)} last-level cache "
                f"without crossing it")
    return "with no cache boundary there"


def _num(v) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def _plain(v):
    """Group keys come back as strings; turn numbers and booleans back."""
    if isinstance(v, str):
        if v in ("True", "False"):
            return v == "True"
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v
    return v


def fit_all(df, rule: FitRule = FitRule()) -> list[dict]:
    """Every fit of the run: per sweep (seq_len, d_model, window) and metric with data."""
    entries = []
    for variable in ("seq_len", "d_model", "window"):
        for fixed, group in sweep_groups(df, variable):
            for m in metrics.fitted():
                if m.column not in group.columns or group[m.column].notna().sum() == 0:
                    continue
                entries.append(fit_group(group, fixed, variable, m.name, rule))
    entries.extend(params_fits(df, rule))
    return entries


def layer_params(d_model: int, n_heads: int, d_ff: int) -> tuple[int, int]:
    """(parameters of our encoder layer as laid out by tfimpl.params, costs.param_counts total)."""
    cfg = ModelConfig(d_model=int(d_model), n_heads=int(n_heads), d_ff=int(d_ff))
    laid_out = sum(math.prod(shape) for shape in params.param_shapes("encoder_layer", cfg).values())
    return laid_out, int(costs.param_counts("encoder_layer", cfg)["total"])


def params_fits(df, rule: FitRule) -> list[dict]:
    """Parameters per encoder layer vs d_model, over the widths the run measured (any block).

    Counted from tfimpl.params' layout (the arrays our implementations hold), cross-checked
    against tfimpl.costs; fitted over all widths (a count has no cache regime or overhead).
    """
    ok = df[df["ok"]]
    ok = ok[ok["block"].map(lambda b: b not in blocks.BLOCKS or blocks.BLOCKS[b].heads)]
    if ok.empty:                            # (an LSTM's d_model says nothing of a layer's d_ff)
        return []
    widths = ok[["d_model", "n_heads", "d_ff"]].drop_duplicates().sort_values("d_model")
    widths = widths[(widths["d_ff"] / widths["d_model"]) == 4]   # the d_ff = 4·D family
    widths = widths.drop_duplicates("d_model")
    if len(widths) < 2:
        return []
    counts = [layer_params(*row) for row in widths.itertuples(index=False)]
    x = widths["d_model"].to_numpy(float)
    y = [laid for laid, _ in counts]
    fit = fits.fit_power_law(x, y, min_points=rule.min_points, n_boot=rule.n_boot, ci=rule.ci,
                             seed=rule.seed)
    return [{
        "impl": "tfimpl", "block": "encoder_layer", "precision": None, "metric": "params",
        "variable": "d_model", "exponent": _num(fit.exponent), "ci_low": _num(fit.ci_low),
        "ci_high": _num(fit.ci_high), "theory": 2.0,
        "verdict": verdict(fit, 2.0, rule.tolerance_for("params")), "r2": _num(fit.r2),
        "n_points": fit.n_points, "range": [_num(fit.x_min), _num(fit.x_max)] if fit.ok else None,
        "method": "theil-sen over all widths; counts from tfimpl.params layout (d_ff = 4·D)",
        "status": fit.status, "reason": fit.reason,
        "theory_in_ci": bool(fit.ci_low <= 2.0 <= fit.ci_high) if fit.ok else None,
        "tolerance": rule.tolerance_for("params"), "mode": None, "attention_path": None,
        "regime": REGIME_ALL, "regime_text": rule.regime_text(REGIME_ALL),
        "fixed": {"d_ff/d_model": 4},
        "counts": [{"d_model": int(d), "params": laid, "costs_total": total}
                   for d, (laid, total) in zip(x, counts)],
        "counts_match_costs": all(laid == total for laid, total in counts),
        "points_total": int(len(x)), "points_asymptotic": int(len(x)),
        "points_under_time_floor": 0,
        "full_range_exponent": _num(fit.exponent),
        "full_range": [_num(fit.x_min), _num(fit.x_max)] if fit.ok else None,
        "local_slopes": fits.local_slopes(x, y),
    }]


# ---- the two-term model (its crossover: bench.analysis.crossover) ------------------------------------------------

TWO_TERM_BLOCKS = ("mha", "encoder_layer", "encoder", "model")


def two_term_fits(df, rule: FitRule = FitRule()) -> list[dict]:
    """t = a n² d + b n d² + c per (impl, block, precision, ...) over all ok points.

    Also a composed series "mha+ffn" (t_mha + t_ffn at the same case fields) when both exist.
    The crossover is reported at the group's most common width.
    """
    import pandas as pd

    ok = df[df["ok"] & df["median_s"].notna()]
    series = [ok[ok["block"].isin(TWO_TERM_BLOCKS)]]
    composed = composed_layer_times(ok)
    if composed is not None:
        series.append(composed)
    frame = pd.concat(series, ignore_index=True) if series else ok.iloc[:0]
    keys = group_keys(frame.columns, exclude=("seq_len", "d_model", "n_heads", "d_ff"))
    out = []
    if frame.empty:
        return out
    filled = as_strings(frame, keys)
    for values, idx in filled.groupby(keys, dropna=False, sort=True).groups.items():
        group = frame.loc[idx]
        fixed = dict(zip(keys, values))
        fit = fits.fit_two_term(group["seq_len"], group["d_model"], group["median_s"],
                                min_points=rule.min_points)
        width = group[["d_model", "n_heads", "d_ff"]].value_counts().idxmax()
        analytic = analytic_crossover(fixed["block"], *width, layers=int(group["layers"].iloc[0]),
                                      batch=int(group["batch"].iloc[0]))
        fitted = fit.crossover(width[0])
        out.append({
            "impl": fixed["impl"], "block": fixed["block"], "precision": fixed["precision"],
            "mode": fixed["mode"], "status": fit.status, "reason": fit.reason,
            "a": _num(fit.a), "b": _num(fit.b), "c": _num(fit.c), "n_points": fit.n_points,
            "max_abs_rel_residual": _num(fit.max_abs_rel_residual),
            "residuals": [{"seq_len": int(n), "d_model": int(d), "rel": r}
                          for n, d, r in zip(group["seq_len"], group["d_model"], fit.residuals)]
            if fit.ok else [],
            "d_text": _span_text(group["d_model"]),
            "d_model": int(width[0]), "crossover_fitted": _num(fitted) if fit.ok else None,
            "crossover_analytic": _num(analytic),
            "seq_len_range": [int(group["seq_len"].min()), int(group["seq_len"].max())],
        })
    return out


def _span_text(values) -> str:
    vals = sorted({int(v) for v in values})
    return str(vals[0]) if len(vals) == 1 else f"{vals[0]}–{vals[-1]} ({len(vals)} widths)"
