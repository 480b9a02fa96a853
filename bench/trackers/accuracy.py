"""How far a lower-precision output is from the float64 run of the same weights and inputs.

Three numbers per output, all computed in float64 (outside the timed region):

    max_abs_err = max_i |y_i - r_i|
    max_rel_err = max_i |y_i - r_i| / (|r_i| + eps * max_j |r_j|)        eps = 1e-2
    rel_l2_err  = ||y - r||_2 / ||r||_2

`r` is the float64 reference, `y` the output under test (bf16/fp16 are widened exactly via
`.float().double()`). The floor `eps * max|r|` in max_rel_err keeps elements where r ~ 0 from
dividing by ~0: rounding error in a dot product scales with the operands' magnitudes, not with
the (possibly cancelled) result, so without a floor the "max relative error" of any matmul is
set by its smallest output. Elements above 1% of the largest are measured truly relatively.

The tolerance logic (`expected_tolerance`) is the textbook rounding-error model (Higham,
"Accuracy and Stability of Numerical Algorithms", 2nd ed., sec. 3.1 and 3.5; Higham & Mary,
"A New Approach to Probabilistic Rounding Error Analysis", SISC 2019; for low-precision inputs
with a wider accumulator, Blanchard, Higham, Lopez, Mary & Pranesh, "Mixed Precision Block
Fused Multiply-Add", SISC 2020):

    |fl(x . y) - x . y| <= (2 u + gamma_K(u_acc)) |x| . |y|       gamma_K(u) = K u / (1 - K u)
    |fl(x . y) - x . y| <~ (2 u + lambda sqrt(K) u_acc) |x| . |y|         (random rounding)

u = 2^-p is the unit roundoff of the format values are stored / rounded to (fp64 2^-53,
fp32 2^-24, fp16 and TF32 2^-11, bf16 2^-8) and u_acc that of the accumulator (fp32 for bf16,
fp16 and TF32 on oneDNN/MKL and cuBLAS; the format itself for fp32 and fp64). K is the
reduction length (d_model for a projection, d_k for scores, T for the weighted sum). So fp32
error grows like sqrt(K) u while bf16 error is set by rounding the operands, a few u whatever
K. We bound the norm-wise relative error of a computation of `depth` rounding stages by

    bound = safety * depth * (u + g(K) * u_acc),   g(K) = sqrt(K) (probabilistic) or K (worst)

and `within_tolerance` checks rel_l2_err against it. rel_l2_err, not max_rel_err, because the
model speaks about norms; the max is reported, not judged. The bound is a model, not a theorem:
relating |x| . |y| to |x . y| needs the data (random-sign data: a factor ~1, adversarial data:
unbounded), and a badly conditioned step (softmax of large logits: error ~ u * max|logit|)
needs a larger depth. On our blocks with seeded random weights (tests/trackers/test_accuracy.py) the
measured errors sit 3x-100x under it, and a 1e-4 (fp32) or 0.1 (bf16) perturbation fails.
"""

from __future__ import annotations

import math

from bench import precision as _precision

REL_EPS = 1e-2            # max_rel_err denominator floor, as a fraction of max|ref|
SAFETY = 4.0              # lambda: the probabilistic bound's constant, generously


def as_float64(x):
    """A float64 NumPy copy of a NumPy array or torch tensor (any device, any float dtype)."""
    import numpy as np

    if hasattr(x, "detach"):                       # torch.Tensor
        import torch

        x = x.detach()
        if x.dtype != torch.float64:
            x = x.float()                          # bf16/fp16 widen exactly; NumPy has no bf16
        return x.double().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


CHUNK_ELEMENTS = 1 << 22   # errors are accumulated over chunks of 4 Mi elements (32 MiB fp64)


def _flat(x):
    """A flat view (no copy where possible) of a NumPy array or a detached CPU torch tensor."""
    if hasattr(x, "detach"):
        return x.detach().cpu().reshape(-1)
    import numpy as np

    return np.asarray(x).reshape(-1)


def _chunk64(chunk, buffer):
    """`chunk` (NumPy or torch, any float dtype) as float64: a view when it already is one,
    else widened into `buffer` (exact for bf16/fp16/fp32)."""
    import numpy as np

    if hasattr(chunk, "detach"):
        import torch

        if chunk.dtype == torch.float64:
            return chunk.numpy()
        torch.from_numpy(buffer).copy_(chunk)
        return buffer
    if chunk.dtype == np.float64:
        return chunk
    np.copyto(buffer, chunk, casting="unsafe")
    return buffer


def errors(out, ref, eps: float = REL_EPS) -> dict[str, float]:
    """{max_abs_err, max_rel_err, rel_l2_err} of `out` against the reference `ref` (see module).

    Shapes must match. A non-finite output gives non-finite errors (inf/nan), never a number
    that looks fine. An all-zero reference gives rel_l2_err = 0 if out is zero too, else inf.
    Work goes chunk by chunk through three reused float64 buffers, so a (B, H, T, T) attention
    matrix of hundreds of MB costs no float64 copy of itself and no fresh allocations.
    """
    import numpy as np

    out_shape, ref_shape = tuple(out.shape), tuple(ref.shape)
    if out_shape != ref_shape:
        raise ValueError(f"errors: out has shape {out_shape}, ref has shape {ref_shape}")
    y_all, r_all = _flat(out), _flat(ref)
    n = int(y_all.shape[0])
    if n == 0:
        raise ValueError("errors: empty arrays have no error")
    size = min(n, CHUNK_ELEMENTS)
    y_buf, r_buf, t_buf = (np.empty(size) for _ in range(3))
    chunks = [(i, min(i + CHUNK_ELEMENTS, n)) for i in range(0, n, CHUNK_ELEMENTS)]
    scale = 0.0
    for i, j in chunks:                                      # max |r|, without a temporary
        r = _chunk64(r_all[i:j], r_buf[:j - i])
        scale = max(scale, float(r.max()), -float(r.min()))
    floor = eps * scale
    max_abs = max_rel = 0.0
    diff_sq = ref_sq = 0.0
    for i, j in chunks:
        m = j - i
        y = y_buf[:m]
        widened = _chunk64(y_all[i:j], y)
        if widened is not y:                                 # a view of the caller's float64
            np.copyto(y, widened)                            # data: copy, y is changed in place
        r = _chunk64(r_all[i:j], r_buf[:m])
        t = t_buf[:m]
        ref_sq += float(np.dot(r, r))
        np.subtract(y, r, out=y)
        np.abs(y, out=y)                                     # |y - r|
        max_abs = max(max_abs, float(y.max()))
        diff_sq += float(np.dot(y, y))
        np.abs(r, out=t)
        if floor > 0:
            t += floor                                       # |r| + eps * max|r|
            np.divide(y, t, out=y)
        else:                                                # all-zero reference
            with np.errstate(divide="ignore", invalid="ignore"):
                np.divide(y, t, out=y)
            y[np.isnan(y)] = 0.0                             # 0/0: both exactly zero
        max_rel = max(max_rel, float(y.max()))
    if not (math.isfinite(max_abs) and math.isfinite(diff_sq)):   # max() hides a NaN
        bad = math.nan if math.isnan(diff_sq) else math.inf
        return {"max_abs_err": bad, "max_rel_err": bad, "rel_l2_err": bad}
    ref_norm, diff_norm = math.sqrt(ref_sq), math.sqrt(diff_sq)
    if ref_norm > 0:
        rel_l2 = diff_norm / ref_norm
    else:
        rel_l2 = 0.0 if diff_norm == 0 else math.inf
    return {"max_abs_err": max_abs, "max_rel_err": max_rel, "rel_l2_err": rel_l2}


def attention_errors(weights, weights_ref, eps: float = REL_EPS) -> dict[str, float]:
    """`errors` of the attention weights (B, H, Tq, Tk), keys prefixed `attn_`."""
    return {f"attn_{k}": v for k, v in errors(weights, weights_ref, eps).items()}


NULL_ERRORS = {"max_abs_err": None, "max_rel_err": None, "rel_l2_err": None}
NULL_ATTENTION_ERRORS = {f"attn_{k}": None for k in NULL_ERRORS}


def unit_roundoff(precision: str) -> float:
    """u of the format `precision` stores and rounds values to (bench.precision's table)."""
    return _precision.get(precision).unit_roundoff


def accumulate_roundoff(precision: str) -> float:
    """u of the accumulator `precision`'s dot products sum in (bench.precision's table)."""
    return _precision.get(precision).accumulate_roundoff


def expected_tolerance(precision: str, reduction: int, depth: int = 1,
                       model: str = "probabilistic", safety: float = SAFETY) -> float:
    """Bound on the norm-wise relative error: safety * depth * (u + g(K) * u_acc) (module doc).

    reduction: K, the longest dot-product length in the computation (>= 1);
    depth: rounding stages in sequence (matmuls, normalisations) the error goes through;
    model: "probabilistic" (g = sqrt(K), rounding errors of random sign: what is seen) or
    "worst" (g = K: the deterministic gamma_K bound, reached only by adversarial data).
    """
    if not isinstance(reduction, int) or reduction < 1:
        raise ValueError(f"reduction: expected an int >= 1, got {reduction!r}")
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth: expected an int >= 1, got {depth!r}")
    if model == "probabilistic":
        growth = math.sqrt(reduction)
    elif model == "worst":
        growth = float(reduction)
    else:
        raise ValueError(f"model: expected 'probabilistic' or 'worst', got {model!r}")
    return safety * depth * (unit_roundoff(precision) + growth * accumulate_roundoff(precision))


def within_tolerance(errs: dict, precision: str, reduction: int, depth: int = 1,
                     model: str = "probabilistic", safety: float = SAFETY,
                     prefix: str = "") -> tuple[bool, float]:
    """(rel_l2_err <= bound, bound) for an `errors` dict (or `attention_errors` with prefix)."""
    bound = expected_tolerance(precision, reduction, depth, model, safety)
    value = errs[f"{prefix}rel_l2_err"]
    ok = value is not None and math.isfinite(value) and value <= bound
    return ok, bound
