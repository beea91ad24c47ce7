"""``dvx probe``: the options are generated from ProbeConfig and from the task's options class.

``--task NAME`` is read first, then the task's own options are added: ``dvx probe --task movi-e --help``
lists exactly what movi-e takes (with its defaults), and a flag the task does not take is one line naming
the task. The command then builds a ProbeConfig and hands it to the probe runner.
"""

from __future__ import annotations

from typing import Any

import click

from dvx.config import ProbeConfig
from dvx.errors import ConfigError
from dvx.options import click_params, from_cli

CLI_ONLY = [
    click.Option(
        ["--from-cache"],
        is_flag=True,
        default=True,
        show_default=False,
        help="Read features from the store (always; the backbone is never loaded).",
    ),
    click.Option(["--json", "as_json"], is_flag=True, help="Print the results records as JSON Lines."),
]


def task_of(args: list[str]) -> str | None:
    """The value of ``--task`` in raw arguments (``--task X`` or ``--task=X``), before click parses."""
    for i, arg in enumerate(args):
        if arg == "--task" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--task="):
            return arg.partition("=")[2]
    return None


def task_params(task: str) -> list[click.Parameter]:
    """The options of task ``task`` (did-you-mean on an unknown name), with its registry defaults."""
    from dvx.probe.task import task_class, task_defaults

    return click_params(task_class(task).options_class, task_defaults(task))


def takers(flag: str) -> list[str]:
    """The registered tasks that take ``flag``."""
    from dvx.probe import TASKS

    return [e.name for e in TASKS if any(flag in p.opts for p in task_params(e.name))]


class ProbeCommand(click.Command):
    """A command whose options depend on ``--task``: ProbeConfig's fields, then the task's."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        task = ctx.meta.get("dvx.task")
        extra: list[click.Parameter] = list(task_params(task)) if task else []
        return [*super().get_params(ctx), *extra]

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        task = task_of(args)
        ctx.meta["dvx.task"] = task
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as err:
            opt = err.option_name
            if task is None:
                raise ConfigError(
                    f"no such option {opt} (task options need --task: `dvx probe --task TASK --help`)"
                ) from None
            others = takers(opt)
            where = f" ({opt} is an option of {', '.join(others)})" if others else ""
            raise ConfigError(
                f"task {task!r} does not take option {opt}{where}; `dvx probe --task {task} --help` lists "
                "its options"
            ) from None

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The common options, then the task's own under their own heading."""
        task = ctx.meta.get("dvx.task")
        own = {p.name for p in task_params(task)} if task else set()
        sections: dict[str, list[tuple[str, str]]] = {"Options": [], f"Options of task {task}": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                sections[f"Options of task {task}" if param.name in own else "Options"].append(record)
        for title, rows in sections.items():
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if ctx.meta.get("dvx.task") is None:
            from dvx.probe import TASKS

            formatter.write_paragraph()
            formatter.write_text("Each task adds its own options: `dvx probe --task TASK --help`. Tasks:")
            with formatter.indentation():
                formatter.write_dl([(e.name, e.help) for e in TASKS])
        super().format_epilog(ctx, formatter)


def run(as_json: bool, from_cache: bool, **values: Any) -> None:
    """Run a probe TASK on MODEL's cached features (training-free propagation or a trained light head)."""
    from dvx.probe.runner import build_task, run_probe
    from dvx.probe.task import task_class
    from dvx.results import Grid, json_lines

    options = from_cli(task_class(values["task"]).options_class, values)
    cfg = ProbeConfig(**from_cli(ProbeConfig, values), options=options)
    records = run_probe(cfg)
    if as_json:
        click.echo(json_lines(records))
        return
    click.echo(f"{cfg.task}: {cfg.model} ({records[0].recipe[:8]}) on {records[0].dataset}")
    click.echo(Grid.of(records).render())
    for line in build_task(cfg).extra_lines(records):
        click.echo(line)
    if cfg.model.startswith("tiny-"):
        click.echo(f"({cfg.model} has random weights: these numbers test the pipeline, not a model)")


probe = ProbeCommand(
    "probe",
    callback=run,
    params=[*click_params(ProbeConfig), *CLI_ONLY],
    help=run.__doc__,
    context_settings={"show_default": True},
)
