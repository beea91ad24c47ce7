"""PCK for JHMDB keypoint propagation, as CRW/videowalk's ``code/eval/eval_pck.py`` computes it.

- ground truth: JHMDB ``pos_img`` minus 1 (0-based pixels); predictions in the same convention;
- reference size per frame: 0.6 x ||(max x, max y) - (min x, min y)|| over the frame's VISIBLE ground-
  truth joints;
- a joint is correct at alpha if ||pred - gt|| / size <= alpha; frame 0 (the given one) is not scored;
- PCK@alpha = mean over the 15 joints of each joint's fraction correct, the fractions pooled over all
  scored frames of all videos (per video: the same, restricted to that video). Reported as fractions.

Visibility: the reference treats every annotated joint as visible (JHMDB annotates all 15 joints in
every frame, also those outside the image) and drops only joints whose PREDICTED x is negative (its
decoder's marker for a lost joint). ``visibility="all"`` (default) follows it, except that a lost
joint (NaN prediction) counts as wrong instead of being dropped. ``visibility="inside"`` scores only
joints inside the frame (0 <= x <= W - 1, 0 <= y <= H - 1) and builds the box from those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dvx.errors import ConfigError, DataError

ALPHAS = (0.1, 0.2)
BOX_SCALE = 0.6
VISIBILITY_RULES = ("all", "inside")


def visible_joints(
    gt: np.ndarray, visibility: str = "all", frame_size: tuple[int, int] | None = None
) -> np.ndarray:
    """(F, J) bool: which ground-truth joints count, under the rule ``visibility``."""
    gt = np.asarray(gt, dtype=np.float64)
    finite = np.isfinite(gt).all(axis=-1)
    if visibility == "all":
        return finite
    if visibility == "inside":
        if frame_size is None:
            raise ConfigError("visibility 'inside' needs the frame size")
        H, W = frame_size
        x, y = gt[..., 0], gt[..., 1]
        return finite & (x >= 0) & (x <= W - 1) & (y >= 0) & (y <= H - 1)
    raise ConfigError(f"unknown visibility rule {visibility!r}; choose one of {VISIBILITY_RULES}")


def normalised_errors(
    pred: np.ndarray,
    gt: np.ndarray,
    visibility: str = "all",
    frame_size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Errors / reference size (F, J) and the mask of scored entries (F, J) for one video.

    Scored = visible and not frame 0. A NaN prediction gives an infinite error; a zero-size box gives
    inf or NaN (never correct), as in the reference.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or gt.ndim != 3 or gt.shape[-1] != 2:
        raise DataError(f"predicted joints {pred.shape} and ground truth {gt.shape} must both be (F, J, 2)")
    vis = visible_joints(gt, visibility, frame_size)
    lo = np.where(vis[..., None], gt, np.inf).min(axis=1)
    hi = np.where(vis[..., None], gt, -np.inf).max(axis=1)
    with np.errstate(invalid="ignore"):
        size = BOX_SCALE * np.linalg.norm(hi - lo, axis=-1)  # (F,), NaN/inf for frames without joints
    dist = np.linalg.norm(pred - gt, axis=-1)
    dist = np.where(np.isnan(dist), np.inf, dist)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = dist / size[:, None]
    scored = vis.copy()
    scored[0] = False
    return err, scored


@dataclass(frozen=True)
class PckResult:
    """PCK per alpha: overall (mean of per-joint fractions), per joint, and per video."""

    alphas: tuple[float, ...]
    per_joint: np.ndarray  # (n_alphas, J), NaN for a joint never scored
    per_video: dict[str, np.ndarray]  # video -> (n_alphas,)
    n_scored: int
    visibility: str

    @property
    def overall(self) -> np.ndarray:
        return np.array([_nanmean(row) for row in self.per_joint])

    def record(self) -> dict:
        key = [f"pck@{a:g}" for a in self.alphas]
        rec: dict = {k: float(v) for k, v in zip(key, self.overall, strict=True)}
        rec["per_video"] = {
            v: {k: float(x) for k, x in zip(key, vals, strict=True)} for v, vals in self.per_video.items()
        }
        rec["per_joint"] = {
            k: [None if np.isnan(x) else float(x) for x in row]
            for k, row in zip(key, self.per_joint, strict=True)
        }
        rec["n_videos"] = len(self.per_video)
        rec["n_scored_joints"] = self.n_scored
        rec["visibility"] = self.visibility
        return rec


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    ok = ~np.isnan(x)
    return float(x[ok].mean()) if ok.any() else float("nan")


def _per_joint(
    errs: Sequence[np.ndarray], scored: Sequence[np.ndarray], alphas: Sequence[float]
) -> np.ndarray:
    err = np.concatenate(errs)
    ok = np.concatenate(scored)
    n = ok.sum(axis=0)  # scored entries per joint
    out = np.full((len(alphas), err.shape[1]), np.nan)
    for i, a in enumerate(alphas):
        with np.errstate(invalid="ignore"):
            correct = ok & (err <= a)
        hit = correct.sum(axis=0)
        out[i, n > 0] = hit[n > 0] / n[n > 0]
    return out


def evaluate_pck(
    preds: Mapping[str, np.ndarray],
    gts: Mapping[str, np.ndarray],
    alphas: Sequence[float] = ALPHAS,
    visibility: str = "all",
    frame_sizes: Mapping[str, tuple[int, int]] | None = None,
) -> PckResult:
    """PCK over videos: ``preds`` and ``gts`` map video name -> (F, J, 2) 0-based pixel (x, y)."""
    if visibility not in VISIBILITY_RULES:
        raise ConfigError(f"unknown visibility rule {visibility!r}; choose one of {VISIBILITY_RULES}")
    missing = sorted(set(preds) - set(gts))
    if missing:
        raise DataError(f"no ground truth for predicted video(s) {missing}")
    if not preds:
        raise DataError("no predictions to score")
    errs, scored, per_video = [], [], {}
    for video in sorted(preds):
        size = frame_sizes.get(video) if frame_sizes else None
        pred, gt = np.asarray(preds[video]), np.asarray(gts[video])
        if pred.shape != gt.shape:
            raise DataError(
                f"video {video!r}: predictions have shape {pred.shape} but the ground truth {gt.shape} "
                "(frames x joints x 2)"
            )
        e, s = normalised_errors(pred, gt, visibility, size)
        errs.append(e)
        scored.append(s)
        per_video[video] = np.array([_nanmean(row) for row in _per_joint([e], [s], alphas)])
    per_joint = _per_joint(errs, scored, alphas)
    return PckResult(
        alphas=tuple(float(a) for a in alphas),
        per_joint=per_joint,
        per_video=per_video,
        n_scored=int(sum(s.sum() for s in scored)),
        visibility=visibility,
    )
