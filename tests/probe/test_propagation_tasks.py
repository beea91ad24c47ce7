"""davis17 / jhmdb / synthetic-propagation tasks end to end: store -> propagation -> PNG/JSON -> metrics.

The stores hold raw-pixel Lab features written through the store's own writer (a "pixels" model), so the
task's own pixel-colour baseline, computed from the frames at the same stride, must score the same: a check
that features, frame mapping, resizing and scoring line up.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
from PIL import Image

from dvx.config import ProbeConfig
from dvx.data import open_dataset
from dvx.data.synthetic import SynthConfig, write_world
from dvx.probe.baselines import pixel_features
from dvx.probe.evaluate import DavisEvalConfig, run_davis_eval
from dvx.probe.runner import run_probe
from dvx.probe.tasks.propagation_common import resize_frames
from dvx.store.recipe import Recipe
from dvx.store.root import FeatureStore
from dvx.store.writer import VideoWriter
from tests.conftest import shared_data

RES = (240, 432)
STRIDE = 8


def write_pixel_store(
    dataset: str,
    root: Path,
    store: Path,
    videos: list[str] | None = None,
    resolution: tuple[int, int] = RES,
    strides: tuple[int, ...] = (STRIDE,),
) -> None:
    """Lab pixel features pooled by each stride s at ``resolution``, as block ``pix.<s>`` at T=50."""
    recipe = Recipe(
        model="pixels",
        family="pixels",
        weights="0" * 64,
        dtype="float32",
        resolution=resolution,
        clip_len=None,
        latent="none",
    )
    group = FeatureStore.open(str(store), mode="a").create_group(dataset, recipe)
    ds = open_dataset(dataset, str(root))
    for ref in ds.videos():
        if videos is not None and ref.id not in videos:
            continue
        video = ds.load(ref)
        frames = resize_frames(video.frames, resolution)
        n = len(frames)
        vw = VideoWriter(group, ref.id, (50,), tuple(f"pix.{s}" for s in strides), chunk_frames=n)
        for stride in strides:
            vw.write(50, f"pix.{stride}", 0, pixel_features(frames, stride=stride).numpy(), n)
        vw.commit(video.frame_names, [[i] for i in range(n)], video.frames.shape[1:3])


def probe(
    task: str,
    store: Path,
    root: Path,
    tmp: Path,
    dataset: str | None = None,
    split: str | None = None,
    blocks: tuple[str, ...] | None = None,
    **options: object,
):
    cfg = ProbeConfig(
        task=task,
        store=str(store),
        model="pixels",
        data_root=str(root),
        dataset=dataset,
        split=split,
        blocks=blocks,
        out=str(tmp / "out"),
        results=str(tmp / "results"),
        device="cpu",
        options={"preset": "dino", **options},
    )
    return run_probe(cfg, log=lambda _: None)


def pred_dir(tmp: Path, task: str, dataset: str, t: int = 50, block: str = "pix.8") -> Path:
    """The prediction folder of the pixels model: ``<out>/<task>/<dataset>/pixels@<fp8>/T<t>/<block>``."""
    [folder] = (tmp / "out" / task / dataset).glob(f"pixels@*/T{t}/{block}")
    return folder


@pytest.mark.slow
def test_davis17_on_real_sequences_matches_its_pixel_baseline_and_the_eval_tool(tmp_path: Path) -> None:
    root = shared_data("davis2016")
    write_pixel_store("davis", root, tmp_path / "s", videos=["blackswan", "car-shadow"])
    # the store holds only two sequences: probe them through a DAVIS layout holding just those
    layout = tmp_path / "DAVIS"
    for sub in ("JPEGImages/480p", "Annotations/480p"):
        (layout / sub).mkdir(parents=True)
        for seq in ("blackswan", "car-shadow"):
            (layout / sub / seq).symlink_to(root / "DAVIS" / sub / seq)
    [rec] = probe("davis17", tmp_path / "s", layout, tmp_path)
    assert rec.T == 50 and rec.block == "pix.8" and rec.videos == 2
    assert set(rec.details["per_sequence"]) == {"blackswan", "car-shadow"}
    base = rec.details["baselines"]
    assert base["pixel_colour"]["stride"] == STRIDE
    # the same features through the task and through the baseline path: the same J&F (fp16 storage aside)
    assert rec.metrics["JF_mean"] == pytest.approx(base["pixel_colour"]["JF_mean"], abs=0.01)
    assert rec.metrics["JF_mean"] > base["copy_first_mask"]["JF_mean"] > 0.2
    # DAVIS submission format: same names and size as the annotations, palette PNGs, frame 0 = the given mask
    folder = pred_dir(tmp_path, "davis17", "davis")
    pngs = sorted((folder / "blackswan").glob("*.png"))
    assert [p.stem for p in pngs] == [f"{i:05d}" for i in range(50)]
    with Image.open(pngs[10]) as im:
        assert im.mode == "P" and im.size == (854, 480)
    first = np.asarray(Image.open(pngs[0]))
    gt0 = np.asarray(Image.open(root / "DAVIS/Annotations/480p/blackswan/00000.png")) > 127
    assert np.array_equal(first.astype(bool), gt0)
    # the evaluation tool scores those PNGs exactly as the probe did
    ev = run_davis_eval(DavisEvalConfig(pred=folder, gt=layout / "Annotations/480p"))
    assert ev["metrics"]["JF_mean"] == pytest.approx(rec.metrics["JF_mean"], abs=1e-9)


@pytest.mark.slow
def test_jhmdb_on_the_real_video(tmp_path: Path) -> None:
    root = shared_data("jhmdb")
    write_pixel_store("jhmdb", root, tmp_path / "s", resolution=(240, 320))
    [rec] = probe("jhmdb", tmp_path / "s", root, tmp_path)
    assert 0.0 <= rec.metrics["pck@0.1"] <= rec.metrics["pck@0.2"] <= 1.0
    assert rec.metrics["pck@0.2"] > 0.3  # raw colour tracks a slowly moving person for a while
    [video] = rec.details["per_video"]
    joints = json.loads((pred_dir(tmp_path, "jhmdb", "jhmdb") / f"{video}.json").read_text())
    assert joints["video"] == video and len(joints["frames"]) == 40 and len(joints["frames"][0]) == 15
    assert joints["frames"][0][0] == pytest.approx([float(v) for v in _gt_first_joint(root)])


def _gt_first_joint(root: Path) -> np.ndarray:
    ds = open_dataset("jhmdb", str(root))
    return ds.joints(ds.videos()[0]).xy[0, 0]


def test_synthetic_propagation_runs_on_the_world_and_reuses_records(tmp_path: Path) -> None:
    world = tmp_path / "w"
    write_world(SynthConfig(out=world, videos=4, frames=8, height=64, width=64, seed=1, brick_wall_every=0))
    write_pixel_store("synthetic", world, tmp_path / "s", resolution=(64, 64))
    [rec] = probe("synthetic-propagation", tmp_path / "s", world, tmp_path, dataset="synthetic")
    base = rec.details["baselines"]
    assert rec.videos == 4
    assert rec.metrics["JF_mean"] == pytest.approx(base["pixel_colour"]["JF_mean"], abs=0.02)
    [again] = probe("synthetic-propagation", tmp_path / "s", world, tmp_path, dataset="synthetic")
    assert again == rec  # the record was reused, not recomputed
    [other] = probe("synthetic-propagation", tmp_path / "s", world, tmp_path, dataset="synthetic", topk=3)
    assert other.probe["topk"] == 3 and other.key() != rec.key()
    # a split or another store: a record of its own; the first is neither reused nor replaced
    [part] = probe("synthetic-propagation", tmp_path / "s", world, tmp_path, "synthetic", split="train")
    assert part.probe["split"] == "train" and part.key() != rec.key()
    assert part.probe["videos_sha"] == rec.probe["videos_sha"]  # (this split holds every video of the world)
    shutil.copytree(tmp_path / "s", tmp_path / "copy")
    [copied] = probe("synthetic-propagation", tmp_path / "copy", world, tmp_path, dataset="synthetic")
    assert copied.store.endswith("copy") and copied.key() != rec.key()
    assert copied.metrics == rec.metrics  # the same features, scored again
    assert probe("synthetic-propagation", tmp_path / "s", world, tmp_path, dataset="synthetic") == [rec]


def _count_label_reads(monkeypatch: pytest.MonkeyPatch, module: object) -> list[Path]:
    """Wrap ``module.read_label_png`` to record every annotation file it decodes."""
    seen: list[Path] = []
    real = module.read_label_png  # type: ignore[attr-defined]

    def counting(path: Path, *args: object, **kwargs: object) -> object:
        seen.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(module, "read_label_png", counting)
    return seen


def test_davis_task_picks_videos_from_first_annotations_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dvx.data.synthetic as synthetic
    from dvx.probe.tasks.davis import DavisPropagationTask

    world = tmp_path / "w"
    write_world(SynthConfig(out=world, videos=3, frames=4, height=32, width=32, seed=1, brick_wall_every=1))
    ds = open_dataset("synthetic", str(world))
    refs = ds.videos()
    for ref in refs:
        np.testing.assert_array_equal(ds.first_mask(ref), ds.masks(ref).labels[0])
    with_objects = [r.id for r in refs if ds.masks(r).labels[0].any()]
    seen = _count_label_reads(monkeypatch, synthetic)
    cfg = ProbeConfig(task="synthetic-propagation", store="s", model="pixels", data_root=str(world))
    ctx = cast(Any, SimpleNamespace(dataset=ds, dataset_name="synthetic"))
    picked = DavisPropagationTask("synthetic-propagation", cfg).videos(ctx)
    # the brick walls (no object in frame 0) are left out
    assert [r.id for r in picked] == with_objects and 0 < len(picked) < len(refs)
    assert len(seen) == len(refs) and all(p.stem == "00000" for p in seen)  # one PNG per video


def test_davis_baselines_decode_each_video_once_across_strides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvx.data.synthetic import SyntheticWorld
    from dvx.probe import baselines

    world = tmp_path / "w"
    write_world(SynthConfig(out=world, videos=3, frames=6, height=64, width=64, seed=2, brick_wall_every=0))
    write_pixel_store("synthetic", world, tmp_path / "s", resolution=(64, 64), strides=(8, 4))
    calls = {"load": 0, "copy": 0}

    def counted(real: Any, key: str) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[key] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(SyntheticWorld, "load", counted(SyntheticWorld.load, "load"))
    monkeypatch.setattr(baselines, "copy_first_mask", counted(baselines.copy_first_mask, "copy"))
    recs = probe("synthetic-propagation", tmp_path / "s", world, tmp_path, dataset="synthetic", blocks=())
    by_block = {r.block: r.details["baselines"] for r in recs}
    assert {b: v["pixel_colour"]["stride"] for b, v in by_block.items()} == {"pix.8": 8, "pix.4": 4}
    assert by_block["pix.8"]["copy_first_mask"]["JF_mean"] == by_block["pix.4"]["copy_first_mask"]["JF_mean"]
    # each video is decoded once and its copy-the-first-mask baseline scored once, whatever the strides
    assert calls == {"load": 3, "copy": 3}


@pytest.mark.parametrize("kind", ["davis17", "jhmdb"])
def test_a_commit_gone_after_the_runner_checked_is_a_cache_miss(tmp_path: Path, kind: str) -> None:
    from dvx.errors import CacheMissError
    from dvx.probe.task import ProbeContext, Task
    from dvx.probe.tasks.davis import DavisPropagationTask
    from dvx.probe.tasks.jhmdb import JhmdbPropagationTask

    world = tmp_path / "w"
    write_world(SynthConfig(out=world, videos=2, frames=4, height=64, width=64, seed=1, brick_wall_every=0))
    write_pixel_store("synthetic", world, tmp_path / "s", videos=["synth_000000"], resolution=(64, 64))
    cfg = ProbeConfig(task=kind, store=str(tmp_path / "s"), model="pixels", data_root=str(world))
    group = FeatureStore.open(cfg.store, mode="r").find("synthetic", "pixels", None)
    ds = open_dataset("synthetic", str(world))
    ctx = ProbeContext(cfg, group, ds, "synthetic", None, "cpu", lambda _: None, refs=tuple(ds.videos()))
    task: Task = {"davis17": DavisPropagationTask, "jhmdb": JhmdbPropagationTask}[kind](kind, cfg)
    with pytest.raises(CacheMissError, match="synth_000001"):
        task.run(ctx, [(50, "pix.8")])


# ---- DAVIS-2017 as the official tool reads it: the val list by default, void never an object --------------
def davis17_root(tmp_path: Path, seqs: list[str], frames: int = 6, void_rows: int = 0) -> Path:
    """A DAVIS-2017-style root from the real DAVIS-2016 sample: the first ``frames`` JPEGs of each sequence
    and palette annotations (object 1), the top ``void_rows`` rows of every annotation void (255)."""
    from dvx.data.images import read_label_png, write_indexed_png

    src = shared_data("davis2016") / "DAVIS"
    root = tmp_path / "DAVIS"
    for seq in seqs:
        (root / "JPEGImages/480p" / seq).mkdir(parents=True)
        for i in range(frames):
            name = f"{i:05d}"
            (root / "JPEGImages/480p" / seq / f"{name}.jpg").symlink_to(
                src / "JPEGImages/480p" / seq / f"{name}.jpg"
            )
            labels, palette = read_label_png(src / "Annotations_palette_DERIVED/480p" / seq / f"{name}.png")
            labels[:void_rows] = 255
            write_indexed_png(root / "Annotations/480p" / seq / f"{name}.png", labels, palette)
    return root


def probe_cli(store: Path, root: Path, tmp: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    """``dvx probe --task davis17`` with no --split: its JSON record."""
    from dvx.cli import main

    main([
        "probe", "--task", "davis17", "--store", str(store), "--model", "pixels", "--data-root", str(root),
        "--out", str(tmp / "out"), "--results", str(tmp / "results"), "--device", "cpu", "--preset", "dino",
        "--json", "--no-progress",
    ])  # fmt: skip
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_davis17_scores_exactly_the_official_val_list_without_a_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = davis17_root(tmp_path, ["blackswan", "car-shadow", "dog"])
    write_pixel_store("davis", root, tmp_path / "s")  # features of all three (no list yet)
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/val.txt").write_text("dog\nblackswan\n")
    rec = probe_cli(tmp_path / "s", root, tmp_path, capsys)
    assert rec["videos"] == 2 and sorted(rec["details"]["per_sequence"]) == ["blackswan", "dog"]
    assert sorted(p.name for p in pred_dir(tmp_path, "davis17", "davis").iterdir() if p.is_dir()) == [
        "blackswan",
        "dog",
    ]


@pytest.mark.slow
def test_a_void_band_is_never_propagated_nor_scored_as_an_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dvx.probe.propagation import mask_to_onehot

    root = davis17_root(tmp_path, ["blackswan"], frames=8, void_rows=120)
    write_pixel_store("davis", root, tmp_path / "s")
    rec = probe_cli(tmp_path / "s", root, tmp_path, capsys)
    gt = np.stack(
        [np.asarray(Image.open(p)) for p in sorted((root / "Annotations/480p/blackswan").glob("*.png"))]
    )
    assert set(np.unique(gt)) == {0, 1, 255} and (gt[0] == 1).any()
    # propagated labels: background and the one object, void an all-zero column (no channel of its own)
    onehot = mask_to_onehot(gt[0], (60, 107))
    assert onehot.shape[0] == 2 and (onehot.sum(0) == 0).any()
    # every written PNG holds only real ids, frame 0 included (its void written as background)
    pred = np.stack(
        [
            np.asarray(Image.open(p))
            for p in sorted((pred_dir(tmp_path, "davis17", "davis") / "blackswan").glob("*.png"))
        ]
    )
    assert pred.shape == gt.shape and set(np.unique(pred)) <= {0, 1}
    np.testing.assert_array_equal(pred[0], np.where(gt[0] == 255, 0, gt[0]))
    # the official tool (davis2017-evaluation): results' largest id (1) <= the first frame's objects (1), and
    # void counts as background (void set to 0 before the semi-supervised metrics, no void mask); J is IoU:
    inner_gt, inner_pred = gt[1:-1] == 1, pred[1:-1] == 1
    iou = (inner_gt & inner_pred).sum((1, 2)) / (inner_gt | inner_pred).sum((1, 2))
    assert rec["metrics"]["J_mean"] == pytest.approx(float(iou.mean()), abs=1e-12)
    ev = run_davis_eval(
        DavisEvalConfig(pred=pred_dir(tmp_path, "davis17", "davis"), gt=root / "Annotations/480p")
    )
    assert ev["metrics"]["JF_mean"] == pytest.approx(rec["metrics"]["JF_mean"], abs=1e-12)
    assert ev["details"]["n_objects"] == 1
