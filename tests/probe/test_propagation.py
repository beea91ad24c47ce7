"""Fast kNN propagation == the dense DINO-style reference; labels in/out as DINO/DIFT do them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from dvx.errors import ConfigError
from dvx.probe.propagation import (
    PRESETS,
    PropagationConfig,
    _geometry,
    _plan,
    labels_to_masks,
    mask_to_onehot,
    propagate,
)
from tests.probe.reference_propagation import reference_propagate


def _onehot(ids: torch.Tensor, k: int) -> torch.Tensor:
    return F.one_hot(ids, k).permute(2, 0, 1).float()


def _random_case(seed: int, n: int, c: int, h: int, w: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, c, h, w, generator=g)
    first = _onehot(torch.randint(0, k, (h, w), generator=g), k)
    return feats, first


def _assert_same(fast: torch.Tensor, ref: torch.Tensor, label_ties: bool = False) -> None:
    """Allclose soft labels and identical argmax; with ``label_ties`` the argmax is compared only where
    the reference's two best labels differ (exactly tied labels make the argmax arbitrary)."""
    assert fast.shape == ref.shape
    torch.testing.assert_close(fast, ref, atol=2e-5, rtol=1e-4)
    same = fast.argmax(1) == ref.argmax(1)
    if label_ties:
        top2 = ref.topk(2, dim=1).values
        decided = (top2[:, 0] - top2[:, 1]) > 1e-4
        assert decided.float().mean() > 0.5
        same = same | ~decided
    assert bool(same.all())


CONFIGS = [
    PropagationConfig(topk=5, temperature=0.1, context=2, radius=2),
    PropagationConfig(topk=4, temperature=0.2, context=3, radius=4),
    PropagationConfig(topk=3, temperature=0.07, context=0, radius=1),  # first frame only
    PropagationConfig(topk=3, temperature=0.2, context=2, radius=0),  # co-located position only
    PropagationConfig(topk=7, temperature=0.1, context=3, radius=None),  # no window
    PropagationConfig(topk=7, temperature=0.1, context=3, radius=50),  # window larger than the map
    PropagationConfig(topk=6, temperature=0.1, context=2, radius=11),  # window = max(h, w) - 2: still local
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"k{c.topk}-n{c.context}-r{c.radius}")
@pytest.mark.parametrize("tile", [None, 1, 5])
def test_matches_reference_on_random_inputs(cfg: PropagationConfig, tile: int | None) -> None:
    feats, first = _random_case(0, n=6, c=16, h=9, w=13, k=3)
    _assert_same(propagate(feats, first, cfg, tile=tile), reference_propagate(feats, first, cfg))


@pytest.mark.parametrize("cfg", [CONFIGS[1], CONFIGS[4]], ids=["local", "global"])
def test_context_frames_in_groups_under_a_tiny_budget(cfg: PropagationConfig) -> None:
    """A budget too small for one tile against all context frames: frames are processed in groups."""
    feats, first = _random_case(1, n=7, c=8, h=11, w=10, k=4)
    geo = _geometry(11, 10, cfg.radius, 2, 8, 4, 1 << 30)
    per_frame = geo.bytes_per_unit(8, 4)
    budget = 2 * per_frame  # at most two context frames per step, context has up to four
    batch, group = _plan(30, cfg.context + 1, per_frame, budget, budget)
    assert (batch, group) == (1, 2)
    fast = propagate(feats, first, cfg, tile=2, max_bytes=budget)
    _assert_same(fast, reference_propagate(feats, first, cfg))


def test_budget_too_small_is_a_config_error() -> None:
    feats, first = _random_case(2, n=3, c=8, h=9, w=9, k=2)
    with pytest.raises(ConfigError, match="max_bytes=100 is too small"):
        propagate(feats, first, PRESETS["dino"], max_bytes=100)


def test_plan_respects_the_budget() -> None:
    for n_valid in (1, 5, 29):
        for per in (10, 1000, 123457):
            for budget in (per, 3 * per, 40 * per, 10**9):
                batch, group = _plan(500, n_valid, per, budget, budget)
                assert batch * group * per <= budget
                assert 1 <= group <= n_valid and batch >= 1


def test_exact_ties_are_all_kept_like_the_reference() -> None:
    """One-hot colour features: cosines are exactly 0 or 1, so the k-th value is tied many times over."""
    g = torch.Generator().manual_seed(3)
    n, h, w, n_col = 5, 10, 12, 3
    colours = torch.randint(0, n_col, (n, h, w), generator=g)
    feats = _onehot(colours.reshape(-1, w), n_col).reshape(n_col, n, h, w).permute(1, 0, 2, 3).contiguous()
    first = _onehot(torch.randint(0, 2, (h, w), generator=g), 2)
    for cfg in (
        PropagationConfig(topk=5, temperature=0.1, context=2, radius=3),
        PropagationConfig(topk=5, temperature=0.1, context=2, radius=None),
    ):
        ref = reference_propagate(feats, first, cfg)
        fast = propagate(feats, first, cfg)
        _assert_same(fast, ref, label_ties=True)
        # the test is only meaningful if keeping just k neighbours would give a different answer
        only_k = propagate(feats, first, PropagationConfig(topk=1, temperature=0.1, context=2, radius=3))
        assert not torch.allclose(only_k, ref)


def test_structured_inputs_match_reference() -> None:
    """Smooth, correlated features (a moving pattern), many labels, non-square map."""
    h, w, n = 14, 19, 8
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    feats = torch.stack(
        [
            torch.stack(
                [torch.sin((xx - 0.7 * t) / (2 + c)) + torch.cos((yy + 0.3 * t) / (3 + c)) for c in range(6)]
            )
            for t in range(n)
        ]
    )
    ids = ((xx // 5) + 4 * (yy // 5)).long() % 7
    first = _onehot(ids, 7)
    for cfg in (
        PRESETS["dino"],
        PRESETS["dift"],
        PropagationConfig(topk=10, temperature=0.05, context=4, radius=3),
    ):
        _assert_same(propagate(feats, first, cfg), reference_propagate(feats, first, cfg))


def test_fp16_features_and_soft_first_labels() -> None:
    feats, _ = _random_case(4, n=5, c=12, h=8, w=9, k=3)
    g = torch.Generator().manual_seed(5)
    first = torch.softmax(torch.randn(3, 8, 9, generator=g), dim=0)
    cfg = PropagationConfig(topk=4, temperature=0.1, context=2, radius=2)
    fast = propagate(feats.half(), first, cfg)
    assert fast.dtype == torch.float32
    torch.testing.assert_close(fast[0], first)
    _assert_same(fast, reference_propagate(feats.half().float(), first, cfg))
    torch.testing.assert_close(fast.sum(1), torch.ones(5, 8, 9), atol=1e-5, rtol=0)


def test_presets_and_validation() -> None:
    assert PropagationConfig.preset("dift") == PropagationConfig(
        topk=15, temperature=0.2, context=28, radius=15
    )
    assert PropagationConfig.preset("dino") == PropagationConfig(
        topk=5, temperature=0.1, context=7, radius=12
    )
    assert PropagationConfig.preset("dino", radius=None).radius is None
    with pytest.raises(ConfigError, match="unknown propagation preset"):
        PropagationConfig.preset("dinov3")
    for bad in ({"topk": 0}, {"temperature": 0.0}, {"context": -1}, {"radius": -2}):
        with pytest.raises(ConfigError):
            PropagationConfig(**bad)


def test_shape_errors() -> None:
    feats, first = _random_case(6, n=3, c=4, h=5, w=6, k=2)
    with pytest.raises(ValueError, match="first labels"):
        propagate(feats, first[:, :4], PRESETS["dino"])
    with pytest.raises(ValueError, match="feats"):
        propagate(feats[0], first, PRESETS["dino"])


def _peak_rss_delta(fn) -> int | None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None

    def read(key: str) -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))

    base = read("VmRSS")
    fn()
    return read("VmHWM") - base


def test_480p_scale_map_stays_within_budget() -> None:
    """60 x 107 map (480p at stride 8) with the DIFT settings (ring buffer for 28 context frames): at the
    last of 8 frames the dense (context, hw, hw) affinity would take 7 * 6420^2 * 4 B = 1.15 GB (4.8 GB
    with a full context); the run must stay near the 32 MiB budget."""
    n, h, w = 8, 60, 107
    g = torch.Generator().manual_seed(7)
    feats = torch.randn(n, 3, h, w, generator=g)
    first = _onehot(torch.randint(0, 3, (h, w), generator=g), 3)
    budget = 32 * 2**20
    out: list[torch.Tensor] = []
    delta = _peak_rss_delta(lambda: out.append(propagate(feats, first, PRESETS["dift"], max_bytes=budget)))
    assert out[0].shape == (n, 3, h, w)
    torch.testing.assert_close(out[0].sum(1), torch.ones(n, h, w), atol=1e-4, rtol=0)
    if delta is None:
        pytest.skip("peak RSS cannot be reset here (/proc/self/clear_refs)")
    # ring buffer ~11 MB + output ~1 MB + budget 32 MB + allocator slack
    assert delta < 200 * 2**20, f"peak grew by {delta / 2**20:.0f} MiB"


def test_cpu_threads_are_restored() -> None:
    feats, first = _random_case(9, n=3, c=4, h=6, w=7, k=2)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen: list[int] = []
        original = torch.topk

        def spy(*args, **kwargs):
            seen.append(torch.get_num_threads())
            return original(*args, **kwargs)

        torch.topk = spy
        try:
            propagate(feats, first, PRESETS["dino"])
            propagate(feats, first, PRESETS["dino"], cpu_threads=None)
        finally:
            torch.topk = original
        assert seen[0] == 1 and seen[-1] == 2
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_mask_to_onehot_uses_pillow_nearest_and_drops_void() -> None:
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 4, (48, 85)).astype(np.uint8)
    mask[:3, :3] = 255
    onehot = mask_to_onehot(mask, (6, 11))
    small = np.asarray(Image.fromarray(mask).resize((11, 6), Image.NEAREST))
    assert onehot.shape == (4, 6, 11)
    for k in range(4):
        np.testing.assert_array_equal(onehot[k].numpy(), (small == k).astype(np.float32))
    assert onehot[:, small == 255].sum() == 0
    assert mask_to_onehot(mask, (6, 11), num_classes=6).shape[0] == 6


def _dino_labels_to_masks(soft: torch.Tensor, stride: int, out_size: tuple[int, int]) -> np.ndarray:
    """DINO's per-frame post-processing: interpolate(scale_factor), norm_mask loop, torch.max, PIL."""
    masks = []
    for frame in soft:
        up = F.interpolate(
            frame[None],
            scale_factor=stride,
            mode="bilinear",
            align_corners=False,
            recompute_scale_factor=False,
        )[0]
        for c in range(up.shape[0]):
            ch = up[c]
            if ch.max() > 0:
                ch = ch - ch.min()
                ch = ch / ch.max()
                up[c] = ch
        _, seg = torch.max(up, dim=0)
        seg = np.array(seg.numpy(), dtype=np.uint8)
        masks.append(np.array(Image.fromarray(seg).resize((out_size[1], out_size[0]), 0)))
    return np.stack(masks)


def test_labels_to_masks_matches_dino_postprocessing() -> None:
    g = torch.Generator().manual_seed(8)
    soft = torch.softmax(torch.randn(3, 4, 6, 13, generator=g) * 3, dim=1)
    soft[1, 2] = 0  # an empty channel is left alone by norm_mask
    ours = labels_to_masks(soft, out_size=(50, 107), frame_size=(48, 104))
    np.testing.assert_array_equal(ours, _dino_labels_to_masks(soft, 8, (50, 107)))
    assert ours.dtype == np.uint8
