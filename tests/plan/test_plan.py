"""The shipped seed-002 plan: it parses, every name resolves, and it lists what Tables 2 and 3 need."""

from __future__ import annotations

from pathlib import Path

import pytest

from dvx.errors import ConfigError, UnknownNameError
from dvx.plan.plan import SEED002, load_plan

#: seed 002's Table 2: every row on every column, Open-Sora on action recognition only
TABLE2_TASKS = (
    "ucf101",
    "hmdb51",
    "movi-c",
    "movi-e",
    "cityscapes-seg",
    "cityscapes-depth",
    "davis17",
    "jhmdb",
)
ROWS = ("DINOv2", "VideoMAE", "VJEPA", "SD", "SD3", "ModelScope", "SVD")


def test_the_shipped_plan_covers_tables_2_and_3() -> None:
    plan = load_plan("seed002")
    assert plan.name == "seed002" and Path(plan.source).name == "seed002.toml"
    cells = {(label, p.task) for p in plan.probe for label in p.models}
    for task in TABLE2_TASKS:
        rows = {label for label, t in cells if t == task}
        assert rows == set(ROWS) | ({"Open-Sora"} if task in ("ucf101", "hmdb51") else set()), task
    # Table 3: SVD, T in {0, 50, 100, 200} x blocks {1, 2} on HMDB51 and DAVIS-2017
    grids = {p.task: (p.timesteps, p.blocks) for p in plan.probe if p.models == ("SVD",)}
    assert grids == {t: ((0, 50, 100, 200), ("up.1", "up.2")) for t in ("hmdb51", "davis17")}
    # every probed (model, data) is extracted, with seed 002's recipe
    extracted = {(label, e.data) for e in plan.extract for label in e.models}
    assert {(label, p.data) for p in plan.probe for label in p.models} <= extracted
    assert {e.preset for e in plan.extract} == {SEED002}
    table2 = [p for p in plan.probe if p.models != ("SVD",)]
    assert all(p.timesteps == SEED002 and p.blocks == SEED002 for p in table2)
    # propagation with DIFT's settings ("the same setup as DIFT")
    assert all(p.options == {"preset": "dift"} for p in plan.probe if p.task in ("davis17", "jhmdb"))
    assert {m.label: m.model for m in plan.models.values()}["Open-Sora"] == "wan-2.1"


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return str(path)


BASE = """
[plan]
name = "p"
[data.d]
reader = "synthetic"
[models.A]
model = "tiny-sd"
tiny = "tiny-sd"
"""


@pytest.mark.parametrize(
    ("extra", "error", "match"),
    [
        ('[[probe]]\ntask = "davis17"\ndata = "x"\nmodels = ["A"]\ntimesteps = [0]\nblocks = ["up.2"]\n',
         ConfigError, "data 'x' is not declared"),
        ('[[probe]]\ntask = "davis17"\ndata = "d"\nmodels = ["B"]\ntimesteps = [0]\nblocks = ["up.2"]\n',
         ConfigError, r"model\(s\) \['B'\] are not declared"),
        ('[[probe]]\ntask = "davis71"\ndata = "d"\nmodels = ["A"]\ntimesteps = [0]\nblocks = ["up.2"]\n',
         UnknownNameError, "Did you mean 'davis17'"),
        ('[[probe]]\ntask = "davis17"\ndata = "d"\nmodels = ["A"]\ntimesteps = "all"\nblocks = ["up.2"]\n',
         ConfigError, "timesteps must be a non-empty list or 'seed002'"),
        ('[[extract]]\ndata = "d"\nmodels = ["A"]\npreset = "dfit"\n', ConfigError, "unknown preset 'dfit'"),
        ("[[extract]]\nmodels = []\n", ConfigError, "malformed"),
        ("[[extract\n", ConfigError, "plan .*plan.toml"),
    ],
)  # fmt: skip
def test_a_bad_plan_is_one_clear_error(tmp_path: Path, extra: str, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        load_plan(_write(tmp_path, BASE + extra))


def test_an_unknown_plan_name() -> None:
    with pytest.raises(ConfigError, match=r"neither a shipped plan \(seed002\) nor a file"):
        load_plan("seed003")
