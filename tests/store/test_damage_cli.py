"""The damage suite through the real commands, on local disk: for each damage a probe fails with one line
naming what is damaged (the video, where a video is), ``dvx cache verify`` reports it, and ``dvx cache
verify --repair`` plus the same ``dvx extract`` command restore a store bit-identical to the undamaged one,
without deleting or changing any intact object.

(The variants of each damage, on every backend, are in tests/store/test_damage.py.)
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from dvx.cli import main
from dvx.data.synthetic import SynthConfig, write_world
from dvx.store import layout
from dvx.store.claims import HELD, ClaimRecord, process_identity
from dvx.store.root import FeatureStore

VIDEO = "synth_000001"  # the damaged video; synth_000000 and synth_000002 stay intact
INTACT = ("synth_000000", "synth_000002")


def dvx(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """Run ``dvx argv`` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        main(list(argv))
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("damage") / "world"
    write_world(SynthConfig(out=root, videos=3, frames=4, height=48, width=64, seed=3))
    return root


def extract_argv(world: Path, store: Path) -> list[str]:
    return [
        "extract", "--model", "tiny-sd", "--dataset", "davis", "--split", "all", "--data-root", str(world),
        "--store", str(store), "--timesteps", "50", "--blocks", "mid,up.1", "--resolution", "64x64",
        "--threads", "1", "--no-progress",
    ]  # fmt: skip


def probe_argv(world: Path, store: Path, results: Path) -> list[str]:
    return [
        "probe", "--task", "davis17", "--split", "all", "--store", str(store), "--model", "tiny-sd",
        "--data-root", str(world), "--results", str(results), "--no-progress",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def reference(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("damage-ref") / "store"
    main(extract_argv(world, store))
    return store


def group_of(store: Path):
    [group] = FeatureStore.open(str(store), mode="r").groups()
    return group


def metadata(store: Path) -> dict[str, bytes]:
    """Every group zarr.json and the recipe's second copy, by path."""
    out = {}
    for path in sorted(store.rglob("*.json")):
        rel = path.relative_to(store).as_posix()
        if (path.name == "zarr.json" and "~" not in rel) or rel.endswith("_index/recipe.json"):
            out[rel] = path.read_bytes()
    return out


def assert_same_as(reference: Path, store: Path) -> None:
    """Bit-identical visible features, the same visible slots and the same group metadata."""
    ref, got = group_of(reference), group_of(store)
    assert got.recipe == ref.recipe and got.index().videos() == ref.index().videos()
    for video in ref.index().videos():
        assert [(t, b) for t, b, _ in got.index().slots(video)] == [
            (t, b) for t, b, _ in ref.index().slots(video)
        ]
        for t, b, _ in ref.index().slots(video):
            x, y = ref.read(video, t, b), got.read(video, t, b)
            assert x.tobytes() == y.tobytes(), (video, t, b)
    assert metadata(store) == metadata(reference)


def intact_files(store: Path) -> dict[str, bytes]:
    return {
        p.relative_to(store).as_posix(): p.read_bytes()
        for p in store.rglob("*")
        if p.is_file() and any(f"{v}{layout.GEN_SEP}" in p.as_posix() for v in INTACT)
    }


# ---- the damage ------------------------------------------------------------------------------------------
def _array(store: Path, block: str = "up.1") -> Path:
    [folder] = (store / group_of(store).path / "t0050" / block).glob(f"{VIDEO}~*")
    return folder


def _chunk(store: Path) -> Path:
    return next(p for p in sorted(_array(store).rglob("*")) if p.is_file() and p.name != "zarr.json")


def missing_chunk(store: Path) -> None:
    _chunk(store).unlink()


def flipped_chunk_byte(store: Path) -> None:
    chunk = _chunk(store)
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0x20
    chunk.write_bytes(bytes(raw))


def edited_codec_metadata(store: Path) -> None:
    meta = _array(store) / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["codecs"] = [c for c in doc["codecs"] if c["name"] != "crc32c"]  # no checksum any more
    meta.write_text(json.dumps(doc, indent=2))


def _record(store: Path) -> Path:
    [path] = (store / group_of(store).path / "_index" / "commits" / VIDEO).glob("*.json")
    return path


def record_field_changed(store: Path) -> None:
    record = _record(store)
    doc = json.loads(record.read_text())
    doc["frame_names"][0] = "99999"  # a bit flip that still parses: the wrong frames would be scored
    record.write_text(json.dumps(doc, indent=1, sort_keys=True))


def record_naming_another_video(store: Path) -> None:
    record = _record(store)
    doc = json.loads(record.read_text())
    doc["video"] = INTACT[0]  # round 1: repair deleted that video's key, gc then its good data
    record.write_text(json.dumps(doc, indent=1, sort_keys=True))


def _nul(path: Path) -> None:
    path.write_bytes(b"\0" * len(path.read_bytes()))


def nul_root(store: Path) -> None:
    _nul(store / "zarr.json")


def nul_dataset(store: Path) -> None:
    _nul(store / "davis" / "zarr.json")


def nul_recipe(store: Path) -> None:
    _nul(store / group_of(store).path / "zarr.json")


def nul_timestep(store: Path) -> None:
    _nul(store / group_of(store).path / "t0050" / "zarr.json")


def nul_array(store: Path) -> None:
    _nul(_array(store, "mid") / "zarr.json")


def claim_for_a_year(store: Path) -> None:
    """The video was never committed, and a job on another node left a claim valid for a year."""
    group = group_of(store)
    _record(store).unlink()
    now = time.time()
    owner = {**process_identity(), "host": "node-17", "pid": 1}
    rec = ClaimRecord(VIDEO, 2, HELD, owner, "year", now, now, now + 365 * 86400)
    FeatureStore.open(str(store), mode="a").backend.put_json(
        layout.claim_key(group.path, VIDEO, 2), rec.to_json()
    )


#: damage -> (what the probe's one error line names, or None where the probe is unaffected;
#:            what `dvx cache verify` prints)
DAMAGE: dict[Callable[[Path], None], tuple[str | None, str]] = {
    missing_chunk: (f"video {VIDEO} T=50 up.1: missing-chunk", f"{VIDEO} T=50 up.1: missing-chunk"),
    flipped_chunk_byte: (f"video {VIDEO} T=50 up.1: corrupt-chunk", "checksum do not match"),
    edited_codec_metadata: (f"video {VIDEO} T=50 up.1: bad-metadata", f"{VIDEO} T=50 up.1: bad-metadata"),
    record_field_changed: (f"video {VIDEO} is not readable", f"{VIDEO}: bad-commit"),
    record_naming_another_video: (f"video {VIDEO} is not readable", f"{VIDEO}: bad-commit"),
    nul_root: ("the root zarr.json is unreadable", "the root zarr.json is unreadable"),
    nul_dataset: (None, "bad-group davis/zarr.json"),
    nul_recipe: ("is unreadable", "bad-group davis/tiny-sd@"),
    nul_timestep: (None, "t0050/zarr.json"),
    nul_array: (f"video {VIDEO} T=50 mid: bad-metadata", f"{VIDEO} T=50 mid: bad-metadata"),
    claim_for_a_year: (f"lacks T=50 block(s) mid,up.1 for 1 video(s): {VIDEO}", "beyond the 1.0 d maximum"),
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", list(DAMAGE), ids=lambda f: f.__name__)
def test_damage_is_found_named_and_repaired_by_the_commands(
    damage: Callable[[Path], None],
    world: Path,
    reference: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    store = tmp_path / "store"
    shutil.copytree(reference, store)
    intact = intact_files(store)
    damage(store)
    names, reported = DAMAGE[damage]

    code, _, err = dvx(capsys, *probe_argv(world, store, tmp_path / "results"))
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("dvx: error:")]
    if names is None:  # damage no read needs (a warning at most): the probe runs
        assert code == 0 and errors == []
    else:
        assert code != 0 and len(errors) == 1 and names in errors[0], err
        assert "dvx cache verify --store" in errors[0] or "dvx extract" in errors[0]

    code, out, err = dvx(capsys, "cache", "verify", "--store", str(store))
    assert reported in out + err and "Traceback" not in err
    assert code == (0 if damage is claim_for_a_year else 1)  # a stale claim is reported, not damage

    code, out, err = dvx(capsys, "cache", "verify", "--store", str(store), "--repair")
    assert code == 0 and "Traceback" not in err, out + err
    code, _, err = dvx(capsys, *extract_argv(world, store))
    assert code == 0, err
    assert_same_as(reference, store)
    after = {k: v for k, v in intact_files(store).items() if k in intact}
    assert after == intact  # no intact object deleted or changed
    code, out, _ = dvx(capsys, "cache", "verify", "--store", str(store))
    assert code == 0 and "ok: no damage found" in out


@pytest.mark.slow
def test_gc_during_an_extraction_is_repaired_by_the_same_command(
    world: Path,
    reference: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``dvx cache gc --older-than 0s`` removes the recipe while an extraction has checked its group and not
    yet claimed a video (so no live claim protects it): the extraction writes and commits into the removed
    recipe. Nothing is re-created with empty attributes: one line names the recipe, and the same extract
    command re-creates the group and computes what gc removed."""
    store = tmp_path / "store"
    shutil.copytree(reference, store)
    _record(store).unlink()  # one video left to compute
    import dvx.extract.runner as runner

    real = runner.write_timestep_attrs
    ran = []

    def gc_first(*args: object) -> None:
        if not ran:
            ran.append(dvx(capsys, "cache", "gc", "--store", str(store), "--older-than", "0s", "--yes"))
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "write_timestep_attrs", gc_first)
    code, _, err = dvx(capsys, *extract_argv(world, store))
    monkeypatch.undo()
    assert code == 0 and ran and ran[0][0] == 0, err
    code, _, err = dvx(capsys, *probe_argv(world, store, tmp_path / "results"))
    errors = [line for line in err.splitlines() if line.startswith("dvx: error:")]
    assert code != 0 and len(errors) == 1 and "has no zarr.json" in errors[0] and "Traceback" not in err
    code, out, _ = dvx(capsys, "cache", "verify", "--store", str(store))
    assert code == 1 and "bad-group" in out
    code, out, _ = dvx(capsys, "cache", "verify", "--store", str(store), "--repair")
    assert code == 1 and "not restored" in out and "rerun the extract command" in out  # gc took its copy
    code, _, err = dvx(capsys, *extract_argv(world, store))
    assert code == 0, err
    assert_same_as(reference, store)
    code, out, _ = dvx(capsys, "cache", "verify", "--store", str(store))
    assert code == 0 and "ok: no damage found" in out
    assert np.isfinite(group_of(store).read(VIDEO, 50, "up.1")).all()
