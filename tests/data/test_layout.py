from __future__ import annotations

from pathlib import Path

import pytest

from dvx.data.base import VideoRef
from dvx.data.layout import locate, missing_error, parse_split, read_lines, sorted_unique
from dvx.errors import ConfigError, DataError


def _has_marker(p: Path) -> bool:
    return (p / "marker").is_dir()


def test_locate_root_named_child_or_single_child(tmp_path: Path) -> None:
    assert locate(tmp_path, _has_marker, "X") is None
    (tmp_path / "a" / "marker").mkdir(parents=True)
    assert locate(tmp_path, _has_marker, "X") == tmp_path / "a"
    assert locate(tmp_path / "a", _has_marker, "X") == tmp_path / "a"
    (tmp_path / "b" / "marker").mkdir(parents=True)
    assert locate(tmp_path, _has_marker, "X", names=("b",)) == tmp_path / "b"
    with pytest.raises(DataError, match=r"several X folders \(a, b\)"):
        locate(tmp_path, _has_marker, "X")


def test_parse_split() -> None:
    assert parse_split("train1", "d") == ("train", 1)
    assert parse_split("test3", "d") == ("test", 3)
    for bad in ("train4", "val", "test0", "Train1", "train"):
        with pytest.raises(ConfigError, match=r"train1, train2, train3, test1"):
            parse_split(bad, "d")


def test_sorted_unique_and_errors(tmp_path: Path) -> None:
    refs = [VideoRef("b", tmp_path / "b"), VideoRef("a", tmp_path / "a")]
    assert [r.id for r in sorted_unique(refs, "d")] == ["a", "b"]
    with pytest.raises(DataError, match=r"two videos have the id 'a'"):
        sorted_unique([*refs, VideoRef("a", tmp_path / "c")], "d")
    err = missing_error("d", "test1", [f"v{i}" for i in range(7)], tmp_path)
    assert "7 video(s)" in str(err) and "v4 (and 2 more)" in str(err) and "v5" not in str(err)


def test_read_lines(tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_bytes(b"a 1\r\n\r\n  b 2  \n")
    assert read_lines(tmp_path / "l.txt") == ["a 1", "b 2"]
    with pytest.raises(DataError, match=r"cannot read"):
        read_lines(tmp_path / "absent.txt")


def test_hmdb_style_split_files_are_read_by_one_function(tmp_path: Path) -> None:
    """HMDB51 and JHMDB share the <class>_test_split<N>.txt reader: classes, train/test, the same errors."""
    from dvx.data.layout import split_file_classes, split_file_videos

    (tmp_path / "run_test_split1.txt").write_text("a.avi 1\nb.avi 2\nc.avi 0\n")
    (tmp_path / "jump_test_split1.txt").write_text("d.avi 7\n")
    assert split_file_classes(tmp_path) == {"run", "jump"}
    assert split_file_videos("hmdb51", tmp_path, "run", 1, "train", "0|1|2") == ["a.avi"]
    assert split_file_videos("jhmdb", tmp_path, "run", 1, "test", "1|2") == ["b.avi"]
    with pytest.raises(DataError, match=r"jhmdb: bad line 'd.avi 7' .*expected '<video>.avi 1\|2'"):
        split_file_videos("jhmdb", tmp_path, "jump", 1, "train", "1|2")
    with pytest.raises(DataError, match=r"hmdb51: split file run_test_split2.txt is missing"):
        split_file_videos("hmdb51", tmp_path, "run", 2, "train", "0|1|2")
