"""Options declared once: a dataclass field carries its default, help text, command-line parsing and
range check; the click options of a command, the Python API and the config saved beside every output all
come from that one declaration (litgpt's typed CLI, with the hyperparameters saved beside the outputs).

Declare a field with :func:`option`::

    @dataclass(frozen=True)
    class PropagationOptions(Options):
        topk: int | None = option(None, "Neighbours kept [default: the preset's].", minimum=1)
        preset: Literal["dift", "dino"] = option("dift", "Propagation preset.")

- The flag is ``--<field-name-with-dashes>`` (``flag=`` renames it; ``cli=False`` keeps a field off the
  command line). The click type comes from the annotation: ``int``, ``float``, ``str``, ``bool`` (a flag),
  ``Literal[...]`` (a choice), each optionally ``| None``. Any other type (tuples, ...) needs ``parse=``,
  a function from the command-line string to the value.
- A field without a default is a required option.
- :class:`Options` runs the declared checks (``minimum``, ``above``) in ``__post_init__``, each failure a
  :class:`~dvx.errors.ConfigError` naming the flag; a subclass adds its own checks after ``super()``.
- ``defaults`` (e.g. a registry entry's per-name values, such as movi-e's slot count) replace field
  defaults both in the generated options' help and when the instance is built (:func:`build`).

``ProbeConfig`` and every task's options (``dvx probe``) and ``ExtractConfig`` (``dvx extract``) are declared
this way; the commands add only what is not configuration (``--json``, ``--preset``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, dataclass, field
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import click

from dvx.errors import ConfigError

META = "dvx"
T = TypeVar("T")


@dataclass(frozen=True)
class Spec:
    """What one field declares beyond its type and default."""

    help: str
    flag: str | None = None
    parse: Callable[[str], Any] | None = None
    minimum: float | None = None  # value >= minimum
    above: float | None = None  # value > above
    metavar: str | None = None
    cli: bool = True


def option(
    default: Any = MISSING,
    help: str = "",
    *,
    flag: str | None = None,
    parse: Callable[[str], Any] | None = None,
    minimum: float | None = None,
    above: float | None = None,
    metavar: str | None = None,
    cli: bool = True,
) -> Any:
    """A dataclass field with its help text, flag, parser and range check (see the module docstring)."""
    spec = Spec(help, flag, parse, minimum, above, metavar, cli)
    return field(default=default, metadata={META: spec})


def spec_of(f: dataclasses.Field[Any]) -> Spec:
    return f.metadata.get(META) or Spec(help="")


def flag_of(f: dataclasses.Field[Any]) -> str:
    return spec_of(f).flag or "--" + f.name.replace("_", "-")


def _strip_none(tp: Any) -> Any:
    """``X | None`` -> X; anything else unchanged."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def declared(cls: type) -> Iterator[tuple[dataclasses.Field[Any], Any]]:
    """Every field of dataclass ``cls`` with its resolved type."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        yield f, hints[f.name]


def default_of(f: dataclasses.Field[Any], defaults: Mapping[str, Any]) -> Any:
    if f.name in defaults:
        return defaults[f.name]
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def click_params(cls: type, defaults: Mapping[str, Any] | None = None) -> list[click.Parameter]:
    """The click options of every command-line field of dataclass ``cls`` (``defaults`` override)."""
    defaults = defaults or {}
    params: list[click.Parameter] = []
    for f, tp in declared(cls):
        spec = spec_of(f)
        if not spec.cli:
            continue
        base = _strip_none(tp)
        default = default_of(f, defaults)
        required = default is MISSING
        kwargs: dict[str, Any] = {"help": spec.help, "required": required, "metavar": spec.metavar}
        if base is bool and spec.parse is None:
            if default is True:  # a flag that turns it off: --no-progress
                kwargs.update(is_flag=True, flag_value=False, default=True, show_default=False)
            else:
                kwargs.update(is_flag=True, default=False, show_default=False)
        else:
            if spec.parse is not None:
                kwargs["type"] = str
            elif get_origin(base) is Literal:
                kwargs["type"] = click.Choice([str(a) for a in get_args(base)])
            elif base in (int, float, str):
                kwargs["type"] = base
            else:
                raise TypeError(f"{cls.__name__}.{f.name}: type {tp} needs parse= to be read from text")
            if not required:  # a parsed field's default is the dataclass's (click passes None: not given)
                kwargs["default"] = None if spec.parse is not None else default
                kwargs["show_default"] = default is not None and spec.parse is None
        params.append(click.Option([flag_of(f), f.name], **kwargs))
    return params


def from_cli(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor arguments for ``cls`` from click's parsed ``values`` (only ``cls``'s own fields; a text
    value of a field with ``parse=`` goes through it)."""
    out = {}
    for f, _ in declared(cls):
        if f.name not in values:
            continue
        value, spec = values[f.name], spec_of(f)
        if spec.parse is not None:
            if value is None:
                continue  # not given: the dataclass default
            if isinstance(value, str):
                value = spec.parse(value)
        out[f.name] = value
    return out


def build(cls: type[T], given: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> T:
    """An instance of dataclass ``cls`` from ``given`` values over ``defaults``; a name that is not a
    field of ``cls`` is a ConfigError naming its flag."""
    names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(k for k in given if k not in names)
    if unknown:
        raise ConfigError("unknown option(s) " + ", ".join("--" + k.replace("_", "-") for k in unknown))
    values = {k: v for k, v in (defaults or {}).items() if k in names}
    values.update(given)
    return cls(**values)


def to_argv(obj: Any, base: Any) -> list[str]:
    """The command-line flags that turn options ``base`` into ``obj`` (two instances of one options
    dataclass): each command-line field where they differ, as :func:`click_params` reads it back."""
    argv: list[str] = []
    for f in dataclasses.fields(obj):
        value, spec = getattr(obj, f.name), spec_of(f)
        if not spec.cli or value == getattr(base, f.name) or value is None:
            continue
        if isinstance(value, bool) and spec.parse is None:
            argv.append(flag_of(f))  # a flag: present means the non-default value (--no-progress too)
        else:
            text = ",".join(str(v) for v in value) if isinstance(value, tuple | list) else str(value)
            argv += [flag_of(f), text]
    return argv


def redefault(parent: type, name: str, value: Any) -> Any:
    """Field ``name`` of options class ``parent`` with another default, keeping its declaration (help,
    flag, checks): a subclass's own default without a second help text."""
    (f,) = [f for f in dataclasses.fields(parent) if f.name == name]
    return field(default=value, metadata=f.metadata)


def to_json(obj: Any) -> Any:
    """A dataclass (nested ones too), tuple or mapping as plain JSON-ready data."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return [to_json(v) for v in obj]
    return obj


@dataclass(frozen=True)
class Options:
    """Base of every options dataclass: runs each field's declared range check."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check(f, getattr(self, f.name))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = to_json(self)
        return out


def check(f: dataclasses.Field[Any], value: Any) -> None:
    """The range check a field declares (``minimum``, ``above``); None always passes."""
    spec = spec_of(f)
    if value is None or isinstance(value, bool):
        return
    if spec.minimum is not None and not value >= spec.minimum:  # NaN fails too
        raise ConfigError(f"{flag_of(f)} must be >= {_num(spec.minimum)}, got {value}")
    if spec.above is not None and not value > spec.above:
        raise ConfigError(f"{flag_of(f)} must be > {_num(spec.above)}, got {value}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
