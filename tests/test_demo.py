"""The demo's folder: a study left there by a dvx with other settings is started afresh, never refused."""

from __future__ import annotations

from pathlib import Path

from dvx.demo import DEMO_STAMP, _replace_if_other_settings
from dvx.twin.study import StudyConfig


def test_a_demo_folder_with_other_settings_is_started_afresh_and_one_with_these_is_kept(
    tmp_path: Path,
) -> None:
    said: list[str] = []
    old = tmp_path / "twins"
    (old / "worlds" / "train").mkdir(parents=True)
    (old / "worlds" / "train" / "world.json").write_text("{}")  # an earlier dvx's world, no stamp
    study = StudyConfig(out=str(old), seeds=1, steps=4)
    _replace_if_other_settings(study, said.append)
    assert not (old / "worlds").exists() and (old / DEMO_STAMP).is_file()
    assert len(said) == 1 and "other settings" in said[0]
    (old / "kept.txt").write_text("done work")  # what a finished demo left
    _replace_if_other_settings(study, said.append)
    assert (old / "kept.txt").read_text() == "done work" and len(said) == 1
    _replace_if_other_settings(StudyConfig(out=str(old), seeds=1, steps=8), said.append)
    assert not (old / "kept.txt").exists() and len(said) == 2
