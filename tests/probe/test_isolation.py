"""The probe path (trained heads and label propagation) never imports dvx.extract, diffusers or
transformers: run `dvx probe` in a fresh interpreter where they cannot be imported and are not installed
as far as anything can tell (both the import system and the distribution metadata deny them; torchmetrics
imports transformers whenever it is installed, so hiding only the import would break it rather than test
dvx)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.probe.heads_fixtures import pixel_world

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import importlib.abc, importlib.metadata, json, sys

BLOCKED = ("dvx.extract", "diffusers", "transformers")


class Deny(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ModuleNotFoundError(f"{name} is made unimportable by this test", name=name)
        return None


sys.meta_path.insert(0, Deny())
_version, _distribution = importlib.metadata.version, importlib.metadata.distribution


def _hidden(name):
    if name.lower().replace("_", "-") in ("diffusers", "transformers"):
        raise importlib.metadata.PackageNotFoundError(name)


def version(name):
    _hidden(name)
    return _version(name)


def distribution(name):
    _hidden(name)
    return _distribution(name)


importlib.metadata.version, importlib.metadata.distribution = version, distribution

from dvx.cli import main

world, store, results = sys.argv[1:4]
common = ["--store", store, "--model", "pixels", "--data-root", world, "--timesteps", "0",
          "--blocks", "layer.8", "--epochs", "1", "--results", results, "--no-progress", "--json"]
main(["probe", "--task", "synthetic-action", *common, "--num-workers", "0"])
main(["probe", "--task", "synthetic-seg", *common, "--num-workers", "1"])
main(["probe", "--task", "synthetic-propagation", "--store", store, "--model", "pixels", "--data-root", world,
      "--timesteps", "0", "--blocks", "layer.4", "--results", results, "--preset", "dino", "--json"])
leaked = sorted(m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in BLOCKED))
print(json.dumps({"leaked": leaked, "lightning": "pytorch_lightning" in sys.modules}))
"""


@pytest.mark.slow
def test_probes_run_without_extract_diffusers_transformers(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    world, store = pixel_world(tmp_path_factory)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(world), store, str(tmp_path / "results")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last == {"leaked": [], "lightning": True}
    assert len(list((tmp_path / "results").glob("synthetic-*/*.json"))) == 3  # action, seg, propagation
