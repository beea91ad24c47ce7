"""Image files: RGB frames, label PNGs (DAVIS-2016 0/255 'L' and DAVIS-2017 palette 'P'), palette writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from dvx.errors import CorruptVideoError, DataError


def pascal_palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC / DAVIS colour map: (n, 3) uint8, index 0 black, 1 (128,0,0), 2 (0,128,0), ..."""
    palette = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette[i] = (r, g, b)
    return palette


DAVIS_PALETTE = pascal_palette()


def read_rgb(path: Path, video_id: str = "") -> np.ndarray:
    """(H, W, 3) uint8 RGB; a truncated or corrupt file raises CorruptVideoError."""
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise CorruptVideoError(video_id or Path(path).parent.name, f"{Path(path).name}: {err}") from err


def read_label_png(path: Path, binary_255: bool | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a label PNG as (H, W) uint8 ids and its palette (or None).

    Palette ('P') PNGs are returned as stored (DAVIS-2017: 0 background, k object k, 255 void).
    Single-channel ('L') PNGs in the DAVIS-2016 convention hold 0/255 for background/object: with
    ``binary_255`` (the default for 'L' images whose values are only {0, 255}) they are binarised
    (> 127 -> 1) so that 255 is never mistaken for void.
    """
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            palette = None
            if mode == "P":
                raw = im.getpalette() or []
                pal = np.zeros((256, 3), dtype=np.uint8)
                flat = np.asarray(raw[: 256 * 3], dtype=np.uint8).reshape(-1, 3)
                pal[: len(flat)] = flat
                palette = pal
                arr = np.asarray(im, dtype=np.uint8).copy()
            elif mode in ("L", "1"):
                arr = np.asarray(im.convert("L"), dtype=np.uint8).copy()
            elif mode in ("I", "I;16", "I;16B", "I;16L"):
                arr = np.asarray(im, dtype=np.int64)
                if arr.max(initial=0) > 255:
                    raise DataError(f"{path}: label values above 255 in a {mode} image")
                arr = arr.astype(np.uint8)
            else:
                raise DataError(f"{path}: unsupported label image mode {mode!r}")
    except (OSError, UnidentifiedImageError, SyntaxError) as err:
        raise CorruptVideoError(Path(path).parent.name, f"{Path(path).name}: {err}") from err
    if mode != "P":
        if binary_255 is None:
            binary_255 = bool(np.isin(np.unique(arr), (0, 255)).all())
        if binary_255:
            arr = (arr > 127).astype(np.uint8)
    return arr, palette


def write_indexed_png(path: Path, labels: np.ndarray, palette: np.ndarray | None = None) -> None:
    """Write (H, W) uint8 ids as a palette PNG (DAVIS submission format)."""
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got {labels.shape}")
    pal = DAVIS_PALETTE if palette is None else palette
    im = Image.fromarray(labels.astype(np.uint8), mode="P")
    im.putpalette(pal.astype(np.uint8).reshape(-1).tolist())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def read_id_png(path: Path, video_id: str = "") -> np.ndarray:
    """Read an id map (8-bit 'L'/'P' or 16-bit 'I;16'/'I' PNG) as stored, as (H, W) int32.

    For instance ids, Cityscapes instanceIds and 16-bit disparity maps; no binarising, no palette lookup.
    """
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("L", "P", "1", "I", "I;16", "I;16B", "I;16L"):
                arr = np.asarray(im)
            else:
                raise DataError(f"{path}: an id map must be single-channel, got mode {im.mode!r}")
            return arr.astype(np.int32)
    except (OSError, UnidentifiedImageError, SyntaxError) as err:
        raise CorruptVideoError(video_id or Path(path).parent.name, f"{Path(path).name}: {err}") from err


def read_npy(path: Path, video_id: str = "") -> np.ndarray:
    """A per-frame ``.npy`` array (depth, flow); an unreadable or corrupt file raises CorruptVideoError."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise CorruptVideoError(video_id or Path(path).parent.name, f"{Path(path).name}: {err}") from err
