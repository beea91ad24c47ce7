"""Tiny media files for the data tests: videos written with PyAV, frame folders, truncated copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def shared(*parts: str) -> Path:
    """A path under the shared real-data folder; skips the calling test when it is absent."""
    import pytest

    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared sample data not available: {path}")
    return path


def noise_frames(n: int, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, height, width, 3), dtype=np.uint8)


def flat_frames(n: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Frame i is a flat colour (red = 20 i, green = 100, blue = 200 - 10 i)."""
    out = np.empty((n, height, width, 3), dtype=np.uint8)
    for i in range(n):
        out[i] = (min(20 * i, 255), 100, max(200 - 10 * i, 0))
    return out


def write_video(
    path: Path,
    frames: np.ndarray,
    fps: int = 10,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    **fmt: str,
) -> Path:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", **fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def packet_offsets(path: Path) -> list[int]:
    """Byte offsets of the video packets of a container."""
    import av

    with av.open(str(path)) as container:
        return [p.pos for p in container.demux(video=0) if p.size]


def truncate_copy(src: Path, dst: Path, size: int) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(Path(src).read_bytes()[:size])
    return dst


def write_frames(
    folder: Path, frames: np.ndarray, names: list[str] | None = None, ext: str = ".png"
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    names = names or [f"{i:05d}" for i in range(len(frames))]
    paths = []
    for name, frame in zip(names, frames, strict=True):
        path = folder / f"{name}{ext}"
        Image.fromarray(frame).save(path)
        paths.append(path)
    return paths


def copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst
