from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dvx.data import open_dataset
from dvx.data.davis import DavisDataset
from dvx.data.images import write_indexed_png
from dvx.errors import CorruptVideoError, DataError
from tests.data._media import noise_frames, shared, truncate_copy, write_frames

SEQS_2016 = [
    "blackswan", "bmx-trees", "breakdance", "car-shadow", "dog", "drift-chicane", "drift-straight",
    "horsejump-high", "libby",
]  # fmt: skip


def _davis2016() -> Path:
    return shared("davis2016")


def _layout(tmp_path: Path, src: Path, seqs: list[str], annotations: str = "Annotations") -> Path:
    """A DAVIS folder in tmp_path whose JPEGImages/Annotations sequence folders link to ``src``'s."""
    root = tmp_path / "DAVIS"
    for seq in seqs:
        for sub, src_sub in (("JPEGImages", "JPEGImages"), ("Annotations", annotations)):
            dst = root / sub / "480p" / seq
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src / src_sub / "480p" / seq)
    return root


# ---- the real DAVIS-2016 sample -------------------------------------------------------------------
def test_lists_every_sequence_present_from_parent_or_dataset_folder() -> None:
    for root in (_davis2016(), _davis2016() / "DAVIS"):
        ds = open_dataset("davis", str(root))
        refs = ds.videos()
        assert [r.id for r in refs] == SEQS_2016
        assert refs[0].path.name == "blackswan"


@pytest.mark.slow
def test_all_real_frames_and_binary_masks() -> None:
    ds = DavisDataset(_davis2016())
    total = 0
    for ref in ds.videos():
        video = ds.load(ref)
        masks = ds.masks(ref)
        assert video.frames.shape[1:] == (480, 854, 3)
        assert video.frame_names[0] == "00000" and masks.frame_names == video.frame_names
        assert masks.labels.shape == video.frames.shape[:3]
        assert set(np.unique(masks.labels)) <= {0, 1}  # 0/255 'L' PNGs binarised, never 255 = void
        assert masks.num_objects == 1 and masks.palette is None
        total += len(video.frames)
    assert total == 515


def test_listing_counts_the_real_frames_and_a_dry_run_decodes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvx.config import ExtractConfig
    from dvx.extract.runner import run_extract

    ds = DavisDataset(_davis2016())
    refs = ds.videos()
    assert all(r.meta["n_frames"] == len(ds.load(r).frames) for r in refs)
    loaded: list[str] = []
    real_load = DavisDataset.load
    monkeypatch.setattr(DavisDataset, "load", lambda self, ref: loaded.append(ref.id) or real_load(self, ref))
    cfg = ExtractConfig(
        model="tiny-dinov2",
        dataset="davis",
        data_root=str(_davis2016()),
        store=str(tmp_path / "store"),
        dry_run=True,
        resolution=(14, 14),
        progress=False,
    )
    assert run_extract(cfg).planned_bytes > 0 and loaded == []


def test_masks_match_the_original_0_255_pngs() -> None:
    ds = DavisDataset(_davis2016())
    masks = ds.masks(ds.video("car-shadow"))
    raw = np.asarray(Image.open(_davis2016() / "DAVIS/Annotations/480p/car-shadow/00020.png"))
    np.testing.assert_array_equal(masks.labels[20], (raw > 127).astype(np.uint8))
    assert masks.labels[20].sum() > 1000  # the car is there


def test_palette_annotations_read_the_same_objects(tmp_path: Path) -> None:
    src = _davis2016() / "DAVIS"
    binary = DavisDataset(src)
    by_arg = DavisDataset(src, annotation_folder="Annotations_palette_DERIVED")
    linked = DavisDataset(_layout(tmp_path, src, ["blackswan", "dog"], "Annotations_palette_DERIVED"))
    for seq in ("blackswan", "dog"):
        expected = binary.masks(binary.video(seq)).labels
        for ds in (by_arg, linked):
            masks = ds.masks(ds.video(seq))
            np.testing.assert_array_equal(masks.labels, expected)
            assert masks.palette is not None and tuple(masks.palette[1]) == (128, 0, 0)


def test_first_mask_reads_only_the_first_annotation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dvx.data.davis as davis

    src = _davis2016() / "DAVIS"
    for ds in (DavisDataset(src), DavisDataset(src, annotation_folder="Annotations_palette_DERIVED")):
        for seq in ("blackswan", "dog"):
            ref = ds.video(seq)
            np.testing.assert_array_equal(ds.first_mask(ref), ds.masks(ref).labels[0])
    seen: list[Path] = []
    real = davis.read_label_png
    monkeypatch.setattr(davis, "read_label_png", lambda path, *a: seen.append(path) or real(path, *a))
    ds = DavisDataset(src)
    assert ds.first_mask(ds.video("dog")).any() and [p.name for p in seen] == ["00000.png"]


def test_official_val_split_fails_clearly_on_the_partial_copy() -> None:
    with pytest.raises(DataError, match=r"split 'val' lists 11 video\(s\) absent.*camel"):
        DavisDataset(_davis2016(), split="val").videos()
    with pytest.raises(DataError, match=r"no list file for split 'nope'.*480p/val"):
        DavisDataset(_davis2016(), split="nope").videos()


def test_2016_style_split_file_selects_sequences(tmp_path: Path) -> None:
    root = _layout(tmp_path, _davis2016() / "DAVIS", ["blackswan", "dog", "libby"])
    sets = root / "ImageSets" / "480p"
    sets.mkdir(parents=True)
    lines = [f"/JPEGImages/480p/{s}/{i:05d}.jpg /Annotations/480p/{s}/{i:05d}.png" for s in ("libby", "dog")
             for i in range(3)]  # fmt: skip
    (sets / "val.txt").write_text("\n".join(lines) + "\n")
    ds = DavisDataset(root, split="val")
    assert [r.id for r in ds.videos()] == ["dog", "libby"]
    assert [r.id for r in ds.split_videos("2016/val")] == ["dog", "libby"]


# ---- DAVIS-2017 conventions (multi-object palette masks, odd widths) -------------------------------
def _davis2017_layout(tmp_path: Path, seq: str, n: int | None = None, first_only: bool = False) -> Path:
    """JPEGImages of the right size (synthetic pixels) + the real OSVOS palette PNGs as Annotations."""
    src = shared("davis2017_osvos", "results", "semi-supervised", "osvos", seq)
    pngs = sorted(src.glob("*.png"))[:n]
    width, height = Image.open(pngs[0]).size
    root = tmp_path / "DAVIS"
    frames = np.zeros((len(pngs), height, width, 3), np.uint8)  # flat: fast to encode
    write_frames(root / "JPEGImages" / "480p" / seq, frames, names=[p.stem for p in pngs], ext=".jpg")
    ann = root / "Annotations" / "480p" / seq
    ann.mkdir(parents=True)
    for png in pngs[:1] if first_only else pngs:
        (ann / png.name).symlink_to(png)
    sets = root / "ImageSets" / "2017"
    sets.mkdir(parents=True)
    (sets / "val.txt").write_text(f"{seq}\n")
    return root


@pytest.mark.parametrize(("seq", "width", "objects"), [("shooting", 1152, 3), ("bike-packing", 910, 2)])
def test_multi_object_palette_masks_and_wide_frames(
    tmp_path: Path, seq: str, width: int, objects: int
) -> None:
    root = _davis2017_layout(tmp_path, seq)
    ds = DavisDataset(tmp_path, split="val")  # parent of DAVIS/, DAVIS-2017 list
    ref = ds.videos()[0]
    video, masks = ds.load(ref), ds.masks(ref)
    assert video.frames.shape[1:] == (480, width, 3)
    assert masks.labels.shape == (len(video.frames), 480, width)
    assert masks.num_objects == objects
    raw = np.asarray(Image.open(root / "Annotations/480p" / seq / "00010.png"))
    np.testing.assert_array_equal(masks.labels[10], raw)  # palette indices kept as stored


def test_first_frame_only_annotations(tmp_path: Path) -> None:
    _davis2017_layout(tmp_path, "gold-fish", n=6, first_only=True)
    ds = DavisDataset(tmp_path / "DAVIS")
    masks = ds.masks(ds.videos()[0])
    assert masks.frame_names == ["00000"] and masks.labels.shape == (1, 480, 854)
    assert len(ds.load(ds.videos()[0]).frames) == 6


# ---- synthetic layouts: errors ---------------------------------------------------------------------
def _tiny(tmp_path: Path) -> Path:
    root = tmp_path / "DAVIS"
    write_frames(root / "JPEGImages" / "480p" / "a", noise_frames(3, 16, 20), ext=".jpg")
    labels = np.zeros((16, 20), np.uint8)
    labels[2:6, 3:9], labels[10:, 10:] = 1, 255
    write_indexed_png(root / "Annotations" / "480p" / "a" / "00000.png", labels)
    return root


def test_void_is_kept_in_palette_masks(tmp_path: Path) -> None:
    ds = DavisDataset(_tiny(tmp_path))
    masks = ds.masks(ds.video("a"))
    assert set(np.unique(masks.labels)) == {0, 1, 255} and masks.num_objects == 1


def test_truncated_jpeg_is_corrupt(tmp_path: Path) -> None:
    root = _tiny(tmp_path)
    frame = root / "JPEGImages" / "480p" / "a" / "00001.jpg"
    truncate_copy(frame, frame, frame.stat().st_size // 2)
    ds = DavisDataset(root)
    with pytest.raises(CorruptVideoError, match=r"'a'.*00001\.jpg"):
        ds.load(ds.video("a"))


def test_a_frame_of_another_size_is_a_corrupt_video_that_skip_bad_skips(tmp_path: Path) -> None:
    from dvx.config import ExtractConfig
    from dvx.extract.runner import run_extract

    root = _tiny(tmp_path)
    write_frames(root / "JPEGImages" / "480p" / "b", noise_frames(3, 16, 20), ext=".jpg")
    write_frames(root / "JPEGImages" / "480p" / "b", noise_frames(1, 16, 18), names=["00002"], ext=".jpg")
    ds = DavisDataset(root)
    with pytest.raises(CorruptVideoError, match=r"'b'.*00002\.jpg is 18x16"):
        ds.load(ds.video("b"))
    cfg = ExtractConfig(
        model="tiny-dinov2",
        dataset="davis",
        data_root=str(root),
        store=str(tmp_path / "store"),
        resolution=(14, 14),
        progress=False,
        skip_bad=True,
    )
    report = run_extract(cfg)  # one bad video no longer aborts the run
    assert report.computed == ["a"] and list(report.failed) == ["b"]


def test_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no JPEGImages/480p"):
        DavisDataset(tmp_path)
    with pytest.raises(DataError, match=r"does not exist"):
        DavisDataset(tmp_path / "absent")
    root = _tiny(tmp_path)
    with pytest.raises(DataError, match=r"JPEGImages holds: 480p"):
        DavisDataset(root, resolution="Full-Resolution")
    write_frames(root / "JPEGImages" / "480p" / "b", noise_frames(1, 16, 20), ext=".jpg")
    ds = DavisDataset(root)
    with pytest.raises(DataError, match=r"no annotation PNGs for sequence 'b'"):
        ds.masks(ds.video("b"))
    write_indexed_png(root / "Annotations" / "480p" / "b" / "00000.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match=r"8x8 but the frames of 'b' are 20x16"):
        ds.masks(ds.video("b"))
    write_frames(root / "JPEGImages" / "480p" / "b", noise_frames(1, 17, 20), names=["00001"], ext=".jpg")
    with pytest.raises(DataError, match=r"one size"):
        ds.load(ds.video("b"))


# ---- the default split: the official val list ----------------------------------------------------------
def test_the_official_val_list_is_the_default_and_all_takes_every_sequence(tmp_path: Path) -> None:
    root = _layout(tmp_path, _davis2016() / "DAVIS", ["blackswan", "dog", "libby"])
    assert DavisDataset(root).split is None  # no ImageSets/2017: every sequence present (a DAVIS-2016 copy)
    assert [r.id for r in DavisDataset(root).videos()] == ["blackswan", "dog", "libby"]
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("libby\ndog\n")
    default = open_dataset("davis", str(tmp_path))
    assert default.split == "2017/val" and [r.id for r in default.videos()] == ["dog", "libby"]
    everything = open_dataset("davis", str(tmp_path), split="all")
    assert everything.split is None and [r.id for r in everything.videos()] == ["blackswan", "dog", "libby"]
    (root / "ImageSets" / "2017" / "val.txt").write_text("libby\ncamel\n")
    with pytest.raises(DataError, match=r"split '2017/val' lists 1 video\(s\) absent.*camel"):
        DavisDataset(root).videos()
    with pytest.raises(DataError, match="use --split all for every sequence present"):
        DavisDataset(root, split="test-dev").videos()
