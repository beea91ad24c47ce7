"""The twins' settings: the image twin differs from the video twin only in F (frames per sample)."""

from __future__ import annotations

import pytest

from dvx.errors import ConfigError
from dvx.twin.config import TrainConfig


def _pair(**kw: object) -> tuple[dict[str, object], dict[str, object]]:
    v = TrainConfig(objective="video", data_root="w", out="o", **kw).to_json()  # type: ignore[arg-type]
    i = TrainConfig(objective="image", data_root="w", out="o", **kw).to_json()  # type: ignore[arg-type]
    return v, i


def test_the_image_twin_differs_only_in_frames_per_sample() -> None:
    v, i = _pair(frames=8, frames_per_batch=32)
    differ = {k for k in v if v[k] != i[k]}
    assert differ == {"objective", "clip_frames", "samples_per_batch"}
    assert (v["clip_frames"], i["clip_frames"]) == (8, 1)
    assert (v["samples_per_batch"], i["samples_per_batch"]) == (4, 32)  # the same 32 frames per step


def test_checkpoints_are_written_at_zero_every_k_and_last() -> None:
    cfg = TrainConfig(objective="video", data_root="w", out="o", steps=250, save_every=100)
    assert cfg.save_steps() == [0, 100, 200, 250]


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"objective": "audio"}, "--objective must be video or image"),
        ({"steps": 0}, "--steps"),
        ({"frames": 1}, "--frames"),
        ({"frames_per_batch": 12}, "multiple of --frames"),
        ({"resolution": (60, 96)}, "multiples of 8"),
        ({"lr": float("nan")}, "--lr"),
        ({"seed": -1}, "--seed"),
    ],
)
def test_bad_settings_are_one_line(kw: dict[str, object], needle: str) -> None:
    base: dict[str, object] = {"objective": "video", "data_root": "w", "out": "o"}
    with pytest.raises(ConfigError, match=needle) as err:
        TrainConfig(**(base | kw))  # type: ignore[arg-type]
    assert "\n" not in str(err.value)
