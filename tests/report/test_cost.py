"""Table 5 from extraction cost records: relative to a reference measured on the same device and dtype."""

from __future__ import annotations

from pathlib import Path

import pytest

from dvx.errors import ConfigError
from dvx.report.cost import CostRow, pick_reference, table5, table5_csv, table5_markdown


def row(model: str, fps: float, mem: int, device: str = "AMD EPYC", timesteps: int = 1) -> CostRow:
    rec = {
        "device": "cpu", "device_name": device, "dtype": "float32", "timesteps": timesteps, "ensemble": 1,
        "frames_per_second": fps, "seconds_per_forward": 1 / fps, "peak_device_bytes": None,
        "host_growth_bytes": mem,
    }  # fmt: skip
    return CostRow("synthetic", model, model[0] * 64, rec)


def test_time_per_frame_and_noise_level_and_memory_relative_to_the_reference() -> None:
    rows = [row("tiny-dinov2", 20.0, 100 << 20), row("tiny-svd", 10.0, 300 << 20, timesteps=2)]
    t = table5(rows, pick_reference(rows, None))
    assert t.reference == "tiny-dinov2"
    ref, svd = t.values
    assert (ref["rel_time"], ref["rel_memory"]) == (1.0, 1.0)
    # 10 frames/s over 2 T is 0.05 s per frame and T against the reference's 0.05: the same time
    assert svd["rel_time"] == pytest.approx(1.0) and svd["rel_memory"] == pytest.approx(3.0)
    md = table5_markdown(t)
    assert (
        "| synthetic | tiny-svd | cpu (AMD EPYC) | float32 | 2 x 1 | 10 | 0.1 | 300.0 MiB (RSS growth)" in md
    )
    assert "3.00x" in md and "Relative to **tiny-dinov2**" in md
    assert table5_csv(t).splitlines()[0].startswith("dataset,label,device")


def test_no_relative_numbers_across_devices_and_a_chosen_reference_must_exist() -> None:
    rows = [row("tiny-dinov2", 20.0, 100), row("tiny-sd", 5.0, 200, device="NVIDIA H100")]
    t = table5(rows, pick_reference(rows, "tiny-dinov2"))
    assert t.values[1]["rel_time"] is None and t.rows[1][-2:] == ["-", "-"]
    assert pick_reference([row("tiny-sd", 1.0, 1)], None) is None  # no dinov2: no relative columns
    with pytest.raises(ConfigError, match="--cost-reference 'svd' has no cost record"):
        pick_reference(rows, "svd")


@pytest.mark.slow
def test_dvx_report_shows_table5_with_the_numbers_extraction_measured(tmp_path: Path) -> None:
    from dataclasses import replace

    from dvx.extract.cost import read_costs
    from dvx.report.runner import ReportConfig, run_report
    from dvx.results import ResultsDir
    from tests.conftest import extract_tiny, make_toy
    from tests.report.test_report import rec

    root = make_toy(tmp_path / "toy", {"alpha": 4, "beta": 3})
    store = tmp_path / "store"
    _, ref = extract_tiny(
        "tiny-dinov2", "toy", root, store, ("layer.1",), resolution=(56, 56), timesteps=(0,)
    )
    # a second model into the same store (extract_tiny expects a store of one group)
    from dvx.config import ExtractConfig
    from dvx.extract.runner import run_extract

    run_extract(
        ExtractConfig(model="tiny-sd", dataset="toy", data_root=str(root), store=str(store), blocks=("up.1",),
                      timesteps=(50,), resolution=(64, 64), progress=False),
        log=lambda _: None,
    )  # fmt: skip
    results = ResultsDir(tmp_path / "results")
    results.save(replace(rec("tiny-dinov2", "hmdb51", 0, "layer.1", top1=0.5, top5=0.9), store=str(store)))
    files = run_report(
        ReportConfig(store=str(store), out=str(tmp_path / "rep"), results=str(tmp_path / "results")),
        log=lambda _: None,
    )
    md = files.markdown.read_text()
    assert "## Cost of extraction (as seed 002's Table 5)" in md and "Relative to **tiny-dinov2**" in md
    [measured] = read_costs(ref)
    dino = next(line for line in md.splitlines() if line.startswith("| toy | tiny-dinov2 |"))
    assert f"| {measured['frames_per_second']:.3g} |" in dino and dino.endswith("| 1.00x | 1.00x |")
    sd = next(line for line in md.splitlines() if line.startswith("| toy | tiny-sd |"))
    assert sd.count("x |") == 2 and "| - |" not in sd  # relative numbers present: same device and dtype
    assert "random weights (tiny twins)" in md
    assert files.cost_csv is not None and "tiny-sd" in files.cost_csv.read_text()
