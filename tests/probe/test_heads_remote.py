"""A trained probe streams its features from an object store (S3 API on a local moto server, never a
real cloud), with DataLoader workers that each open the store themselves."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from dvx.probe.runner import run_probe
from tests.probe.heads_fixtures import heads_config, one_torch_thread, pixel_world, write_pixel_store


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",  # read by botocore in this process and in workers
    }.items():
        monkeypatch.setenv(key, value)
    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem().mkdir("dvx-heads")
    try:
        yield "s3://dvx-heads/store"
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


@pytest.mark.slow
def test_probe_reads_an_s3_store_from_workers(
    s3: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    world, _ = pixel_world(tmp_path_factory)
    write_pixel_store("synthetic", world, s3, timesteps=(0,), blocks={"layer.8": 8})
    cfg = heads_config((world, s3), tmp_path, "synthetic-seg", options={"epochs": 1, "num_workers": 2})
    with one_torch_thread():
        [rec] = run_probe(cfg, log=lambda m: None)
    assert rec.store == s3 and 0.0 <= rec.metrics["mIoU"] <= 1.0 and rec.details["test_videos"] == 14
