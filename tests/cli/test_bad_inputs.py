"""Every command, every failure, one line: a walk over the CLI with bad inputs and failing storage.

Each case runs ``dvx`` in this process and asserts a non-zero exit code, exactly one line on stderr
(``dvx: error: ...``) and no traceback; a failure that comes after the command has started its work (a
disk that fills up while a probe writes predictions) may follow that work's progress lines, and is still
the one error line, the last. The failures of the environment are real where that is cheap (a
closed port for an S3 endpoint that is down, a bucket that does not exist on the loopback S3 server, no
credentials) and monkeypatched where it is not (a full disk, permission denied).
"""

from __future__ import annotations

import errno
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from dvx.cli import main
from dvx.data.synthetic import SynthConfig, write_world
from dvx.store.root import FeatureStore


@dataclass(frozen=True)
class Paths:
    world: Path  # a synthetic world (DAVIS layout included)
    store: Path  # a store with tiny-sd features of the world
    empty: Path  # a dvx store without recipes
    file: Path  # a plain file
    foreign: Path  # a non-empty folder that is not a store
    damaged: Path  # a store whose root zarr.json is NUL-filled
    tmp: Path  # a fresh folder for this case


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    base = tmp_path_factory.mktemp("bad-inputs")
    world = base / "world"
    write_world(SynthConfig(out=world, videos=2, frames=4, height=48, width=64, seed=5))
    store = base / "store"
    main([*EXTRACT, "--data-root", str(world), "--store", str(store), "--blocks", "mid"])
    FeatureStore.open(str(base / "empty"), mode="a")
    (base / "file").write_text("not a folder")
    (base / "foreign").mkdir()
    (base / "foreign" / "notes.txt").write_text("mine")
    FeatureStore.open(str(base / "damaged"), mode="a")
    (base / "damaged" / "zarr.json").write_bytes(b"\0" * 64)
    return Paths(world, store, base / "empty", base / "file", base / "foreign", base / "damaged", base)


@pytest.fixture
def paths(shared: Paths, tmp_path: Path) -> Paths:
    return Paths(**{**shared.__dict__, "tmp": tmp_path})


EXTRACT = [
    "extract", "--model", "tiny-sd", "--dataset", "davis", "--split", "all", "--timesteps", "50",
    "--resolution", "64x64", "--threads", "1", "--no-progress",
]  # fmt: skip


def extract(p: Paths, *extra: str, store: str | None = None) -> list[str]:
    return [*EXTRACT, "--data-root", str(p.world), "--store", store or str(p.tmp / "s"), *extra]


def probe(p: Paths, *extra: str) -> list[str]:
    return [
        "probe", "--task", "davis17", "--model", "tiny-sd", "--data-root", str(p.world), "--store",
        str(p.store), "--results", str(p.tmp / "results"), "--no-progress", *extra,
    ]  # fmt: skip


def synth(p: Paths, *extra: str) -> list[str]:
    return ["synth", "--out", str(p.tmp / "world"), "-q", *extra]


def _enospc(*_: object, **__: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _disk_full_on_create(mp: pytest.MonkeyPatch, p: Paths) -> None:
    """The disk fills up as the store's first objects are created (after its write probe)."""
    mp.setattr("dvx.store.backend.os.link", _enospc)


def _disk_full_in_synth(mp: pytest.MonkeyPatch, p: Paths) -> None:
    mp.setattr("dvx.data.synth_layouts.write_davis", _enospc)


def _disk_full_on_predictions(mp: pytest.MonkeyPatch, p: Paths) -> None:
    mp.setattr("dvx.probe.prediction_io.write_indexed_png", _enospc)


def _permission_denied_on_records(mp: pytest.MonkeyPatch, p: Paths) -> None:
    from zarr.storage import LocalStore

    get = LocalStore.get

    async def denied(self: LocalStore, key: str, *args: object, **kwargs: object) -> object:
        if "/_index/commits/" in key:
            raise PermissionError(errno.EACCES, "Permission denied", key)
        return await get(self, key, *args, **kwargs)

    mp.setattr(LocalStore, "get", denied)


def _fresh_s3(mp: pytest.MonkeyPatch) -> None:
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # no filesystem made with other settings is reused
    mp.setattr(s3fs.S3FileSystem, "_cache", {}, raising=False)


def _s3_down(mp: pytest.MonkeyPatch, p: Paths) -> None:
    pytest.importorskip("s3fs")
    _fresh_s3(mp)
    mp.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the discard port: nothing listens there
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's retries: the test need not wait for them


def _s3_no_credentials(mp: pytest.MonkeyPatch, p: Paths) -> None:
    _fresh_s3(mp)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        mp.delenv(name, raising=False)
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(p.tmp / "none"))
    mp.setenv("AWS_CONFIG_FILE", str(p.tmp / "none"))
    mp.setenv("AWS_EC2_METADATA_DISABLED", "true")


@dataclass(frozen=True)
class Case:
    argv: Callable[[Paths], list[str]]
    patch: Callable[[pytest.MonkeyPatch, Paths], None] | None = None
    s3: bool = False  # needs the loopback S3 server
    started: bool = False  # fails once the command's work is under way (progress lines come first)


CASES: dict[str, Case] = {
    # dvx extract: options, checked before anything is loaded or written
    "extract --device nope": Case(lambda p: extract(p, "--device", "nope")),
    "extract --weights ''": Case(lambda p: extract(p, "--weights", "")),
    "extract --weights FOLDER-NOT-A-MODEL": Case(lambda p: extract(p, "--weights", str(p.world))),
    "extract --clip-len 1e12": Case(lambda p: extract(p, "--clip-len", "1000000000000")),
    "extract --batch-size 1e12": Case(lambda p: extract(p, "--batch-size", "1000000000000")),
    "extract --ensemble 1e9": Case(lambda p: extract(p, "--ensemble", "1000000000")),
    "extract --claim-ttl inf": Case(lambda p: extract(p, "--claim-ttl", "inf")),
    "extract --claim-ttl nan": Case(lambda p: extract(p, "--claim-ttl", "nan")),
    "extract --claim-ttl 1e12": Case(lambda p: extract(p, "--claim-ttl", "1e12")),
    "extract --resolution 100000x100000": Case(lambda p: extract(p, "--resolution", "100000x100000")),
    "extract --timesteps 5000": Case(lambda p: extract(p, "--timesteps", "5000")),
    "extract --latent bogus": Case(lambda p: extract(p, "--latent", "bogus")),
    "extract --model nope": Case(lambda p: ["extract", "--model", "nope", *extract(p)[3:]]),
    "extract --store FILE": Case(lambda p: extract(p, store=str(p.file))),
    "extract --dry-run on a foreign folder": Case(lambda p: extract(p, "--dry-run", store=str(p.foreign))),
    "extract --dry-run on a damaged store": Case(lambda p: extract(p, "--dry-run", store=str(p.damaged))),
    "extract: disk full creating the store": Case(lambda p: extract(p), _disk_full_on_create),
    "extract: S3 endpoint down": Case(lambda p: extract(p, store="s3://dvx-bucket/store"), _s3_down),
    "extract: S3 bucket gone": Case(
        lambda p: extract(p, store=f"s3://dvx-gone-{uuid.uuid4().hex[:8]}/s"), s3=True
    ),
    "extract: S3 without credentials": Case(
        lambda p: extract(p, store="s3://dvx-bucket/store"), _s3_no_credentials, s3=True
    ),
    # dvx probe
    "probe --out FILE": Case(lambda p: probe(p, "--out", str(p.file))),
    "probe --results FILE": Case(lambda p: probe(p, "--results", str(p.file))),
    "probe --device nope": Case(lambda p: probe(p, "--device", "nope")),
    "probe --strategy nope": Case(lambda p: probe(p, "--strategy", "nope")),
    "probe: disk full writing predictions": Case(
        lambda p: probe(p, "--out", str(p.tmp / "pred")), _disk_full_on_predictions, started=True
    ),
    "probe: a foreign folder as the store": Case(lambda p: [*probe(p), "--store", str(p.foreign)]),
    # dvx cache
    "cache gc --max-size 1e400G": Case(
        lambda p: ["cache", "gc", "--store", str(p.empty), "--max-size", "1e400G"]
    ),
    "cache gc --max-size nanG": Case(
        lambda p: ["cache", "gc", "--store", str(p.empty), "--max-size", "nanG"]
    ),
    "cache gc --older-than nand": Case(
        lambda p: ["cache", "gc", "--store", str(p.empty), "--older-than", "nand"]
    ),
    "cache gc --min-age infh": Case(lambda p: ["cache", "gc", "--store", str(p.empty), "--min-age", "infh"]),
    "cache ls of nothing": Case(lambda p: ["cache", "ls", "--store", str(p.tmp / "nothing")]),
    "cache ls of a foreign folder": Case(lambda p: ["cache", "ls", "--store", str(p.foreign)]),
    "cache ls of a damaged store": Case(lambda p: ["cache", "ls", "--store", str(p.damaged)]),
    "cache ls: permission denied": Case(
        lambda p: ["cache", "ls", "--store", str(p.store)], _permission_denied_on_records
    ),
    "cache verify of a file": Case(lambda p: ["cache", "verify", "--store", str(p.file)]),
    "cache unclaim without recipes": Case(
        lambda p: ["cache", "unclaim", "--store", str(p.empty), "--videos", "x"]
    ),
    "cache ls: S3 endpoint down": Case(
        lambda p: ["cache", "ls", "--store", "s3://dvx-bucket/store"], _s3_down
    ),
    # dvx synth
    "synth --fps nan": Case(lambda p: synth(p, "--fps", "nan")),
    "synth --fps 1e300": Case(lambda p: synth(p, "--fps", "1e300")),
    "synth --size 100000x100000": Case(lambda p: synth(p, "--size", "100000x100000")),
    "synth --size 2048x2048 --frames 10000": Case(
        lambda p: synth(p, "--size", "2048x2048", "--frames", "10000")
    ),
    "synth --frames 100000000": Case(lambda p: synth(p, "--frames", "100000000")),
    "synth --videos 1e11": Case(lambda p: synth(p, "--videos", "100000000000")),
    "synth --out FILE": Case(lambda p: ["synth", "--out", str(p.file)]),
    "synth: disk full": Case(lambda p: synth(p, "--videos", "1"), _disk_full_in_synth),
    # the command line itself
    "an unknown command": Case(lambda p: ["nope"]),
    "a missing option": Case(lambda p: ["cache", "ls"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_input_is_one_line_and_no_traceback(
    name: str, paths: Paths, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, request
) -> None:
    case = CASES[name]
    if case.s3:
        request.getfixturevalue("s3_endpoint")
    if case.patch is not None:
        case.patch(monkeypatch, paths)
    argv = case.argv(paths)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("dvx: error: ")]
    assert exit_.value.code not in (0, None), err
    assert "Traceback" not in err and len(errors) == 1 and lines[-1] == errors[0], err
    assert case.started or len(lines) == 1, err


def test_the_walk_leaves_what_was_there(shared: Paths) -> None:
    """Nothing a bad input touched was changed: the store's features and the foreign folder are intact."""
    assert (shared.foreign / "notes.txt").read_text() == "mine" and sorted(shared.foreign.iterdir()) == [
        shared.foreign / "notes.txt"
    ]
    [group] = FeatureStore.open(str(shared.store), mode="r").groups()
    assert group.index().videos() and all(
        group.read(v, 50, "mid").shape[0] == 4 for v in group.index().videos()
    )
