"""The shipped block-name table (what `dvx ls models` shows) against the rule each backbone applies to its
config files: every registered model has an entry, and each entry, written out as a config, is named by the
backbone exactly so (the tiny twins' entries are also checked against their real configs in
test_backbone_contract.py). `dvx ls models` builds, downloads and imports nothing heavy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dvx.cli.ls import compact
from dvx.extract import MODELS
from dvx.extract.block_table import BLOCKS
from dvx.extract.models import backbone_class
from tests.conftest import REPO


def test_every_registered_model_has_an_entry_and_no_entry_is_stray() -> None:
    assert set(BLOCKS) == set(MODELS.names())


@pytest.mark.parametrize("name", MODELS.names())
def test_an_entry_is_what_the_backbone_reads_from_such_a_config(name: str, tmp_path: Path) -> None:
    for rel, content in BLOCKS[name].config().items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(json.dumps(content))
    assert backbone_class(name).block_names_for(tmp_path) == BLOCKS[name].names()


def test_ls_models_builds_nothing_and_imports_no_torch(tmp_path: Path) -> None:
    code = (
        "import sys, json\nfrom dvx.cli import main\n"
        "try:\n    main(['ls', 'models', '--json'])\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'diffusers'))))"
    )
    env = {**os.environ, "DVX_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=REPO,
        env=env,
    ).stdout.splitlines()
    rows = [json.loads(line) for line in out[:-1]]
    assert json.loads(out[-1]) == [] and not (tmp_path / "cache").exists()  # nothing built, no torch
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == set(MODELS.names())
    assert by_name["wan-2.1"]["blocks"] == [f"layer.{i}" for i in range(30)]
    assert by_name["svd"]["blocks_from"] == "shipped table"


def test_ls_models_reads_a_model_folder_given_with_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dvx.cli import main

    (tmp_path / "transformer").mkdir()
    (tmp_path / "transformer" / "config.json").write_text(json.dumps({"num_layers": 3}))
    main(["ls", "models", "wan-2.1", "--weights", str(tmp_path)])
    assert "blocks: layer.0-2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["ls", "models", "svd", "--weights", str(tmp_path)])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--weights {tmp_path}: not a svd model folder" in err


def test_block_lists_are_shown_as_runs() -> None:
    assert compact(["down.0", "down.1", "mid", "up.0", "up.2", "layer.17.attn.q"]) == (
        "down.0-1, mid, up.0, up.2, layer.17.attn.q"
    )
