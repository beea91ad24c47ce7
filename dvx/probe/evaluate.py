"""Runners behind ``dvx eval``: score predictions on disk and return a results record (plus tables)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dvx.errors import ConfigError, DataError
from dvx.probe.pck import ALPHAS, VISIBILITY_RULES, evaluate_pck


@dataclass(frozen=True)
class DavisEvalConfig:
    """``pred``: <sequence>/<frame>.png folders; ``gt``: Annotations/480p (either may be one sequence)."""

    pred: Path
    gt: Path
    sequences: tuple[str, ...] | None = None


@dataclass(frozen=True)
class JhmdbEvalConfig:
    """``pred``: folder of <video>.json; ``gt``: a JHMDB root with joint_positions/<class>/<video>/."""

    pred: Path
    gt: Path
    visibility: str = "all"
    alphas: tuple[float, ...] = ALPHAS

    def __post_init__(self) -> None:
        if self.visibility not in VISIBILITY_RULES:
            raise ConfigError(
                f"unknown visibility rule {self.visibility!r}; choose one of {VISIBILITY_RULES}"
            )
        if not self.alphas or any(not a > 0 for a in self.alphas):
            raise ConfigError(f"alphas must be positive, got {self.alphas}")


def run_davis_eval(cfg: DavisEvalConfig) -> dict:
    """J&F of the predictions (official davis2017-evaluation semi-supervised protocol)."""
    from dvx.probe.jandf import evaluate_folders

    record = evaluate_folders(cfg.pred, cfg.gt, cfg.sequences).record()
    record["pred"] = str(cfg.pred)
    record["gt"] = str(cfg.gt)
    return record


def _frame_size(root: Path, mat: Path) -> tuple[int, int]:
    from PIL import Image

    video, cls = mat.parent.name, mat.parent.parent.name
    frames = sorted((root / "Rename_Images" / cls / video).glob("*.png"))
    if not frames:
        raise DataError(
            f"visibility 'inside' needs the frame size: no frames in {root / 'Rename_Images' / cls / video}"
        )
    with Image.open(frames[0]) as im:
        return im.size[1], im.size[0]


def run_jhmdb_eval(cfg: JhmdbEvalConfig) -> dict:
    """PCK of ``<pred>/<video>.json`` against JHMDB ``joint_positions.mat``."""
    from dvx.probe.prediction_io import find_jhmdb_annotation, load_jhmdb_joints, read_jhmdb_prediction

    pred_dir, root = Path(cfg.pred), Path(cfg.gt)
    if not pred_dir.is_dir():
        raise DataError(f"prediction folder {pred_dir} does not exist")
    if not (root / "joint_positions").is_dir():
        raise DataError(f"{root} is not a JHMDB root: {root / 'joint_positions'} is missing")
    files = sorted(pred_dir.glob("*.json"))
    if not files:
        raise DataError(f"{pred_dir} holds no <video>.json predictions")
    preds, gts, sizes = {}, {}, {}
    for path in files:
        video = path.stem
        mat = find_jhmdb_annotation(root, video)
        gts[video] = load_jhmdb_joints(mat)
        preds[video] = read_jhmdb_prediction(path)
        if preds[video].shape != gts[video].shape:
            raise DataError(
                f"{path}: {preds[video].shape[0]} frames x {preds[video].shape[1]} joints, but the ground "
                f"truth has {gts[video].shape[0]} x {gts[video].shape[1]}"
            )
        if cfg.visibility == "inside":
            sizes[video] = _frame_size(root, mat)
    record = evaluate_pck(preds, gts, cfg.alphas, cfg.visibility, sizes or None).record()
    record["pred"] = str(pred_dir)
    record["gt"] = str(root)
    return record


def format_davis_table(record: dict) -> str:
    """A readable table: one row per sequence, then the dataset means (over objects)."""
    rows = [("sequence", "objects", "J-mean", "F-mean", "J&F")]
    for name, seq in record["per_sequence"].items():
        rows.append(
            (name, str(seq["n_objects"]), *(f"{seq[k]:.4f}" for k in ("J_mean", "F_mean", "JF_mean")))
        )
    rows.append(
        (
            "ALL (mean over objects)",
            str(record["n_objects"]),
            *(f"{record[k]:.4f}" for k in ("J_mean", "F_mean", "JF_mean")),
        )
    )
    text = _table(rows)
    extra = "  ".join(f"{k} {record[k]:.4f}" for k in ("J_recall", "J_decay", "F_recall", "F_decay"))
    return f"{text}\n{extra}"


def format_jhmdb_table(record: dict) -> str:
    """A readable table: one row per video, then the overall PCK (mean of per-joint PCKs)."""
    keys = [k for k in record if k.startswith("pck@")]
    rows = [("video", *keys)]
    for video, vals in record["per_video"].items():
        rows.append((video, *(f"{vals[k]:.4f}" for k in keys)))
    rows.append(("ALL (mean over joints)", *(f"{record[k]:.4f}" for k in keys)))
    return f"{_table(rows)}\nvisibility: {record['visibility']}, scored joints: {record['n_scored_joints']}"


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)
