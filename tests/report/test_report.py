"""`dvx report`: Table 2 (models x task metrics), T x block grids, heatmaps, CSVs, from results records."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from dvx.errors import ConfigError
from dvx.report.runner import ReportConfig, run_report
from dvx.report.tables import grids, table2, table2_markdown
from dvx.results import ResultRecord, ResultsDir

STORE = "/data/cache"


MAIN = {"hmdb51": ("top1", True), "cityscapes-depth": ("depth_mErr", False), "cityscapes-seg": ("mIoU", True)}


def rec(model: str, task: str, t: int, block: str, recipe: str = "a" * 64, **metrics: float) -> ResultRecord:
    return ResultRecord(
        main_metric=MAIN[task][0],
        higher_is_better=MAIN[task][1],
        task=task,
        model=model,
        recipe=recipe,
        dataset="synthetic",
        store=STORE,
        T=t,
        block=block,
        probe={"epochs": 2},
        metrics=metrics,
        created_at=f"2026-01-01T00:00:{t % 60:02d}",
    )


RECORDS = [
    rec("svd", "hmdb51", 0, "up.1", top1=0.60, top5=0.88),
    rec("svd", "hmdb51", 50, "up.1", top1=0.64, top5=0.90),
    rec("svd", "hmdb51", 50, "up.2", top1=0.34, top5=0.67),
    rec("svd", "cityscapes-depth", 50, "up.2", depth_mErr=4.7, depth_RMSE=6.0),
    rec("svd", "cityscapes-depth", 50, "up.1", depth_mErr=5.2, depth_RMSE=5.9),
    rec("sd-1.5", "hmdb51", 50, "up.1", top1=0.33, top5=0.68),
    rec("sd-1.5", "hmdb51", 50, "up.1", recipe="b" * 64, top1=0.30, top5=0.60),
]


def test_a_task_on_two_datasets_gets_a_column_and_a_grid_per_dataset() -> None:
    real = rec("svd", "cityscapes-seg", 50, "up.1", mIoU=0.41)
    synth = replace(rec("svd", "cityscapes-seg", 50, "up.1", mIoU=0.93), dataset="synthetic-layout")
    newer_synth = replace(synth, created_at="2026-02-01T00:00:00")
    t = table2([replace(real, dataset="cityscapes"), newer_synth])
    assert t.columns == [("cityscapes-seg@cityscapes", "mIoU"), ("cityscapes-seg@synthetic-layout", "mIoU")]
    assert t.best[("svd", "cityscapes-seg@cityscapes")].metrics["mIoU"] == 0.41
    gs = grids([replace(real, dataset="cityscapes"), newer_synth])
    assert [(g.task, g.grid.values) for g in gs] == [
        ("cityscapes-seg@cityscapes", [[0.41]]),
        ("cityscapes-seg@synthetic-layout", [[0.93]]),
    ]
    assert table2([real]).columns == [("cityscapes-seg", "mIoU")]  # one dataset: the plain task name


def test_table2_takes_each_models_best_record_by_the_tasks_main_metric() -> None:
    t = table2(RECORDS)
    assert t.rows == ["sd-1.5@aaaaaaaa", "sd-1.5@bbbbbbbb", "svd"]  # two sd recipes: two rows
    assert t.columns == [
        ("hmdb51", "top1"),
        ("hmdb51", "top5"),
        ("cityscapes-depth", "depth_mErr"),
        ("cityscapes-depth", "depth_RMSE"),
    ]
    assert (t.best[("svd", "hmdb51")].T, t.best[("svd", "hmdb51")].block) == (50, "up.1")
    assert t.best[("svd", "cityscapes-depth")].block == "up.2"  # lower mErr wins (even with higher RMSE)
    md = table2_markdown(t)
    assert "| svd | 0.6400 | 0.9000 | 4.7000 | 6.0000 |" in md and "cityscapes-depth depth_mErr ↓" in md
    assert "| sd-1.5@bbbbbbbb | 0.3000 | 0.6000 | - | - |" in md
    assert "- svd / hmdb51: T=50, up.1" in md


def test_grids_are_t_by_block_of_the_main_metric() -> None:
    g = next(g for g in grids(RECORDS) if g.label == "svd" and g.task == "hmdb51")
    assert (g.grid.metric, g.grid.timesteps, g.grid.blocks) == ("top1", [0, 50], ["up.1", "up.2"])
    assert g.grid.values == [[0.60, None], [0.64, 0.34]]


def test_report_writes_markdown_csv_and_one_heatmap_per_model_and_task(tmp_path: Path) -> None:
    results = ResultsDir(tmp_path / "results")
    for r in RECORDS:
        results.save(r)
    results.save(replace(rec("other", "hmdb51", 50, "up.1", top1=0.9, top5=1.0), store="/elsewhere"))
    files = run_report(
        ReportConfig(store=STORE, out=str(tmp_path / "rep"), results=str(tmp_path / "results"))
    )
    assert files.records == len(RECORDS)  # the record of another store is left out
    names = sorted(p.name for p in files.heatmaps)
    assert names == [
        "sd-1.5_aaaaaaaa_hmdb51.png",
        "sd-1.5_bbbbbbbb_hmdb51.png",
        "svd_cityscapes-depth.png",
        "svd_hmdb51.png",
    ]
    for p in files.heatmaps:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 1000
    md = files.markdown.read_text()
    assert "![svd (aaaaaaaa) - hmdb51](heatmaps/svd_hmdb51.png)" in md and "| 50 | 0.6400 | 0.3400 |" in md
    rows = list(csv.DictReader(io.StringIO(files.table_csv.read_text())))
    svd = next(r for r in rows if r["model"] == "svd")
    assert (
        float(svd["hmdb51/top1"]) == 0.64
        and svd["hmdb51/T"] == "50"
        and svd["cityscapes-depth/block"] == "up.2"
    )
    assert len(list(csv.DictReader(io.StringIO(files.records_csv.read_text())))) == len(RECORDS)
    saved = json.loads((files.out / "dvx-config.json").read_text())  # the resolved config beside the report
    assert saved["config"] == {
        "store": STORE,
        "out": str(tmp_path / "rep"),
        "results": str(tmp_path / "results"),
        "cost_reference": None,
        "viz": None,
        "html": False,
        "progress": True,
    }
    assert saved["records"] == len(RECORDS)


def test_no_records_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no probe results for store"):
        run_report(ReportConfig(store=STORE, out=str(tmp_path / "rep"), results=str(tmp_path / "none")))
    assert not (tmp_path / "rep").exists()


def test_records_of_a_store_normalise_its_location_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dvx.results as results_mod

    results = ResultsDir(tmp_path / "results")
    for r in RECORDS:
        results.save(r)
    calls: list[str] = []
    real = results_mod.normalize_store
    monkeypatch.setattr(results_mod, "normalize_store", lambda loc: calls.append(loc) or real(loc))
    assert len(list(results.records(store=STORE))) == len(RECORDS)
    assert calls == [STORE]  # once per call, not once per record file


def test_probe_and_report_never_import_each_other() -> None:
    """Records are the interface (dvx/results.py): the report never imports a task to rank records, and the
    probe never imports the report to print a table."""
    import ast

    from tests.conftest import REPO

    def imports(package: str) -> set[str]:
        found = set()
        for path in (REPO / "dvx" / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module:
                    found.add(node.module)
                elif isinstance(node, ast.Import):
                    found.update(a.name for a in node.names)
        return found

    assert not {m for m in imports("probe") if m.startswith("dvx.report")}
    assert not {m for m in imports("report") if m.startswith("dvx.probe")}
