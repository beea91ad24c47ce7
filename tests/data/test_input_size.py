"""Resolution presets: the sizes DIFT, DINO and videowalk feed their models, per video."""

from __future__ import annotations

import pytest

from dvx.data.input_size import PER_VIDEO, SIZE_PRESETS, aspect_size, input_size, size_preset
from dvx.errors import ConfigError


@pytest.mark.parametrize(
    ("frame", "size"),
    [
        ((480, 854), (480, 832)),  # DAVIS 480p: 854 * 480/480 = 854 -> floored to 832 (up.2 map 60x104)
        ((480, 910), (480, 896)),  # DAVIS-2017 bike-packing
        ((480, 1152), (480, 1152)),  # DAVIS-2017 shooting: already a multiple of 32
        ((1080, 1920), (480, 832)),  # Full-Resolution frames: 1920 * 480 / 1080 = 853.3 -> 832
        ((854, 480), (832, 480)),  # portrait: the shorter side (the width) becomes 480
        ((480, 480), (480, 480)),
    ],
)
def test_dift_keeps_the_aspect_and_floors_the_longer_side_to_32(
    frame: tuple[int, int], size: tuple[int, int]
) -> None:
    preset = SIZE_PRESETS["dift"]
    assert aspect_size(frame, preset.short_side, preset.multiple) == size
    params = preset.params(snap=8)
    assert input_size(PER_VIDEO, {"input": {"resize": params}}, frame) == size


def test_dino_floors_to_64_and_a_model_multiple_snaps_both_sides() -> None:
    dino = SIZE_PRESETS["dino"]
    assert aspect_size((480, 910), dino.short_side, dino.multiple) == (480, 896)
    assert aspect_size((480, 1000), dino.short_side, dino.multiple) == (480, 960)
    # DINOv2's patch 14: 480x832 -> 476x826, each side floored to a multiple of 14
    assert aspect_size((480, 854), 480, 32, snap=14) == (476, 826)


def test_fixed_sizes_and_recorded_rules() -> None:
    assert size_preset("videowalk").fixed == (320, 320) and not size_preset("videowalk").per_video
    assert input_size((320, 320), {}, (240, 320)) == (320, 320)  # a fixed recipe resolution wins
    params = size_preset("dift").params(snap=8)
    assert params == {
        "preset": "dift",
        "short_side": 480,
        "long_multiple": 32,
        "snap": 8,
        "rule": size_preset("dift").describe(),
    }
    with pytest.raises(ConfigError, match="records no resize rule"):
        input_size(PER_VIDEO, {}, (480, 854))
    with pytest.raises(ConfigError, match="unknown resolution preset 'dfit'"):
        size_preset("dfit")
