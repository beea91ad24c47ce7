"""dvx.options: one dataclass declaration gives the click options, the checks and the config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import click
import pytest
from click.testing import CliRunner

from dvx.errors import ConfigError
from dvx.options import Options, build, click_params, from_cli, option, redefault


@dataclass(frozen=True)
class Base(Options):
    name: str = option(help="Required: no default.")
    k: int = option(3, "How many.", minimum=1)
    rate: float | None = option(None, "A rate [default: none].", above=0)
    mode: Literal["a", "b"] = option("a", "A choice.")
    ids: tuple[str, ...] = option((), "Ids.", parse=lambda t: tuple(t.split(",")))
    quiet: bool = option(False, "Say less.")
    progress: bool = option(True, "No progress bars.", flag="--no-progress")
    internal: object = option(None, cli=False)


@dataclass(frozen=True)
class Child(Base):
    k: int = redefault(Base, "k", 7)


def command(cls: type, defaults: dict | None = None) -> click.Command:
    return click.Command(
        "x",
        params=click_params(cls, defaults),
        callback=lambda **v: print(repr(build(cls, from_cli(cls, v)))),
    )


def test_the_cli_is_generated_from_the_fields() -> None:
    runner = CliRunner()
    got = runner.invoke(command(Base), ["--name", "n", "--mode", "b", "--ids", "x,y", "--no-progress"])
    assert got.exit_code == 0, got.output
    assert (
        "Base(name='n', k=3, rate=None, mode='b', ids=('x', 'y'), quiet=False, progress=False" in got.output
    )
    assert runner.invoke(command(Base), []).exit_code == 2  # --name is required
    assert runner.invoke(command(Base), ["--name", "n", "--mode", "c"]).exit_code == 2  # not a choice
    assert runner.invoke(command(Base), ["--name", "n", "--internal", "1"]).exit_code == 2  # cli=False
    helptext = runner.invoke(command(Base), ["--help"]).output
    assert "--k INTEGER" in helptext and "How many.  [default: 3]" in helptext and "--no-progress" in helptext


def test_a_subclass_or_a_registry_entry_changes_a_default_keeping_the_declaration() -> None:
    assert Child(name="n").k == 7 and Base(name="n").k == 3
    helptext = CliRunner().invoke(command(Child), ["--help"]).output
    assert "How many.  [default: 7]" in helptext
    helptext = CliRunner().invoke(command(Base, {"k": 9}), ["--help"]).output
    assert "[default: 9]" in helptext
    assert build(Base, {"name": "n"}, {"k": 9}).k == 9 and build(Base, {"name": "n", "k": 2}, {"k": 9}).k == 2


def test_declared_checks_name_the_flag() -> None:
    with pytest.raises(ConfigError, match="--k must be >= 1, got 0"):
        Base(name="n", k=0)
    with pytest.raises(ConfigError, match="--rate must be > 0, got nan"):
        Base(name="n", rate=float("nan"))
    with pytest.raises(ConfigError, match=r"unknown option.* --nope"):
        build(Base, {"name": "n", "nope": 1})
    assert Base(name="n").to_json()["ids"] == []
