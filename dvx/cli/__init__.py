"""The ``dvx`` command line: each command parses its options, builds a typed config and calls a runner.

Errors that are the user's to fix (:class:`dvx.errors.DvxError`) and usage errors (an unknown option, a
value click refuses) are printed as one line on stderr with a non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import sys

import click

from dvx import __version__
from dvx.cli.lazy import LazyGroup
from dvx.errors import DvxError

COMMANDS = {
    "extract": ("dvx.cli.extract:extract", "Extract every block's activations into the feature store."),
    "probe": ("dvx.cli.probe:probe", "Run a probe (label propagation or a trained head) from the cache."),
    "eval": ("dvx.cli.eval:eval_group", "Score predictions on disk: what `dvx probe --out` wrote, per task."),
    "cache": ("dvx.cli.cache:cache", "Inspect and maintain a feature store (ls, verify, gc)."),
    "ls": ("dvx.cli.ls:ls", "List models (with block names), datasets and tasks."),
    "synth": ("dvx.cli.synth:synth", "Generate the synthetic dynamic world in the real datasets' layouts."),
    "report": ("dvx.cli.report:report", "Tables and T x block heatmaps from probe results."),
    "viz": (
        "dvx.cli.viz:viz",
        "PCA and K-means pictures of cached features (PNG grid, mp4), from the cache.",
    ),
    "run": ("dvx.cli.run:run", "Run a reproduction plan (extractions, probes, report), skipping the cached."),
    "twin": ("dvx.cli.twin:twin", "Train image/video twins and run the controlled study (docs/twins.md)."),
    "demo": ("dvx.cli.demo:demo", "The end-to-end demo on the synthetic world with tiny models."),
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dvx")
def cli() -> None:
    """dvx: what do diffusion models know about video? Extract once, probe from the cache."""


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="dvx", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as err:
        help_hint = f" (see `{err.ctx.command_path} --help`)" if err.ctx is not None else ""
        click.echo(f"dvx: error: {_one_line(err.format_message())}{help_hint}", err=True)
        sys.exit(err.exit_code)
    except click.ClickException as err:
        click.echo(f"dvx: error: {_one_line(err.format_message())}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except DvxError as err:
        click.echo(f"dvx: error: {err}", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


def _one_line(text: str) -> str:
    return " ".join(text.split())
