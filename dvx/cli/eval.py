"""``dvx eval``: score predictions on disk (DAVIS J&F, JHMDB PCK, TAP-Vid). Parses options and calls the
runners."""

from __future__ import annotations

import json
from pathlib import Path

import click

_DIR = click.Path(path_type=Path)


@click.group("eval")
def eval_group() -> None:
    """Score predictions on disk (DAVIS J&F, JHMDB PCK, TAP-Vid point tracking)."""


@eval_group.command("davis")
@click.option(
    "--pred", required=True, type=_DIR, help="Predictions: <pred>/<sequence>/<frame>.png (or one sequence)."
)
@click.option(
    "--gt", required=True, type=_DIR, help="Annotations: DAVIS Annotations/480p (or one sequence folder)."
)
@click.option("--sequences", default=None, help="Comma-separated sequences to score (default: all in --gt).")
@click.option("--json", "as_json", is_flag=True, help="Print the results record as JSON on stdout.")
def davis(pred: Path, gt: Path, sequences: str | None, as_json: bool) -> None:
    """J&F by the official davis2017-evaluation semi-supervised protocol."""
    from dvx.probe.evaluate import DavisEvalConfig, format_davis_table, run_davis_eval

    names = tuple(s.strip() for s in sequences.split(",") if s.strip()) if sequences else None
    record = run_davis_eval(DavisEvalConfig(pred=pred, gt=gt, sequences=names))
    click.echo(json.dumps(record, indent=2) if as_json else format_davis_table(record))


@eval_group.command("jhmdb")
@click.option("--pred", required=True, type=_DIR, help="Predictions: a folder of <video>.json.")
@click.option("--gt", required=True, type=_DIR, help="JHMDB root holding joint_positions/<class>/<video>/.")
@click.option(
    "--visibility",
    type=click.Choice(["all", "inside"]),
    default="all",
    show_default=True,
    help="Which ground-truth joints are scored: all annotated ones (reference) or those inside the frame.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results record as JSON on stdout.")
def jhmdb(pred: Path, gt: Path, visibility: str, as_json: bool) -> None:
    """PCK@0.1 and PCK@0.2 (mean of per-joint PCKs, frame 0 not scored)."""
    from dvx.probe.evaluate import JhmdbEvalConfig, format_jhmdb_table, run_jhmdb_eval

    record = run_jhmdb_eval(JhmdbEvalConfig(pred=pred, gt=gt, visibility=visibility))
    click.echo(json.dumps(record, indent=2) if as_json else format_jhmdb_table(record))


@eval_group.command("tapvid")
@click.option(
    "--pred", required=True, type=_DIR, help="Predictions: a folder of <video>.npz (tracks, occluded)."
)
@click.option(
    "--gt",
    required=True,
    type=_DIR,
    help="Ground truth: a TAP-Vid folder (tapvid_davis.pkl, Kinetics shards, tapvid_rgb_stacking.pkl) or a "
    "synthetic world.",
)
@click.option(
    "--query-mode",
    type=click.Choice(["first", "strided"]),
    default="first",
    show_default=True,
    help="Queries at each track's first visible frame, later frames scored (TAP-Vid-DAVIS), or every 5 "
    "frames, all other frames scored.",
)
@click.option("--videos", default=None, help="Comma-separated videos to score (default: all in --gt).")
@click.option("--json", "as_json", is_flag=True, help="Print the results record as JSON on stdout.")
def tapvid(pred: Path, gt: Path, query_mode: str, videos: str | None, as_json: bool) -> None:
    """TAP-Vid AJ, delta_avg and OA in the 256x256 raster (tapnet's reference protocol)."""
    from dvx.probe.evaluate_tapvid import TapvidEvalConfig, format_tapvid_table, run_tapvid_eval

    names = tuple(v.strip() for v in videos.split(",") if v.strip()) if videos else None
    record = run_tapvid_eval(TapvidEvalConfig(pred=pred, gt=gt, query_mode=query_mode, videos=names))
    click.echo(json.dumps(record, indent=2) if as_json else format_tapvid_table(record))
