"""``dvx cache ls / verify / gc`` on a real extraction: find damage, uncommit it, re-extract only that."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import time
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from dvx.cli import cli
from dvx.config import ExtractConfig
from dvx.data.synthetic import SynthConfig, write_world
from dvx.errors import StoreError
from dvx.extract.runner import run_extract
from dvx.store import layout
from dvx.store.claims import HELD, ClaimRecord, Claims, process_identity
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
    folder = Path(store) / group.array_key("synth_000001", 50, "up.1")
    chunk = next(p for p in folder.rglob("*") if p.is_file() and p.name != "zarr.json")  # a chunk file
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
    assert (
        f"reclaimable by `dvx cache gc --store {store}`" in listing.output and "written by " in listing.output
    )
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


def parse(command: str) -> None:
    """Parse ``command`` exactly as ``dvx`` would (command names, options, required options and their
    types), without running it; a click.UsageError if it does not parse."""
    argv = shlex.split(command)
    assert argv[0] == "dvx", command
    cmd: click.Command = cli
    parent, name, args = None, "dvx", argv[1:]
    while isinstance(cmd, click.Group):
        ctx = click.Context(cmd, info_name=name, parent=parent)
        sub = cmd.get_command(ctx, args[0])
        assert sub is not None, f"{command}: no command {args[0]!r}"
        parent, cmd, name, args = ctx, sub, args[0], args[1:]
    cmd.make_context(name, args, parent=parent)


def suggested(text: str) -> list[str]:
    return re.findall(r"`(dvx [^`]+)`", text)


def test_every_command_the_store_and_cache_messages_suggest_parses(
    extracted: ExtractConfig, tmp_path: Path
) -> None:
    store = extracted.store
    messages: list[str] = []

    def caught(fn) -> None:
        with pytest.raises(StoreError) as err:
            fn()
        messages.append(str(err.value))

    rw = FeatureStore.open(store, mode="a")
    [group] = rw.groups()
    caught(lambda: group.require(["synth_000000", "synth_000777"], [50, 100], ["mid"], extracted.data_root))
    caught(lambda: rw.find("synthetic", "tiny-svd"))  # nothing of that model yet
    folder = Path(store) / group.array_key("synth_000001", 50, "up.1")
    chunk = next(p for p in folder.rglob("*") if p.is_file() and p.name != "zarr.json")  # a chunk file
    chunk.unlink()
    caught(lambda: group.read("synth_000001", 50, "up.1"))
    record = Path(store) / layout.commit_key(
        group.path, "synth_000002", group.index().latest("synth_000002").gen
    )
    record.write_bytes(b"\0" * 10)
    group.index(refresh=True)
    caught(lambda: group.read("synth_000002", 50, "mid"))
    caught(lambda: run_extract(extracted, log=lambda _: None))  # refuses a damaged video before any work
    now = time.time()
    remote = {**process_identity(), "host": "node-17", "pid": 1}
    stale = ClaimRecord("synth_000009", 1, HELD, remote, "t", now - 99, now - 99, now - 9)
    rw.backend.put_json(layout.claim_key(group.path, "synth_000009", 1), stale.to_json())
    for argv in (["ls"], ["verify"], ["verify", "--repair"], ["ls"]):
        messages.append(invoke("cache", *argv, "--store", store).output)
    broken = tmp_path / "broken"
    shutil.copytree(store, broken)
    (broken / group.path / "zarr.json").write_bytes(b"\0" * 10)
    caught(lambda: FeatureStore.open(str(broken), mode="r").find("synthetic", "tiny-sd"))
    (broken / "zarr.json").write_bytes(b"\0" * 10)
    caught(lambda: FeatureStore.open(str(broken), mode="r"))
    messages.append(invoke("cache", "verify", "--store", str(broken)).output)

    commands = [c for m in messages for c in suggested(m)]
    kinds = {" ".join(shlex.split(c)[:3]) for c in commands}
    assert kinds == {"dvx extract --model", "dvx cache verify", "dvx cache gc", "dvx cache unclaim"}, commands
    for command in commands:
        parse(command)
    with pytest.raises(click.UsageError):  # the check can fail: a command without its required --store
        parse("dvx cache verify --repair")


def test_every_commit_records_the_environment_that_computed_it(extracted: ExtractConfig) -> None:
    import torch

    [group] = FeatureStore.open(extracted.store, mode="r").groups()
    for commit in group.index().commits:
        env = commit.env
        assert (env["device"], env["dtype"], env["threads"], env["batch_size"]) == ("cpu", "float32", 1, 8)
        assert env["torch"] == torch.__version__
        assert all(env[k] for k in ("diffusers", "transformers", "zarr", "av"))
    listing = invoke("cache", "ls", "--store", extracted.store, "-v").output
    assert "computed with " in listing and "threads=1" in listing and "3 commit(s)" in listing
