"""Non-finite activations are never committed.

The store keeps float16 (largest finite value 65504). An activation that is inf/NaN in the compute dtype, or
finite but beyond float16's range, would be stored as inf, and a probe's L2 normalisation turns a single inf
into NaN for the whole position (then for everything propagated from it). So every array is checked after its
float16 cast (done on the compute device before the host copy; an array whose float16 cast is not finite
comes back in the compute dtype, so this check can say whether it overflowed or was already inf/NaN), before
it is handed to the writer: the first bad one fails the video with one line naming the
model, T, block and the first frame it covers, and nothing of the video is committed (arrays already written
for it stay uncommitted, invisible; ``dvx cache gc`` removes them). With ``--skip-bad`` the video is recorded
in the store's failure list with that reason and the run goes on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dvx.errors import DvxError

FLOAT16_MAX = float(np.finfo(np.float16).max)


class NonFiniteFeaturesError(DvxError):
    """A forward produced an activation that cannot be stored (inf/NaN, or beyond float16's range)."""

    def __init__(self, video_id: str, reason: str) -> None:
        super().__init__(f"video {video_id!r}: {reason}; nothing of this video was committed")
        self.video_id = video_id
        self.reason = reason


def stored_frame_name(index: int, time_map: Sequence[Sequence[int]], names: Sequence[str]) -> str:
    """The first input frame that stored index ``index`` of a unit covers."""
    frames = time_map[index] if index < len(time_map) else ()
    return names[frames[0]] if frames else f"stored index {index}"


def check_finite(
    computed: torch.Tensor,
    stored: np.ndarray,
    *,
    model: str,
    dtype: str,
    t: int,
    block: str,
    video: str,
    time_map: Sequence[Sequence[int]],
    names: Sequence[str],
) -> None:
    """Raise :class:`NonFiniteFeaturesError` when ``stored`` (the float16 copy of ``computed``, one unit's
    (stored frames, C, h, w) array) holds a non-finite value."""
    bad = ~np.isfinite(stored)
    if not bad.any():
        return
    first = int(np.argmax(bad.reshape(len(bad), -1).any(axis=1)))
    frame = stored_frame_name(first, time_map, names)
    raw = computed[first]
    if torch.isfinite(raw).all():
        peak = float(raw.abs().max())
        what = f"activation {peak:.4g} overflows float16 storage (largest finite value {FLOAT16_MAX:g})"
    else:
        what = f"non-finite activation (inf/NaN) in the {dtype} forward"
    raise NonFiniteFeaturesError(video, f"{model} T={t} block {block}: {what} at frame {frame!r}")
