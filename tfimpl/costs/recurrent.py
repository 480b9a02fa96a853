"""The recurrent layers' costs: LSTM and GRU (tfimpl.numpy.recurrent, tfimpl.torch.recurrent).

With input width I, hidden width h, G = 4h gate rows (LSTM) or 3h (GRU), batch B, T steps,
L layers (layer 0 reads I, the others h), bytes per element e:

parameters (torch.nn.LSTM / nn.GRU's count, `sum(p.numel())`): per layer
    W_ih (G, I) + W_hh (G, h) + b_ih (G) + b_hh (G)  =  G·(I + h) + 2G
    LSTM 4h(I + h) + 8h,   GRU 3h(I + h) + 6h                 -> 8h² + 8h at I = h: O(d²)
FLOPs of a forward (2·m·n·k per matmul, as tfimpl.costs.flops and FlopCounterMode count):
    input projection   x W_ihᵀ for all T steps at once      2·B·T·I·G
    recurrence         h_{t-1} W_hhᵀ, one per step          2·B·h·G per step
                       T steps with an initial state, T − 1 without (h₀ = 0: skipped)
    per step           2·B·(I + h)·G;  per sequence ≈ 2·B·T·(I + h)·G = 16·B·T·h² (LSTM, I = h)
    -> O(n·d²) work in n sequential steps; attention is O(n²·d) in one (Vaswani et al. 2017,
       Table 1: per layer self-attention n²·d, recurrent n·d²; sequential operations 1 vs n)
    backward: every matmul twice more (dW and the gradient of its other operand), 2x forward;
    element-wise work (gate non-linearities, the cell update), per step and element of h:
    LSTM 2 bias adds of G + 4 activations + 3 (c_t) + 2 (h_t) = 17h·B; GRU 14h·B; plus the
    input projection's bias, B·T·G. Not matmul work; kept apart as in tfimpl.costs.flops.
memory:
    state (inference)  what a step carries to the next: h and c (LSTM), h (GRU), per layer
                       L·B·h·e (GRU), 2·L·B·h·e (LSTM): O(B·d), independent of n; attention's
                       counterpart is a KV cache of 2·L·B·n·d·e (tfimpl.costs.kv_cache_bytes)
                       and the n×n scores, B·H·n²·e
    output             B·T·h·e: O(n)
    saved for BPTT     what tfimpl.numpy.grad.recurrent keeps per layer: outputs h_t (h), cells
                       c_t (h) and the four gates (4h) for the LSTM = 6h; outputs and r, z, n,
                       a_hn for the GRU = 5h; per token: L·B·T·(6h | 5h)·e, O(n·d) per layer
peak above the inputs and weights (`recurrent_peak_bytes`), as the code allocates:
    numpy forward      layer 0: a_x (G, bias added in place) + out (h); layer k > 0 also holds
                       layer k−1's out: (G + 2h)·B·T·e
    torch forward      x W_ihᵀ + b_ih has a temporary: 2G at the projection (+ h for k > 0),
                       then a_x, the T step outputs and their stack: max(2G + [k>0]·h, G + 3h)
    forward+backward   saved activations + the backward's da (G) and ∂x (I) over B·T + the
                       weight gradients; for torch an upper estimate (autograd also saves each
                       gate's output and the cell's tanh: 8h per token per layer)
A few (B, G) per-step temporaries (under 4·B·G·e) are added to every phase.
"""

from __future__ import annotations

from tfimpl.costs._common import check_choice, check_positive

KINDS = ("lstm", "gru")
GATES = {"lstm": 4, "gru": 3}
ELEMENTWISE_PER_STEP = {"lstm": 17, "gru": 14}   # per element of h (see above)
SAVED_PER_TOKEN = {"numpy": {"lstm": 6, "gru": 5}, "torch": {"lstm": 8, "gru": 8}}
STEP_TEMPORARIES = 4                              # (B, G) temporaries per step, at most


def _check(kind, *sizes):
    check_choice("kind", kind, KINDS)
    for i, size in enumerate(sizes):
        check_positive(f"size {i}", size)


def gate_rows(kind: str, hidden: int) -> int:
    """G: the rows of W_ih and W_hh (4h for the LSTM's i, f, g, o; 3h for the GRU's r, z, n)."""
    return GATES[kind] * hidden


def recurrent_params(kind: str, input_size: int, hidden: int, n_layers: int = 1) -> dict:
    """{"weight_ih", "weight_hh", "bias", "per_layer": [...], "total"} as torch.nn counts them."""
    _check(kind, input_size, hidden, n_layers)
    g = gate_rows(kind, hidden)
    per_layer = [g * ((input_size if k == 0 else hidden) + hidden) + 2 * g
                 for k in range(n_layers)]
    w_ih = g * input_size + (n_layers - 1) * g * hidden
    return {"weight_ih": w_ih, "weight_hh": n_layers * g * hidden, "bias": n_layers * 2 * g,
            "per_layer": per_layer, "total": sum(per_layer)}


def recurrent_step_flops(kind: str, batch: int, input_size: int, hidden: int) -> dict:
    """One step of one layer: {"input_proj", "recurrent", "matmul", "elementwise"}."""
    _check(kind, batch, input_size, hidden)
    g = gate_rows(kind, hidden)
    proj, rec = 2 * batch * input_size * g, 2 * batch * hidden * g
    return {"input_proj": proj, "recurrent": rec, "matmul": proj + rec,
            "elementwise": batch * (ELEMENTWISE_PER_STEP[kind] * hidden + g)}


def recurrent_flops(kind: str, batch: int, seq_len: int, input_size: int, hidden: int,
                    n_layers: int = 1, initial_state: bool = False) -> dict:
    """A forward over the sequence: {"input_proj", "recurrent", "matmul", "elementwise",
    "total", "sequential_steps"}; matmul and total are equal (element-wise work apart)."""
    _check(kind, batch, seq_len, input_size, hidden, n_layers)
    g = gate_rows(kind, hidden)
    rec_steps = seq_len if initial_state else seq_len - 1
    proj = sum(2 * batch * seq_len * (input_size if k == 0 else hidden) * g
               for k in range(n_layers))
    rec = n_layers * rec_steps * 2 * batch * hidden * g
    elementwise = n_layers * seq_len * batch * (ELEMENTWISE_PER_STEP[kind] * hidden + g)
    return {"input_proj": proj, "recurrent": rec, "matmul": proj + rec,
            "elementwise": elementwise, "total": proj + rec,
            "sequential_steps": n_layers * seq_len}


def recurrent_backward_flops(kind: str, batch: int, seq_len: int, input_size: int,
                             hidden: int, n_layers: int = 1, initial_state: bool = False,
                             state_grad: bool = True, input_grad: bool = True) -> dict:
    """BPTT: each forward matmul twice (∂W and ∂ of its other operand), the input's included;
    an initial state that needs no gradient saves the first step's ∂h₀ product per layer, an
    input that needs none (a training step's data) layer 0's x-gradient, 2·B·T·I·G."""
    fwd = recurrent_flops(kind, batch, seq_len, input_size, hidden, n_layers, initial_state)
    out = {k: 2 * v for k, v in fwd.items() if k != "sequential_steps"}
    if not input_grad:
        saved = 2 * batch * seq_len * input_size * gate_rows(kind, hidden)
        for key in ("input_proj", "matmul", "total"):
            out[key] -= saved
    if initial_state and not state_grad:
        saved = n_layers * 2 * batch * hidden * gate_rows(kind, hidden)
        for key in ("recurrent", "matmul", "total"):
            out[key] -= saved
    return out


def recurrent_state_bytes(kind: str, batch: int, hidden: int, n_layers: int, e: int) -> int:
    """The state one step hands the next, all layers: h (and c): O(B·d), not O(n)."""
    _check(kind, batch, hidden, n_layers, e)
    return (2 if kind == "lstm" else 1) * n_layers * batch * hidden * e


def recurrent_saved_bytes(kind: str, batch: int, seq_len: int, hidden: int, n_layers: int,
                           e: int, backend: str = "numpy") -> int:
    """What the backward keeps from the forward, all layers (the layer-0 input not counted)."""
    _check(kind, batch, seq_len, hidden, n_layers, e)
    per_token = SAVED_PER_TOKEN[check_choice("backend", backend, ("numpy", "torch"))][kind]
    return n_layers * batch * seq_len * per_token * hidden * e


def recurrent_peak_bytes(kind: str, batch: int, seq_len: int, input_size: int, hidden: int,
                         n_layers: int, e: int, backend: str = "numpy",
                         mode: str = "forward") -> int:
    """Bytes above the weights and inputs at the call's worst moment (module docstring)."""
    _check(kind, batch, seq_len, input_size, hidden, n_layers, e)
    check_choice("backend", backend, ("numpy", "torch"))
    check_choice("mode", mode, ("forward", "forward+backward"))
    g, n = gate_rows(kind, hidden), batch * seq_len
    step = STEP_TEMPORARIES * batch * g * e
    if backend == "numpy":
        fwd = (g + (2 if n_layers > 1 else 1) * hidden) * n * e
    else:
        more = hidden if n_layers > 1 else 0
        fwd = max(2 * g + more, g + 3 * hidden + more) * n * e
    if mode == "forward":
        return fwd + step
    saved = recurrent_saved_bytes(kind, batch, seq_len, hidden, n_layers, e, backend)
    grads = recurrent_params(kind, input_size, hidden, n_layers)["total"] * e
    return saved + (g + max(input_size, hidden) + hidden) * n * e + grads + fwd + step


def recurrent_working_set_bytes(kind: str, batch: int, seq_len: int, input_size: int, hidden: int,
                      n_layers: int, e: int) -> int:
    """Weights, input, the input projection and the output: what a forward touches."""
    params = recurrent_params(kind, input_size, hidden, n_layers)["total"]
    n = batch * seq_len
    return (params + n * (input_size + gate_rows(kind, hidden) + hidden)) * e
