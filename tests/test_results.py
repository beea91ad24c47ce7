"""The neutral results module's orderings: blocks in network order, numbers inside names as numbers."""

from __future__ import annotations

from dvx.report.tables import TASK_ORDER
from dvx.results import block_order


def test_blocks_sort_in_network_order_with_numbers_as_numbers() -> None:
    names = ["norm", "layer.10", "layer.2.attn1.q.h10", "layer.2.attn1.q.h2", "layer.2", "up.1.s0.10.attn1.q",
             "up.1.s0.2.attn1.q", "up.1", "mid", "down.0", "layer.2.attn1.q"]  # fmt: skip
    assert sorted(names, key=block_order) == [
        "down.0", "mid", "up.1", "up.1.s0.2.attn1.q", "up.1.s0.10.attn1.q", "layer.2", "layer.2.attn1.q",
        "layer.2.attn1.q.h2", "layer.2.attn1.q.h10", "layer.10", "norm",
    ]  # fmt: skip


def test_every_registered_task_has_a_place_in_the_report() -> None:
    from dvx.probe import TASKS

    shipped = {e.name for e in TASKS if isinstance(e.target, str) and e.target.startswith("dvx.")}
    assert len(shipped) >= 17 and shipped <= set(TASK_ORDER)
