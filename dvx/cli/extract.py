"""``dvx extract``: parse options into an ExtractConfig and hand it to the runner."""

from __future__ import annotations

import json
from typing import Any

import click

from dvx.config import ExtractConfig
from dvx.extract.presets import PRESETS
from dvx.options import click_params, from_cli


def _params() -> list[click.Parameter]:
    """ExtractConfig's options (declared once, in dvx.config), then what only the command takes."""
    preset = click.Option(
        ["--preset"],
        type=click.Choice(list(PRESETS)),
        default=None,
        help="A published recipe: "
        + "; ".join(f"{k}: {v}" for k, v in PRESETS.items())
        + ". Options given beside it override it.",
    )
    as_json = click.Option(
        ["--json", "as_json"], is_flag=True, help="Print the run report as JSON on stdout."
    )
    generated = click_params(ExtractConfig)
    return [*generated[:3], preset, *generated[3:], as_json]  # --preset beside --model/--dataset


@click.command(context_settings={"show_default": True}, params=_params())
def extract(preset: str | None, as_json: bool, **values: Any) -> None:
    """Extract every block's activations of MODEL on DATASET at each T into the feature store.

    One forward per (clip, T) captures all requested blocks; videos already committed for every
    requested (T, block) are skipped ("N cached, M to compute").
    """
    from dvx.extract.presets import extract_config
    from dvx.extract.runner import run_extract

    ctx = click.get_current_context()
    given = {  # only what was given: a preset's values hold unless an option beside it overrides them
        k: v
        for k, v in from_cli(ExtractConfig, values).items()
        if ctx.get_parameter_source(k) != click.core.ParameterSource.DEFAULT
    }
    if "resolution" in given:  # --resolution is HxW (resolution) or a size preset's name (resize)
        given["resolution"], given["resize"] = given["resolution"]
    required = {k: given.pop(k) for k in ("model", "dataset", "data_root", "store")}
    cfg = extract_config(preset, **required, **given)
    report = run_extract(cfg)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "group": report.group,
                    "store": report.store,
                    "recipe": report.recipe.to_json(),
                    "fingerprint": report.recipe.fingerprint,
                    "timesteps": list(report.timesteps),
                    "blocks": list(report.blocks),
                    "total": report.total,
                    "cached": report.cached,
                    "computed": report.computed,
                    "others": report.others,
                    "lost": report.lost,
                    "ranks": report.ranks,
                    "failed": report.failed,
                    "bytes_written": report.bytes_written,
                    "planned_bytes": report.planned_bytes,
                    "planned_forwards": report.planned_forwards,
                    "geometry": {b: list(v) for b, v in report.geometry.items()},
                    "preset": cfg.preset,
                    "seconds": round(report.seconds, 3),
                },
                indent=1,
            )
        )
    else:
        click.echo(report.summary())
