"""The light heads (plain torch modules; the backbone never appears here).

- :class:`MLPHead`: action recognition (seed 002 §3.2.2, after V-JEPA/VideoMAE practice): features
  averaged over space and time -> BatchNorm -> Linear(C, C) -> GELU -> Linear(C, K). The hidden width is
  the input width.
- :class:`DenseMLPHead`: scene understanding (after DINOv2's linear heads): the same two-layer MLP applied
  at every position of the feature map (1x1 convolutions), BatchNorm first; logits are upsampled to the
  label resolution by the task.

The non-affine BatchNorm on the input standardises each channel with batch statistics (running statistics
at test time): diffusion activations differ in scale by orders of magnitude across blocks and T, and a
fixed learning rate then works for all of them.
"""

from __future__ import annotations

import torch
from torch import nn


class MLPHead(nn.Module):
    """(B, C) -> (B, K): BatchNorm(C) -> Linear(C, hidden) -> GELU -> Linear(hidden, K)."""

    def __init__(self, in_dim: int, num_outputs: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or in_dim
        self.norm = nn.BatchNorm1d(in_dim, affine=False)
        self.fc1 = nn.Linear(in_dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class DenseMLPHead(nn.Module):
    """(N, C, h, w) -> (N, K, h, w): the two-layer MLP of :class:`MLPHead` at every position."""

    def __init__(self, in_dim: int, num_outputs: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or in_dim
        self.norm = nn.BatchNorm2d(in_dim, affine=False)
        self.fc1 = nn.Conv2d(in_dim, hidden, kernel_size=1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, num_outputs, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
