"""``dvx report``: read the results records of one feature store and write the report files.

Writes into ``out``: ``report.md`` (Table 2, every T x block grid with the heatmaps linked, and Table 5
when the store holds extraction cost records), ``table.csv`` (Table 2), ``records.csv`` (every record),
``cost.csv`` (Table 5's numbers), ``heatmaps/<model>_<task>[_<settings>].png`` (one colour scale per task
across models: :func:`dvx.report.heatmaps.shared_scale`), with ``--viz DIR`` the PNGs ``dvx viz`` wrote
there (copied into ``viz/``), with ``--html`` ``report.html`` (the same content as one self-contained page:
dvx/report/html.py) and ``dvx-config.json`` (the report's resolved config). The report is derived data:
rewriting it replaces these files (never a results record).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dvx import __version__
from dvx.errors import ConfigError
from dvx.options import Options, option
from dvx.progress import progress
from dvx.report.tables import LabelledGrid, grids, records_csv, table2, table2_csv, table2_markdown
from dvx.results import ResultRecord, ResultsDir, normalize_store, results_dir, write_config
from dvx.store.index import now_iso


@dataclass(frozen=True)
class ReportConfig(Options):
    """What ``dvx report`` reads and where it writes (its CLI is generated from these fields)."""

    store: str = option(help="Feature store path or URL whose probe results to report.")
    out: str = option("dvx-report", "Folder for report.md, the CSV tables and the heatmaps.")
    results: str | None = option(
        None, "Results directory [default: $DVX_RESULTS_DIR or ~/.local/share/dvx/results]."
    )
    cost_reference: str | None = option(
        None, "Model Table 5 (cost) is relative to [default: dinov2, else tiny-dinov2, when present]."
    )
    viz: str | None = option(None, "Folder of `dvx viz` figures (PNG) to include in the report.")
    html: bool = option(False, "Also write report.html: one self-contained page (images inlined).")
    progress: bool = option(True, "No progress bars.", flag="--no-progress")


@dataclass
class ReportFiles:
    out: Path
    markdown: Path
    table_csv: Path
    records_csv: Path
    heatmaps: list[Path] = field(default_factory=list)
    cost_csv: Path | None = None
    html: Path | None = None
    table5: str = ""  # Table 5 as markdown ("" when the store holds no cost records)
    table2: str = ""  # Table 2 as markdown (what the CLI prints)
    records: int = 0


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def heatmap_name(g: LabelledGrid, several: bool) -> str:
    return _safe(f"{g.label}_{g.task}" + (f"_{g.settings}" if several else "")) + ".png"


def run_report(cfg: ReportConfig, log: Callable[[str], None] | None = None) -> ReportFiles:
    from dvx.report.heatmaps import heatmap_png, shared_scale

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
    scales = task_scales(all_grids, shared_scale)
    sections = []
    for g in progress(all_grids, "report heatmaps", "heatmap", cfg.progress):
        several = per_task[(g.label, g.recipe, g.task)] > 1
        title = f"{g.label} ({g.recipe[:8]}) - {g.task}" + (f" [settings {g.settings}]" if several else "")
        png = heatmap_png(
            g.grid, out / "heatmaps" / heatmap_name(g, several), title, scales[(g.task, g.grid.metric)]
        )
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
        *_random_weight_note(records),
        "## Models x tasks (as seed 002's Table 2)",
        "",
        t2_md,
        "",
        "## T x block (as seed 002's Table 3)",
        "",
        "One colour scale per task and metric across models ([0, 1] for fractions).",
        "",
        *sections,
        *_cost_section(cfg, files, log),
        *_viz_section(cfg, out),
    ]
    files.markdown.write_text("\n".join(md))
    if cfg.html:
        from dvx.report.html import markdown_to_html

        files.html = out / "report.html"
        files.html.write_text(markdown_to_html(files.markdown.read_text(), out))
    files.table_csv.write_text(table2_csv(t2))
    files.records_csv.write_text(records_csv(records))
    files.table2 = t2_md
    write_config(
        out,
        {"config": cfg.to_json(), "results": str(where), "records": len(records), "dvx_version": __version__},
    )
    log(f"report of {len(records)} record(s) written to {out} ({len(files.heatmaps)} heatmap(s))")
    return files


def _random_weight_note(records: list[ResultRecord]) -> list[str]:
    tiny = sorted({r.model for r in records if r.model.startswith("tiny-")})
    if not tiny:
        return []
    return [
        f"**{', '.join(tiny)}: random weights (tiny twins).** Their numbers and pictures exercise the "
        "pipeline; they say nothing about any model.",
        "",
    ]


def task_scales(
    all_grids: list[LabelledGrid], scale: Callable[[list[float]], tuple[float, float]]
) -> dict[tuple[str, str], tuple[float, float]]:
    """(task label, metric) -> the colour range shared by that task's heatmaps over every model."""
    values: dict[tuple[str, str], list[float]] = {}
    for g in all_grids:
        into = values.setdefault((g.task, g.grid.metric), [])
        into += [float(v) for row in g.grid.values for v in row if v is not None]
    return {k: scale(v) for k, v in values.items()}


def _cost_section(cfg: ReportConfig, files: ReportFiles, log: Callable[[str], None]) -> list[str]:
    """Table 5 from the store's extraction cost records (none when it holds none or cannot be read)."""
    from dvx.errors import DvxError
    from dvx.report.cost import cost_rows, pick_reference, table5, table5_csv, table5_markdown

    try:
        rows = cost_rows(cfg.store)
    except DvxError as err:  # a report of results whose store is elsewhere: tables 2 and 3 only
        log(f"no cost table (Table 5): {err}")
        return []
    if not rows:
        return []
    t5 = table5(rows, pick_reference(rows, cfg.cost_reference))
    files.table5 = table5_markdown(t5)
    files.cost_csv = files.out / "cost.csv"
    files.cost_csv.write_text(table5_csv(t5))
    return ["## Cost of extraction (as seed 002's Table 5)", "", files.table5, ""]


def _viz_section(cfg: ReportConfig, out: Path) -> list[str]:
    """The PNG figures ``dvx viz`` wrote into ``cfg.viz`` (copied into ``<out>/viz``), or, without
    ``--viz``, those already in ``<out>/viz`` (``dvx viz --out <out>/viz``)."""
    import shutil

    here = out / "viz"
    src = Path(cfg.viz).expanduser() if cfg.viz is not None else here
    pngs = sorted(src.glob("*.png")) if src.is_dir() else []
    if not pngs:
        if cfg.viz is None:
            return []
        raise ConfigError(f"--viz {cfg.viz}: no PNG figures there; run `dvx viz --out {cfg.viz} ...` first")
    here.mkdir(exist_ok=True)
    lines = ["## Feature visualisations (as seed 002's Fig. 1)", ""]
    for png in pngs:
        if not (here / png.name).exists() or not (here / png.name).samefile(png):
            shutil.copyfile(png, here / png.name)
        caption = png.with_suffix(".txt")
        lines += [f"### {png.stem}", ""]
        if caption.is_file():
            lines += [caption.read_text().strip(), ""]
        lines += [f"![{png.stem}](viz/{png.name})", ""]
    return lines
