"""Extraction cost records (Table 5's inputs): measured per recipe, beside it, fingerprint untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from dvx.extract.cost import CostMeter, cost_key, read_costs
from tests.conftest import extract_tiny, make_toy


@pytest.mark.slow
def test_extraction_records_measured_time_and_memory_beside_the_recipe(tmp_path: Path) -> None:
    root = make_toy(tmp_path / "toy", {"alpha": 5, "beta": 3})
    _, group = extract_tiny(
        "tiny-dinov2", "toy", root, tmp_path / "store", ("layer.1",), resolution=(56, 56), timesteps=(0,)
    )
    [rec] = read_costs(group)
    assert rec["device"] == "cpu" and rec["dtype"] == "float32" and rec["peak_device_bytes"] is None
    assert rec["frames"] == 8 and rec["units"] >= 2 and rec["forwards"] >= rec["units"]
    assert rec["seconds"] > 0 and rec["frames_per_second"] == pytest.approx(8 / rec["seconds"])
    assert rec["seconds_per_unit"] == pytest.approx(rec["seconds"] / rec["units"])
    assert rec["peak_host_bytes"] > 0 and rec["host_growth_bytes"] >= 0
    assert (rec["timesteps"], rec["ensemble"]) == (1, 1)
    assert group.backend.exists(cost_key(group.path, "cpu", "float32"))
    # the recipe is what it was: the cost record is not part of it, and verify and gc leave it alone
    from dvx.store.gc import plan_gc
    from dvx.store.root import FeatureStore
    from dvx.store.verify import verify

    store = FeatureStore.open(str(tmp_path / "store"), mode="r")
    assert not any("cost" in k or "seconds" in k for k in group.recipe.to_json())
    assert verify(store).ok
    assert not plan_gc(store, min_age=0.0).items
    # a second run with everything cached computes nothing and keeps the measured record
    _, again = extract_tiny(
        "tiny-dinov2", "toy", root, tmp_path / "store", ("layer.1",), resolution=(56, 56), timesteps=(0,)
    )
    assert again.recipe.fingerprint == group.recipe.fingerprint and read_costs(again) == [rec]
    # a damaged record, unparseable or with a number turned into text, is left out (never a report traceback)
    import json

    path = tmp_path / "store" / cost_key(group.path, "cpu", "float32")
    for damaged, expected in (('{"device": "cp', []), (json.dumps({**rec, "seconds": "12 s"}), []),
                              (json.dumps(rec), [rec])):  # fmt: skip
        path.write_text(damaged)
        assert read_costs(group) == expected


def test_meter_counts_units_frames_and_forwards() -> None:
    meter = CostMeter("cpu", "float32")
    for _ in range(3):
        with meter.unit(frames=4, forwards=2):
            sum(range(1000))
    meter.note_work(timesteps=2, ensemble=1)
    rec = meter.record()
    assert (rec["units"], rec["frames"], rec["forwards"], rec["timesteps"]) == (3, 12, 6, 2)
    assert rec["seconds"] > 0 and rec["seconds_per_forward"] == pytest.approx(rec["seconds"] / 6)
