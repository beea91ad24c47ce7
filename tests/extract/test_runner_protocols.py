"""The published protocols through the extraction runner: DIFT's DAVIS recipe and frame sizes (per video),
the recipe fields they record, seed 002's per-family T, and Cityscapes snippets for video models."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dvx.cli import main
from dvx.config import ExtractConfig
from dvx.data.input_size import PER_VIDEO
from dvx.extract.presets import extract_config
from dvx.extract.runner import SAMPLE_PER_MEMBER, run_extract
from dvx.store.root import FeatureStore
from tests.conftest import shared_data


def davis_layout(tmp_path: Path, frames: int = 2) -> Path:
    """A DAVIS-2017-style root: blackswan (854 wide, real frames), bike-packing (910) and shooting (1152)
    (flat frames at the real OSVOS annotations' sizes), the first ``frames`` frames of each, all in
    ImageSets/2017/val.txt."""
    real = shared_data("davis2016", "DAVIS")
    osvos = shared_data("davis2017_osvos", "results", "semi-supervised", "osvos")
    root = tmp_path / "DAVIS"
    for seq in ("blackswan", "bike-packing", "shooting"):
        jpg, ann = root / "JPEGImages/480p" / seq, root / "Annotations/480p" / seq
        jpg.mkdir(parents=True)
        ann.mkdir(parents=True)
        for i in range(frames):
            png = osvos / seq / f"{i:05d}.png"
            (ann / png.name).symlink_to(png)
            if seq == "blackswan":
                (jpg / f"{i:05d}.jpg").symlink_to(real / "JPEGImages/480p" / seq / f"{i:05d}.jpg")
            else:
                w, h = Image.open(png).size
                Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(jpg / f"{i:05d}.jpg")
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/val.txt").write_text("blackswan\nbike-packing\nshooting\n")
    return root


def extract_json(*argv: str, capsys: pytest.CaptureFixture[str]) -> dict:
    """``dvx extract ARGV --json`` in this process (a failure would exit): its JSON report."""
    main(["extract", *argv, "--threads", "1", "--no-progress", "--json"])
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_dift_preset_extracts_davis_at_difts_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = davis_layout(tmp_path, frames=1)
    store = str(tmp_path / "s")
    common = ("--model", "tiny-sd", "--dataset", "davis", "--data-root", str(root), "--store", store)
    rep = extract_json(*common, "--preset", "dift", "--videos", "blackswan", capsys=capsys)
    recipe = rep["recipe"]
    assert (recipe["ensemble"], recipe["latent"], recipe["dtype"]) == (8, SAMPLE_PER_MEMBER, "float32")
    assert recipe["resolution"] == list(PER_VIDEO) and recipe["conditioning"]["prompt"] == ""
    resize = recipe["conditioning"]["input"]["resize"]
    assert (resize["preset"], resize["short_side"], resize["long_multiple"], resize["snap"]) == (
        "dift",
        480,
        32,
        8,
    )
    assert rep["timesteps"] == [51] and rep["blocks"] == ["up.2"] and rep["preset"] == "dift"
    group = FeatureStore.open(store, mode="r").find("davis", "tiny-sd", rep["fingerprint"][:8])
    assert group.read("blackswan", 51, "up.2").shape == (1, 32, 60, 104)  # 854x480 -> 832x480 -> 104x60
    # a flag beside the preset overrides it (another recipe); every video at its own size
    one = extract_json(*common, "--preset", "dift", "--ensemble", "1", capsys=capsys)
    assert one["recipe"]["ensemble"] == 1 and one["recipe"]["latent"] == "sample"
    group = FeatureStore.open(store, mode="r").find("davis", "tiny-sd", one["fingerprint"][:8])
    shapes = {v: tuple(group.read(v, 51, "up.2").shape) for v in group.index().videos()}
    # 854 -> 480x832 (up.2 60x104); 910 -> 480x896 (60x112); 1152 -> 480x1152 (60x144)
    assert shapes == {
        "blackswan": (1, 32, 60, 104),
        "bike-packing": (1, 32, 60, 112),
        "shooting": (1, 32, 60, 144),
    }
    assert group.index().latest("shooting").source_size == (480, 1152)
    # the model's default recipe is another one again
    default = extract_json(*common, "--dry-run", capsys=capsys)
    assert len({rep["fingerprint"], default["fingerprint"], one["fingerprint"]}) == 3
    assert default["recipe"]["resolution"] == [128, 256] and default["timesteps"] == [50]
    # --dry-run of the done run: nothing left to compute; the geometry of the block it asks for
    again = extract_json(*common, "--preset", "dift", "--videos", "blackswan", "--dry-run", capsys=capsys)
    assert again["fingerprint"] == rep["fingerprint"] and again["planned_bytes"] == 0
    assert again["geometry"] == {"up.2": [32, 60, 104]}


def test_dry_run_prints_every_blocks_map_and_the_forward_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = davis_layout(tmp_path, frames=3)
    common = (
        "--model",
        "tiny-sd",
        "--dataset",
        "davis",
        "--data-root",
        str(root),
        "--store",
        str(tmp_path / "s"),
    )
    rep = extract_json(
        *common,
        "--resolution",
        "dift",
        "--timesteps",
        "0,50",
        "--batch-size",
        "4",
        "--dry-run",
        capsys=capsys,
    )
    assert rep["geometry"]["up.2"] == [32, 60, 104] and rep["geometry"]["mid"] == [64, 8, 13]
    # 3 videos x 3 frames (one unit of <= 4 frames each) x 2 T, batches of 4 samples: 2 forwards per video
    assert rep["planned_forwards"] == 6
    # 9 blocks per stored frame at each video's own size
    per_frame = {
        size: sum(c * h * w * 2 for c, h, w in _shapes(size).values())
        for size in ((480, 832), (480, 896), (480, 1152))
    }
    assert rep["planned_bytes"] == 3 * 2 * sum(per_frame.values())
    assert not (tmp_path / "s" / "davis").exists()


def _shapes(size: tuple[int, int]) -> dict[str, tuple[int, int, int]]:
    from dvx.extract.base import RunOptions
    from dvx.extract.models import load_backbone, model_spec

    return load_backbone(model_spec("tiny-sd"), RunOptions()).block_shapes(size)


def test_a_default_recipe_keeps_its_fingerprint(tmp_path: Path) -> None:
    """Nothing new enters a recipe that uses none of the new options: its identity is what it was."""
    from tests.conftest import make_toy

    root = make_toy(tmp_path / "toy", {"a": 2})
    base = ExtractConfig(
        model="tiny-sd", dataset="toy", data_root=str(root), store=str(tmp_path / "s"), progress=False,
        resolution=(64, 64), timesteps=(0,), blocks=("mid",), dry_run=True,
    )  # fmt: skip
    recipe = run_extract(base).recipe
    ident = recipe.identity()
    assert "input" not in ident["conditioning"] and ident["latent"] == "mean" and ident["extractor"] == 1
    assert run_extract(replace(base, latent="sample")).recipe.latent == "sample"  # one member: as before
    assert run_extract(replace(base, latent="sample", ensemble=2)).recipe.latent == SAMPLE_PER_MEMBER


def test_flow_dits_default_to_seed002s_t16_with_both_sigmas_recorded(tmp_path: Path) -> None:
    from dvx.data.synthetic import SynthConfig, write_world

    world = tmp_path / "w"
    write_world(SynthConfig(out=world, videos=1, frames=2, height=32, width=32, seed=1))
    cfg = extract_config(
        None,
        "tiny-sd3",
        "synthetic",
        str(world),
        str(tmp_path / "s"),
        blocks=("layer.0",),
        threads=1,
        progress=False,
    )
    report = run_extract(cfg, log=lambda _: None)
    assert report.timesteps == (16,) and report.recipe.dtype == "float32"  # CPU: float32
    [group] = FeatureStore.open(str(tmp_path / "s"), mode="r").groups()
    level = group.noise_levels()[16]
    assert level["sigma_unshifted"] == 0.016 and level["sigma"] == pytest.approx(0.0465, abs=1e-4)


@pytest.mark.slow
def test_video_models_see_cityscapes_snippets_and_store_the_annotated_frame(tmp_path: Path) -> None:
    from tests.data.test_cityscapes import NAME, write_sequence_layout

    root = write_sequence_layout(tmp_path)
    logs: list[str] = []
    base = ExtractConfig(
        model="tiny-svd", dataset="cityscapes", data_root=str(root), store=str(tmp_path / "s"),
        resolution=(64, 128), timesteps=(50,), blocks=("up.2",), threads=1, progress=False,
    )  # fmt: skip
    report = run_extract(base, log=logs.append)
    frames = report.recipe.conditioning["input"]["frames"]
    assert frames["source"] == "leftImg8bit_sequence" and frames["annotated_index"] == 7
    assert f"cityscapes for a video model: {frames['rule']}" in logs  # printed, as recorded
    group = FeatureStore.open(str(tmp_path / "s"), mode="r").find("cityscapes", "tiny-svd", None)
    commit = group.index().latest(NAME)
    assert commit.frame_names == (NAME,) and commit.time_map == ((0,),) and commit.source_size == (128, 256)
    moving = group.read(NAME, 50, "up.2")
    assert moving.shape == (1, 32, 8, 16)
    # without the sequences: the static repeat, another recipe, other features for the same frame
    (root / "leftImg8bit_sequence").rename(tmp_path / "elsewhere")
    static = run_extract(replace(base, store=str(tmp_path / "t")), log=logs.append)
    assert static.recipe.conditioning["input"]["frames"]["source"] == "static"
    assert f"cityscapes for a video model: {static.recipe.conditioning['input']['frames']['rule']}" in logs
    assert static.recipe.fingerprint != report.recipe.fingerprint
    still = FeatureStore.open(str(tmp_path / "t"), mode="r").groups()[0].read(NAME, 50, "up.2")
    assert still.shape == moving.shape and not np.allclose(still, moving)
    # image models read the annotated image alone: nothing about frames enters their recipe
    image = run_extract(replace(base, model="tiny-sd", store=str(tmp_path / "u"), dry_run=True))
    assert "input" not in image.recipe.conditioning
