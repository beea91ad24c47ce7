"""``dvx synth``: defaults, options reaching the world, one-line errors, no clobbering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dvx.cli import main


def _world(out: Path) -> dict:
    return json.loads((out / "world.json").read_text())


def test_defaults_write_every_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "world"
    main(["synth", "--out", str(out), "--quiet"])
    world = _world(out)
    assert (world["num_videos"], world["frames"], world["height"], world["width"]) == (14, 16, 128, 128)
    assert world["seed"] == 0 and not world["colour_coded"]
    for rel in (
        "DAVIS/JPEGImages/480p/synth_000013/00015.jpg",
        "DAVIS/Annotations/480p/synth_000013/00015.png",
        "DAVIS/ImageSets/2017/train.txt",
        "DAVIS/ImageSets/2017/val.txt",
        "UCF-101/ObjectDown/v_ObjectDown_g02_c01.avi",
        "ucfTrainTestlist/classInd.txt",
        "ucfTrainTestlist/trainlist01.txt",
        "ucfTrainTestlist/testlist01.txt",
        "cityscapes/gtFine/train/synth/synth_000013_000008_gtFine_labelTrainIds.png",
        "cityscapes/gtFine/val/synth/synth_000000_000008_gtFine_instanceIds.png",
        "cityscapes/disparity/val/synth/synth_000000_000008_disparity.png",
        "cityscapes/camera/val/synth/synth_000000_000008_camera.json",
        "movi/train/synth_000013/depth/00015.npy",
        "movi/validation/synth_000000/segmentations/00000.png",
        "JHMDB/Rename_Images/static/synth_000000/00016.png",
        "JHMDB/joint_positions/static/synth_000000/joint_positions.mat",
        "JHMDB/splits/static_test_split1.txt",
        "extra/synth_000013.npz",
    ):
        assert (out / rel).is_file(), rel
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1 and "14 videos" in summary[0] and "7 train, 7 test" in summary[0]


def test_options_reach_the_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "w"
    opts = ["--videos", "5", "--frames", "4", "--size", "32x48", "--seed", "9", "--colour-coded"]
    main(["synth", "--out", str(out), *opts, "--brick-wall-every", "0"])
    world = _world(out)
    assert (world["num_videos"], world["frames"], world["height"], world["width"]) == (5, 4, 32, 48)
    assert world["seed"] == 9 and world["colour_coded"] and world["brick_wall_every"] == 0
    assert all(e["kind"] == "scene" for e in world["videos"])
    assert len(capsys.readouterr().out.splitlines()) == 6  # one progress line per video + the summary
    assert (world["speed"], world["max_speed"], world["sprite_scale"], world["all_sprites_move"]) == (
        0,
        1,
        1.0,
        False,
    )


def test_motion_and_size_options_reach_the_world(tmp_path: Path) -> None:
    out = tmp_path / "w"
    opts = ["--videos", "7", "--frames", "4", "--size", "64x96", "--speed", "5", "--sprite-scale", "1.5"]
    main(["synth", "--out", str(out), *opts, "--all-sprites-move", "-q"])
    world = _world(out)
    assert (world["speed"], world["max_speed"], world["sprite_scale"], world["all_sprites_move"]) == (
        5,
        5,
        1.5,
        True,
    )
    movers = [e for e in world["videos"] if e["motion_class"].startswith("object_")]
    assert movers and all(s["velocity"] != [0, 0] for e in movers for s in e["sprites"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "12x"], "not HxW"),
        (["--size", "16x16"], "at least 32x32"),
        (["--frames", "1"], "at least 2 frames"),
        (["--videos", "0"], "--videos must be >= 1"),
        (["--speed", "-2"], "speed must be >= 0"),
        (["--sprite-scale", "9"], "sprite scale must lie in"),
    ],
)
def test_bad_options_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--out", str(tmp_path / "w"), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dvx: error:") and message in err[0]
    assert not (tmp_path / "w").exists()


def test_refuses_to_clobber_and_overwrites_only_its_own_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "w"
    small = ["--videos", "2", "--frames", "2", "--size", "32", "-q"]
    main(["synth", "--out", str(out), *small])
    with pytest.raises(SystemExit):
        main(["synth", "--out", str(out), *small, "--seed", "1"])
    assert "--overwrite" in capsys.readouterr().err and _world(out)["seed"] == 0
    (out / "notes.txt").write_text("mine")
    main(["synth", "--out", str(out), *small, "--seed", "1", "--overwrite"])
    assert _world(out)["seed"] == 1 and (out / "notes.txt").read_text() == "mine"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.bin").write_bytes(b"x")
    with pytest.raises(SystemExit):
        main(["synth", "--out", str(foreign), *small, "--overwrite"])
    assert "holds no synthetic world" in capsys.readouterr().err and (foreign / "data.bin").exists()
