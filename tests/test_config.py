"""dvx.config's parsers and checks: one parser per kind of value, one range check per field."""

from __future__ import annotations

import pytest

from dvx.config import ExtractConfig, parse_resolution, parse_timesteps
from dvx.errors import ConfigError


def test_parse_resolution_reads_hxw_and_a_single_side() -> None:
    assert parse_resolution("256x448") == (256, 448)
    assert parse_resolution(" 96 X 128 ") == (96, 128) and parse_resolution("96*128") == (96, 128)
    assert parse_resolution("64") == (64, 64)
    with pytest.raises(ConfigError, match=r"--size .big. is not HxW"):
        parse_resolution("big", "--size")
    with pytest.raises(ConfigError, match=r"--resolution must be positive"):
        parse_resolution("0x64")


def test_the_cli_and_the_config_reject_timesteps_with_one_message() -> None:
    with pytest.raises(ConfigError) as cli:
        parse_timesteps("0,1000")
    with pytest.raises(ConfigError) as cfg:
        ExtractConfig(model="tiny-sd", dataset="synthetic", data_root="x", store="y", timesteps=(0, 1000))
    assert str(cli.value) == str(cfg.value)
    assert "outside 0..999" in str(cfg.value) and "DDPM training scale" in str(cfg.value)
