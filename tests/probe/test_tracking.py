from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dvx.data.synthetic import SynthConfig, SyntheticWorld, write_world
from dvx.errors import ConfigError
from dvx.probe.tapvid_metrics import TapVidScores, sample_queries, to_raster, video_metrics
from dvx.probe.tracking import TrackerConfig, chunk_sizes, from_cells, to_cells, track_points


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SyntheticWorld:
    root = tmp_path_factory.mktemp("world")
    write_world(SynthConfig(out=root, videos=4, frames=6, height=48, width=64, seed=2))
    return SyntheticWorld(root)


def one_hot_features(world: SyntheticWorld, ref: object) -> np.ndarray:
    """Perfect features: channel n is 1 exactly where track n is visible, at every frame (F, N, H, W)."""
    tracks = world.tracks(ref)
    f, n = tracks.occluded.shape
    feats = np.zeros((f, n, int(world.world["height"]), int(world.world["width"])), np.float16)
    for t in range(f):
        for k in np.flatnonzero(~tracks.occluded[t]):
            x, y = tracks.xy[t, k].astype(int)
            feats[t, k, y, x] = 1
    return feats


@pytest.mark.parametrize("mode", ["first", "strided"])
def test_perfect_features_score_aj_one(world: SyntheticWorld, mode: str) -> None:
    """The control: features that are a one-hot of the true correspondence give AJ = delta_avg = OA = 1."""
    scores = TapVidScores(mode)
    h, w = int(world.world["height"]), int(world.world["width"])
    for ref in world.videos():
        feats = one_hot_features(world, ref)
        qs = sample_queries(world.point_tracks(ref), mode)
        res = track_points(feats, qs.frames, qs.xy, np.arange(len(feats)), (h, w), max_bytes=2**16)
        m = video_metrics(qs.frames, qs.occluded, to_raster(qs.points), res.occluded, to_raster(res.xy), mode)
        scores.add(ref.id, m, len(qs))
    rec = scores.record()
    assert rec["AJ"] == rec["delta_avg"] == rec["OA"] == 1.0
    assert rec["n_videos"] == 4 and not rec["undefined"]


def test_shuffled_features_do_not_score_one(world: SyntheticWorld) -> None:
    """The control can fail: the same one-hot features with the track channels of later frames permuted."""
    ref = world.videos()[0]
    feats = one_hot_features(world, ref)
    rng = np.random.default_rng(0)
    feats[1:] = feats[1:, rng.permutation(feats.shape[1])]
    qs = sample_queries(world.point_tracks(ref), "first")
    res = track_points(feats, qs.frames, qs.xy, np.arange(len(feats)), (48, 64))
    m = video_metrics(qs.frames, qs.occluded, to_raster(qs.points), res.occluded, to_raster(res.xy), "first")
    assert m["AJ"] < 0.5


def dense_reference(
    qmaps: np.ndarray,
    kmaps: np.ndarray,
    qf: np.ndarray,
    qxy: np.ndarray,
    f2s: np.ndarray,
    size: tuple[int, int],
    cfg: TrackerConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """One query and one frame at a time in float64: bilinear descriptor, cosine, argmax, window softmax."""
    h, w = qmaps.shape[-2:]
    H, W = size
    out, occ = np.zeros((len(qf), len(f2s), 2)), np.zeros((len(qf), len(f2s)), bool)
    for i, (t0, (x, y)) in enumerate(zip(qf, qxy, strict=True)):
        u = min(max((x * W + 0.5) * w / W - 0.5, 0), w - 1)
        v = min(max((y * H + 0.5) * h / H - 0.5, 0), h - 1)
        u0, v0 = min(int(u), w - 2), min(int(v), h - 2)
        a, b = u - u0, v - v0
        m = qmaps[f2s[t0]].astype(np.float64)
        d = (
            (1 - a) * (1 - b) * m[:, v0, u0]
            + a * (1 - b) * m[:, v0, u0 + 1]
            + (1 - a) * b * m[:, v0 + 1, u0]
            + a * b * m[:, v0 + 1, u0 + 1]
        )
        d /= np.linalg.norm(d)
        for t in range(len(f2s)):
            if t == t0:
                out[i, t] = (x, y)
                continue
            k = kmaps[f2s[t]].astype(np.float64)
            cos = np.einsum("c,cyx->yx", d, k) / np.maximum(np.linalg.norm(k, axis=0), 1e-12)
            iy, ix = np.unravel_index(np.argmax(cos), cos.shape)
            ys, xs = np.mgrid[
                max(iy - cfg.radius, 0) : min(iy + cfg.radius, h - 1) + 1,
                max(ix - cfg.radius, 0) : min(ix + cfg.radius, w - 1) + 1,
            ]
            e = np.exp((cos[ys, xs] - cos[iy, ix]) / cfg.temperature)
            uu, vv = (e * xs).sum() / e.sum(), (e * ys).sum() / e.sum()
            out[i, t] = (((uu + 0.5) * W / w - 0.5) / W, ((vv + 0.5) * H / h - 0.5) / H)
            occ[i, t] = cos[iy, ix] < cfg.occlusion_threshold
    return out, occ


def random_case(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    s, c, h, w = 4, 6, 5, 7
    return {
        "qmaps": rng.normal(size=(s, c, h, w)).astype(np.float32),
        "kmaps": rng.normal(size=(s, c, h, w)).astype(np.float32),
        "qf": rng.integers(0, 6, 9),
        "qxy": rng.random((9, 2)),
        "f2s": np.array([0, 1, 1, 2, 3, 3]),  # time compressed: frames 1-2 and 4-5 share a stored map
        "size": (30, 50),
    }


@pytest.mark.parametrize("seed", range(3))
def test_equals_a_dense_reference_with_query_key_maps(seed: int) -> None:
    c = random_case(seed)
    cfg = TrackerConfig(radius=1, temperature=0.1, occlusion_threshold=0.3)
    res = track_points(c["qmaps"], c["qf"], c["qxy"], c["f2s"], c["size"], cfg, key_maps=c["kmaps"])
    want, occ = dense_reference(c["qmaps"], c["kmaps"], c["qf"], c["qxy"], c["f2s"], c["size"], cfg)
    np.testing.assert_allclose(res.xy, want, atol=1e-5)
    np.testing.assert_array_equal(res.occluded, occ)


def test_chunking_does_not_change_results() -> None:
    c = random_case(5)
    big = track_points(c["qmaps"], c["qf"], c["qxy"], c["f2s"], c["size"])
    assert chunk_sizes(9, 4, 6, 35, 6720) == (2, 4)  # two key chunks, three query batches
    small = track_points(c["qmaps"], c["qf"], c["qxy"], c["f2s"], c["size"], max_bytes=6720)
    np.testing.assert_allclose(small.xy, big.xy, atol=1e-6)
    np.testing.assert_array_equal(small.occluded, big.occluded)
    as_tensor = track_points(torch.from_numpy(c["qmaps"]), c["qf"], c["qxy"], c["f2s"], c["size"])
    np.testing.assert_allclose(as_tensor.xy, big.xy, atol=1e-6)


def test_cell_coordinates() -> None:
    # a 64-px-wide frame over 8 cells: pixel 3.5 is the centre of cell 0, pixel 11.5 of cell 1
    np.testing.assert_allclose(to_cells(np.array([[3.5 / 64, 0.0]]), (32, 64), (4, 8))[0, 0], 0.0)
    np.testing.assert_allclose(to_cells(np.array([[11.5 / 64, 0.0]]), (32, 64), (4, 8))[0, 0], 1.0)
    xy = np.random.default_rng(0).random((5, 2))
    np.testing.assert_allclose(from_cells(to_cells(xy, (30, 50), (7, 9)), (30, 50), (7, 9)), xy)


def test_bad_settings_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="radius"):
        TrackerConfig(radius=-1)
    with pytest.raises(ConfigError, match="temperature"):
        TrackerConfig(temperature=0)
    with pytest.raises(ConfigError, match="cosine"):
        TrackerConfig(occlusion_threshold=2)
    c = random_case(0)
    with pytest.raises(ConfigError, match="must index the 4 stored maps"):
        track_points(c["qmaps"], c["qf"], c["qxy"], np.arange(6), c["size"])
    with pytest.raises(ConfigError, match="differ in size"):
        track_points(c["qmaps"], c["qf"], c["qxy"], c["f2s"], c["size"], key_maps=c["kmaps"][:, :3])
    with pytest.raises(ConfigError, match="query frames"):
        track_points(c["qmaps"], np.array([9]), c["qxy"][:1], c["f2s"], c["size"])


def test_no_queries(tmp_path: Path) -> None:
    c = random_case(0)
    res = track_points(c["qmaps"], np.zeros(0, int), np.zeros((0, 2)), c["f2s"], c["size"])
    assert res.xy.shape == (0, 6, 2) and res.occluded.shape == (0, 6)
