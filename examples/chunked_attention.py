"""A user's attention kernel plugged into tfbench from outside the package.

    softmax(QKᵀ/√d_k)·V computed `CHUNK` query rows at a time: each chunk's (B, H, C, T) scores
    are made, soft-maxed in place and multiplied by V before the next chunk starts, so the full
    (B, H, T, T) matrix never exists. Same FLOPs as the textbook attention (every score is still
    computed once), memory O(T·C) instead of O(T²).

Run it beside the built-ins (from the repository root, so `examples` is importable):

    python -m bench run examples/chunked_attention.yaml

The config names it as `impl: "examples.chunked_attention:IMPL"`. This file is everything the
plugin needs: the kernel, how a case builds it, what it can run, and its own cost model (FLOPs
from tfimpl.costs, since it does the same matmuls; peak memory and working set from the chunked
schedule below, because tfimpl.costs does not know this kernel). See docs/PLUGINS.md.
"""

from __future__ import annotations

import math

from bench.impls import Impl, Prepared
from bench.impls.common import torch_device, torch_inputs, torch_precision, torch_runner

CHUNK = 128            # query rows per chunk


def chunked_attention(q, k, v, chunk: int = CHUNK):
    """softmax(q·kᵀ/√d_k)·v, `chunk` query rows at a time.  q, k, v: (B, H, T, d_k)."""
    import torch

    B, H, T, dk = q.shape
    out = torch.empty_like(q)                                    # (B, H, T, d_k)
    kt = k.transpose(-2, -1)                                     # (B, H, d_k, T), a view
    scale = 1.0 / math.sqrt(dk)
    for start in range(0, T, chunk):
        rows = slice(start, min(start + chunk, T))
        s = torch.matmul(q[:, :, rows] * scale, kt)              # (B, H, C, T)
        s -= s.amax(dim=-1, keepdim=True)                        # stable soft-max, in place
        s.exp_()
        s /= s.sum(dim=-1, keepdim=True)
        out[:, :, rows] = torch.matmul(s, v)                     # (B, H, C, d_k)
        del s
    return out


def build(case) -> Prepared:
    device = torch_device(case)
    dtype, _ = torch_precision(case)
    inputs = torch_inputs(case, dtype, device, requires_grad=False)
    q, k, v = inputs["q"], inputs["k"], inputs["v"]
    fn, output = torch_runner(case, lambda: chunked_attention(q, k, v), [])
    return Prepared(fn=fn, output=output, backend="torch", device=case.device)


def costs(case, cfg) -> dict:
    """Peak bytes above the inputs and the working set of the chunked schedule, e bytes each:

        out                  B·H·T·d_k   allocated first, lives throughout
        scores of one chunk  B·H·C·T     the largest temporary
        + the larger of      B·H·C·d_k   (the scaled q chunk while Q·Kᵀ runs, or the chunk's
                                          output before it is copied into `out`)
        (the row max and sum, B·H·C each, overlap with neither of those: small, not counted)

    Working set: one chunk's scores and K, V (what must stay in cache for a chunk).
    FLOPs are left to tfimpl.costs (the same 4·B·H·T²·d_k as the textbook attention).
    """
    from bench.plan import bytes_per_element

    e = bytes_per_element(case.precision)
    B, H, T, dk = case.batch, case.n_heads, case.seq_len, case.d_model // case.n_heads
    C = min(CHUNK, T)
    peak = e * (B * H * T * dk + B * H * C * T + B * H * C * dk)
    working_set = e * (B * H * C * T + 2 * B * H * T * dk)
    return {"peak_bytes_predicted": int(peak), "working_set_bytes": int(working_set)}


IMPL = Impl(
    name="chunked", description=f"user plugin: attention {CHUNK} query rows at a time (torch)",
    backend="torch", blocks=("attention",), precisions=("fp64", "fp32", "bf16"),
    modes=("forward",), devices=("cpu", "cuda"), attention="chunked", exposes_weights=False,
    build=build, costs=costs)
