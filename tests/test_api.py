"""The public Python API: names importable from ``dvx`` and ``dvx.store``, ``import dvx`` and ``dvx --help``
import no torch, the xarray view's dtype and frame coordinates, and docs/api.md runs as written."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dvx
from dvx.cli import main
from tests.conftest import REPO

HEAVY = ("torch", "diffusers", "transformers", "pytorch_lightning", "zarr", "xarray", "dask")


def imported_after(code: str) -> list[str]:
    """The heavy top-level modules a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120, cwd=REPO
    ).stdout.splitlines()[-1]
    return sorted(set(json.loads(out)) & set(HEAVY))


def test_import_dvx_and_dvx_help_import_nothing_heavy() -> None:
    assert imported_after("import dvx, dvx.store") == []
    assert (
        imported_after("from dvx.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass")
        == []
    )


def test_public_names_resolve_lazily() -> None:
    from dvx.store import FeatureStore, RecipeGroup, open_store

    assert (
        dvx.open_store is open_store and dvx.FeatureStore is FeatureStore and dvx.RecipeGroup is RecipeGroup
    )
    for name in dvx.__all__:
        assert getattr(dvx, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        dvx.nope  # noqa: B018


def test_dataarray_dtype_and_frame_coordinates(tmp_path: Path) -> None:
    from tests.store.test_store import RECIPE, write_video

    group = dvx.open_store(str(tmp_path / "s"), mode="a").create_group("davis", RECIPE)
    a = write_video(group, "a", n=5)
    write_video(group, "b", n=3, seed=7)
    view = dvx.open_store(str(tmp_path / "s")).groups()[0].dataarray(50, "up.2", dtype="float32")
    assert view.dtype == np.float32 and list(view.frame.values) == [0, 1, 2, 3, 4]
    assert list(view.frame_name.sel(video="b").values) == ["00000", "00001", "00002", "", ""]
    np.testing.assert_array_equal(view.sel(video="a").values, a[(50, "up.2")].astype(np.float32))
    assert view.mean().compute().dtype == np.float32  # reductions accumulate in float32, not float16
    assert group.dataarray(50, "up.2").dtype == np.float16  # as stored unless asked
    with pytest.raises(dvx.DvxError, match="float type"):
        group.dataarray(50, "up.2", dtype="int32")


def doc_blocks(path: Path) -> list[tuple[str, str]]:
    """(kind, text) of each fenced ``console`` / ``python`` block, in order."""
    return re.findall(r"```(console|python)\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.slow
def test_docs_api_md_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = doc_blocks(REPO / "docs" / "api.md")
    assert [k for k, _ in blocks].count("console") >= 1 and [k for k, _ in blocks].count("python") >= 3
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVX_RESULTS_DIR", str(tmp_path / "elsewhere"))  # the doc names --results itself
    namespace: dict[str, object] = {}
    for kind, text in blocks:
        if kind == "console":
            for line in text.splitlines():
                argv = shlex.split(line.removeprefix("$ "))
                assert argv[0] == "dvx", line
                main(argv[1:])
        else:
            exec(compile(text, "docs/api.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "tiny-sd@" in out and "synthetic-propagation tiny-sd 50 up.1 JF_mean" in out
    assert os.path.isfile(next(Path("preds").rglob("dvx-config.json")))
