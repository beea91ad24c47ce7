"""Timestep conventions and seeded noise.

dvx's ``T`` is an integer on the DDPM training scale 0..999 for every model (design §4):
- DDPM models (SD 1.x/2.x, ModelScope): ``z_T = sqrt(ab_T) z0 + sqrt(1 - ab_T) eps`` with the model's own
  scheduler's ``alphas_cumprod``; the UNet sees timestep ``T``.
- EDM models (SVD): ``sigma`` is chosen with the same signal-to-noise ratio as SD's scaled-linear schedule
  at ``T`` (``sigma = sqrt((1 - ab_T) / ab_T)``); ``z = z0 + sigma eps``, the UNet sees
  ``c_in * z`` with ``c_in = 1 / sqrt(sigma^2 + 1)`` and timestep ``c_noise = 0.25 ln(sigma)``.
- Flow models (SD3, Wan): ``s = T / 1000`` through the scheduler's shift,
  ``sigma = shift s / (1 + (shift - 1) s)``; ``z = (1 - sigma) z0 + sigma eps``; timestep ``1000 sigma``.

Noise for each (video, clip or frame, T, ensemble member) comes from its own CPU generator seeded from
those parts, so it is identical on any device, batch size or worker count, and on resume.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence

import numpy as np
import torch

SD_BETA_START = 0.00085
SD_BETA_END = 0.012
NUM_TRAIN_TIMESTEPS = 1000


def scaled_linear_alphas_cumprod(
    beta_start: float = SD_BETA_START, beta_end: float = SD_BETA_END, n: int = NUM_TRAIN_TIMESTEPS
) -> np.ndarray:
    """SD's "scaled_linear" schedule (betas linear in sqrt space), float64."""
    betas = np.linspace(beta_start**0.5, beta_end**0.5, n, dtype=np.float64) ** 2
    return np.cumprod(1.0 - betas)


def snr(alpha_cumprod: float) -> float:
    return alpha_cumprod / (1.0 - alpha_cumprod)


@functools.cache
def _edm_sigmas() -> tuple[float, ...]:
    """``sqrt((1 - ab_T) / ab_T)`` of SD's scaled-linear schedule for every T, computed once."""
    return tuple(math.sqrt((1.0 - ab) / ab) for ab in map(float, scaled_linear_alphas_cumprod()))


def edm_sigma_for(t: int) -> float:
    """The EDM sigma with the SNR of SD's scaled-linear schedule at DDPM timestep ``t``."""
    return _edm_sigmas()[t]


def flow_sigma_for(t: int, shift: float = 1.0) -> float:
    s = t / NUM_TRAIN_TIMESTEPS
    return shift * s / (1.0 + (shift - 1.0) * s)


def seed_for(*parts: object) -> int:
    """A 63-bit seed from any hashable description, stable across processes and machines."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def seeded_noise(shape: Sequence[int], seed: int) -> torch.Tensor:
    """Standard normal noise (float32, CPU) from its own generator."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(tuple(shape), generator=gen, dtype=torch.float32)


def flow_t_for_sigma(sigma: float, shift: float = 1.0) -> float:
    """The (fractional) T whose shifted sigma is ``sigma``: the inverse of :func:`flow_sigma_for`,
    ``s = sigma / (shift - (shift - 1) sigma)``, ``T = 1000 s``."""
    return NUM_TRAIN_TIMESTEPS * sigma / (shift - (shift - 1.0) * sigma)


def flow_noise_level(t: int, shift: float) -> dict[str, float | None]:
    """What a flow model's store records for T: sigma before the shift (``sigma_unshifted`` = T/1000) and
    after it (``sigma``, what noises the latents), the shift, SNR ((1-sigma)/sigma)^2 (None = clean,
    infinite) and the network's timestep 1000 sigma."""
    sigma = flow_sigma_for(t, shift)
    return {
        "T": t,
        "sigma_unshifted": t / NUM_TRAIN_TIMESTEPS,
        "shift": shift,
        "sigma": sigma,
        "snr": ((1 - sigma) / sigma) ** 2 if sigma > 0 else None,
        "model_timestep": 1000 * sigma,
    }


def flow_add_noise(
    z0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, shift: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rectified-flow noising (SD3, Wan): ``x = (1 - sigma) z0 + sigma eps`` with the shifted sigma of each
    sample's T; returns x and the network's timestep ``1000 sigma`` (float32)."""
    sigma = torch.tensor([flow_sigma_for(int(v), shift) for v in t], device=z0.device)
    s = sigma.view(-1, *([1] * (z0.dim() - 1)))
    return (1 - s) * z0 + s * eps, 1000 * sigma


def flow_noise_fields(shift: float, num_train_timesteps: int, latent_rule: str) -> dict[str, object]:
    """The recipe's ``noise`` entry of a rectified-flow model; ``latent_rule`` says how z0 is scaled."""
    return {
        "kind": "flow",
        "convention": "s = T/1000; sigma = shift s / (1 + (shift - 1) s); x = (1 - sigma) z0 + "
        f"sigma eps; transformer timestep 1000 sigma; z0 = {latent_rule}",
        "shift": shift,
        "num_train_timesteps": num_train_timesteps,
        "prediction_type": "flow",
    }
