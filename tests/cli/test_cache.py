"""``dvx cache ls / verify / gc`` on a real extraction: find damage, uncommit it, re-extract only that."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dvx.cli import cli
from dvx.config import ExtractConfig
from dvx.data.synthetic import SynthConfig, write_world
from dvx.extract.runner import run_extract
from dvx.store.claims import Claims
from dvx.store.root import FeatureStore


@pytest.fixture
def extracted(tmp_path: Path) -> ExtractConfig:
    world = tmp_path / "world"
    write_world(SynthConfig(out=world, videos=3, frames=4, height=48, width=64, seed=9))
    cfg = ExtractConfig(
        model="tiny-sd",
        dataset="synthetic",
        data_root=str(world),
        store=str(tmp_path / "store"),
        timesteps=(50,),
        blocks=("mid", "up.1"),
        resolution=(64, 64),
        threads=1,
        progress=False,
    )
    run_extract(cfg, log=lambda _: None)
    return cfg


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_verify_repair_then_extract_redoes_only_the_damaged_video(extracted: ExtractConfig) -> None:
    store = extracted.store
    [group] = FeatureStore.open(store, mode="r").groups()
    before = {(v, b): group.read(v, 50, b) for v in group.index().videos() for b in ("mid", "up.1")}
    chunk = next(p for p in (Path(store) / group.array_key("synth_000001", 50, "up.1")).rglob("c/*/*/*/*"))
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    chunk.write_bytes(bytes(raw))

    found = invoke("cache", "verify", "--store", store)
    assert found.exit_code == 1
    assert "corrupt-chunk" in found.output and "1 video(s) to re-extract: synth_000001" in found.output
    as_json = json.loads(invoke("cache", "verify", "--store", store, "--json").output)
    assert as_json["to_reextract"] == {f"synthetic/{group.recipe.name}": ["synth_000001"]}

    repaired = invoke("cache", "verify", "--store", store, "--repair")
    assert repaired.exit_code == 0 and "1 video(s) uncommitted: synth_000001" in repaired.output
    logs: list[str] = []
    report = run_extract(extracted, log=logs.append)
    assert report.computed == ["synth_000001"] and "2 cached, 1 to compute" in logs[0]
    ok = invoke("cache", "verify", "--store", store)
    assert ok.exit_code == 0 and "ok: no damage found" in ok.output
    group = FeatureStore.open(store, mode="r").groups()[0]
    for (v, b), x in before.items():
        np.testing.assert_array_equal(group.read(v, 50, b), x)  # recomputed bit for bit

    listing = invoke("cache", "ls", "--store", store)
    assert "reclaimable by `dvx cache gc`" in listing.output and "written by " in listing.output
    assert "stored" in listing.output and "mid (" in listing.output

    shown = invoke("cache", "gc", "--store", store, "--dry-run", "--min-age", "0s")
    assert "orphan: 1 item(s)" in shown.output and "synth_000001~" in shown.output
    refused = invoke("cache", "gc", "--store", store, "--min-age", "0s", input="n\n")
    assert refused.exit_code != 0 and "Remove them, freeing" in refused.output
    assert (
        "orphan: 1 item(s)" in invoke("cache", "gc", "--store", store, "--dry-run", "--min-age", "0s").output
    )
    done = invoke("cache", "gc", "--store", store, "--min-age", "0s", "--yes")
    assert done.exit_code == 0 and "freed" in done.output
    after = invoke("cache", "gc", "--store", store, "--dry-run", "--min-age", "0s", "--json")
    assert json.loads(after.output)["items"] == []  # orphan and the finished claims are gone
    assert "reclaimable" not in invoke("cache", "ls", "--store", store).output


def test_ls_shows_who_is_writing_now(extracted: ExtractConfig) -> None:
    [group] = FeatureStore.open(extracted.store, mode="a").groups()
    Claims(group).try_acquire("synth_000099")
    out = invoke("cache", "ls", "--store", extracted.store).output
    assert "in progress: synth_000099 by " in out
    data = json.loads(invoke("cache", "ls", "--store", extracted.store, "--json").output)
    [g] = data["groups"]
    assert g["in_progress"][0]["video"] == "synth_000099" and g["writer_stats"][0]["commits"] == 3
    assert set(g["stored_by_t"]) == {"50"} and g["stored_bytes"] > g["nbytes"]


def test_gc_removes_a_whole_recipe_by_age_only_when_asked(extracted: ExtractConfig) -> None:
    store = extracted.store
    plain = invoke("cache", "gc", "--store", store, "--dry-run")
    assert "0 item(s) to remove" in plain.output
    old = invoke("cache", "gc", "--store", store, "--older-than", "0s", "--yes")
    assert "recipe: 1 item(s)" in old.output and "freed" in old.output
    assert FeatureStore.open(store, mode="r").groups() == []
    bad = CliRunner().invoke(cli, ["cache", "gc", "--store", store, "--max-size", "lots"])
    assert "--max-size must look like 500G" in str(bad.exception)
