"""`dvx twin train` / `dvx twin study`: bad input is one line, never a traceback; a run prints its summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (
            ["twin", "train", "--objective", "video", "--data-root", "w", "--out", "o", "--steps", "0"],
            "--steps",
        ),
        (["twin", "train", "--objective", "audio", "--data-root", "w", "--out", "o"], "--objective"),
        (
            [
                "twin",
                "train",
                "--objective",
                "image",
                "--data-root",
                "w",
                "--out",
                "o",
                "--resolution",
                "60x90",
            ],
            "multiples of 8",
        ),
        (
            ["twin", "train", "--objective", "video", "--data-root", "/nonexistent/world", "--out", "o"],
            "world",
        ),
        (["twin", "study", "--out", "o", "--seeds", "0"], "--seeds"),
        (["twin", "study", "--out", "o", "--blocks", "up.1"], "block 'up.2' is not one of --blocks"),
        (["twin", "study", "--out", "o", "--heads", "davis17"], "--heads"),
        (["twin", "study", "--out", "o", "--eval-resolution", "128x128"], "training resolution's aspect"),
        (["twin", "study", "--out", "o", "--vae-steps", "-1"], "--vae-steps"),
        (["twin", "study", "--out", "o", "--sprite-scale", "9"], "sprite scale"),
        (["twin", "vae", "--data-root", "w", "--out", "o", "--steps", "0"], "--steps"),
        (["twin", "vae", "--data-root", "/nonexistent/world", "--out", "o"], "world"),
        (
            ["twin", "train", "--objective", "video", "--data-root", "w", "--out", "o", "--vae", "/nope"],
            "--vae",
        ),
    ],
)
def test_bad_input_is_one_line(
    argv: list[str],
    needle: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(argv, capsys)
    assert code != 0
    assert err.count("\n") == 1 and "Traceback" not in err
    assert needle in err


def test_train_prints_its_summary(
    train_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "twin"
    argv = [
        "twin", "train", "--objective", "image", "--data-root", str(train_world), "--out", str(out),
        "--steps", "1", "--save-every", "1", "--frames", "2", "--frames-per-batch", "2",
        "--resolution", "32x48", "--threads", "1", "--no-progress",
    ]  # fmt: skip
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    assert f"{out}: 1 steps" in stdout and (out / "step-1" / "unet" / "config.json").is_file()
    code, stdout, _ = run_cli(argv, capsys)
    assert code == 0 and "already trained" in stdout
