"""Pictures from colour maps: upsampling to the frame, the labelled PNG grid, side-by-side mp4 videos."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LABEL_WIDTH = 170
GAP = 2


def upsample(maps: np.ndarray, size: tuple[int, int], nearest: bool) -> np.ndarray:
    """(F, h, w, 3) uint8 -> (F, H, W, 3) at ``size`` (H, W): bilinear for PCA colours, nearest for
    cluster labels (a label is never blended into another)."""
    from PIL import Image

    mode = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.stack([np.asarray(Image.fromarray(m).resize((size[1], size[0]), mode)) for m in maps])


@dataclass
class Row:
    label: str  # shown at the left, may hold newlines
    cells: list[np.ndarray]  # (H, W, 3) uint8 each


def grid_png(rows: Sequence[Row], path: Path, caption: str = "") -> Path:
    """Rows of equal-size cells with their labels at the left and an optional caption below."""
    from PIL import Image, ImageDraw

    h, w = rows[0].cells[0].shape[:2]
    cols = max(len(r.cells) for r in rows)
    cap_h = 16 * (caption.count("\n") + 1) + 6 if caption else 0
    width = LABEL_WIDTH + cols * (w + GAP)
    canvas = Image.new("RGB", (width, len(rows) * (h + GAP) + cap_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, row in enumerate(rows):
        y = i * (h + GAP)
        draw.multiline_text((4, y + 4), row.label, fill=(0, 0, 0), spacing=2)
        for j, cell in enumerate(row.cells):
            canvas.paste(Image.fromarray(cell), (LABEL_WIDTH + j * (w + GAP), y))
    if caption:
        draw.multiline_text((4, len(rows) * (h + GAP) + 3), caption, fill=(60, 60, 60), spacing=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, format="PNG")
    return path


def _even(n: int) -> int:
    return n + (n % 2)


def side_by_side_mp4(panels: Sequence[np.ndarray], path: Path, fps: int = 6) -> Path:
    """``panels``: (F, H, W, 3) uint8 videos of one length and height, written left to right as one mp4
    (H.264 where PyAV's FFmpeg has it, else MPEG-4 Part 2; sizes padded to even)."""
    import av

    frames = np.concatenate(panels, axis=2)
    n, h, w = frames.shape[:3]
    padded = np.zeros((n, _even(h), _even(w), 3), dtype=np.uint8)
    padded[:, :h, :w] = frames
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = padded.shape[2], padded.shape[1]
        stream.pix_fmt = "yuv420p"
        for f in padded:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
