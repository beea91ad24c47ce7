"""``dvx eval``: score predictions on disk.

``dvx eval <task>`` exists for every registered task that writes predictions (its options generated from
TaskEvalConfig and the task's scoring options); ``dvx eval davis`` scores any DAVIS submission folder
against an annotation folder, as the official tool does; ``dvx eval tapvid`` scores any folder of TAP-Vid
track files. ``--json`` prints JSON Lines, one record per line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from dvx.options import click_params, from_cli

_DIR = click.Path(path_type=Path)
JSON = click.Option(["--json", "as_json"], is_flag=True, help="Print the records as JSON Lines.")


def _echo(records: list[dict[str, Any]], as_json: bool) -> None:
    from dvx.probe.evaluate import format_table
    from dvx.results import json_lines

    click.echo(json_lines(records) if as_json else "\n\n".join(format_table(r) for r in records))


def prediction_tasks() -> list[str]:
    """The registered tasks that write predictions (each is a ``dvx eval`` command)."""
    from dvx.probe import TASKS
    from dvx.probe.task import PredictionTask, task_class

    return [e.name for e in TASKS if issubclass(task_class(e.name), PredictionTask)]


def task_command(task: str) -> click.Command:
    """``dvx eval <task>``: TaskEvalConfig's options and the task's scoring options."""
    from dvx.probe.evaluate import TaskEvalConfig
    from dvx.probe.task import task_class

    scoring = task_class(task).score_options  # type: ignore[attr-defined]

    def run(as_json: bool, **values: Any) -> None:
        from dvx.probe.evaluate import run_task_eval

        ctx = click.get_current_context()
        given = {  # options given on the command line; the rest come from the probe's dvx-config.json
            k: v
            for k, v in from_cli(scoring, values).items()
            if ctx.get_parameter_source(k) is not click.core.ParameterSource.DEFAULT
        }
        _echo(run_task_eval(task, TaskEvalConfig(**from_cli(TaskEvalConfig, values)), given), as_json)

    return click.Command(
        task,
        callback=run,
        params=[*click_params(TaskEvalConfig), *click_params(scoring), JSON],
        help=f"Score {task} predictions as `dvx probe --task {task}` scores them (what its --out wrote).",
        context_settings={"show_default": True},
    )


class EvalGroup(click.Group):
    """``davis`` plus one command per prediction-writing task, found in the task registry on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *prediction_tasks()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None and cmd_name in prediction_tasks():
            return task_command(cmd_name)
        return cmd


@click.group("eval", cls=EvalGroup)
def eval_group() -> None:
    """Score predictions on disk: `dvx eval <task>` reads what `dvx probe --out` wrote."""


@eval_group.command("davis")
@click.option(
    "--pred", required=True, type=_DIR, help="Predictions: <pred>/<sequence>/<frame>.png (or one sequence)."
)
@click.option(
    "--gt", required=True, type=_DIR, help="Annotations: DAVIS Annotations/480p (or one sequence folder)."
)
@click.option("--sequences", default=None, help="Comma-separated sequences to score (default: all in --gt).")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON Lines.")
def davis(pred: Path, gt: Path, sequences: str | None, as_json: bool) -> None:
    """J&F of any DAVIS submission folder by the official davis2017-evaluation semi-supervised protocol."""
    from dvx.config import parse_names
    from dvx.probe.evaluate import DavisEvalConfig, run_davis_eval

    _echo([run_davis_eval(DavisEvalConfig(pred=pred, gt=gt, sequences=parse_names(sequences)))], as_json)


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
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON Lines.")
def tapvid(pred: Path, gt: Path, query_mode: str, videos: str | None, as_json: bool) -> None:
    """TAP-Vid AJ, delta_avg and OA in the 256x256 raster (tapnet's reference protocol)."""
    from dvx.probe.evaluate_tapvid import TapvidEvalConfig, format_tapvid_table, run_tapvid_eval

    names = tuple(v.strip() for v in videos.split(",") if v.strip()) if videos else None
    record = run_tapvid_eval(TapvidEvalConfig(pred=pred, gt=gt, query_mode=query_mode, videos=names))
    click.echo(json.dumps(record) if as_json else format_tapvid_table(record))
