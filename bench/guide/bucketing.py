"""Padding vs length bucketing, measured: a set of variable-length sequences run through a
torch encoder in batches, padded to each batch's longest (with a key padding mask), in the
order given or sorted by length first. Analytic FLOPs: tfimpl.costs.training.padding_flops.

    compare(lengths, batch, cfg, ...) -> {"padded": {...}, "bucketed": {...}}
        each: seconds (median of `repeats` passes over all batches), computed and wasted FLOPs,
        and the padded positions' share
"""

from __future__ import annotations

import statistics
import time

import numpy as np

import tfimpl.torch as tt
from tfimpl.costs.training import padded_batches, padding_flops
from tfimpl.params import init_params, to_torch


def _batches(lengths, batch, bucketed, d_model, rng):
    """[(x (B, T_max, D), key_padding_mask (B, T_max))] for each batch, padded with zeros."""
    import torch

    out = []
    for group in padded_batches(lengths, batch, bucketed):
        t_max = max(group)
        x = np.zeros((len(group), t_max, d_model))
        mask = np.zeros((len(group), t_max), bool)
        for i, n in enumerate(group):
            x[i, :n] = rng.standard_normal((n, d_model))
            mask[i, :n] = True
        out.append((torch.from_numpy(x).float(), torch.from_numpy(mask)))
    return out


def compare(lengths: list[int], batch: int, cfg, repeats: int = 5, seed: int = 0,
            attn_impl: str = "explicit") -> dict:
    """Time and FLOPs of one pass over `lengths` (torch, fp32, inference), padded vs bucketed."""
    import torch

    p = to_torch(init_params("encoder", cfg, seed))
    result = {}
    for name, bucketed in (("padded", False), ("bucketed", True)):
        batches = _batches(lengths, batch, bucketed, cfg.d_model, np.random.default_rng(seed + 1))
        times = []
        with torch.inference_mode():
            for _ in range(repeats + 1):                      # the first pass is a warm-up
                start = time.perf_counter()
                for x, mask in batches:
                    tt.encoder(p, x, cfg, key_padding_mask=mask, attn_impl=attn_impl)
                times.append(time.perf_counter() - start)
        flops = padding_flops("encoder", cfg, lengths, batch, bucketed)
        positions = sum(x.shape[0] * x.shape[1] for x, _ in batches)
        result[name] = {"seconds": statistics.median(times[1:]), "samples_s": times[1:],
                        **flops, "padding_share": 1 - sum(lengths) / positions}
    return result
