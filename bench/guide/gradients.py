"""Gradient flow at initialisation: per-layer gradient norms through a deep encoder stack.

Four stacks of the same L layers and weights, each sub-layer f (attention, then feed-forward):
    post-norm + residual   x ← LN(x + f(x))          (the 2017 paper, BERT)
    pre-norm  + residual   x ← x + f(LN(x))          (GPT-2; a final LN after the stack)
    post-norm, no residual x ← LN(f(x))
    pre-norm,  no residual x ← f(LN(x))              (final LN too)
Loss L = Σ out ⊙ G for one fixed random G (unit-variance entries), so ∂L/∂out = G and every
stack starts its backward from the same gradient. The table gives, per layer l, the norm of
∂L/∂x_l (x_l the input of layer l, RMS over its entries) and of the layer's parameter gradient
(√Σ_θ ‖∂L/∂θ‖²), from tfimpl.numpy.grad; torch autograd on the same weights (tfimpl.torch's
blocks; without residuals the same blocks composed without the additions) checks every number:
each input gradient relative to its own largest entry, each parameter gradient relative to the
largest parameter gradient of its layer. (Without residuals the tokens collapse toward one
vector with depth, the scores become nearly constant, and the query/key gradients are then
cancellation noise far below the layer's other gradients, so they cannot be compared to
themselves; the key bias's gradient is exactly zero in theory, noise in practice, likewise.)

Why: with the identity path, ∂L/∂x_l = ∂L/∂x_{l+1} + (branch terms), so the gradient reaches the
first layer undiminished whatever the branches do; without it, it is multiplied by every
layer's Jacobian on the way down and shrinks (or grows) geometrically with depth.

Tests: tests/guide/test_gradients_guide.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfimpl import params as P
from tfimpl.config import ModelConfig
from tfimpl.numpy.grad.layers import encoder_backward, encoder_forward
from tfimpl.torch.attention import multi_head_attention
from tfimpl.torch.feed_forward import feed_forward
from tfimpl.torch.layer_norm import layer_norm
from tfimpl.torch.layers import encoder_layer

GRADIENT_FLOW_FILE = "gradient_flow.png"
INITS = {"bert": "BERT's init: weights N(0, 0.02²), biases N(0, 0.02²), LN gains 1 + N(0, 0.02²)",
         "xavier": "Xavier init: weights N(0, 2/(fan_in + fan_out)), biases 0, LN gains 1"}
VARIANTS = (("post-norm", False, True), ("pre-norm", True, True),
            ("post-norm, no residual", False, False), ("pre-norm, no residual", True, False))


@dataclass(frozen=True)
class Flow:
    """One stack's per-layer gradient norms (index l = layer l, input side first)."""

    name: str
    norm_first: bool
    residual: bool
    input_rms: np.ndarray          # (L,)  RMS of ∂L/∂x_l over its entries
    param_norm: np.ndarray         # (L,)  √Σ_θ ‖∂L/∂θ‖² over layer l's parameters
    torch_rel_err: float           # max |ours − torch| / scale (see the module docstring)
    input_grads: np.ndarray        # (L, B, T, D)  ∂L/∂x_l, ours
    torch_input_grads: np.ndarray  # (L, B, T, D)  the same by torch autograd


def stack_config(n_layers: int, d_model: int, n_heads: int, d_ff: int, norm_first: bool) -> ModelConfig:
    return ModelConfig(d_model=d_model, n_heads=n_heads, d_ff=d_ff, n_layers=n_layers,
                       norm_first=norm_first, final_norm=norm_first, layer_norm_eps=1e-5)


def init_weights(init: str, cfg: ModelConfig, seed: int) -> dict[str, np.ndarray]:
    """Seeded encoder weights: "bert" (tfimpl.params.init_params) or "xavier" (see INITS)."""
    if init == "bert":
        return P.init_params("encoder", cfg, seed=seed)
    if init != "xavier":
        raise ValueError(f"init must be one of {tuple(INITS)}, got {init!r}")
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in P.param_shapes("encoder", cfg).items():
        if len(shape) == 2:                                              # (out, in)
            weights[name] = rng.standard_normal(shape) * np.sqrt(2.0 / (shape[0] + shape[1]))
        else:
            weights[name] = np.ones(shape) if name.endswith("weight") else np.zeros(shape)
    return weights


def gradient_flow(n_layers: int = 24, d_model: int = 32, n_heads: int = 4, d_ff: int = 128,
                  batch: int = 2, seq_len: int = 8, seed: int = 0, init: str = "bert") -> list[Flow]:
    """The four variants of VARIANTS on the same seeded weights and input."""
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((batch, seq_len, d_model))                   # (B, T, D)
    grad_out = rng.standard_normal(x.shape)                              # (B, T, D)  G
    flows = []
    for name, norm_first, residual in VARIANTS:
        cfg = stack_config(n_layers, d_model, n_heads, d_ff, norm_first)
        flows.append(_one_flow(name, init_weights(init, cfg, seed), x, grad_out, cfg, residual))
    return flows


def _layer_param_norms(grads: dict, n_layers: int) -> np.ndarray:
    sq = np.zeros(n_layers)
    for name, g in grads.items():
        if name.startswith("layers."):
            sq[int(name.split(".")[1])] += float(np.sum(np.square(g)))
    return np.sqrt(sq)


def _one_flow(name, params, x, grad_out, cfg, residual) -> Flow:
    _, cache = encoder_forward(params, x, cfg, residual=residual)
    inputs = {}
    _, grads = encoder_backward(cache, grad_out, cfg,
                                on_layer=lambda i, g: inputs.__setitem__(i, g))
    input_grads = [inputs[i] for i in range(cfg.n_layers)]
    ref_inputs, ref_grads = torch_gradients(params, x, grad_out, cfg, residual)
    errs = [_rel(a, b) for a, b in zip(input_grads, ref_inputs)]
    layer_max = {}                                                     # per layer: largest |∂L/∂θ|
    for n, g in ref_grads.items():
        layer = n.split(".")[1] if n.startswith("layers.") else n
        layer_max[layer] = max(layer_max.get(layer, 0.0), float(np.abs(g).max()))
    for n, g in ref_grads.items():
        layer = n.split(".")[1] if n.startswith("layers.") else n
        errs.append(float(np.abs(grads[n] - g).max()) / max(layer_max[layer], 1e-300))
    return Flow(name, cfg.norm_first, residual,
                np.array([np.sqrt(np.mean(np.square(g))) for g in input_grads]),
                _layer_param_norms(grads, cfg.n_layers), max(errs),
                np.stack(input_grads), np.stack(ref_inputs))


def _rel(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-300))


def torch_gradients(params, x, grad_out, cfg: ModelConfig, residual: bool):
    """([∂L/∂x_l per layer], {name: ∂L/∂θ}) by torch autograd in float64, same weights."""
    import torch

    tp = P.to_torch(params, dtype=torch.float64, requires_grad=True)
    h = torch.from_numpy(x)
    layer_inputs = []

    def norm(name, a):
        return layer_norm(a, tp[f"{name}.weight"], tp[f"{name}.bias"], cfg.layer_norm_eps)

    for i in range(cfg.n_layers):
        h = h.detach().requires_grad_(True) if i == 0 else h
        h.retain_grad()
        layer_inputs.append(h)
        p = P.subtree(tp, f"layers.{i}")
        if residual:
            h = encoder_layer(p, h, cfg)
            continue
        attn = lambda a: multi_head_attention(P.subtree(p, "self_attn"), a, a, cfg.n_heads)  # noqa: E731
        ffn = lambda a: feed_forward(P.subtree(p, "ffn"), a, cfg.activation)                # noqa: E731
        for sub, norm_name in ((attn, f"layers.{i}.norm1"), (ffn, f"layers.{i}.norm2")):
            h = sub(norm(norm_name, h)) if cfg.norm_first else norm(norm_name, sub(h))
    if cfg.final_norm:
        h = norm("norm", h)
    (h * torch.from_numpy(grad_out)).sum().backward()
    return ([t.grad.numpy() for t in layer_inputs],
            {n: t.grad.numpy() for n, t in tp.items() if t.grad is not None})


def flow_table(flows: list[Flow]) -> list[str]:
    """Text rows: layer, then ‖∂L/∂x_l‖ (RMS) and ‖∂L/∂θ_l‖ per variant."""
    n_layers = len(flows[0].input_rms)
    head = f"{'layer':>5} " + " ".join(f"{f.name:>24}" for f in flows)
    sub = f"{'':>5} " + " ".join(f"{'dL/dx_l':>11} {'dL/dθ_l':>12}" for _ in flows)
    rows = [head, sub]
    for l in range(n_layers):
        rows.append(f"{l:>5} " + " ".join(f"{f.input_rms[l]:>11.3e} {f.param_norm[l]:>12.3e}"
                                          for f in flows))
    return rows


def summary_lines(flows: list[Flow]) -> list[str]:
    """One line per variant: first-layer / last-layer ratio of each norm, and the torch check."""
    lines = []
    for f in flows:
        lines.append(f"{f.name:<24} dL/dx: layer 0 / layer {len(f.input_rms) - 1} = "
                     f"{f.input_rms[0] / f.input_rms[-1]:9.3e}   dL/dθ: "
                     f"{f.param_norm[0] / f.param_norm[-1]:9.3e}   vs torch {f.torch_rel_err:.1e}")
    return lines


_STYLES = {(False, True): ("C0", "-"), (True, True): ("C1", "-"),
           (False, False): ("C0", "--"), (True, False): ("C1", "--")}


def gradient_flow_figure(path, flows_by_init: dict[str, list[Flow]]):
    """Per init a row of two log-scale panels, ‖∂L/∂x_l‖ and ‖∂L/∂θ_l‖ against layer l."""
    from pathlib import Path

    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(12, 4.4 * len(flows_by_init)), layout="constrained")
    axes = fig.subplots(len(flows_by_init), 2, squeeze=False)
    for (init, flows), (ax_x, ax_p) in zip(flows_by_init.items(), axes):
        for f in flows:
            colour, dash = _STYLES[(f.norm_first, f.residual)]
            layers = np.arange(len(f.input_rms))
            ax_x.semilogy(layers, f.input_rms, dash, color=colour, marker="o", ms=3, label=f.name)
            ax_p.semilogy(layers, f.param_norm, dash, color=colour, marker="o", ms=3, label=f.name)
        label = INITS[init].split(":")[0]
        ax_x.set(title=f"{label}: RMS of ∂L/∂x_l (input of layer l)", ylabel="RMS (log scale)")
        ax_p.set(title=f"{label}: ‖∂L/∂θ_l‖ (parameters of layer l)", ylabel="norm (log scale)")
        for ax in (ax_x, ax_p):
            ax.set_xlabel("layer l (0 = input side)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    n_layers = len(next(iter(flows_by_init.values()))[0].input_rms)
    fig.suptitle(f"Gradient flow at initialisation, {n_layers}-layer encoder, loss Σ out·G "
                 "(G random); solid: with residuals, dashed: without")
    fig.savefig(path, dpi=100)
    return path


def explain_gradients(pr, seed: int = 0) -> None:
    """The `explain gradients` topic: both inits, table, log-ratios, observations, torch check."""
    flows_by_init = {init: gradient_flow(seed=seed, init=init) for init in INITS}
    flows = flows_by_init["bert"]
    n_layers, names = len(flows[0].input_rms), " | ".join(f.name for f in flows)
    pr.header(f"gradient flow: per-layer gradient norms through a {n_layers}-layer encoder at "
              "initialisation (D = 32, H = 4, d_ff = 128, B = 2, T = 8, float64)",
              "post-norm x ← LN(x + f(x));  pre-norm x ← x + f(LN(x)) (+ final LN);  "
              "no residual: drop the x +",
              "loss L = Σ out ⊙ G (G random): ∂L/∂out = G for every stack; backward: "
              "tfimpl.numpy.grad",
              "residual: ∂L/∂x_l = ∂L/∂x_{l+1} + branch terms; none: a product of L Jacobians")
    for init, flows in flows_by_init.items():
        pr.section(INITS[init])
        for row in flow_table(flows):
            pr.line("    " + row)
        last = n_layers - 1
        pr.step(f"log10(RMS ∂L/∂x_0 / RMS ∂L/∂x_{last}) per stack ({names})",
                [np.log10(f.input_rms[0] / f.input_rms[-1]) for f in flows])
        pr.step(f"log10(‖∂L/∂θ_0‖ / ‖∂L/∂θ_{last}‖) per stack",
                [np.log10(f.param_norm[0] / f.param_norm[-1]) for f in flows])
        for line in observations(flows):
            pr.line("    " + line)
    pr.line()
    pr.line(f"    figure: python -m bench figures --out DIR draws {GRADIENT_FLOW_FILE}")
    pr.section("check")
    pr.line("    library: torch autograd on tfimpl.torch's blocks, same weights, float64")
    for init, flows in flows_by_init.items():
        for f in flows:
            scale = np.abs(f.torch_input_grads).max(axis=(1, 2, 3), keepdims=True)  # (L, 1, 1, 1)
            pr.check(f"{init} init, {f.name}: ∂L/∂x_l, each layer / its max |torch|",
                     f.input_grads / scale, f.torch_input_grads / scale)
            pr.line(f"    max |ours - torch| / scale = {f.torch_rel_err:.1e}   {init} init, "
                    f"{f.name}: every parameter gradient (scale: its layer's largest)")


def observations(flows: list[Flow]) -> list[str]:
    """Plain sentences computed from the numbers (nothing here is asserted in advance)."""
    lines = []
    for f in flows:
        x_ratio = f.input_rms[0] / f.input_rms[-1]
        p_ratio = f.param_norm[0] / f.param_norm[-1]
        lines.append(f"{f.name}: the first layer's input gradient is {x_ratio:.2g}× the last "
                     f"layer's, its parameter gradient {p_ratio:.2g}×")
    return lines
