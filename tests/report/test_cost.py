"""Table 5 from extraction cost records: relative to a reference measured on the same device and dtype."""

from __future__ import annotations

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
