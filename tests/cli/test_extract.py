"""`dvx extract` from the command line: a run, a cache hit, and one clear line for every bad input."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from dvx.cli import main
from dvx.data.synthetic import SynthConfig, write_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("w") / "world"
    write_world(SynthConfig(out=root, videos=2, frames=4, height=48, width=64, seed=2))
    return root


def args(world: Path, store: Path, *extra: str) -> list[str]:
    return [
        "extract",
        "--model",
        "tiny-sd",
        "--dataset",
        "synthetic",
        "--data-root",
        str(world),
        "--store",
        str(store),
        "--timesteps",
        "0",
        "--blocks",
        "mid",
        "--resolution",
        "64x64",
        "--no-progress",
        *extra,
    ]


def test_extract_then_cache_hit_then_ls(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main([*args(world, tmp_path / "s"), "--json"])
    first = json.loads(capsys.readouterr().out)
    assert first["computed"] == ["synth_000000", "synth_000001"] and first["cached"] == 0
    main(args(world, tmp_path / "s"))
    out = capsys.readouterr()
    assert "2 cached, 0 to compute" in out.err and "2 cached, 0 computed" in out.out
    main(["cache", "ls", "--store", str(tmp_path / "s"), "--json"])
    [group] = json.loads(capsys.readouterr().out)["groups"]
    assert group["videos"] == ["synth_000000", "synth_000001"] and group["blocks"] == ["mid"]


def test_dry_run_prints_the_storage_and_writes_nothing(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main([*args(world, tmp_path / "s"), "--dry-run"])
    out = capsys.readouterr()
    assert "dry run" in out.out and "nothing was written" in out.out and "free at" in out.err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--model", "tiny-svdd"), "unknown model 'tiny-svdd'. Did you mean 'tiny-svd'"),
        (("--dataset", "davsi"), "unknown dataset 'davsi'. Did you mean 'davis'"),
        (("--blocks", "up.9"), "no block 'up.9'"),
        (("--timesteps", "0,1000"), "outside 0..999"),
        (("--timesteps", "a,b"), "comma-separated integers"),
        (("--resolution", "64by64"), "HxW"),
        (("--data-root", "/nonexistent/dvx-data"), "does not exist"),
        (("--store", "/proc/dvx-cannot-write"), "not writable"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(
    world: Path, tmp_path: Path, change: tuple[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = args(world, tmp_path / "s")
    i = argv.index(change[0])
    argv[i + 1] = change[1]
    with pytest.raises(SystemExit) as code:
        main(argv)
    assert code.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dvx: error: ") and message in err[0], err


def test_a_store_of_another_kind_is_refused(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(SystemExit) as code:
        main(args(world, other))
    assert code.value.code == 2 and "not a dvx feature store" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["holiday.jpg"]  # nothing written into it


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere; /proc covers the unwritable case")
def test_a_read_only_directory_is_refused(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    with pytest.raises(SystemExit):
        main(args(world, ro / "store"))
    assert "not writable" in capsys.readouterr().err


def test_extract_options_are_generated_from_extract_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each option is declared once, on ExtractConfig: the command's flags are its command-line fields plus
    --preset and --json, and what the command builds is what the flags say (a preset's values hold unless
    an option beside it overrides them)."""
    import dataclasses

    import dvx.extract.runner
    from dvx.cli.extract import extract
    from dvx.config import ExtractConfig
    from dvx.options import flag_of, spec_of

    declared = {flag_of(f) for f in dataclasses.fields(ExtractConfig) if spec_of(f).cli}
    assert {o for p in extract.params for o in p.opts} == declared | {"--preset", "--json"}
    built: list[ExtractConfig] = []

    class Stop(Exception):
        pass

    def capture(cfg: ExtractConfig) -> None:
        built.append(cfg)
        raise Stop

    monkeypatch.setattr(dvx.extract.runner, "run_extract", capture)
    base = ["extract", "--model", "tiny-sd", "--dataset", "davis", "--data-root", "d", "--store", "s"]
    for extra in (
        ["--timesteps", "0,50", "--blocks", "up.1,up.2", "--heads", "0,3", "--resolution", "dift"],
        ["--resolution", "64x96", "--no-progress", "--skip-bad", "--dtype", "float16", "--videos", "a,b"],
        ["--preset", "dift", "--ensemble", "2"],
    ):
        with pytest.raises(Stop):
            main([*base, *extra])
    a, b, c = built
    assert (a.timesteps, a.blocks, a.heads, a.resolution, a.resize) == (
        (0, 50),
        ("up.1", "up.2"),
        (0, 3),
        None,
        "dift",
    )
    assert (b.resolution, b.resize, b.progress, b.skip_bad, b.dtype, b.videos) == (
        (64, 96), None, False, True, "float16", ("a", "b")
    )  # fmt: skip
    assert (c.preset, c.ensemble, c.timesteps, c.resize, c.latent) == ("dift", 2, (51,), "dift", "sample")
