import pytest

from dvx.extract.windows import chunk_frames, plan_units


def test_image_models_batch_frames() -> None:
    units = plan_units(5, None, 2)
    assert [u.frames for u in units] == [(0, 1), (2, 3), (4,)]
    assert [u.store_start for u in units] == [0, 2, 4]
    assert [m for u in units for m in u.time_map] == [(0,), (1,), (2,), (3,), (4,)]
    assert chunk_frames(None, 2, None) == 2


def test_video_clips_pad_the_last_window_and_drop_padded_outputs() -> None:
    units = plan_units(10, 4, 99)
    assert [u.frames for u in units] == [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 9, 9)]
    assert [u.keep for u in units] == [4, 4, 2]
    assert units[-1].time_map == ((8,), (9,))
    assert sum(u.keep for u in units) == 10


def test_time_compression_maps_stored_indices_to_frames() -> None:
    tubelet = [[0, 1], [2, 3]]  # clip of 4, tubelet 2
    units = plan_units(5, 4, 1, tubelet)
    assert [u.time_map for u in units] == [((0, 1), (2, 3)), ((4,),)]
    assert [u.store_start for u in units] == [0, 2]
    causal = [[0], [1, 2, 3, 4]]  # a causal video VAE: first frame alone, then 4 per latent
    units = plan_units(7, 5, 1, causal)
    assert [u.time_map for u in units] == [((0,), (1, 2, 3, 4)), ((5,), (6,))]
    assert chunk_frames(5, 1, causal) == 2


def test_a_short_video_is_one_padded_clip() -> None:
    [u] = plan_units(3, 14, 1)
    assert u.frames == (0, 1, 2) + (2,) * 11 and u.keep == 3
    with pytest.raises(ValueError):
        plan_units(0, 14, 1)
