"""Position-wise feed-forward network and its activations (mirrors tfimpl.numpy.feed_forward).

    FFN(x) = act(x W_1ᵀ + b_1) W_2ᵀ + b_2,   W_1: (d_ff, D),  W_2: (D, d_ff)

    relu(x)      = max(x, 0)                                         (the 2017 paper)
    gelu(x)      = x · Φ(x) = ½ x (1 + erf(x / √2))                  (exact; BERT)
    gelu_tanh(x) = ½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))          (Hendrycks & Gimpel's approximation)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tfimpl.numpy._checks import check_activation
from tfimpl.torch.linear import linear


def relu(x: torch.Tensor) -> torch.Tensor:
    """max(x, 0)."""
    return F.relu(x)


def gelu(x: torch.Tensor) -> torch.Tensor:
    """½ x (1 + erf(x / √2)), PyTorch's fused kernel (F.gelu, approximate="none")."""
    return F.gelu(x)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """½ x (1 + tanh(√(2/π) (x + 0.044715 x³))), F.gelu(approximate="tanh")."""
    return F.gelu(x, approximate="tanh")


ACTIVATION_FNS = {"relu": relu, "gelu": gelu, "gelu_tanh": gelu_tanh}


def feed_forward(p, x: torch.Tensor, activation: str = "gelu") -> torch.Tensor:
    """(B, T, D) -> (B, T, D) through the (B, T, d_ff) hidden layer."""
    check_activation(activation)
    hidden = linear(x, p["ff1.weight"], p["ff1.bias"])      # (B, T, D) @ (D, d_ff) -> (B, T, d_ff)
    if activation == "relu" and not (torch.is_grad_enabled() and hidden.requires_grad):
        hidden = F.relu(hidden, inplace=True)               # no second (B, T, d_ff) tensor
    else:
        hidden = ACTIVATION_FNS[activation](hidden)
    return linear(hidden, p["ff2.weight"], p["ff2.bias"])   # (B, T, d_ff) @ (d_ff, D) -> (B, T, D)
