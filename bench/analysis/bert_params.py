"""BERT-base's parameters counted four ways, at report time (no 440 MB of weights allocated).

    analytic      tfimpl.costs.param_counts("bert", cfg)["total"]   (the formulas)
    numpy         our NumPy BERT (tfimpl.numpy.bert) run once at T = 2 on the layout's arrays,
                  each a zero-stride view (np.broadcast_to: one element of memory), then
                  counted: the arrays the NumPy model actually ran on
    torch         our PyTorch BERT (tfimpl.torch.bert) run once on "meta" tensors of the same
                  layout (shapes and dtypes, no storage), then counted
    huggingface   transformers.BertModel(BertConfig(...)) built on the meta device, offline
                  (no download: a config, not pretrained weights); None without transformers

The expected total is the guide's 109,482,240 = embeddings 23,837,184 + 12 x 7,087,872 per
layer + pooler 590,592; weights' bytes = total x bytes per element (4 in fp32: ~438 MB, the
guide's "~440 MB"; 2 in bf16).

Tests: tests/analysis/test_verdicts.py.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np

from tfimpl import costs, loaders, params
from tfimpl.config import PRESETS
from tfimpl.numpy.bert import bert as numpy_bert
from tfimpl.torch.bert import bert as torch_bert

EXPECTED_TOTAL = 109_482_240
BYTES = {"fp32": 4, "bf16": 2}
PRESET = "bert-base"


def count_numpy(cfg) -> int:
    """Our NumPy model's parameters: the layout as zero-stride arrays, run once, then counted."""
    one = np.zeros((), np.float32)
    p = {name: np.broadcast_to(one, shape) for name, shape in
         params.param_shapes("bert", cfg).items()}
    numpy_bert(p, np.zeros((1, 2), np.int64), cfg)                # raises if the layout is wrong
    return params.count(p)


def count_torch(cfg) -> int:
    """Our PyTorch model's parameters: meta tensors of the layout, run once, then counted."""
    import torch

    p = {name: torch.empty(shape, device="meta") for name, shape in
         params.param_shapes("bert", cfg).items()}
    torch_bert(p, torch.zeros((1, 2), dtype=torch.long, device="meta"), cfg)
    return params.count(p)


def count_huggingface(cfg) -> int | None:
    """HuggingFace BertModel with the same sizes, built on the meta device (None without it)."""
    try:
        import torch
        from transformers import BertModel
    except ImportError:
        return None
    config = loaders.hf_bert_config(cfg)
    with torch.device("meta"):
        model = BertModel(config)
    return sum(p.numel() for p in model.parameters())


def _safe(count_fn, cfg) -> tuple[int | None, str | None]:
    try:
        return int(count_fn(cfg)), None
    except Exception as exc:          # a missing optional package must not cost the report
        return None, f"{type(exc).__name__}: {exc}"


def bert_base_counts() -> dict:
    """{"counts": {way: int|None}, "errors": {way: str}, "breakdown": {...}, "bytes": {...},
    "expected": 109482240, "agree": bool} for the bert-base preset (counted once a process)."""
    return copy.deepcopy(_counts())


@functools.lru_cache(maxsize=1)
def _counts() -> dict:
    cfg = PRESETS[PRESET]
    analytic = costs.param_counts("bert", cfg)
    counts, errors = {"analytic": int(analytic["total"])}, {}
    for way, fn in (("numpy", count_numpy), ("torch", count_torch),
                    ("huggingface", count_huggingface)):
        counts[way], err = _safe(fn, cfg)
        if err:
            errors[way] = err
    total = counts["analytic"]
    return {
        "model": PRESET, "counts": counts, "errors": errors, "expected": EXPECTED_TOTAL,
        "agree": all(v == EXPECTED_TOTAL for v in counts.values()),
        "breakdown": {"embeddings": int(analytic["embeddings"]),
                      "per_layer": int(analytic["per_layer"]), "layers": int(analytic["layers"]),
                      "pooler": int(analytic["pooler"])},
        "bytes": {dt: total * b for dt, b in BYTES.items()},
    }


def fmt_count(n) -> str:
    return "—" if n is None or (isinstance(n, float) and math.isnan(n)) else f"{int(n):,}"
