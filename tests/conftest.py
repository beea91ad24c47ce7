"""Shared fixtures: a toy dataset, store locations for the contract suite, the real-data root."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from dvx.data import DATASETS
from dvx.data.base import Video, VideoDataset, VideoRef
from dvx.errors import CorruptVideoError

if TYPE_CHECKING:
    from dvx.extract.runner import ExtractReport
    from dvx.store.group import RecipeGroup

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test where the real samples are absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real sample data not available at {path}")
    return path


@pytest.fixture(autouse=True, scope="session")
def _dvx_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tiny models are built once per test session into a private cache (never the user's)."""
    if "DVX_CACHE_DIR" not in os.environ:
        os.environ["DVX_CACHE_DIR"] = str(tmp_path_factory.mktemp("dvx-cache"))


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny heads on a shared CPU: one torch thread (see ``tests.probe.heads_fixtures.one_torch_thread``)."""
    from tests.probe.heads_fixtures import one_torch_thread

    with one_torch_thread():
        yield


class ToyDataset(VideoDataset):
    """Videos stored as ``<root>/<id>.npy`` (F, H, W, 3) uint8; any other bytes are a corrupt video."""

    name = "toy"

    def videos(self) -> list[VideoRef]:
        return [VideoRef(id=p.stem, path=p) for p in sorted(self.root.glob("*.npy"))]

    def load(self, ref: VideoRef) -> Video:
        try:
            frames = np.load(ref.path)
        except (ValueError, OSError) as err:
            raise CorruptVideoError(ref.id, f"{ref.path.name}: {err}") from err
        return Video(ref.id, frames, [f"{i:05d}" for i in range(len(frames))])


if "toy" not in DATASETS:
    DATASETS.register("toy", ToyDataset, "test-only: .npy videos")


def make_toy(root: Path, lengths: dict[str, int], size: tuple[int, int] = (48, 80), seed: int = 0) -> Path:
    """Write smooth random toy videos (a moving gradient + noise) into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    for vid, n in lengths.items():
        yy, xx = np.mgrid[0:h, 0:w]
        frames = []
        base = rng.integers(0, 255, size=3)
        for t in range(n):
            img = np.stack(
                [(xx * 3 + t * 5 + base[0]) % 256, (yy * 4 + base[1]) % 256, (xx + yy + t * 7) % 256], -1
            )
            frames.append(img + rng.integers(0, 20, size=img.shape))
        np.save(root / f"{vid}.npy", np.clip(np.stack(frames), 0, 255).astype(np.uint8))
    return root


def extract_tiny(
    model: str, dataset: str, data_root: Path, store: Path, blocks: tuple[str, ...], **options: object
) -> tuple[ExtractReport, RecipeGroup]:
    """``dvx extract`` of a tiny model at T=50 and 64x64 into a fresh ``store`` (no progress, no log): the
    run's report and the store's one recipe group."""
    from dvx.config import ExtractConfig
    from dvx.extract.runner import run_extract
    from dvx.store.root import FeatureStore

    kw: dict[str, object] = {"timesteps": (50,), "resolution": (64, 64), **options}
    cfg = ExtractConfig(
        model=model,
        dataset=dataset,
        data_root=str(data_root),
        store=str(store),
        blocks=blocks,
        progress=False,
        **kw,  # type: ignore[arg-type]
    )
    report = run_extract(cfg, log=lambda _: None)
    [group] = FeatureStore.open(str(store), mode="r").groups()
    return report, group


@pytest.fixture
def toy_root(tmp_path: Path) -> Path:
    return make_toy(tmp_path / "toy", {"alpha": 5, "beta": 3, "gamma": 17})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3-compatible server (moto) on loopback for the whole test session; never a real cloud.

    The AWS variables it sets (dummy keys, ``AWS_ENDPOINT_URL``) are what botocore and s3fs read, so
    ``s3://`` URLs reach it from this process and from ``dvx`` subprocesses alike.
    """
    pytest.importorskip("s3fs", reason="s3fs is not installed (pip install dvx[dev])")
    server_mod = pytest.importorskip(
        "moto.server", reason="moto[server] is not installed (pip install dvx[dev])"
    )
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield endpoint
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh, empty bucket on the loopback S3 server: ``s3://<name>``."""
    import s3fs

    name = f"dvx-{uuid.uuid4().hex[:16]}"
    s3fs.S3FileSystem(endpoint_url=s3_endpoint, skip_instance_cache=True).mkdir(name)
    return f"s3://{name}"


@pytest.fixture(params=["local", "memory", "s3"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives: the same contract suite runs on every backend (local disk, in-memory fsspec,
    S3 on a loopback moto server)."""
    if request.param == "local":
        return str(tmp_path / "store")
    if request.param == "s3":
        return request.getfixturevalue("s3_bucket") + "/store"
    return f"memory://dvx-test-{uuid.uuid4().hex}"
