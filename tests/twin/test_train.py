"""Training both twins: F = 1 batches for the image twin, every other setting shared, checkpoints that plain
diffusers loads, the same resolved config reused and another refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dvx.errors import ConfigError
from dvx.twin.config import TrainConfig
from dvx.twin.train import TrainReport, run_train
from tests.twin.conftest import tiny_config


def test_the_image_twin_trains_on_single_frames_the_video_twin_on_clips(trained: dict) -> None:
    assert trained["image"].batch_frames == {1}
    assert trained["video"].batch_frames == {2}


def test_the_batch_sampler_yields_f_frames_per_sample(train_world: Path, tmp_path: Path) -> None:
    from dvx.extract.backbones.svd import tiny_vae
    from dvx.twin.data import BatchSampler, encode_dataset

    for obj, shape in (("video", (2, 2, 4, 4, 6)), ("image", (4, 1, 4, 4, 6))):
        cfg = tiny_config(train_world, tmp_path / obj, obj)
        pool = encode_dataset(cfg, tiny_vae().eval())
        batch = next(iter(BatchSampler(pool, cfg, pool.scale())))
        assert tuple(batch.shape) == shape  # both: 4 frames per batch


def test_resolved_configs_differ_only_in_the_objective(trained: dict) -> None:
    v = json.loads((trained["video"].out / "dvx-config.json").read_text())
    i = json.loads((trained["image"].out / "dvx-config.json").read_text())
    differ = {k for k in v["config"] if v["config"][k] != i["config"][k]}
    assert differ == {"objective", "out", "clip_frames", "samples_per_batch"}
    assert {k: v[k] for k in v if k != "config"} == {k: i[k] for k in i if k != "config"}  # VAE, noise, loss


def test_checkpoints_load_with_plain_diffusers(trained: dict) -> None:
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        UNetSpatioTemporalConditionModel,
    )

    report: TrainReport = trained["video"]
    assert sorted(report.checkpoints) == [0, 1, 2]
    folder = report.checkpoints[2]
    unet = UNetSpatioTemporalConditionModel.from_pretrained(folder / "unet")
    vae = AutoencoderKLTemporalDecoder.from_pretrained(folder / "vae")
    sched = EulerDiscreteScheduler.from_pretrained(folder / "scheduler")
    assert sched.config.prediction_type == "epsilon"
    assert vae.config.scaling_factor == pytest.approx(report.latent_scale)
    untrained = UNetSpatioTemporalConditionModel.from_pretrained(report.checkpoints[0] / "unet")
    moved = [not torch.equal(a, b) for a, b in zip(unet.parameters(), untrained.parameters(), strict=True)]
    assert any(moved)  # training changed the network


def test_both_twins_start_from_the_same_network(trained: dict) -> None:
    v = (trained["video"].checkpoints[0] / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    i = (trained["image"].checkpoints[0] / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert v == i


def test_the_same_run_is_reused_and_another_refused(trained: dict, train_world: Path) -> None:
    out = trained["video"].out
    again = run_train(tiny_config(train_world, out, "video"), log=lambda _: None)
    assert again.reused and sorted(again.checkpoints) == [0, 1, 2]
    with pytest.raises(ConfigError, match="holds a twin trained with other settings"):
        run_train(tiny_config(train_world, out, "video", lr=5e-4), log=lambda _: None)


def test_a_world_with_too_short_videos_is_one_line(train_world: Path, tmp_path: Path) -> None:
    from dvx.errors import DataError

    cfg = TrainConfig(
        objective="video",
        data_root=str(train_world),
        out=str(tmp_path / "o"),
        frames=8,
        frames_per_batch=8,
        resolution=(32, 48),
        steps=1,
        progress=False,
    )
    with pytest.raises(DataError, match="no training video has the 8 frames"):
        run_train(cfg, log=lambda _: None)


def test_training_in_a_log_prints_plain_step_lines_and_none_without_progress(
    train_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """stderr is not a terminal here (as under `make demo | cat`): plain done/total lines, no bar."""
    for progress in (True, False):
        run_train(
            tiny_config(train_world, tmp_path / str(progress), "video", progress=progress), log=lambda _: None
        )
        err = capsys.readouterr().err
        if progress:
            assert "train video twin: 2/2 step" in err and "\r" not in err
        else:
            assert "step" not in err and "\r" not in err
