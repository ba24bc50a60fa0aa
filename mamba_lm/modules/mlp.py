"""The SwiGLU MLP of Transformer++ blocks: fc2(fc1_value(x) * silu(fc1_gate(x)))."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GatedMLP(nn.Module):
    """fc1 maps d_model to [value; gate] (2 * hidden, value rows first, as mamba_ssm's GatedMLP);
    fc2 maps hidden back to d_model. Input and output (..., d_model)."""

    def __init__(self, d_model: int, hidden: int, bias: bool = False, device=None, dtype=None):
        super().__init__()
        self.fc1 = nn.Linear(d_model, 2 * hidden, bias=bias, device=device, dtype=dtype)
        self.fc2 = nn.Linear(hidden, d_model, bias=bias, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(value * F.silu(gate))
