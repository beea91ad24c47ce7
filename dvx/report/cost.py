"""Table 5 (seed 002): what each model's extraction cost, relative to a reference model.

Reads the cost records extraction writes beside each recipe (dvx/extract/cost.py): one row per (dataset,
model@recipe, device, dtype). Time is compared per frame **and per noise level** (seconds per input frame
divided by the number of T and ensemble members the run computed), so a run of four T is not charged four
times against a single-T baseline; memory is the peak device memory on a GPU, the resident-set growth on a
CPU (both include the weights). Relative numbers are given only against a reference measured on the same
device model and dtype: a CPU run and a GPU run do not compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dvx.config import human_bytes

#: the reference when none is chosen: the first of these the store holds (seed 002 compares to DINOv2)
DEFAULT_REFERENCES = ("dinov2", "tiny-dinov2")


@dataclass(frozen=True)
class CostRow:
    dataset: str
    model: str
    recipe: str  # fingerprint
    record: dict[str, Any]

    @property
    def device_key(self) -> tuple[str, str]:
        return (str(self.record.get("device_name", "")), str(self.record.get("dtype", "")))

    @property
    def seconds_per_frame_t(self) -> float | None:
        """Forward seconds per input frame and noise level (T x ensemble member)."""
        fps = self.record.get("frames_per_second")
        work = max(1, int(self.record.get("timesteps") or 1)) * max(1, int(self.record.get("ensemble") or 1))
        return 1.0 / (fps * work) if fps else None

    @property
    def memory(self) -> int | None:
        """Peak device memory on a GPU, the resident-set growth on a CPU."""
        dev = self.record.get("peak_device_bytes")
        return int(dev) if dev is not None else _int(self.record.get("host_growth_bytes"))


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def cost_rows(location: str) -> list[CostRow]:
    """Every cost record of the store at ``location`` (empty when it has none)."""
    from dvx.extract.cost import read_costs
    from dvx.store.root import FeatureStore

    store = FeatureStore.open(location, mode="r")
    rows = []
    for group in store.groups():
        for rec in read_costs(group):
            rows.append(CostRow(group.dataset, group.recipe.model, group.recipe.fingerprint, rec))
    return sorted(rows, key=lambda r: (r.dataset, r.model, r.recipe, r.device_key))


def pick_reference(rows: Sequence[CostRow], chosen: str | None) -> str | None:
    """The reference model: ``chosen`` (must be among the rows), else the first of DEFAULT_REFERENCES held."""
    models = {r.model for r in rows}
    if chosen is not None:
        if chosen not in models:
            from dvx.errors import ConfigError

            have = ", ".join(sorted(models)) or "none"
            raise ConfigError(f"--cost-reference {chosen!r} has no cost record in the store (models: {have})")
        return chosen
    return next((m for m in DEFAULT_REFERENCES if m in models), None)


@dataclass
class Table5:
    header: list[str]
    rows: list[list[str]]
    reference: str | None
    values: list[dict[str, Any]]  # per row: the numbers behind the cells (for CSV/HTML)


def table5(rows: Sequence[CostRow], reference: str | None) -> Table5:
    labels = _labels(rows)
    refs = {
        (r.dataset, r.device_key): r
        for r in rows
        if r.model == reference and r.seconds_per_frame_t is not None
    }
    header = [
        "dataset", "model", "device", "dtype", "T x members", "frames/s", "s / forward",
        "peak memory", "time vs ref", "memory vs ref",
    ]  # fmt: skip
    out, values = [], []
    for r, label in zip(rows, labels, strict=True):
        rec = r.record
        ref = refs.get((r.dataset, r.device_key))
        spf, mem = r.seconds_per_frame_t, r.memory
        rel_t = spf / ref.seconds_per_frame_t if ref and spf and ref.seconds_per_frame_t else None
        rel_m = mem / ref.memory if ref and mem is not None and ref.memory else None
        where = "GPU" if rec.get("peak_device_bytes") is not None else "RSS growth"
        work = f"{rec.get('timesteps') or 1} x {rec.get('ensemble') or 1}"
        fps, spfw = rec.get("frames_per_second"), rec.get("seconds_per_forward")
        out.append([
            r.dataset, label, f"{rec.get('device', '')} ({rec.get('device_name', '')})",
            str(rec.get("dtype", "")), work, _num(fps), _num(spfw),
            f"{human_bytes(mem)} ({where})" if mem is not None else "-",
            f"{rel_t:.2f}x" if rel_t is not None else "-", f"{rel_m:.2f}x" if rel_m is not None else "-",
        ])  # fmt: skip
        values.append({"label": label, "rel_time": rel_t, "rel_memory": rel_m, **rec})
    return Table5(header, out, reference, values)


def _labels(rows: Sequence[CostRow]) -> list[str]:
    """The model, or ``model@fp8`` where a dataset holds the model under several recipes."""
    recipes: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        recipes.setdefault((r.dataset, r.model), set()).add(r.recipe)
    return [r.model if len(recipes[(r.dataset, r.model)]) == 1 else f"{r.model}@{r.recipe[:8]}" for r in rows]


def _num(v: Any) -> str:
    if v is None:
        return "-"
    v = float(v)
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def table5_markdown(t: Table5) -> str:
    lines = ["| " + " | ".join(t.header) + " |", "|" + "---|" * len(t.header)]
    lines += ["| " + " | ".join(row) + " |" for row in t.rows]
    ref = (
        f"Relative to **{t.reference}** on the same device and dtype (time per frame and noise level)."
        if t.reference
        else "No reference model (pass --cost-reference MODEL): no relative columns."
    )
    return "\n".join(
        [*lines, "", ref, "Measured during extraction (forward time only; memory includes the weights)."]
    )


def table5_csv(t: Table5) -> str:
    import csv
    import io

    keys = [
        "label", "device", "device_name", "dtype", "timesteps", "ensemble", "units", "forwards", "frames",
        "seconds", "seconds_per_forward", "frames_per_second", "peak_device_bytes", "peak_host_bytes",
        "host_growth_bytes", "rel_time", "rel_memory",
    ]  # fmt: skip
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["dataset", *keys])
    for row, v in zip(t.rows, t.values, strict=True):
        w.writerow([row[0], *("" if v.get(k) is None else v.get(k) for k in keys)])
    return buf.getvalue()
