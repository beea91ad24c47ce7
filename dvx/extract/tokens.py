"""Token sequences of transformers (DiT, ViT) -> feature maps, shared by the transformer families.

Every patch-token sequence dvx stores is laid out frame-major, then row-major (``f, y, x``), which is how
``Conv2d``/``Conv3d`` patch embeddings flatten their output (SD3, Wan, DINOv2, VideoMAE, V-JEPA 2).
"""

from __future__ import annotations

import torch


def tokens_to_maps(tokens: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """(B, f*h*w, C) tokens -> (B, f, C, h, w) maps; ``grid`` = (f, h, w)."""
    f, h, w = grid
    b, n, c = tokens.shape
    if n != f * h * w:
        raise ValueError(f"{n} tokens do not form a {f}x{h}x{w} grid")
    return tokens.reshape(b, f, h, w, c).permute(0, 1, 4, 2, 3)
