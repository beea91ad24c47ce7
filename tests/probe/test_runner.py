"""The probe runner's own checks: the device before any data is read, each (T, block) pair once."""

from __future__ import annotations

import pytest
import torch

from dvx.config import ProbeConfig
from dvx.errors import ConfigError
from dvx.probe.runner import probe_device, resolve_pairs


def test_probe_device_is_checked_up_front() -> None:
    assert probe_device("cpu") == "cpu"
    assert probe_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("foo", "cuda:x"):
        with pytest.raises(ConfigError, match="is not a torch device"):
            probe_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            probe_device("cuda:0")


def test_a_repeated_timestep_or_block_is_scored_once() -> None:
    blocks = ("up.1", "up.2", "up.1")
    cfg = ProbeConfig(task="davis17", store="s", model="m", data_root="d", timesteps=(50, 50), blocks=blocks)
    assert resolve_pairs(cfg, [0, 50], ["up.1"]) == [(50, "up.1"), (50, "up.2")]
    every = ProbeConfig(task="davis17", store="s", model="m", data_root="d")
    assert resolve_pairs(every, [0, 50], ["up.1"]) == [(0, "up.1"), (50, "up.1")]
