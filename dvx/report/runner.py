"""``dvx report``: read the results records of one feature store and write the report files.

Writes into ``out``: ``report.md`` (Table 2 and every T x block grid, with the heatmaps linked),
``table.csv`` (Table 2), ``records.csv`` (every record), ``heatmaps/<model>_<task>[_<settings>].png`` and
``dvx-config.json`` (the report's resolved config). The report is derived data: rewriting it replaces these
files (never a results record).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dvx import __version__
from dvx.errors import ConfigError
from dvx.options import Options, option
from dvx.report.tables import LabelledGrid, grids, records_csv, table2, table2_csv, table2_markdown
from dvx.results import ResultsDir, normalize_store, results_dir, write_config
from dvx.store.index import now_iso


@dataclass(frozen=True)
class ReportConfig(Options):
    """What ``dvx report`` reads and where it writes (its CLI is generated from these fields)."""

    store: str = option(help="Feature store path or URL whose probe results to report.")
    out: str = option("dvx-report", "Folder for report.md, the CSV tables and the heatmaps.")
    results: str | None = option(
        None, "Results directory [default: $DVX_RESULTS_DIR or ~/.local/share/dvx/results]."
    )


@dataclass
class ReportFiles:
    out: Path
    markdown: Path
    table_csv: Path
    records_csv: Path
    heatmaps: list[Path] = field(default_factory=list)
    table2: str = ""  # Table 2 as markdown (what the CLI prints)
    records: int = 0


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def heatmap_name(g: LabelledGrid, several: bool) -> str:
    return _safe(f"{g.label}_{g.task}" + (f"_{g.settings}" if several else "")) + ".png"


def run_report(cfg: ReportConfig, log: Callable[[str], None] | None = None) -> ReportFiles:
    from dvx.report.heatmaps import heatmap_png

    log = log or (lambda msg: print(msg, file=sys.stderr))
    where = results_dir(cfg.results)
    records = list(ResultsDir(where).records(store=cfg.store))
    if not records:
        raise ConfigError(
            f"no probe results for store {normalize_store(cfg.store)!r} in {str(where)!r}; run `dvx probe "
            f"--store {cfg.store} ...` first, or pass the --results folder the probes wrote to"
        )
    out = Path(cfg.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    t2 = table2(records)
    t2_md = table2_markdown(t2)
    all_grids = grids(records)
    per_task: dict[tuple[str, str, str], int] = {}
    for g in all_grids:
        per_task[(g.label, g.recipe, g.task)] = per_task.get((g.label, g.recipe, g.task), 0) + 1
    files = ReportFiles(out, out / "report.md", out / "table.csv", out / "records.csv", records=len(records))
    sections = []
    for g in all_grids:
        several = per_task[(g.label, g.recipe, g.task)] > 1
        title = f"{g.label} ({g.recipe[:8]}) - {g.task}" + (f" [settings {g.settings}]" if several else "")
        png = heatmap_png(g.grid, out / "heatmaps" / heatmap_name(g, several), title)
        files.heatmaps.append(png)
        sections.append(
            f"### {title}\n\n{g.grid.metric} ({g.grid.direction}) over T x block.\n\n"
            f"![{title}](heatmaps/{png.name})\n\n{g.grid.render(markdown=True)}\n"
        )
    md = [
        "# dvx report",
        "",
        f"Store `{normalize_store(cfg.store)}`, {len(records)} record(s) from `{where}`, "
        f"written {now_iso()}.",
        "",
        "## Models x tasks (as seed 002's Table 2)",
        "",
        t2_md,
        "",
        "## T x block (as seed 002's Table 3)",
        "",
        *sections,
    ]
    files.markdown.write_text("\n".join(md))
    files.table_csv.write_text(table2_csv(t2))
    files.records_csv.write_text(records_csv(records))
    files.table2 = t2_md
    write_config(
        out,
        {"config": cfg.to_json(), "results": str(where), "records": len(records), "dvx_version": __version__},
    )
    log(f"report of {len(records)} record(s) written to {out} ({len(files.heatmaps)} heatmap(s))")
    return files
