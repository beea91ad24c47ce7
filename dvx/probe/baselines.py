"""The baselines a DAVIS label-propagation table needs so its numbers mean something.

- ``copy_first_mask``: predict the first frame's mask for every frame (no tracking at all);
- ``pixel_features``: raw colour as the "features" (CIE Lab by default, or RGB), average-pooled to the
  feature stride and standardised per channel over the video, then fed to the same kNN propagation
  (``pixel_propagation`` does all of it). A backbone feature that does not beat colour carries no
  correspondence information beyond colour.
- ``oracle_features``: the ground-truth object ids of every frame as the "features" (each cell holds the
  fraction of its stride x stride pixels that belong to each object), fed to the same kNN propagation
  (``oracle_propagation``). No feature map of that stride can tell objects apart better, so this is
  what the protocol's resolution allows: where it scores below ``copy_first_mask`` (small objects that
  barely move), no backbone can beat copying at that stride, however good its features. It is a
  reference point, not a strict bound (features that also encode position could, in principle, do
  better on objects of one colour), and it reads every frame's annotation, so it is never a method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dvx.errors import ConfigError
from dvx.probe.propagation import (
    DEFAULT_MAX_BYTES,
    PropagationConfig,
    labels_to_masks,
    mask_to_onehot,
    propagate,
)

if TYPE_CHECKING:
    import torch

COLOUR_SPACES = ("lab", "rgb")
# sRGB (D65) -> XYZ, and the D65 white point
_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_WHITE = (0.950456, 1.0, 1.088754)


def copy_first_mask(first: np.ndarray, n_frames: int) -> np.ndarray:
    """(H, W) first-frame mask -> (n_frames, H, W): the same mask everywhere."""
    first = np.asarray(first)
    if first.ndim != 2:
        raise ValueError(f"first mask must be (H, W), got {first.shape}")
    return np.repeat(first[None], n_frames, axis=0)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], channels on dim -3 (..., 3, H, W) -> CIE L*a*b* (D65): L in [0, 100]."""
    import torch

    rgb = rgb.clamp(0, 1)
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = torch.tensor(_RGB_TO_XYZ, dtype=rgb.dtype, device=rgb.device)
    xyz = torch.einsum("ij,...jhw->...ihw", m, lin)
    xyz = xyz / torch.tensor(_WHITE, dtype=rgb.dtype, device=rgb.device)[:, None, None]
    eps = 216 / 24389
    f = torch.where(xyz > eps, xyz ** (1 / 3), (24389 / 27 * xyz + 16) / 116)
    fx, fy, fz = f.unbind(dim=-3)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=-3)


def pixel_features(
    frames: np.ndarray,
    stride: int = 8,
    space: str = "lab",
    standardize: bool = True,
) -> torch.Tensor:
    """(F, H, W, 3) uint8 RGB frames -> (F, 3, H // stride, W // stride) float32 colour features.

    Each feature cell is the mean colour of its stride x stride pixels (a remainder at the right or
    bottom is dropped, as a strided backbone drops it). With ``standardize`` every channel gets zero
    mean and unit variance over the whole video, so cosine similarity compares colour deviations.
    """
    import torch
    import torch.nn.functional as F

    if space not in COLOUR_SPACES:
        raise ConfigError(f"unknown colour space {space!r}; choose one of {COLOUR_SPACES}")
    if stride < 1:
        raise ConfigError(f"stride must be >= 1, got {stride}")
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (F, H, W, 3), got {frames.shape}")
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    if space == "lab":
        x = rgb_to_lab(x)
    x = F.avg_pool2d(x, kernel_size=stride, stride=stride)
    if standardize:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
        x = (x - mean) / std
    return x.contiguous()


def oracle_features(labels: np.ndarray, size: tuple[int, int], stride: int = 8) -> torch.Tensor:
    """(F, H, W) ground-truth ids (255 = void) -> (F, K, h, w) float32 id fractions per feature cell.

    The labels are resized (nearest) to ``size`` (the frames' size at extraction), then each cell of
    ``stride`` x ``stride`` pixels holds the fraction of its pixels that carry each id 0..K-1 (void
    pixels count for none, so an all-void cell is a zero vector), with ``h, w = size // stride``.
    """
    import torch
    import torch.nn.functional as F

    from dvx.probe.resize import resize_nearest

    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be (F, H, W), got {labels.shape}")
    if stride < 1:
        raise ConfigError(f"stride must be >= 1, got {stride}")
    small = np.stack([resize_nearest(frame, size) for frame in labels]).astype(np.int64)
    k = int(small[small != 255].max(initial=0)) + 1
    onehot = torch.zeros((len(small), k + 1, *size), dtype=torch.float32)
    ids = torch.from_numpy(np.where(small == 255, k, small))
    onehot.scatter_(1, ids[:, None], 1.0)
    return F.avg_pool2d(onehot[:, :k], kernel_size=stride, stride=stride).contiguous()


def oracle_propagation(
    labels: np.ndarray,
    size: tuple[int, int],
    cfg: PropagationConfig,
    stride: int = 8,
    device: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """The oracle-features reference end to end: (F, H, W) ground truth -> masks (F, H, W).

    ``size`` is the frames' size at extraction (the features' grid is ``size // stride``). Frame 0 of
    the result is the given first mask, as for every method.
    """
    labels = np.asarray(labels)
    feats = oracle_features(labels, size, stride)
    h, w = feats.shape[-2:]
    first = mask_to_onehot(labels[0], (h, w))
    soft = propagate(feats, first, cfg, device=device, max_bytes=max_bytes)
    H, W = labels.shape[1:]
    masks = labels_to_masks(soft, out_size=(H, W), frame_size=(h * stride, w * stride))
    masks[0] = labels[0]
    return masks


def pixel_propagation(
    frames: np.ndarray,
    first_mask: np.ndarray,
    cfg: PropagationConfig,
    stride: int = 8,
    space: str = "lab",
    device: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """The raw-colour baseline end to end: frames (F, H, W, 3) + frame-0 mask (H, W) -> masks (F, H, W).

    Frame 0 of the result is the given mask.
    """
    feats = pixel_features(frames, stride=stride, space=space)
    h, w = feats.shape[-2:]
    first = mask_to_onehot(first_mask, (h, w))
    soft = propagate(feats, first, cfg, device=device, max_bytes=max_bytes)
    H, W = np.asarray(first_mask).shape
    masks = labels_to_masks(soft, out_size=(H, W), frame_size=(h * stride, w * stride))
    masks[0] = first_mask
    return masks
