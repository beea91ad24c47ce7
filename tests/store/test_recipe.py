from dataclasses import replace

import pytest

from dvx.errors import RecipeMismatchError
from dvx.store.recipe import Recipe, matches, recipe_diff


def recipe(**kw: object) -> Recipe:
    base = Recipe(
        model="tiny-sd",
        family="sd",
        weights="ab" * 32,
        dtype="float32",
        resolution=(64, 128),
        clip_len=None,
        noise={"kind": "ddpm"},
        conditioning={"prompt": ""},
    )
    return replace(base, **kw)


def test_fingerprint_is_stable_and_covers_feature_fields() -> None:
    a = recipe()
    assert a.fingerprint == recipe().fingerprint and len(a.fp8) == 8 and a.name == f"tiny-sd@{a.fp8}"
    for change in (
        {"resolution": (128, 128)},
        {"weights": "cd" * 32},
        {"seed": 1},
        {"ensemble": 8},
        {"conditioning": {"prompt": "a"}},
        {"noise": {"kind": "edm"}},
        {"latent": "sample"},
        {"dtype": "float16"},
        {"frame_stride": 2},
        {"max_frames": 10},
        {"clip_len": 14},
    ):
        assert recipe(**change).fingerprint != a.fingerprint, change


def test_provenance_fields_do_not_change_the_fingerprint() -> None:
    a = recipe()
    b = recipe(source="/local/copy", revision="abc", dvx_version="9.9")
    assert a.fingerprint == b.fingerprint


def test_json_round_trip_and_unknown_fields() -> None:
    a = recipe(resolution=(32, 48))
    assert Recipe.from_json(a.to_json()) == a
    data = a.to_json() | {"from_the_future": 1}
    with pytest.raises(RecipeMismatchError, match="from_the_future"):
        Recipe.from_json(data)


def test_diff_and_constraints_name_the_differing_fields() -> None:
    a, b = recipe(), recipe(resolution=(32, 32), noise={"kind": "edm"})
    diff = recipe_diff(a.identity(), b.identity())
    assert diff == ['noise.kind: "ddpm" != "edm"', "resolution: [64, 128] != [32, 32]"]
    assert matches(a, {"resolution": (64, 128), "noise.kind": "ddpm"}) == []
    bad = matches(a, {"resolution": (32, 32)})
    assert len(bad) == 1 and "resolution" in bad[0]
