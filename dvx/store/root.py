"""Open a feature store, check it is one, find recipe groups in it, and restore damaged group metadata.

Group metadata is never created implicitly (dvx/store/writer.py writes array metadata alone): the root,
a dataset group and a recipe group are created only by :meth:`FeatureStore.open` / :meth:`create_group`,
each only if absent. A recipe group's ``zarr.json`` is also kept as ``_index/recipe.json`` (written right
after it), the second place ``dvx cache verify --repair`` restores a damaged or lost one from.

Damage is found where it is read and reported as one line naming the node and the repair:

- the root ``zarr.json`` missing (in a location that holds recipe groups) or unreadable: every command
  stops with ``dvx cache verify --store S --repair``, which restores it;
- a dataset group's ``zarr.json`` missing or unreadable: a warning (its recipes are still read; their
  data is checked against their own records); repair rewrites it;
- a recipe group's ``zarr.json`` missing, unreadable, without a recipe, or naming another recipe than
  its folder: that recipe is left out of listings with a warning, other recipes are unaffected, and a
  probe of it fails naming the repair, which restores it from the second copy. A recipe written by a
  newer dvx is left out the same way and never "repaired".
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from dvx.errors import CacheMissError, DamagedStoreError, NoStoreError, RecipeMismatchError, StoreError
from dvx.store import layout
from dvx.store.backend import Backend, DamagedObjectError, group_meta
from dvx.store.group import RecipeGroup
from dvx.store.recipe import PROVENANCE_FIELDS, Recipe, matches, recipe_diff

log = logging.getLogger(__name__)

#: what a damaged node is: the root, a dataset group, a recipe group
ROOT, DATASET, RECIPE = "root", "dataset", "recipe"
MISSING = "has no zarr.json"


@dataclass(frozen=True)
class DamagedNode:
    """A group whose metadata cannot be used: where, what it is, why, and whether repair can restore it."""

    kind: str  # root | dataset | recipe
    path: str  # "" (root), "<dataset>", "<dataset>/<model>@<fp8>"
    why: str
    restorable: bool  # from what the store itself holds (a recipe: its second copy)
    newer: bool = False  # a recipe written by a newer dvx: not damaged, never "restored"

    def line(self, location: str) -> str:
        what = {ROOT: "the root zarr.json", DATASET: "dataset group", RECIPE: "recipe group"}[self.kind]
        where = f" {self.path}" if self.path else ""
        if self.newer:
            fix = "upgrade dvx to read it"
        elif self.restorable:
            fix = f"run `{repair_command(location)}` to restore it"
        else:
            remove = "" if self.why == MISSING else f"remove {self.path}/zarr.json and "
            fix = (
                f"it has no intact copy ({layout.recipe_copy_key(self.path)}) to restore it from: {remove}"
                "rerun the extract command that wrote the recipe (it re-creates a missing recipe group)"
            )
        return f"{location}: {what}{where} {self.why}; {fix}"


@dataclass
class Survey:
    """What a store's group metadata says: the readable recipe groups and every damaged node."""

    groups: list[RecipeGroup] = field(default_factory=list)
    damaged: list[DamagedNode] = field(default_factory=list)


def repair_command(location: str) -> str:
    return f"dvx cache verify --store {shlex.quote(location)} --repair"


class FeatureStore:
    """A dvx feature store at a local path or fsspec URL.

    ``mode="r"`` never writes (safe on a shared, read-only cache); ``mode="a"`` creates the store if the
    location is empty and refuses anything that is not a dvx store.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._warned: set[str] = set()  # damaged groups already warned about

    @property
    def location(self) -> str:
        return self.backend.location

    @classmethod
    def open(
        cls,
        location: str,
        mode: Literal["r", "a"] = "r",
        storage_options: Mapping[str, Any] | None = None,
        restore_root: bool = False,
    ) -> FeatureStore:
        """Open the store at ``location``. ``restore_root`` (``verify --repair``, mode "a"): rewrite a
        missing or damaged root ``zarr.json`` of a location that holds dvx recipe groups."""
        location = str(location)
        backend = Backend(location, read_only=mode == "r", storage_options=dict(storage_options or {}))
        try:
            attrs, damage = backend.group_attrs(""), ""
        except DamagedObjectError as err:
            attrs, damage = None, f"is unreadable ({_detail(err)})"
        if attrs is None and not damage:
            present = [n for n in backend.list_dir("") if not _transient(n)]
            if "zarr.json" in present:  # created since it was read (another job creating the store)
                try:
                    attrs = backend.group_attrs("")
                except DamagedObjectError as err:
                    damage = f"is unreadable ({_detail(err)})"
        if attrs is None and not damage:
            if not present:
                if mode == "r":
                    raise NoStoreError(f"no dvx feature store at {location!r}")
                attrs = _create_root(backend, location)
            elif _holds_recipes(backend, present):
                damage = "is missing (the location holds dvx recipe groups)"
            else:
                raise StoreError(
                    f"{location!r} is not empty and is not a dvx feature store (no zarr.json)"
                    + ("; refusing to write into it" if mode == "a" else "")
                )
        if damage:
            if restore_root and mode == "a":
                backend.write_group("", {layout.ROOT_ATTR: {"schema": layout.SCHEMA_VERSION}})
                log.warning("%s: restored the store's root zarr.json", location)
                return cls(backend)
            raise DamagedStoreError(DamagedNode(ROOT, "", damage, True).line(location))
        info = (attrs or {}).get(layout.ROOT_ATTR)
        if not isinstance(info, Mapping) or not isinstance(info.get("schema"), int):
            raise StoreError(f"{location!r} is a zarr store but not a dvx feature store")
        if info["schema"] > layout.SCHEMA_VERSION:
            raise StoreError(
                f"{location!r} has store schema {info['schema']}, newer than this dvx understands "
                f"({layout.SCHEMA_VERSION}); upgrade dvx"
            )
        return cls(backend)

    # ---- listing -------------------------------------------------------------------------------------
    def datasets(self) -> list[str]:
        """The dataset folders: readable dataset groups, and folders holding recipe groups."""
        return [ds for ds, _ in self._datasets(None)]

    def _datasets(self, only: str | None) -> list[tuple[str, DamagedNode | None]]:
        """(dataset, damage of its group metadata or None) for every dataset folder (or just ``only``)."""
        names = [only] if only else [n for n in self.backend.list_dir("") if n != "zarr.json"]
        out: list[tuple[str, DamagedNode | None]] = []
        for ds in names:
            if _transient(ds):
                continue
            try:
                attrs, why = self.backend.group_attrs(ds), MISSING
            except DamagedObjectError as err:
                attrs, why = None, f"is unreadable ({_detail(err)})"
            if attrs is not None:
                out.append((ds, None))
            elif any(layout.is_recipe_name(n) for n in self.backend.list_dir(ds)):
                out.append((ds, DamagedNode(DATASET, ds, why, True)))
        return out

    def survey(self, dataset: str | None = None, model: str | None = None) -> Survey:
        """Every recipe group (of ``dataset``, of ``model``) and every damaged group on the way. Only the
        folders named ``<model>@<fp8>`` of ``model`` are read, so one damaged group never hides another."""
        survey = Survey()
        for ds, damage in self._datasets(dataset):
            if damage is not None:
                survey.damaged.append(damage)
            for name in self.backend.list_dir(ds):
                name_model, _ = layout.split_recipe_name(name)
                if not layout.is_recipe_name(name) or (model is not None and name_model != model):
                    continue
                path = f"{ds}/{name}"
                try:
                    recipe = self._read_recipe(path)
                except _Damaged as err:
                    survey.damaged.append(err.node)
                    continue
                if recipe is not None:
                    survey.groups.append(RecipeGroup(self.backend, ds, recipe))
        return survey

    def groups(self, dataset: str | None = None, model: str | None = None) -> list[RecipeGroup]:
        """The recipe groups (of ``dataset``, of ``model``). A damaged group, or one whose recipe this dvx
        cannot read (written by a newer dvx), is left out with a one-line warning naming it."""
        survey = self.survey(dataset, model)
        for node in survey.damaged:
            if node.path not in self._warned:
                self._warned.add(node.path)
                log.warning("%s", node.line(self.location))
        return survey.groups

    def _read_recipe(self, path: str) -> Recipe | None:
        """The recipe recorded on group ``path``: None if the folder holds nothing of a recipe group (a
        recipe gc is removing); :class:`_Damaged` naming the group if it cannot be used."""
        try:
            attrs = self.backend.group_attrs(path)
        except DamagedObjectError as err:
            raise _Damaged(self._recipe_damage(path, f"is unreadable ({_detail(err)})")) from err
        if attrs is None:
            if not self.backend.list_dir(f"{path}/{layout.INDEX}"):
                return None  # nothing but leftovers (gc removes a recipe's zarr.json first)
            raise _Damaged(self._recipe_damage(path, MISSING))
        if layout.RECIPE_ATTR not in attrs:
            raise _Damaged(self._recipe_damage(path, "records no recipe"))
        try:
            recipe = Recipe.from_json(attrs[layout.RECIPE_ATTR])
        except (RecipeMismatchError, KeyError, TypeError, ValueError) as err:
            newer = isinstance(err, RecipeMismatchError)
            why = f"cannot be read by this dvx ({err})" if newer else f"holds an unreadable recipe ({err})"
            raise _Damaged(
                DamagedNode(RECIPE, path, why, False, newer=True) if newer else self._recipe_damage(path, why)
            ) from err
        if recipe.fp8 != layout.split_recipe_name(path.rsplit("/", 1)[-1])[1]:
            raise _Damaged(self._recipe_damage(path, f"records recipe {recipe.fp8}, not its folder's"))
        return recipe

    def _recipe_damage(self, path: str, why: str) -> DamagedNode:
        return DamagedNode(RECIPE, path, why, self.recipe_copy(path) is not None)

    def recipe_copy(self, path: str) -> dict[str, Any] | None:
        """The second copy of recipe group ``path``'s zarr.json, if it is intact: a group document whose
        recipe fingerprint matches the folder name."""
        try:
            doc = self.backend.get_json(layout.recipe_copy_key(path))
        except DamagedObjectError:  # not valid JSON: no intact copy
            return None
        attrs = doc.get("attributes") if isinstance(doc, dict) and doc.get("node_type") == "group" else None
        fp = attrs.get("fingerprint") if isinstance(attrs, dict) else None
        fp8 = layout.split_recipe_name(path.rsplit("/", 1)[-1])[1]
        if (
            not isinstance(fp, str)
            or fp[:8] != fp8
            or not isinstance(attrs, dict)
            or layout.RECIPE_ATTR not in attrs
        ):
            return None
        return doc

    def restore(self, node: DamagedNode) -> bool:
        """Rewrite a damaged group's metadata from what the store holds; False if it cannot be."""
        if node.kind == DATASET:
            self.backend.write_group(node.path, {})
            return True
        if node.kind == RECIPE and node.restorable:
            doc = self.recipe_copy(node.path)
            if doc is not None:
                self.backend.put_json(f"{node.path}/zarr.json", doc)
                return True
        return False

    # ---- writer side ---------------------------------------------------------------------------------
    def create_group(self, dataset: str, recipe: Recipe) -> RecipeGroup:
        """The group for ``recipe``, created if absent (with its second copy); refuses a group whose
        recorded recipe differs, and one whose metadata is damaged (naming the repair)."""
        layout.check_name("dataset", dataset)
        layout.check_name("model", recipe.model)
        group = RecipeGroup(self.backend, dataset, recipe)
        want = group_meta({layout.RECIPE_ATTR: recipe.to_json(), "fingerprint": recipe.fingerprint})
        attrs = self._attrs(RECIPE, group.path)
        if attrs is None:
            # Several jobs may create the same group at once: each node is created only if absent
            # (atomically where the backend allows, docs/store.md), and whoever lost the race checks the
            # winner's recipe below exactly as if the group had existed before.
            if self._attrs(DATASET, dataset) is None:
                self.backend.put_json_if_absent(f"{dataset}/zarr.json", group_meta({}))
            copy = self.recipe_copy(group.path)
            if copy is not None and copy["attributes"].get("fingerprint") != recipe.fingerprint:
                attrs = copy["attributes"]  # a different recipe under the same name: refused below
            elif self.backend.put_json_if_absent(f"{group.path}/zarr.json", want):
                self.backend.put_json_if_absent(layout.recipe_copy_key(group.path), want)
                return group
            else:
                attrs = self._attrs(RECIPE, group.path) or {}
        self._check_same(group, attrs, recipe)
        if not self.backend.exists(layout.recipe_copy_key(group.path)):  # a group written before copies
            self.backend.put_json_if_absent(layout.recipe_copy_key(group.path), want)
        return group

    def existing_group(self, dataset: str, recipe: Recipe) -> RecipeGroup | None:
        """The group of ``recipe`` if it exists, with the checks of :meth:`create_group` and no write
        (what a dry run reports on): None if absent, an error if damaged or of another recipe."""
        group = RecipeGroup(self.backend, dataset, recipe)
        attrs = self._attrs(RECIPE, group.path)
        if attrs is None:
            return None
        self._check_same(group, attrs, recipe)
        return group

    def _attrs(self, kind: str, path: str) -> dict[str, Any] | None:
        try:
            return self.backend.group_attrs(path)
        except DamagedObjectError as err:
            node = DamagedNode(kind, path, f"is unreadable ({_detail(err)})", kind == DATASET)
            if kind == RECIPE:
                node = self._recipe_damage(path, node.why)
            raise StoreError(node.line(self.location)) from err

    def _check_same(self, group: RecipeGroup, attrs: Mapping[str, Any], recipe: Recipe) -> None:
        have = attrs.get(layout.RECIPE_ATTR)
        if have is None:
            node = self._recipe_damage(group.path, "records no recipe")
            raise StoreError(node.line(self.location))
        if attrs.get("fingerprint") != recipe.fingerprint:
            raise RecipeMismatchError(
                f"{self.location}: {group.path} was written by a different recipe "
                f"({'; '.join(_diff(have, recipe))}); refusing to mix features"
            )

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
        survey = self.survey(dataset, model)
        candidates = survey.groups
        damaged = [n for n in survey.damaged if n.kind == RECIPE]
        for node in survey.damaged:
            if node.kind != RECIPE and node.path not in self._warned:
                self._warned.add(node.path)
                log.warning("%s", node.line(self.location))
        if recipe:  # the fp8 is in the group's name: a damaged group of another recipe does not matter
            damaged = [n for n in damaged if layout.split_recipe_name(n.path)[1].startswith(recipe)]
        if damaged:
            raise RecipeMismatchError(
                "; ".join(n.line(self.location) for n in damaged)
                + (" (or choose another recipe with --recipe FP)" if candidates else "")
            )
        if not candidates:
            have = sorted({f"{g.dataset}/{g.recipe.name}" for g in self.groups()})
            raise CacheMissError(
                f"{self.location} has no features of model {model!r} on dataset {dataset!r}"
                + (f" (it has: {', '.join(have)})" if have else " (the store is empty)")
                + f". Extract them first: `dvx extract --model {model} --dataset {dataset} "
                f"--data-root DATA_ROOT --store {shlex.quote(self.location)}`"
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


class _Damaged(Exception):
    def __init__(self, node: DamagedNode) -> None:
        super().__init__(node.why)
        self.node = node


def _detail(err: StoreError) -> str:
    """A group-read error without the store location it starts with (the caller's line names it)."""
    text = str(err)
    return text.split(": ", 1)[1] if ": " in text else text


def _diff(have: Any, recipe: Recipe) -> list[str]:
    """How the recipe recorded on a group differs from ``recipe`` (also for a recipe this dvx cannot
    read, e.g. one with fields from a newer dvx)."""
    try:
        theirs = Recipe.from_json(have).identity()
    except (RecipeMismatchError, KeyError, TypeError, ValueError):
        raw = have if isinstance(have, Mapping) else {}
        theirs = {k: v for k, v in raw.items() if k not in PROVENANCE_FIELDS}
    return recipe_diff(theirs, recipe.identity())


def _create_root(backend: Backend, location: str) -> dict[str, Any]:
    """Make an empty location a dvx store; tolerate another job doing the same at the same moment."""
    attrs = {layout.ROOT_ATTR: {"schema": layout.SCHEMA_VERSION}}
    if backend.put_json_if_absent("zarr.json", group_meta(attrs)):
        return attrs
    theirs = backend.group_attrs("")  # someone else created it first
    if theirs is None:
        raise StoreError(f"{location!r}: the store's root zarr.json vanished while it was created")
    return theirs


def _holds_recipes(backend: Backend, names: list[str]) -> bool:
    """Whether top-level folders ``names`` of a location hold dvx recipe groups (a store that lost its
    root zarr.json, rather than a folder of something else)."""
    return any(layout.is_recipe_name(n) for ds in names for n in backend.list_dir(ds))


def _transient(name: str) -> bool:
    return name.startswith(".dvx-write-test-") or name.endswith(".partial")
