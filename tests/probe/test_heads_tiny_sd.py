"""End to end on features a user would have: a synthetic world extracted by `dvx extract`'s runner with
tiny-sd, then every trained-head family probed from that cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from dvx.errors import ConfigError
from dvx.probe.runner import run_probe
from tests.probe.heads_fixtures import heads_config, tiny_sd_world

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return tiny_sd_world(tmp_path_factory)


def probe(world: tuple[Path, str], results: Path, task: str, blocks: tuple[str, ...], **opts: object) -> list:
    options = {"epochs": 2, "batch_size": 4, "num_workers": 0, **opts}
    cfg = heads_config(world, results, task, model="tiny-sd", timesteps=(50,), blocks=blocks, options=options)
    return run_probe(cfg, log=lambda m: None)


@pytest.mark.slow
def test_every_head_family_trains_from_a_tiny_sd_cache(world: tuple[Path, str], tmp_path: Path) -> None:
    action = probe(world, tmp_path, "synthetic-action", ("mid", "up.1", "up.2"))
    assert [r.block for r in action] == ["mid", "up.1", "up.2"]  # pooling takes any geometry, even 1x1
    assert all(0 <= r.metrics["top1"] <= r.metrics["top5"] <= 1 for r in action)
    assert all(
        r.details["head_parameters"] == c * c + c + 7 * c + 7
        for r, c in zip(action, (64, 64, 32), strict=True)
    )
    [seg] = probe(world, tmp_path, "synthetic-seg", ("up.2",))
    [depth] = probe(world, tmp_path, "synthetic-depth", ("up.1",))
    [disc] = probe(world, tmp_path, "synthetic-discovery", ("up.2",), epochs=1)
    assert 0 <= seg.metrics["mIoU"] <= 1 and depth.metrics["depth_mErr"] > 0
    assert -1 <= disc.metrics["FG_ARI"] <= 1 and 0 < disc.metrics["mBO"] <= 1
    assert {r.recipe for r in (*action, seg, depth, disc)} == {action[0].recipe}
    with pytest.raises(ConfigError, match="block 'mid' at T=50 has 64x1x1"):
        probe(world, tmp_path, "synthetic-depth", ("mid",))
