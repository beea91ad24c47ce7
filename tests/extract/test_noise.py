import math

import numpy as np
import torch

from dvx.extract.noise import (
    edm_sigma_for,
    flow_sigma_for,
    scaled_linear_alphas_cumprod,
    seed_for,
    seeded_noise,
)


def test_scaled_linear_matches_diffusers() -> None:
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    np.testing.assert_allclose(scaled_linear_alphas_cumprod(), sched.alphas_cumprod.numpy(), rtol=1e-5)


def test_edm_sigma_has_the_snr_of_sd_at_the_same_T() -> None:
    ab = scaled_linear_alphas_cumprod()
    for t in (0, 50, 200, 999):
        sigma = edm_sigma_for(t)
        assert math.isclose(1 / sigma**2, ab[t] / (1 - ab[t]), rel_tol=1e-9)
    assert 0 < edm_sigma_for(0) < edm_sigma_for(50) < edm_sigma_for(999)


def test_flow_sigma_shift() -> None:
    assert flow_sigma_for(0, 3.0) == 0.0 and flow_sigma_for(1000, 3.0) == 1.0
    assert math.isclose(flow_sigma_for(500, 1.0), 0.5)
    assert math.isclose(flow_sigma_for(500, 3.0), 0.75)


def test_seeded_noise_is_reproducible_and_independent() -> None:
    a = seeded_noise((2, 3), seed_for(0, "vid", 1, 50, 0))
    b = seeded_noise((2, 3), seed_for(0, "vid", 1, 50, 0))
    c = seeded_noise((2, 3), seed_for(0, "vid", 1, 50, 1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert seed_for("a", 1) != seed_for("a", "1") and 0 <= seed_for("x") < 2**63


def test_edm_sigma_reads_a_schedule_built_once(monkeypatch) -> None:
    import dvx.extract.noise as noise

    ab = scaled_linear_alphas_cumprod()
    want = [math.sqrt((1.0 - float(a)) / float(a)) for a in ab]  # the per-call formula, bit for bit
    edm_sigma_for(0)

    def rebuilt(*_a: object, **_k: object) -> np.ndarray:
        raise AssertionError("the 1000-step schedule was rebuilt for one sigma")

    monkeypatch.setattr(noise, "scaled_linear_alphas_cumprod", rebuilt)
    assert [edm_sigma_for(t) for t in range(1000)] == want
