"""A twin's checkpoint through `dvx extract`: `--weights DIR` is required and its digest is in the recipe;
the frames variant runs each frame as a 1-frame clip (as the image twin was trained)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dvx.extract.backbones.svd import SUBFOLDERS
from dvx.extract.weights import digest_folder
from dvx.store.root import FeatureStore
from tests.conftest import run_cli


def _argv(model: str, world: Path, store: Path, *extra: str) -> list[str]:
    return [
        "extract", "--model", model, "--dataset", "synthetic", "--data-root", str(world), "--store",
        str(store), "--timesteps", "50", "--blocks", "up.1,up.2", "--resolution", "32x48", "--no-progress",
        *extra,
    ]  # fmt: skip


def test_twin_models_need_weights(
    train_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for model in ("twin-svd", "twin-svd-frames"):
        code, _, err = run_cli(_argv(model, train_world, tmp_path / "s"), capsys)
        assert code != 0 and err.count("\n") == 1
        assert f"model {model!r} has no default weights: pass --weights DIR" in err
    assert not (tmp_path / "s").exists() or not FeatureStore.open(str(tmp_path / "s"), mode="r").groups()


def test_extract_a_checkpoint_with_its_digest_in_the_recipe(
    trained: dict, train_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = trained["video"].checkpoints[2]
    store = tmp_path / "store"
    code, _, err = run_cli(
        _argv("twin-svd", train_world, store, "--weights", str(folder), "--clip-len", "2"), capsys
    )
    assert code == 0, err
    [group] = FeatureStore.open(str(store), mode="r").groups()
    assert group.recipe.weights == digest_folder(folder, SUBFOLDERS)
    assert group.recipe.clip_len == 2
    # another checkpoint: another digest, another recipe beside the first
    code, _, err = run_cli(
        _argv(
            "twin-svd",
            train_world,
            store,
            "--weights",
            str(trained["video"].checkpoints[0]),
            "--clip-len",
            "2",
        ),
        capsys,
    )
    assert code == 0, err
    assert len({g.recipe.weights for g in FeatureStore.open(str(store), mode="r").groups()}) == 2


def test_the_frames_variant_is_the_network_on_one_frame_clips(trained: dict, train_world: Path) -> None:
    """Per frame, ``twin-svd-frames`` computes what ``twin-svd`` computes on a 1-frame clip (same noise)."""
    import torch

    from dvx.extract.base import RunOptions
    from dvx.extract.models import load_backbone, model_spec

    folder = str(trained["image"].checkpoints[2])
    run = RunOptions(batch_size=4)
    clips = load_backbone(model_spec("twin-svd", weights=folder, clip_len=1), run)
    frames = load_backbone(model_spec("twin-svd-frames", weights=folder), run)
    assert frames.clip_len is None and not frames.is_video
    assert frames.recipe_fields()["conditioning"]["frames_per_forward"] == 1
    x = torch.rand(3, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    for i in range(3):  # one frame per call: float32 results depend on the batch size (oneDNN kernels)
        seed = lambda _i, t, m, i=i: 1000 * i + t + m  # noqa: E731
        per_frame = frames.features(x[i : i + 1], [50, 200], ["up.1", "up.2"], seed, 1)
        one = clips.features(x[i : i + 1], [50, 200], ["up.1", "up.2"], seed, 1)
        for t in (50, 200):
            for b in ("up.1", "up.2"):
                assert per_frame[t][b].shape == one[t][b].shape == (1, *one[t][b].shape[1:])
                torch.testing.assert_close(per_frame[t][b], one[t][b], rtol=1e-6, atol=1e-6)
