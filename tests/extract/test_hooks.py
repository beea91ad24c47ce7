import pytest
import torch
from torch import nn

from dvx.extract.hooks import capture, run_until_stop


class Chain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(3, 3) for _ in range(4)])
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, b in enumerate(self.blocks):
            self.calls.append(i)
            x = b(x)
        return x


def test_capture_stops_after_the_deepest_block_and_removes_hooks() -> None:
    net = Chain()
    mods = {f"layer.{i}": m for i, m in enumerate(net.blocks)}
    x = torch.randn(2, 3)
    with capture({k: mods[k] for k in ("layer.0", "layer.2")}, stop_after="layer.2") as got:
        completed = run_until_stop(lambda: net(x))
    assert not completed and net.calls == [0, 1, 2]  # layer.3 never ran
    assert set(got) == {"layer.0", "layer.2"}
    assert torch.allclose(got["layer.0"], net.blocks[0](x))
    assert all(not m._forward_hooks for m in net.blocks)


def test_hooks_are_removed_even_when_the_forward_fails() -> None:
    net = Chain()
    with pytest.raises(RuntimeError), capture({"b": net.blocks[1]}):
        net(torch.randn(2, 4))  # wrong width: fails inside
    assert not net.blocks[1]._forward_hooks
