"""Open a feature store, check it is one, and find recipe groups in it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from dvx.errors import CacheMissError, RecipeMismatchError, StoreError
from dvx.store import layout
from dvx.store.backend import Backend, group_meta
from dvx.store.group import RecipeGroup
from dvx.store.recipe import PROVENANCE_FIELDS, Recipe, matches, recipe_diff

log = logging.getLogger(__name__)


class FeatureStore:
    """A dvx feature store at a local path or fsspec URL.

    ``mode="r"`` never writes (safe on a shared, read-only cache); ``mode="a"`` creates the store if the
    location is empty and refuses anything that is not a dvx store.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._warned: set[str] = set()  # unreadable recipe groups already warned about

    @property
    def location(self) -> str:
        return self.backend.location

    @classmethod
    def open(
        cls,
        location: str,
        mode: Literal["r", "a"] = "r",
        storage_options: Mapping[str, Any] | None = None,
    ) -> FeatureStore:
        backend = Backend(str(location), read_only=mode == "r", storage_options=dict(storage_options or {}))
        attrs = _root_attrs(backend)
        if attrs is None:
            if mode == "r":
                raise StoreError(f"no dvx feature store at {location!r} (no zarr.json)")
            attrs = _create_root(backend, location)
        if attrs is not None:
            info = attrs.get(layout.ROOT_ATTR)
            if not isinstance(info, Mapping) or "schema" not in info:
                raise StoreError(f"{location!r} is a zarr store but not a dvx feature store")
            if int(info["schema"]) > layout.SCHEMA_VERSION:
                raise StoreError(
                    f"{location!r} has store schema {info['schema']}, newer than this dvx understands "
                    f"({layout.SCHEMA_VERSION}); upgrade dvx"
                )
        return cls(backend)

    # ---- listing -------------------------------------------------------------------------------------
    def datasets(self) -> list[str]:
        return [d for d in self.backend.list_dir("") if d != "zarr.json" and self._is_group(d)]

    def groups(self, dataset: str | None = None, model: str | None = None) -> list[RecipeGroup]:
        """The recipe groups (of ``dataset``, of ``model``). A group whose recipe this dvx cannot read
        (written by a newer dvx, or damaged) is left out with a one-line warning naming it."""
        out, unreadable = self._recipe_groups(dataset, model)
        for path, why in unreadable.items():
            if path not in self._warned:
                self._warned.add(path)
                log.warning("%s; skipped", why)
        return out

    def _recipe_groups(
        self, dataset: str | None, model: str | None
    ) -> tuple[list[RecipeGroup], dict[str, str]]:
        """The readable recipe groups, and group path -> why for those that cannot be read. Only the
        groups named ``<model>@<fp8>`` are read, so one unreadable group never hides another model's."""
        out, unreadable = [], {}
        for ds in [dataset] if dataset else self.datasets():
            for name in self.backend.list_dir(ds) if self._is_group(ds) else []:
                name_model, fp8 = layout.split_recipe_name(name)
                if not name_model or not fp8 or (model is not None and name_model != model):
                    continue
                path = f"{ds}/{name}"
                try:
                    recipe = self._read_recipe(path)
                except RecipeMismatchError as err:
                    unreadable[path] = str(err)
                    continue
                if recipe is not None and (model is None or recipe.model == model):
                    out.append(RecipeGroup(self.backend, ds, recipe))
        return out, unreadable

    def _read_recipe(self, path: str) -> Recipe | None:
        """The recipe recorded on group ``path``; None if it is no recipe group; RecipeMismatchError,
        naming the group, if it cannot be read."""
        try:
            attrs = self.backend.group_attrs(path)
        except StoreError as err:
            raise RecipeMismatchError(f"{self.location}: recipe group {path} is unreadable ({err})") from err
        if not attrs or layout.RECIPE_ATTR not in attrs:
            return None
        try:
            return Recipe.from_json(attrs[layout.RECIPE_ATTR])
        except (RecipeMismatchError, KeyError, TypeError, ValueError) as err:
            raise RecipeMismatchError(
                f"{self.location}: recipe group {path} cannot be read by this dvx ({err})"
            ) from err

    def _is_group(self, path: str) -> bool:
        try:
            return self.backend.group_attrs(path) is not None
        except StoreError:
            return False

    # ---- writer side ---------------------------------------------------------------------------------
    def create_group(self, dataset: str, recipe: Recipe) -> RecipeGroup:
        """The group for ``recipe``, created if absent; refuses a group whose recorded recipe differs."""
        layout.check_name("dataset", dataset)
        layout.check_name("model", recipe.model)
        group = RecipeGroup(self.backend, dataset, recipe)
        attrs = self.backend.group_attrs(group.path)
        want = {layout.RECIPE_ATTR: recipe.to_json(), "fingerprint": recipe.fingerprint}
        if attrs is None:
            # Several jobs may create the same group at once: each node is created only if absent
            # (atomically where the backend allows, docs/store.md), and whoever lost the race checks the
            # winner's recipe below exactly as if the group had existed before.
            if self.backend.group_attrs(dataset) is None:
                self.backend.put_json_if_absent(f"{dataset}/zarr.json", group_meta({}))
            if self.backend.put_json_if_absent(f"{group.path}/zarr.json", group_meta(want)):
                return group
            attrs = self.backend.group_attrs(group.path) or {}
        have = attrs.get(layout.RECIPE_ATTR)
        if attrs.get("fingerprint") != recipe.fingerprint or have is None:
            diff = _diff(have, recipe) if have else ["<none>"]
            raise RecipeMismatchError(
                f"{self.location}: {group.path} was written by a different recipe ({'; '.join(diff)}); "
                "refusing to mix features"
            )
        return group

    # ---- reader side ---------------------------------------------------------------------------------
    def find(
        self,
        dataset: str,
        model: str,
        recipe: str | None = None,
        constraints: Mapping[str, Any] | None = None,
    ) -> RecipeGroup:
        """The one recipe group of ``model`` on ``dataset`` matching ``recipe`` (an fp8 prefix) and the
        field ``constraints``; a clear error naming the differing fields otherwise."""
        candidates, unreadable = self._recipe_groups(dataset, model)
        if recipe:  # the fp8 is in the group's name: an unreadable group of another recipe does not matter
            unreadable = {
                p: why
                for p, why in unreadable.items()
                if layout.split_recipe_name(p.rsplit("/", 1)[-1])[1].startswith(recipe)
            }
        if unreadable:
            raise RecipeMismatchError(
                "; ".join(unreadable.values())
                + (" (or choose another recipe with --recipe FP)" if candidates else "")
            )
        if not candidates:
            have = sorted({f"{g.dataset}/{g.recipe.name}" for g in self.groups()})
            raise CacheMissError(
                f"{self.location} has no features of model {model!r} on dataset {dataset!r}"
                + (f" (it has: {', '.join(have)})" if have else " (the store is empty)")
                + f". Extract them first: dvx extract --model {model} --dataset {dataset} "
                f"--store {self.location}"
            )
        if recipe:
            candidates = [g for g in candidates if g.recipe.fingerprint.startswith(recipe)]
            if not candidates:
                raise RecipeMismatchError(f"{self.location}: no recipe {recipe!r} for {model} on {dataset}")
        constraints = dict(constraints or {})
        fitting = [g for g in candidates if not matches(g.recipe, constraints)]
        if not fitting:
            why = "; ".join(
                f"{g.recipe.name}: {', '.join(matches(g.recipe, constraints))}" for g in candidates
            )
            raise RecipeMismatchError(
                f"{self.location}: no {model} recipe on {dataset} matches what was asked ({why})"
            )
        if len(fitting) > 1:
            names = ", ".join(g.recipe.name for g in fitting)
            diffs = recipe_diff(fitting[0].recipe.identity(), fitting[1].recipe.identity())
            raise RecipeMismatchError(
                f"{self.location}: several {model} recipes on {dataset} fit ({names}; they differ in "
                f"{'; '.join(diffs)}); choose one with --recipe FP or narrow it with recipe options"
            )
        return fitting[0]


def _diff(have: Any, recipe: Recipe) -> list[str]:
    """How the recipe recorded on a group differs from ``recipe`` (also for a recipe this dvx cannot
    read, e.g. one with fields from a newer dvx)."""
    try:
        theirs = Recipe.from_json(have).identity()
    except (RecipeMismatchError, KeyError, TypeError, ValueError):
        raw = have if isinstance(have, Mapping) else {}
        theirs = {k: v for k, v in raw.items() if k not in PROVENANCE_FIELDS}
    return recipe_diff(theirs, recipe.identity())


def _create_root(backend: Backend, location: str) -> dict[str, Any] | None:
    """Make an empty location a dvx store; tolerate another job doing the same at the same moment."""
    meta = group_meta({layout.ROOT_ATTR: {"schema": layout.SCHEMA_VERSION}})
    # another job's transient files (write probe, temp file of its own create) do not make it "not empty"
    present = [n for n in backend.list_dir("") if not _transient(n)]
    if not present and backend.put_json_if_absent("zarr.json", meta):
        return None  # created by this call: nothing to check
    attrs = _root_attrs(backend)  # someone else created it first (or the location holds other things)
    if attrs is None:
        raise StoreError(
            f"{location!r} is not empty and is not a dvx feature store; refusing to write into it"
        )
    return attrs


def _transient(name: str) -> bool:
    return name.startswith(".dvx-write-test-") or name.endswith(".partial")


def _root_attrs(backend: Backend) -> dict[str, Any] | None:
    try:
        return backend.group_attrs("")
    except StoreError as err:
        raise StoreError(f"{backend.location!r} is not a dvx feature store: {err}") from err
