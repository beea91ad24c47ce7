"""Video I/O: decode containers (mp4, avi, ...) with PyAV and read folders of frame images.

Policy for damaged containers (see docs/datasets.md):

- a missing, empty, unreadable or zero-frame file raises :class:`~dvx.errors.CorruptVideoError`;
- any FFmpeg error while demuxing or decoding raises it too: a prefix is never returned after an error;
- a container that decodes cleanly but yields fewer frames than its header announces is accepted only
  when at most ``max_missing`` of them are missing (default: 10%, at least 1 frame; AVI headers count
  dropped/empty frames and truncated indexes): the frames decoded are returned and a warning is logged.
  More missing frames (a file cut short: AVI and MPEG streams decode their prefix without an error) is
  a CorruptVideoError.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dvx.errors import CorruptVideoError

log = logging.getLogger(__name__)

VIDEO_EXTS: tuple[str, ...] = (
    ".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
)  # fmt: skip
FRAME_EXTS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")
#: fraction of the header's frame count that may be missing from a cleanly decoded container
MAX_MISSING_FRACTION = 0.1

_MAX_PREALLOC = 2048  # frames
_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class VideoInfo:
    """What a container's headers say, read without decoding any frame."""

    num_frames: int | None  # header frame count (or duration x rate when the header has none)
    fps: float | None
    height: int
    width: int
    codec: str


def _natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in _DIGITS.split(name) if p)


def list_frame_files(folder: Path, exts: Iterable[str] = FRAME_EXTS) -> list[Path]:
    """The frame image files in ``folder`` (suffix in ``exts``, any case; hidden files skipped), in
    natural order of their stems ("2.png" before "10.png"); [] when the folder is absent."""
    folder = Path(folder)
    wanted = {e.lower() for e in exts}
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.suffix.lower() in wanted and not p.name.startswith(".")]
    return sorted((p for p in files if p.is_file()), key=lambda p: _natural_key(p.stem))


def read_frames(paths: Sequence[Path], video_id: str) -> np.ndarray:
    """Read frame images into one (F, H, W, 3) uint8 RGB array.

    A corrupt or truncated image, or frames of different sizes, raise CorruptVideoError (so
    ``--skip-bad`` records and skips the video).
    """
    from dvx.data.images import read_rgb

    if not paths:
        raise CorruptVideoError(video_id, "no frame images")
    first = read_rgb(paths[0], video_id)
    out = np.empty((len(paths), *first.shape), dtype=np.uint8)
    out[0] = first
    for i, path in enumerate(paths[1:], start=1):
        frame = read_rgb(path, video_id)
        if frame.shape != first.shape:
            raise CorruptVideoError(
                video_id,
                f"frame {Path(path).name} is {frame.shape[1]}x{frame.shape[0]} but {Path(paths[0]).name} "
                f"is {first.shape[1]}x{first.shape[0]}; all frames of a video must have one size",
            )
        out[i] = frame
    return out


def _open(path: Path, video_id: str):  # -> av.container.InputContainer
    import av

    path = Path(path)
    if not path.is_file():
        raise CorruptVideoError(video_id, f"{path} does not exist")
    if path.stat().st_size == 0:
        raise CorruptVideoError(video_id, f"{path.name} is an empty file")
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise CorruptVideoError(video_id, f"{path.name} cannot be opened as a video: {err}") from err
    if not container.streams.video:
        container.close()
        raise CorruptVideoError(video_id, f"{path.name} has no video stream")
    return container


def _header_frames(container, stream) -> int | None:
    if stream.frames and stream.frames > 0:
        return int(stream.frames)
    rate = stream.average_rate or stream.guessed_rate
    if container.duration and rate:  # container.duration is in microseconds
        return round(container.duration / 1_000_000 * float(rate))
    return None


def _fps(stream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else None


def probe_video(path: Path, video_id: str = "") -> VideoInfo:
    """Frame count, fps, size and codec from the container's headers (no frame is decoded)."""
    video_id = video_id or Path(path).stem
    container = _open(path, video_id)
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        return VideoInfo(
            num_frames=_header_frames(container, stream),
            fps=_fps(stream),
            height=int(ctx.height),
            width=int(ctx.width),
            codec=str(ctx.name),
        )
    finally:
        container.close()


def read_video(
    path: Path,
    video_id: str = "",
    *,
    max_frames: int | None = None,
    max_missing: float = MAX_MISSING_FRACTION,
) -> tuple[np.ndarray, float | None]:
    """Decode the first video stream of a container into (F, H, W, 3) uint8 RGB frames and its fps.

    ``max_frames`` stops after that many frames (no completeness check then). ``max_missing`` is the
    fraction of the header's frame count that may be missing from a cleanly decoded file (module doc).
    """
    import av

    video_id = video_id or Path(path).stem
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    container = _open(path, video_id)
    name = Path(path).name
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        expected = _header_frames(container, stream)
        fps = _fps(stream)
        # preallocate for the announced count (capped: a corrupt header must not allocate terabytes)
        capacity = min(max_frames if max_frames is not None else (expected or 0) + 1, _MAX_PREALLOC)
        buf: np.ndarray | None = None
        n = 0
        try:
            for frame in container.decode(stream):
                rgb = frame.to_ndarray(format="rgb24")
                if buf is None:
                    buf = np.empty((max(capacity, 1), *rgb.shape), dtype=np.uint8)
                elif rgb.shape != buf.shape[1:]:
                    raise CorruptVideoError(
                        video_id,
                        f"frame {n} of {name} is {rgb.shape[1]}x{rgb.shape[0]}, earlier frames are "
                        f"{buf.shape[2]}x{buf.shape[1]}; frame size must not change",
                    )
                if n == len(buf):  # more frames than preallocated: grow by half
                    buf = np.concatenate([buf, np.empty_like(buf[: max(len(buf) // 2, 1)])])
                buf[n] = rgb
                n += 1
                if max_frames is not None and n >= max_frames:
                    break
        except av.error.FFmpegError as err:
            raise CorruptVideoError(video_id, f"{name}: decoding failed after {n} frames: {err}") from err
    finally:
        container.close()
    if buf is None or n == 0:
        raise CorruptVideoError(video_id, f"{name} has no decodable frames")
    if max_frames is None and expected is not None and n < expected:
        allowed = max(1, math.floor(max_missing * expected))
        if expected - n > allowed:
            raise CorruptVideoError(
                video_id,
                f"{name}: decoded only {n} of the {expected} frames its header announces (truncated file?)",
            )
        log.warning("%s: decoded %d of the %d frames its header announces", name, n, expected)
    frames = buf[:n]
    if len(buf) - n > max(8, n // 8):  # do not pin a much larger buffer
        frames = frames.copy()
    return frames, fps
