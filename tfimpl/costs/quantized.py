"""int8 dynamic quantization: bytes of the quantized weights, and int8 MACs apart from fp32 FLOPs.

Which weights are quantized: every Linear weight matrix (the standard dynamic recipe: the q, k,
v, o projections and ff1, ff2 of each layer, and BERT's pooler when the whole model is
quantized: torch's quantize_dynamic and ONNX Runtime's quantize_dynamic take every Linear /
MatMul with a constant weight; `pooler=False` for tfimpl's own layer functions, which have none).
Biases, layer norms and embedding tables stay float32.

Bytes of one quantized Linear W: (out, in) under a scheme (`SCHEMES`):

    int8 payload      out·in                         1 byte per weight
    scales            (out or 1)·4                   float32, per output channel or per tensor
    zero points       (out or 1)·z                   z = 1 (int8) where the format stores one

    per_channel_symmetric  tfimpl.numpy/torch.quantized: out scales, no zero point (symmetric)
    per_tensor             torch quantize_dynamic's default qconfig and ONNX Runtime's
                           quantize_dynamic(per_channel=False): one scale and one zero point

fp32 stores the same matrices at 4·out·in bytes, so the ratio is 4·out·in / (out·in + small):
4× less the scales' share (for BERT-base's 768×768 per-channel: 768·4/589,824 = 0.5%).

int8 MACs: each quantized Linear does batch·rows·in·out multiply-adds in int8 × int8 → int32
(rows = seq_len, 1 for the pooler), i.e. half the fp32 FLOPs tfimpl.costs.forward_flops gives
that component; attention's QKᵀ and PV (attn_scores, attn_weighted_sum) stay float32 FLOPs.
"""

from __future__ import annotations

from tfimpl.config import ModelConfig
from tfimpl.costs._common import check_cfg, check_choice
from tfimpl.costs.flops import forward_flops

SCHEMES = {"per_channel_symmetric": (True, 0), "per_tensor": (False, 1)}   # per-row?, zp bytes
QUANTIZED_COMPONENTS = ("q_proj", "k_proj", "v_proj", "o_proj", "ffn1", "ffn2", "pooler")
KINDS = ("ffn", "encoder_layer", "encoder", "model")


def quantized_linears(kind: str, cfg: ModelConfig, pooler: bool = True,
                      attention: bool = True) -> list[tuple[int, int]]:
    """(out, in) of every Linear weight `kind` quantizes, in order (attention=False: the FFN's
    only, as torch.nn.TransformerEncoderLayer under quantize_dynamic)."""
    check_cfg(cfg)
    check_choice("kind", kind, KINDS)
    d, f = cfg.d_model, cfg.d_ff
    ffn = [(f, d), (d, f)]
    layer = [(d, d)] * (4 if attention else 0) + ffn
    if kind == "ffn":
        return ffn
    if kind == "encoder_layer":
        return layer
    out = layer * cfg.n_layers
    return out + [(d, d)] if kind == "model" and pooler else out


def int8_weight_bytes(kind: str, cfg: ModelConfig, scheme: str = "per_channel_symmetric",
                      pooler: bool = True, attention: bool = True) -> dict[str, int]:
    """Bytes of `kind`'s quantized Linear weights: int8, scales, zero_points and total."""
    check_choice("scheme", scheme, tuple(SCHEMES))
    per_row, zp_bytes = SCHEMES[scheme]
    linears = quantized_linears(kind, cfg, pooler, attention)
    payload = sum(o * i for o, i in linears)
    n_scales = sum(o if per_row else 1 for o, _ in linears)
    out = {"int8": payload, "scales": 4 * n_scales, "zero_points": zp_bytes * n_scales}
    out["total"] = sum(out.values())
    return out


def fp32_weight_bytes(kind: str, cfg: ModelConfig, pooler: bool = True,
                      attention: bool = True, element_bytes: int = 4) -> int:
    """Bytes of the same Linear weight matrices stored as float32 (or `element_bytes` wide)."""
    return element_bytes * sum(o * i for o, i in quantized_linears(kind, cfg, pooler, attention))


def int8_macs(kind: str, cfg: ModelConfig, batch: int, seq_len: int,
              attention: bool = True) -> dict[str, int]:
    """{"int8_macs": int8 multiply-adds, "fp32_flops": what stays float32 (attention matmuls,
    and the projections with attention=False)}."""
    parts = forward_flops(kind, cfg, batch, seq_len)
    keys = QUANTIZED_COMPONENTS if attention else ("ffn1", "ffn2")
    int8 = sum(parts.get(k, 0) for k in keys) // 2
    fp32 = parts["matmul"] - 2 * int8
    return {"int8_macs": int8, "fp32_flops": fp32}
