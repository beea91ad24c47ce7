from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from dvx.data.video_io import list_frame_files, probe_video, read_frames, read_video
from dvx.errors import CorruptVideoError, DataError
from tests.data._media import (
    flat_frames,
    noise_frames,
    packet_offsets,
    shared,
    truncate_copy,
    write_frames,
    write_video,
)


# ---- frame folders --------------------------------------------------------------------------------
def test_list_frame_files_natural_order_and_filter(tmp_path: Path) -> None:
    for name in ["10.png", "2.PNG", "1.jpg", "notes.txt", ".hidden.png", "00003.jpeg"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()  # a folder is never a frame
    names = [p.name for p in list_frame_files(tmp_path)]
    assert names == ["1.jpg", "2.PNG", "00003.jpeg", "10.png"]
    assert [p.name for p in list_frame_files(tmp_path, (".png",))][:2] == ["2.PNG", "10.png"]
    assert list_frame_files(tmp_path / "absent") == []


def test_read_frames_stacks_and_checks(tmp_path: Path) -> None:
    frames = noise_frames(3, 8, 10)
    paths = write_frames(tmp_path / "ok", frames)
    out = read_frames(paths, "v")
    assert out.dtype == np.uint8 and out.shape == (3, 8, 10, 3)
    np.testing.assert_array_equal(out, frames)  # PNG is lossless

    odd = write_frames(tmp_path / "odd", noise_frames(1, 9, 10), names=["00001"])
    with pytest.raises(DataError, match=r"one size"):
        read_frames([paths[0], odd[0]], "v")
    with pytest.raises(CorruptVideoError, match=r"'v'"):
        read_frames([], "v")
    broken = truncate_copy(paths[1], tmp_path / "broken" / "00001.png", 60)
    with pytest.raises(CorruptVideoError, match=r"00001.png"):
        read_frames([paths[0], broken], "v")


# ---- containers -----------------------------------------------------------------------------------
def test_read_video_mp4_frames_and_fps(tmp_path: Path) -> None:
    frames = flat_frames(12)
    path = write_video(tmp_path / "flat.mp4", frames, fps=10)
    out, fps = read_video(path, "flat")
    assert out.shape == (12, 48, 64, 3) and out.dtype == np.uint8
    assert fps == pytest.approx(10.0)
    # lossy codec, flat colours: each frame's mean colour is close to what was written, in order
    means = out.reshape(12, -1, 3).mean(axis=1)
    np.testing.assert_allclose(means, frames.reshape(12, -1, 3).mean(axis=1), atol=6)


def test_read_video_lossless_is_exact_and_max_frames(tmp_path: Path) -> None:
    frames = noise_frames(6, seed=3)
    path = write_video(tmp_path / "lossless.mkv", frames, codec="ffv1", pix_fmt="bgr0")
    out, _ = read_video(path)
    np.testing.assert_array_equal(out, frames)
    head, _ = read_video(path, max_frames=2)
    np.testing.assert_array_equal(head, frames[:2])
    # no frame count in a Matroska header: estimated from duration x rate
    info = probe_video(path)
    assert (info.num_frames, info.height, info.width, info.codec) == (6, 48, 64, "ffv1")


def test_probe_video_reads_headers(tmp_path: Path) -> None:
    path = write_video(tmp_path / "a.avi", noise_frames(9), fps=25, codec="mpeg4")
    info = probe_video(path)
    assert info.num_frames == 9 and info.fps == pytest.approx(25.0)
    assert (info.height, info.width, info.codec) == (48, 64, "mpeg4")


@pytest.mark.parametrize("content", [None, b"", b"this is not a video\n" * 10])
def test_unreadable_files_are_corrupt(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "clip.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CorruptVideoError, match=r"'my-clip'") as err:
        read_video(path, "my-clip")
    assert err.value.video_id == "my-clip"


def test_truncated_avi_is_corrupt_but_a_missing_tail_frame_is_tolerated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_video(tmp_path / "clip.avi", noise_frames(40), codec="mpeg4")
    offsets = packet_offsets(path)
    assert len(offsets) == 40
    # cut in the middle: the AVI demuxer decodes the first half without any error -> must be refused
    half = truncate_copy(path, tmp_path / "half.avi", offsets[20])
    with pytest.raises(CorruptVideoError, match=r"20 of the 40 frames"):
        read_video(half, "half")
    # only the last frame (and the index) lost: within the tolerance, returned with a warning
    tail = truncate_copy(path, tmp_path / "tail.avi", offsets[-1])
    with caplog.at_level(logging.WARNING, logger="dvx.data.video_io"):
        out, _ = read_video(tail, "tail")
    assert len(out) == 39
    assert "39 of the 40" in caplog.text
    # the tolerance is a parameter: 20 of 40 missing passes only with max_missing >= 0.5
    with pytest.raises(CorruptVideoError):
        read_video(half, "half", max_missing=0.4)
    assert len(read_video(half, "half", max_missing=0.5)[0]) == 20


def test_frame_size_change_mid_stream_is_a_data_error(tmp_path: Path) -> None:
    a = write_video(tmp_path / "a.ts", noise_frames(5, 48, 64), codec="mpeg2video", format="mpegts")
    b = write_video(tmp_path / "b.ts", noise_frames(5, 32, 32), codec="mpeg2video", format="mpegts")
    joined = tmp_path / "ab.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    with pytest.raises(DataError, match=r"frame size must not change"):
        read_video(joined, "ab")


def test_frame_size_changes_are_corrupt_videos_that_skip_bad_can_skip(tmp_path: Path) -> None:
    # CorruptVideoError (a DataError) is what the runner's --skip-bad records and skips
    a = write_video(tmp_path / "a.ts", noise_frames(5, 48, 64), codec="mpeg2video", format="mpegts")
    b = write_video(tmp_path / "b.ts", noise_frames(5, 32, 32), codec="mpeg2video", format="mpegts")
    joined = tmp_path / "ab.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    with pytest.raises(CorruptVideoError, match=r"'ab'.*frame size must not change") as err:
        read_video(joined, "ab")
    assert err.value.video_id == "ab"
    paths = write_frames(tmp_path / "ok", noise_frames(2, 8, 10))
    odd = write_frames(tmp_path / "odd", noise_frames(1, 9, 10), names=["00001"])
    with pytest.raises(CorruptVideoError, match=r"'v'.*one size") as err:
        read_frames([paths[0], odd[0]], "v")
    assert err.value.video_id == "v" and "00001" in err.value.reason


# ---- the real sample clips ------------------------------------------------------------------------
def test_real_kinetics_clip() -> None:
    path = shared("action_clips", "demo", "demo.mp4")
    frames, fps = read_video(path, "demo")
    assert frames.shape == (280, 256, 340, 3)
    assert fps == pytest.approx(28.0)
    assert 10 < frames.mean() < 245  # a real picture, not a blank decode


def test_real_ntu_avi() -> None:
    path = shared("action_clips", "tools", "data", "skeleton", "S001C001P001R001A001_rgb.avi")
    info = probe_video(path)
    assert (info.num_frames, info.height, info.width) == (103, 1080, 1920)
    frames, fps = read_video(path, max_frames=3)
    assert frames.shape == (3, 1080, 1920, 3) and fps == pytest.approx(30.0)


def test_real_clip_corrupted_mid_stream(tmp_path: Path) -> None:
    data = bytearray(shared("action_clips", "demo", "demo.mp4").read_bytes())
    start = len(data) // 3
    data[start : start + 20000] = bytes(20000)  # zero 20 kB in the middle of the media data
    path = tmp_path / "zeroed.mp4"
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptVideoError, match=r"decoding failed after"):
        read_video(path, "zeroed")


@pytest.mark.parametrize("header", [None, 2])
def test_header_undercount_or_none_still_returns_every_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, header: int | None
) -> None:
    import dvx.data.video_io as vio

    frames = noise_frames(40, 8, 8, seed=5)
    path = write_video(tmp_path / "v.mkv", frames, codec="ffv1", pix_fmt="bgr0")
    monkeypatch.setattr(vio, "_header_frames", lambda container, stream: header)
    out, _ = vio.read_video(path)
    np.testing.assert_array_equal(out, frames)  # the buffer grew past the announced count
