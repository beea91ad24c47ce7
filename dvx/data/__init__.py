"""Datasets: readers for the real layouts and the synthetic dynamic world (lazy registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dvx.registry import Registry

if TYPE_CHECKING:
    from dvx.data.base import VideoDataset

DATASETS = Registry("dataset")
DATASETS.register(
    "synthetic", "dvx.data.synthetic:SyntheticWorld", "the seeded synthetic dynamic world (dvx synth)"
)
DATASETS.register(
    "davis", "dvx.data.davis:DavisDataset", "DAVIS-2016 (0/255 masks) and DAVIS-2017 (palette) layouts"
)
DATASETS.register("jhmdb", "dvx.data.jhmdb:JhmdbDataset", "JHMDB frames + joint_positions.mat")
DATASETS.register("ucf101", "dvx.data.actions:Ucf101Dataset", "UCF101 videos in class folders + split files")
DATASETS.register("hmdb51", "dvx.data.actions:Hmdb51Dataset", "HMDB51 videos in class folders + split files")
DATASETS.register("cityscapes", "dvx.data.cityscapes:CityscapesDataset", "Cityscapes leftImg8bit + gtFine")
DATASETS.register("movi-c", "dvx.data.movi:MoviCDataset", "a MOVi-C export: frames + instance masks + depth")
DATASETS.register("movi-e", "dvx.data.movi:MoviEDataset", "a MOVi-E export: frames + instance masks + depth")
DATASETS.register("movi", "dvx.data.movi:MoviDataset", "any other MOVi export (movi-c / movi-e: those)")
DATASETS.register(
    "tapvid-davis", "dvx.data.tapvid:TapVidDavis", "TAP-Vid-DAVIS point tracks (tapvid_davis.pkl)"
)
DATASETS.register(
    "tapvid-kinetics", "dvx.data.tapvid:TapVidKinetics", "TAP-Vid-Kinetics point tracks (pickle shards)"
)
DATASETS.register(
    "tapvid-rgb-stacking",
    "dvx.data.tapvid:TapVidRgbStacking",
    "TAP-Vid-RGB-Stacking point tracks (tapvid_rgb_stacking.pkl)",
)


def open_dataset(name: str, root: str, split: str | None = None) -> VideoDataset:
    """Build the dataset ``name`` reading ``root`` (did-you-mean on unknown names)."""
    cls = DATASETS.load(name)
    return cls(root, split=split)
