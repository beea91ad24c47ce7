import pytest

from dvx.errors import UnknownNameError
from dvx.registry import Registry


def test_lazy_registration_imports_nothing_and_loads_on_demand() -> None:
    reg = Registry("widget")
    reg.register("path", "os.path:join", "join paths")
    reg.register("missing", "dvx_no_such_module:thing")  # never imported unless asked for
    assert reg.names() == ["missing", "path"]
    assert reg.load("path")("a", "b") == "a/b"
    with pytest.raises(ModuleNotFoundError):
        reg.load("missing")


def test_unknown_name_suggests_close_matches() -> None:
    reg = Registry("model")
    for name in ("tiny-svd", "tiny-sd", "svd"):
        reg.register(name, "os:getcwd")
    with pytest.raises(UnknownNameError) as err:
        reg.entry("tiny-svdd")
    msg = str(err.value)
    assert "unknown model 'tiny-svdd'" in msg and "Did you mean 'tiny-svd'" in msg


def test_objects_register_directly_and_duplicates_are_refused() -> None:
    reg = Registry("dataset")
    reg.register("obj", dict)
    assert reg.load("obj") is dict
    with pytest.raises(ValueError, match="twice"):
        reg.register("obj", list)
    with pytest.raises(ValueError, match="module:attr"):
        reg.register("bad", "no_colon")
