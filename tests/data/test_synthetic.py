"""The synthetic world on disk: layout completeness and formats, and SyntheticWorld's round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import loadmat

from dvx.config import parse_resolution
from dvx.data import open_dataset
from dvx.data.synth_layouts import ucf_class_name
from dvx.data.synth_render import MOTION_CLASSES, SyntheticVideo, WorldParams, generate_video
from dvx.data.synthetic import SynthConfig, SyntheticWorld, stratified_split, write_world
from dvx.errors import ConfigError, CorruptVideoError, DataError

F, H, W, N = 8, 64, 64, 14
SEED = 3


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    write_world(SynthConfig(out=out, videos=N, frames=F, height=H, width=W, seed=SEED))
    return out


@pytest.fixture(scope="module")
def world(root: Path) -> SyntheticWorld:
    return SyntheticWorld(root)


@pytest.fixture(scope="module")
def truth() -> list[SyntheticVideo]:
    return [generate_video(SEED, i, WorldParams(F, H, W)) for i in range(N)]


@pytest.fixture(scope="module")
def meta(root: Path) -> dict:
    return json.loads((root / "world.json").read_text())


# ---- layouts ----------------------------------------------------------------------------------------
def test_world_json_records_the_world(meta: dict) -> None:
    assert (meta["seed"], meta["num_videos"], meta["frames"], meta["height"], meta["width"]) == (
        SEED,
        N,
        F,
        H,
        W,
    )
    assert meta["motion_classes"] == list(MOTION_CLASSES) and meta["generator_version"] == 1
    assert meta["semantic_classes"][0] == "background"
    entries = meta["videos"]
    assert [e["id"] for e in entries] == [f"synth_{i:06d}" for i in range(N)]
    for e in entries:
        assert e["motion_class"] == MOTION_CLASSES[e["index"] % 7] and e["split"] in ("train", "test")
        assert all(len(s["mean_rgb"]) == 3 and s["class"] in meta["semantic_classes"] for s in e["sprites"])


def test_davis_layout(root: Path, meta: dict) -> None:
    davis = root / "DAVIS"
    for e in meta["videos"]:
        jpgs = sorted((davis / "JPEGImages" / "480p" / e["id"]).glob("*.jpg"))
        pngs = sorted((davis / "Annotations" / "480p" / e["id"]).glob("*.png"))
        assert [p.name for p in jpgs] == [f"{t:05d}.jpg" for t in range(F)]
        assert [p.stem for p in pngs] == [p.stem for p in jpgs]
        with Image.open(pngs[0]) as im:
            assert im.mode == "P" and im.size == (W, H)
    sets = {s: (davis / "ImageSets" / "2017" / f"{s}.txt").read_text().split() for s in ("train", "val")}
    scenes = {e["id"]: e["split"] for e in meta["videos"] if e["sprites"]}  # brick walls are not listed
    assert sorted(sets["train"] + sets["val"]) == sorted(scenes)
    assert all(scenes[v] == "train" for v in sets["train"]) and all(scenes[v] == "test" for v in sets["val"])


def test_ucf101_layout_and_split_files(root: Path, meta: dict, truth: list[SyntheticVideo]) -> None:
    import av

    lists = root / "ucfTrainTestlist"
    class_ind = (lists / "classInd.txt").read_text().splitlines()
    assert class_ind == [f"{i + 1} {ucf_class_name(c)}" for i, c in enumerate(MOTION_CLASSES)]
    assert class_ind[1] == "2 PanLeft"
    train = [line.split() for line in (lists / "trainlist01.txt").read_text().splitlines()]
    test = (lists / "testlist01.txt").read_text().splitlines()
    assert all(len(parts) == 2 for parts in train) and all(len(line.split()) == 1 for line in test)
    by_path = {e["files"]["ucf101"]: e for e in meta["videos"]}
    for rel, label in train:
        cls, name = rel.split("/")
        assert name.startswith(f"v_{cls}_g") and name.endswith("_c01.avi")
        assert (
            by_path[f"UCF-101/{rel}"]["split"] == "train"
            and int(label) == by_path[f"UCF-101/{rel}"]["label"] + 1
        )
        assert class_ind[int(label) - 1].split()[1] == cls
    assert all(by_path[f"UCF-101/{rel}"]["split"] == "test" for rel in test)
    assert len(train) + len(test) == N == len(list((root / "UCF-101").glob("*/*.avi")))
    e = meta["videos"][4]
    with av.open(str(root / e["files"]["ucf101"])) as container:
        assert float(container.streams.video[0].average_rate) == 8.0
        frames = np.stack([fr.to_ndarray(format="rgb24") for fr in container.decode(video=0)])
    assert np.array_equal(frames, truth[4].frames)  # lossless FFV1


def test_cityscapes_layout(root: Path, meta: dict, truth: list[SyntheticVideo]) -> None:
    cs = root / "cityscapes"
    for e, v in zip(meta["videos"], truth, strict=True):
        t = e["cityscapes_frame"]
        split = {"train": "train", "test": "val"}[e["split"]]
        name = f"synth_{e['index']:06d}_{t:06d}"
        assert e["files"]["cityscapes"] == f"cityscapes/leftImg8bit/{split}/synth/{name}_leftImg8bit.png"
        gt = cs / "gtFine" / split / "synth"
        with Image.open(gt / f"{name}_gtFine_labelTrainIds.png") as im:
            assert im.mode == "L" and np.array_equal(np.asarray(im), v.semantic[t])
        with Image.open(gt / f"{name}_gtFine_instanceIds.png") as im:
            assert im.mode == "I;16"
            ids = np.asarray(im).astype(np.int64)
        sprite_px = ids >= 1000
        assert np.array_equal(sprite_px, v.instances[t] > 0)
        assert np.array_equal(np.where(sprite_px, ids // 1000, ids), v.semantic[t])
        assert len(np.unique(ids[sprite_px])) == len(np.unique(v.instances[t][v.instances[t] > 0]))
        cam = json.loads((cs / "camera" / split / "synth" / f"{name}_camera.json").read_text())
        assert set(cam["intrinsic"]) == {"fx", "fy", "u0", "v0"} and cam["extrinsic"]["baseline"] > 0
        with Image.open(cs / "disparity" / split / "synth" / f"{name}_disparity.png") as im:
            p = np.asarray(im).astype(np.float64)
        assert (p > 0).all()
        depth = cam["extrinsic"]["baseline"] * cam["intrinsic"]["fx"] / ((p - 1) / 256)
        assert np.allclose(depth, v.depth[t], rtol=0.01)
        with Image.open(root / e["files"]["cityscapes"]) as im:
            assert np.array_equal(np.asarray(im.convert("RGB")), v.frames[t])


def test_movi_layout(root: Path, meta: dict) -> None:
    for e in meta["videos"]:
        split = {"train": "train", "test": "validation"}[e["split"]]
        base = root / "movi" / split / e["id"]
        assert e["files"]["movi"] == f"movi/{split}/{e['id']}"
        for sub, ext in (("rgb", "png"), ("segmentations", "png"), ("depth", "npy")):
            assert [p.name for p in sorted((base / sub).iterdir())] == [f"{t:05d}.{ext}" for t in range(F)]
        with Image.open(base / "segmentations" / "00000.png") as im:
            assert im.mode == "L"
        d = np.load(base / "depth" / "00000.npy")
        assert d.dtype == np.float32 and d.shape == (H, W)


def test_jhmdb_layout(root: Path, meta: dict, truth: list[SyntheticVideo]) -> None:
    jh = root / "JHMDB"
    listed = 0
    for e, v in zip(meta["videos"], truth, strict=True):
        cls, vid = e["motion_class"], e["id"]
        if not e["sprites"]:
            assert e["files"]["jhmdb"] is None and not (jh / "Rename_Images" / cls / vid).exists()
            continue
        pngs = sorted((jh / "Rename_Images" / cls / vid).glob("*.png"))
        assert [p.name for p in pngs] == [f"{t + 1:05d}.png" for t in range(F)]  # 1-based as JHMDB
        with Image.open(pngs[-1]) as im:
            assert np.array_equal(np.asarray(im.convert("RGB")), v.frames[-1])
        pos = loadmat(jh / "joint_positions" / cls / vid / "joint_positions.mat")["pos_img"]
        assert pos.shape == (2, 15, F)
        actor = v.tracks.xy[:, v.tracks.owner == 1]  # (F, 15, 2) 0-based
        assert np.array_equal(pos, np.transpose(actor, (2, 1, 0)) + 1)
        lines = (jh / "splits" / f"{cls}_test_split1.txt").read_text().splitlines()
        assert f"{vid}.avi {2 if e['split'] == 'test' else 1}" in lines
        listed += 1
    n_lines = sum(len(p.read_text().splitlines()) for p in (jh / "splits").glob("*_test_split1.txt"))
    assert n_lines == listed > 0


def test_tracks_npz(root: Path, meta: dict) -> None:
    with np.load(root / meta["videos"][0]["files"]["tracks"]) as z:
        assert set(z.files) == {"xy", "occluded", "owner"}


def test_written_world_is_reproducible(tmp_path: Path, root: Path) -> None:
    again = tmp_path / "again"
    write_world(SynthConfig(out=again, videos=N, frames=F, height=H, width=W, seed=SEED))
    assert (again / "world.json").read_text() == (root / "world.json").read_text()
    rel = Path("DAVIS/JPEGImages/480p/synth_000005/00003.jpg")
    assert (again / rel).read_bytes() == (root / rel).read_bytes()
    other = tmp_path / "other"
    write_world(SynthConfig(out=other, videos=2, frames=F, height=H, width=W, seed=SEED + 1))
    assert (other / rel.parent.parent / "synth_000001" / "00000.jpg").read_bytes() != (
        root / rel.parent.parent / "synth_000001" / "00000.jpg"
    ).read_bytes()


# ---- split ------------------------------------------------------------------------------------------
def test_stratified_split_rule() -> None:
    labels = [i % 3 for i in range(10)]  # class sizes 4, 3, 3
    split = stratified_split(labels, 0.3)
    for c in range(3):
        members = [s for s, lab in zip(split, labels, strict=True) if lab == c]
        assert members[0] == "test" and "train" in members and members.count("test") == 1
    assert stratified_split([0, 1, 1], 0.5) == ["train", "test", "train"]  # a lone video trains
    assert stratified_split([0] * 10, 0.5).count("test") == 5


def test_world_split_is_stratified(world: SyntheticWorld) -> None:
    train, test = world.split_videos("train"), world.split_videos("test")
    assert {r.id for r in train}.isdisjoint(r.id for r in test) and len(train) + len(test) == N
    assert {r.label for r in train} == {r.label for r in test} == set(range(7))
    assert [r.id for r in SyntheticWorld(world.root, split="test").videos()] == [r.id for r in test]


# ---- SyntheticWorld ---------------------------------------------------------------------------------
def test_listing(world: SyntheticWorld) -> None:
    refs = world.videos()
    assert [r.id for r in refs] == [f"synth_{i:06d}" for i in range(N)]
    assert world.classes() == list(MOTION_CLASSES)
    assert all(r.label == i % 7 and r.meta["index"] == i for i, r in enumerate(refs))
    assert refs[0].path == world.root / "DAVIS" / "JPEGImages" / "480p" / "synth_000000"
    assert isinstance(open_dataset("synthetic", str(world.root)), SyntheticWorld)


@pytest.mark.parametrize(
    ("dataset", "folder"),
    [
        ("synthetic", ""),
        ("davis", "DAVIS"),
        ("movi", "movi"),
        ("jhmdb", "JHMDB"),
        ("cityscapes", "cityscapes"),
    ],
)
def test_listing_counts_the_frames_load_returns(root: Path, dataset: str, folder: str) -> None:
    # the runner sizes --dry-run plans and balances ranks on meta["n_frames"]; listing opens no image
    ds = open_dataset(dataset, str(root / folder))
    refs = ds.videos()
    assert refs and all(r.meta["n_frames"] == len(ds.load(r).frames) for r in refs)
    assert {r.meta["n_frames"] for r in refs} == ({1} if dataset == "cityscapes" else {F})


def test_container_datasets_leave_the_frame_count_unset(root: Path) -> None:
    # only the container's header knows it, and opening every file would make listing slow (see docs)
    assert all("n_frames" not in r.meta for r in open_dataset("ucf101", str(root)).videos())


def test_round_trip_matches_the_generator(world: SyntheticWorld, truth: list[SyntheticVideo]) -> None:
    for ref, v in zip(world.videos(), truth, strict=True):
        video = world.load(ref)
        assert video.frame_names == [f"{t:05d}" for t in range(F)] and video.fps == 8.0
        assert np.abs(video.frames.astype(int) - v.frames).mean() < 4  # JPEG quality 95
        masks = world.masks(ref)
        assert np.array_equal(masks.labels, v.instances) and masks.num_objects == len(v.plan.sprites)
        assert np.array_equal(world.instances(ref), v.instances)
        assert np.array_equal(world.semantic(ref), v.semantic)
        assert np.array_equal(world.depth(ref), v.depth)
        tracks = world.tracks(ref)
        assert np.array_equal(tracks.xy, v.tracks.xy) and np.array_equal(tracks.occluded, v.tracks.occluded)
        assert np.array_equal(tracks.owner, v.tracks.owner)


def test_read_back_annotations_are_consistent_with_frames(world: SyntheticWorld) -> None:
    checked = 0
    for ref in world.videos():
        frames = world.load(ref).frames.astype(float)
        inst = world.instances(ref)
        for sprite in ref.meta["sprites"]:
            k = sprite["instance"]
            for t in range(F):
                on = inst[t] == k
                if on.sum() >= 0.6 * sprite["side"] ** 2 * 0.5:
                    mean = frames[t][on].mean(axis=0)
                    assert np.abs(mean - sprite["mean_rgb"]).max() < 25
                    assert np.linalg.norm(mean - sprite["mean_rgb"]) < np.linalg.norm(
                        mean - frames[t][inst[t] == 0].mean(axis=0)
                    )
                    checked += 1
        tracks = world.tracks(ref)
        for t in range(F):
            vis = tracks.visible[t]
            x, y = tracks.xy[t, vis, 0].astype(int), tracks.xy[t, vis, 1].astype(int)
            assert np.array_equal(inst[t, y, x], tracks.owner[vis])
    assert checked > N


def test_joints_are_the_actor_points(world: SyntheticWorld) -> None:
    scene = next(r for r in world.videos() if r.meta["sprites"])
    joints = world.joints(scene)
    assert joints.xy.shape == (F, 15, 2) and len(joints.names) == 15 and joints.visible.any()
    wall = next(r for r in world.videos() if not r.meta["sprites"])
    with pytest.raises(DataError, match="brick wall"):
        world.joints(wall)
    assert not world.masks(wall).labels.any()


def test_brick_wall_read_back_is_a_pan(world: SyntheticWorld) -> None:
    wall = next(r for r in world.videos() if r.meta["kind"] == "brick_wall")
    frames = world.load(wall).frames.astype(int)

    def error(a: np.ndarray, b: np.ndarray, s: int) -> float:  # b == a shifted right by s?
        return float(np.abs(b[:, 4 + s : W - 4 + s] - a[:, 4 : W - 4]).mean())

    for t in range(F - 1):
        errors = {s: error(frames[t], frames[t + 1], s) for s in range(-4, 5)}
        assert min(errors, key=errors.__getitem__) == -wall.meta["camera_velocity"]
        assert errors[-wall.meta["camera_velocity"]] < 0.5 * errors[0]


def test_missing_world_json_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"run `dvx synth --out DIR` first"):
        SyntheticWorld(tmp_path)


def test_bad_split_and_unknown_video(world: SyntheticWorld) -> None:
    with pytest.raises(DataError, match=r"train.*test"):
        SyntheticWorld(world.root, split="val")
    with pytest.raises(DataError):
        world.split_videos("validation")
    with pytest.raises(DataError, match="synth_999999"):
        world.video("synth_999999")


def test_missing_frame_is_a_corrupt_video(tmp_path: Path) -> None:
    out = tmp_path / "w"
    write_world(SynthConfig(out=out, videos=1, frames=4, height=32, width=32))
    (out / "DAVIS" / "JPEGImages" / "480p" / "synth_000000" / "00002.jpg").unlink()
    ds = SyntheticWorld(out)
    with pytest.raises(CorruptVideoError, match="synth_000000"):
        ds.load(ds.videos()[0])
    (out / "extra" / "synth_000000.npz").write_bytes(b"not an npz")
    with pytest.raises(CorruptVideoError):
        ds.tracks(ds.videos()[0])


def test_config_validation() -> None:
    assert parse_resolution("96x128", "--size") == (96, 128) and parse_resolution("64", "--size") == (64, 64)
    with pytest.raises(ConfigError, match="HxW"):
        parse_resolution("big", "--size")
    with pytest.raises(ConfigError):
        SynthConfig(out=Path("x"), videos=0)
    with pytest.raises(ConfigError):
        SynthConfig(out=Path("x"), height=16)
    with pytest.raises(ConfigError):
        SynthConfig(out=Path("x"), test_fraction=1.0)


def test_corrupt_annotation_files_are_corrupt_videos(tmp_path: Path) -> None:
    """Segmentation PNGs and depth .npy files go through the shared readers: a damaged one names its video."""
    out = tmp_path / "w"
    write_world(SynthConfig(out=out, videos=1, frames=4, height=32, width=32))
    ds = SyntheticWorld(out)
    ref = ds.videos()[0]
    movi = next(p for p in out.rglob("segmentations") if p.is_dir()).parent
    (movi / "segmentations" / "00001.png").write_bytes(b"not a png")
    with pytest.raises(CorruptVideoError, match=r"synth_000000.*00001\.png"):
        ds.instances(ref)
    (movi / "depth" / "00002.npy").write_bytes(b"not an npy")
    with pytest.raises(CorruptVideoError, match=r"synth_000000.*00002\.npy"):
        ds.depth(ref)
