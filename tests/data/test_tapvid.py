from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dvx.data import open_dataset
from dvx.data.synthetic import SynthConfig, SyntheticWorld, write_world
from dvx.data.tapvid import TapVidDavis, TapVidKinetics, TapVidRgbStacking, detect, export_tapvid_davis
from dvx.errors import CorruptVideoError, DataError
from tests.conftest import extract_tiny
from tests.data.tapvid_fixtures import (
    example,
    kinetics_example,
    write_davis,
    write_kinetics,
    write_rgb_stacking,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_davis_pickle_dict_by_name(tmp_path: Path, rng: np.random.Generator) -> None:
    exs = {"bear": example(rng, 5, (16, 24), 4), "car-shadow": example(rng, 3, (16, 24), 2)}
    root = write_davis(tmp_path / "tapvid_davis", exs)
    for where in (root, tmp_path, root / "tapvid_davis.pkl"):  # the folder, its parent, the file
        ds = open_dataset("tapvid-davis", str(where))
        refs = ds.videos()
        assert [r.id for r in refs] == ["bear", "car-shadow"]
        assert refs[0].meta["n_frames"] == 5 and refs[0].meta["name"] == "bear"
    video = ds.load(refs[0])
    np.testing.assert_array_equal(video.frames, exs["bear"]["video"])
    assert video.frame_names == ["00000", "00001", "00002", "00003", "00004"]
    tracks = ds.point_tracks(refs[0])
    np.testing.assert_array_equal(tracks.points, exs["bear"]["points"])
    np.testing.assert_array_equal(tracks.occluded, exs["bear"]["occluded"])
    assert tracks.points.dtype == np.float32 and tracks.occluded.dtype == bool
    assert tracks.frame_names == video.frame_names
    assert detect(root) == detect(tmp_path) == "tapvid-davis"


def test_rgb_stacking_list_ids_by_position(tmp_path: Path, rng: np.random.Generator) -> None:
    exs = [example(rng, 4, (8, 8), 3) for _ in range(3)]
    ds = TapVidRgbStacking(write_rgb_stacking(tmp_path, exs))
    refs = ds.videos()
    assert [r.id for r in refs] == ["rgb_stacking_000", "rgb_stacking_001", "rgb_stacking_002"]
    np.testing.assert_array_equal(ds.load(refs[2]).frames, exs[2]["video"])
    np.testing.assert_array_equal(ds.point_tracks(refs[1]).points, exs[1]["points"])
    assert detect(tmp_path) == "tapvid-rgb-stacking"


def test_kinetics_shards_of_jpeg_frames(tmp_path: Path, rng: np.random.Generator) -> None:
    shards = [[example(rng, 3, (16, 16), 2), example(rng, 4, (16, 16), 5)], [example(rng, 2, (16, 16), 1)]]
    root = write_kinetics(tmp_path / "tapvid_kinetics", shards)
    ds = TapVidKinetics(tmp_path)  # the zip's parent folder works too
    refs = ds.videos()
    assert [r.id for r in refs] == ["0000_of_0002_0000", "0000_of_0002_0001", "0001_of_0002_0000"]
    assert [r.meta["n_frames"] for r in refs] == [3, 4, 2]
    video = ds.load(refs[1])
    assert video.frames.shape == (4, 16, 16, 3) and video.frames.dtype == np.uint8
    # the frames are the shard's JPEG bytes decoded (Pillow, RGB), as tapnet's reader decodes them
    with open(root / "0000_of_0002.pkl", "rb") as f:
        stored = pickle.load(f)[1]["video"]
    for frame, data in zip(video.frames, stored, strict=True):
        np.testing.assert_array_equal(frame, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    tracks = ds.point_tracks(refs[2])
    np.testing.assert_allclose(tracks.points, shards[1][0]["points"])  # float64 in the shard
    assert tracks.points.dtype == np.float32
    assert detect(root) == "tapvid-kinetics"


def test_kinetics_shard_holding_a_dict(tmp_path: Path, rng: np.random.Generator) -> None:
    with open(tmp_path / "0000_of_0001.pkl", "wb") as f:
        pickle.dump({"clip_a": kinetics_example(example(rng, 2, (8, 8), 1))}, f)
    assert [r.id for r in TapVidKinetics(tmp_path).videos()] == ["clip_a"]


@pytest.mark.parametrize(
    ("protocol", "core"),
    # numpy 1.x wrote numpy.core.*: renamed in the text of protocols 2/3 (GLOBAL opcodes are plain lines;
    # protocols 4/5 prefix names with their length, so their bytes are left as numpy 2 wrote them)
    [(2, "numpy.core"), (3, "numpy.core"), (2, "numpy._core"), (4, "numpy._core"), (5, "numpy._core")],
)
def test_pickle_protocols_and_numpy_versions(tmp_path: Path, protocol: int, core: str) -> None:
    ex = example(np.random.default_rng(1), 2, (4, 4), 3)
    data = pickle.dumps({"v": ex}, protocol=protocol).replace(b"numpy._core.", core.encode() + b".")
    (tmp_path / "tapvid_davis.pkl").write_bytes(data)
    ds = TapVidDavis(tmp_path)
    np.testing.assert_array_equal(ds.point_tracks(ds.videos()[0]).points, ex["points"])


class _Evil:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned",))


def test_pickles_that_would_run_code_are_refused(tmp_path: Path) -> None:
    with open(tmp_path / "tapvid_davis.pkl", "wb") as f:
        pickle.dump({"x": {"video": _Evil()}}, f)
    with pytest.raises(DataError, match="refusing to build"):
        TapVidDavis(tmp_path).videos()


def test_bad_inputs_are_one_line_errors(tmp_path: Path, rng: np.random.Generator) -> None:
    with pytest.raises(DataError, match=r"no tapvid_davis\.pkl"):
        TapVidDavis(tmp_path)._files()
    (tmp_path / "tapvid_davis.pkl").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="not a readable TAP-Vid pickle"):
        TapVidDavis(tmp_path).videos()
    with pytest.raises(DataError, match="no splits"):
        TapVidDavis(tmp_path, split="val")
    ex = example(rng, 3, (8, 8), 2)
    ex["points"], ex["occluded"] = ex["points"][:, :2], ex["occluded"][:, :2]
    write_davis(tmp_path, {"short": ex})
    ds = TapVidDavis(tmp_path)
    with pytest.raises(CorruptVideoError, match="cover 2 frames, the video has 3"):
        ds.point_tracks(ds.videos()[0])
    write_davis(tmp_path, {"jpeg": {"video": [b"\xff\xd8garbage"], "points": ex["points"], "occluded": []}})
    ds = TapVidDavis(tmp_path)
    with pytest.raises(CorruptVideoError, match="frame 0 cannot be decoded"):
        ds.load(ds.videos()[0])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SyntheticWorld:
    root = tmp_path_factory.mktemp("world")
    write_world(SynthConfig(out=root, videos=3, frames=5, height=32, width=48, seed=1))
    return SyntheticWorld(root)


def test_synthetic_point_tracks_are_the_tracks_in_tapvid_layout(world: SyntheticWorld) -> None:
    ref = world.videos()[0]
    tracks, pts = world.tracks(ref), world.point_tracks(ref)
    assert pts.points.shape == (tracks.xy.shape[1], 5, 2)
    np.testing.assert_allclose(pts.points[..., 0] * 48, tracks.xy[..., 0].T)
    np.testing.assert_allclose(pts.points[..., 1] * 32, tracks.xy[..., 1].T)
    np.testing.assert_array_equal(pts.occluded, tracks.occluded.T)


def test_synthetic_export_reads_back_as_tapvid_davis(world: SyntheticWorld, tmp_path: Path) -> None:
    path = export_tapvid_davis(world, tmp_path)
    assert path.name == "tapvid_davis.pkl"
    ds = TapVidDavis(tmp_path)
    assert [r.id for r in ds.videos()] == [r.id for r in world.videos()]
    for ref, wref in zip(ds.videos(), world.videos(), strict=True):
        np.testing.assert_array_equal(ds.load(ref).frames, world.load(wref).frames)
        np.testing.assert_array_equal(ds.point_tracks(ref).points, world.point_tracks(wref).points)
        np.testing.assert_array_equal(ds.point_tracks(ref).occluded, world.point_tracks(wref).occluded)


def test_extract_from_tapvid_goes_through_the_store(tmp_path: Path, rng: np.random.Generator) -> None:
    root = write_davis(tmp_path / "data", {"bear": example(rng, 3, (20, 30), 2)})
    report, group = extract_tiny("tiny-sd", "tapvid-davis", root, tmp_path / "store", ("up.2",))
    assert report.computed == ["bear"]
    commit = group.index().latest("bear")
    assert list(commit.frame_names) == ["00000", "00001", "00002"]
    assert [list(m) for m in commit.time_map] == [[0], [1], [2]]
    assert tuple(commit.source_size) == (20, 30)
    assert group.read("bear", 50, "up.2").shape == (3, 32, 8, 8)
