"""Training memory: weights, gradients, optimizer state, activations saved for backward.

One training step (forward, backward, AdamW step) holds, beside the weights W (P parameters
at e bytes each):

    gradients         P·e                 one per parameter, same dtype (torch and tfimpl.numpy)
    optimizer_state   2·P·e_s             AdamW's two moments m, v (Loshchilov & Hutter 2019),
                                          in the parameters' dtype (e_s = e: 4 bytes for fp32)
                      + 4·n_tensors       torch keeps a float32 `step` scalar per parameter tensor
    saved             what the backward reads, alive from the forward until the backward
                      consumes it (below); the largest term at long sequences

Saved activations, per encoder layer, N = B·T tokens, counted as the two implementations keep
them (tests/tfimpl/test_training_memory.py measures them: torch's saved-tensor hooks, the NumPy
backward's caches; exact for fp32/fp64 without autocast):

  torch (tfimpl.torch under autograd; both norms save input, mean and rstd):
    explicit attention   8·N·D  layer input, q·1/√d_k, k, v (copied for the batched matmuls),
                                merged heads, both norm inputs, norm1's output (FFN input)
                         + B·H·T²  softmax output P           + T² bytes causal mask (bool)
                           B = 1: (B, H, T, d_k) views merge into (B·H, T, d_k) without a copy,
                           so the matmuls save the whole QKV buffer (3·N·D) for k and v: + N·D
    sdpa (fused)         8·N·D  the same with the q, k, v views of the one QKV buffer (3·N·D)
                                in place of q·1/√d_k, k, v, and the kernel's output = merged
                         + B·H·T·4  its float32 log-sum-exp (P never exists)
                            (float64 inputs: a float64 log-sum-exp, B·H·T·8)
    both                 + 2·N·d_ff  FFN hidden (GELU input) and activation (W_2's input);
                           ReLU saves its output, which is W_2's input: N·d_ff
                         + 4·N  norm statistics   + 3·D²  the concatenated W_Q|W_K|W_V
                           (torch.cat: a copy the GEMM saves to form ∂L/∂x, so not when its
                           input needs no gradient: a post-norm first layer on a given input)
  numpy (tfimpl.numpy.grad caches): 8·N·D (layer input (post-norm) or norm1's x̂ (pre-norm),
    q, k, v, merged heads, x̂ and output of norm1 / x̂ of norm2 ...) + B·H·T² + 2·N·d_ff + 2·N (r)

Given inputs are not counted (they exist before the call). Stacks: L layers; the first layer's
input is given, later ones are the previous output (post-norm keeps it; pre-norm keeps x̂ and
the normed copy instead, which are already counted); a final norm adds N·D + its stats. The
BERT model adds the embedding norm (N·D + stats), the token-type ids made inside (N int64)
and the pooler (the last hidden state N·D, which its linear saves a view of, and tanh's B·D).

Checkpointing each layer (torch.utils.checkpoint): the forward keeps only each layer's input;
the backward recomputes one layer at a time, so the saved set at its peak is the L inputs plus
one layer's full set: memory ∝ 1 layer instead of L, for one more forward of work.

Korthikanti et al. 2022 (§4.1, "Reducing Activation Recomputation in Large Transformer
Models"): activations per layer = s·b·h·(34 + 5·a·s/h) bytes, their assumptions: 16-bit
activations (2 bytes), 1-byte dropout masks (attention and two residual ones), no tensor or
sequence parallelism; it counts the (B, H, T, T) softmax and dropout outputs, not the weights.
Our blocks have no dropout, and our runs are fp32, so ours differs: `korthikanti_bytes` gives
their number for comparison, not as a prediction of ours.
"""

from __future__ import annotations

from tfimpl.config import ModelConfig
from tfimpl.costs._common import MEMORY_BLOCKS, check_cfg, check_choice, check_positive
from tfimpl.costs.params import param_counts

BACKENDS = ("numpy", "torch")
ATTENTION = ("explicit", "sdpa")
LSE_BYTES = 4                   # the fused kernel's log-sum-exp: float32 (or the input's dtype if wider)
STEP_COUNTER_BYTES = 4          # torch.optim.AdamW's state["step"]: a float32 scalar tensor
INDEX_BYTES = 8                 # int64 token-type ids


def korthikanti_bytes(cfg: ModelConfig, batch: int, seq_len: int, n_layers: int | None = None) -> int:
    """s·b·h·L·(34 + 5·a·s/h) bytes (16-bit activations, dropout masks; Korthikanti §4.1)."""
    s, b, h, a = seq_len, batch, cfg.d_model, cfg.n_heads
    layers = cfg.n_layers if n_layers is None else n_layers
    return s * b * h * layers * 34 + 5 * a * s * s * b * layers


def _layer_saved(cfg, b, t, e, backend, attn_impl, causal) -> dict[str, int]:
    """Saved bytes of one encoder layer, its input included (see the module docstring)."""
    n, d = b * t, cfg.d_model
    ffn_tensors = 1 if backend == "torch" and cfg.activation == "relu" else 2
    parts = {"hidden_states": 8 * n * d * e, "ffn": ffn_tensors * n * cfg.d_ff * e}
    if backend == "torch":
        parts["norm_stats"] = 4 * n * e
        parts["qkv_weight_copy"] = 3 * d * d * e
        if attn_impl == "sdpa":
            parts["attn_stats"] = b * cfg.n_heads * t * max(e, LSE_BYTES)
        else:
            parts["attn_matrix"] = b * cfg.n_heads * t * t * e
            parts["causal_mask"] = t * t if causal else 0
            if b == 1:                 # k, v read in place from the QKV buffer (3·N·D) instead
                parts["hidden_states"] += n * d * e    # of copied (2·N·D): one N·D more
    else:
        parts["norm_stats"] = 2 * n * e
        parts["attn_matrix"] = b * cfg.n_heads * t * t * e
    return parts


def _given_input_in_layer(cfg, backend) -> bool:
    """Is the layer's input among the tensors it saves (so a given input must be taken off)?"""
    return backend == "torch" or not cfg.norm_first


def saved_activation_bytes(block: str, cfg: ModelConfig, batch: int, seq_len: int,
                           bytes_per_element: int, backend: str = "torch",
                           attn_impl: str = "explicit", causal: bool = False,
                           checkpoint: bool = False,
                           input_requires_grad: bool = False) -> dict[str, int]:
    """Bytes the backward needs that the forward allocates (given inputs and weights not
    counted), by component; key "total". block: encoder_layer | encoder | model.
    input_requires_grad: the given x (B, T, D) needs a gradient too (bench's forward+backward
    mode); a training step's data does not (the default).

    checkpoint=True (torch, stacks): the forward keeps the layer inputs only; key "total" is
    then the saved set at the backward's worst moment (the inputs + one layer recomputed)."""
    check_cfg(cfg)
    check_choice("block", block, ("encoder_layer", "encoder", "model"))
    check_choice("backend", backend, BACKENDS)
    check_choice("attn_impl", attn_impl, ATTENTION)
    check_positive("batch", batch)
    check_positive("seq_len", seq_len)
    b, t, e, n, d = batch, seq_len, bytes_per_element, batch * seq_len, cfg.d_model
    layers = 1 if block == "encoder_layer" else cfg.n_layers
    stats = (2 if backend == "torch" else 1) * n * e
    layer = _layer_saved(cfg, b, t, e, backend, attn_impl, causal)
    parts = {key: layers * value for key, value in layer.items()}
    given_x = block != "model" and _given_input_in_layer(cfg, backend)
    if given_x:
        parts["hidden_states"] -= n * d * e                        # the call's x exists already
    if (backend == "torch" and block != "model" and not cfg.norm_first
            and not input_requires_grad):
        parts["qkv_weight_copy"] -= 3 * d * d * e                  # first GEMM: no ∂L/∂x needed
    if block != "encoder_layer" and cfg.final_norm:
        parts["final_norm"] = n * d * e + stats
    if block == "model":
        parts["embeddings"] = n * d * e + stats + n * INDEX_BYTES
        parts["pooler"] = n * d * e + b * d * e
    if checkpoint:
        if block == "encoder_layer":
            raise ValueError("checkpoint applies to stacks (block encoder or model)")
        one = sum(layer.values())
        inputs = (layers - (1 if given_x else 0)) * n * d * e
        parts = {"layer_inputs": inputs, "one_layer_recomputed": one,
                 **{k: parts[k] for k in ("final_norm", "embeddings", "pooler") if k in parts}}
    return {**parts, "total": sum(parts.values())}


def _kind(block: str) -> str:
    return "bert" if block == "model" else block


def training_memory(block: str, cfg: ModelConfig, batch: int, seq_len: int,
                    bytes_per_element: int, backend: str = "torch", attn_impl: str = "explicit",
                    causal: bool = False, checkpoint: bool = False,
                    input_requires_grad: bool = False) -> dict[str, int]:
    """{weights, gradients, optimizer_state, saved_activations, korthikanti_activations,
    step_total}: one AdamW training step's memory by kind (bytes).

    step_total = gradients + optimizer_state + saved_activations: what a step holds beyond the
    weights at its worst moment, less the backward's transient gradients (see
    tfimpl.costs.memory._backward_extra), which predicted_peak_bytes adds as an upper bound.
    """
    check_choice("block", block, MEMORY_BLOCKS)
    e = bytes_per_element
    counts = param_counts(_kind(block), cfg)
    n_params = counts["total"]
    n_tensors = _param_tensors(block, cfg)
    state = 2 * n_params * e + (STEP_COUNTER_BYTES * n_tensors if backend == "torch" else 0)
    saved = saved_activation_bytes(block, cfg, batch, seq_len, e, backend, attn_impl, causal,
                                   checkpoint, input_requires_grad)["total"]
    layers = 1 if block == "encoder_layer" else cfg.n_layers
    return {"weights": n_params * e, "gradients": n_params * e, "optimizer_state": state,
            "saved_activations": saved,
            "korthikanti_activations": korthikanti_bytes(cfg, batch, seq_len, layers),
            "step_total": n_params * e + state + saved}


def _param_tensors(block: str, cfg: ModelConfig) -> int:
    """Number of parameter tensors (weights and biases apart), from tfimpl.params' layout."""
    from tfimpl.params import param_shapes

    return len(param_shapes(_kind(block), cfg))


def padded_batches(lengths: list[int], batch: int, bucketed: bool) -> list[list[int]]:
    """The sequences' lengths grouped into batches of `batch`: in the given order (padding to
    each batch's longest), or sorted first (length bucketing: similar lengths together)."""
    check_positive("batch", batch)
    order = sorted(lengths) if bucketed else list(lengths)
    return [order[i:i + batch] for i in range(0, len(order), batch)]


def padding_flops(block: str, cfg: ModelConfig, lengths: list[int], batch: int,
                  bucketed: bool) -> dict[str, int]:
    """{useful, computed, wasted} forward FLOPs of running `lengths` in batches of `batch`.

    computed = Σ_batches forward_flops(block, B_i, max(batch_i)) (every sequence padded to its
    batch's longest); useful = Σ_sequences forward_flops(block, 1, length); wasted = the rest:
    the padded positions' projections and feed-forward (∝ padding) and their rows and columns
    of the attention matrix (∝ T_max² - T²).
    """
    from tfimpl.costs.flops import forward_flops

    if not lengths or any(not isinstance(n, int) or n <= 0 for n in lengths):
        raise ValueError(f"lengths must be positive ints, got {lengths!r}")
    computed = sum(forward_flops(block, cfg, len(group), max(group))["total"]
                   for group in padded_batches(lengths, batch, bucketed))
    useful = sum(forward_flops(block, cfg, 1, n)["total"] for n in lengths)
    return {"useful": useful, "computed": computed, "wasted": computed - useful}
