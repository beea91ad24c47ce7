"""``dvx viz`` on the synthetic world with tiny twins: the grid and the videos are written, from the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dvx.errors import ConfigError
from dvx.viz.runner import VizConfig, run_viz
from tests.conftest import extract_tiny, run_cli


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from dvx.data.synthetic import SynthConfig, write_world

    base = tmp_path_factory.mktemp("viz")
    write_world(SynthConfig(out=base / "world", videos=2, frames=5, height=48, width=64, seed=0))
    extract_tiny("tiny-sd", "synthetic", base / "world", base / "store", ("up.1", "up.2"))
    return base / "world", base / "store"


def _png(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def _cfg(world: tuple[Path, Path], out: Path, **kw: object) -> VizConfig:
    root, store = world
    base: dict[str, object] = {
        "store": str(store), "dataset": "synthetic", "data_root": str(root), "models": "tiny-sd",
        "out": str(out), "progress": False,
    }  # fmt: skip
    return VizConfig(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.slow
def test_grid_and_videos_are_written_and_the_same_cache_gives_the_same_image(
    world: tuple[Path, Path], tmp_path: Path
) -> None:
    import av

    files = run_viz(_cfg(world, tmp_path / "a", blocks="up.1,up.2", frames=3), log=lambda _: None)
    [grid] = files.grids
    assert grid.name.endswith("_grid.png") and len(files.videos) == 2  # one per (model, T, block)
    img = _png(grid)
    assert img.shape[0] > 5 * 128  # input + 2 blocks x (PCA, K-means) rows of 128 px
    assert "random weights" in grid.with_suffix(".txt").read_text()
    with av.open(str(files.videos[0])) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 5 and frames[0].shape[1] >= 3 * 128  # input | PCA | K-means, every frame
    again = run_viz(_cfg(world, tmp_path / "b", blocks="up.1,up.2", frames=3), log=lambda _: None)
    assert np.array_equal(img, _png(again.grids[0]))  # same features: same picture, bit for bit
    other = run_viz(_cfg(world, tmp_path / "c", blocks="up.1", frames=3, mp4=False), log=lambda _: None)
    assert not other.videos and other.grids[0].read_bytes() != grid.read_bytes()


@pytest.mark.slow
def test_the_backbone_is_never_loaded(world: tuple[Path, Path], tmp_path: Path) -> None:
    import subprocess
    import sys

    root, store = world
    code = (
        "import sys; from dvx.viz.runner import VizConfig, run_viz; "
        f"run_viz(VizConfig(store={str(store)!r}, dataset='synthetic', data_root={str(root)!r}, "
        f"models='tiny-sd', out={str(tmp_path / 'v')!r}, mp4=False, progress=False), log=print); "
        "print('LOADED', sorted(m for m in ('diffusers', 'transformers') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout  # no model library was even imported


def test_bad_choices_are_one_clear_line(
    world: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match=r"none of blocks layer\.9 is cached"):
        run_viz(_cfg(world, tmp_path / "x", blocks="layer.9"), log=lambda _: None)
    root, store = world
    code, _, err = run_cli(
        ["viz", "--store", str(store), "--dataset", "synthetic", "--data-root", str(root), "--model",
         "tiny-sd", "--videos", "nope", "--out", str(tmp_path / "y")],
        capsys,
    )  # fmt: skip
    assert (
        code != 0 and err.startswith("dvx: error: --videos: nope not in synthetic") and err.count("\n") == 1
    )
