import numpy as np
import pytest
import torch
from torch import nn

from dvx.extract.hooks import HostBuffers, capture, run_until_stop, to_host


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


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_to_host_casts_to_float16_as_numpy_would(dtype: torch.dtype) -> None:
    """The device-side cast gives the very bits the host cast gave before (float32 -> numpy float16)."""
    x = (torch.randn(3, 4, 5, 6) * 100).to(dtype)
    half = to_host(x, float16=True)
    assert half.dtype == torch.float16 and half.device.type == "cpu"
    expected = x.float().numpy().astype(np.float16)
    np.testing.assert_array_equal(half.numpy().view(np.uint16), expected.view(np.uint16))
    full = to_host(x, float16=False)
    assert full.dtype == torch.float32 and torch.equal(full, x.float())


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), 1.0e5])
def test_to_host_keeps_float32_where_float16_is_not_finite(bad: float) -> None:
    """So the runner's finite check can tell an overflow (1e5) from a non-finite forward and name it."""
    x = torch.ones(2, 3)
    x[1, 2] = bad
    out = to_host(x, float16=True)
    assert out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy(), x.numpy())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_leased_copies_reuse_buffers_once_released_and_keep_the_bits(dtype: torch.dtype) -> None:
    pool = HostBuffers()
    kept: list[torch.Tensor] = []
    for step in range(4):
        x = (torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(step)) * 100).to(dtype)
        lease = pool.lease()
        with lease.active():
            out = to_host(x, float16=True)
        assert out.dtype == torch.float16 and out.data_ptr() != x.data_ptr()  # never the module's own output
        expected = x.float().numpy().astype(np.float16)
        np.testing.assert_array_equal(out.numpy().view(np.uint16), expected.view(np.uint16))
        kept.append(out.clone())
        lease.release()
    assert pool.allocated == 1  # the one buffer, reused by every later lease
    with pool.lease().active():  # a lease not yet released: its buffer is not handed out twice
        a = to_host(torch.ones(2, 3, 4), float16=True)
        b = to_host(torch.ones(2, 3, 4), float16=True)
    assert a.data_ptr() != b.data_ptr() and pool.allocated == 2


def test_leased_copies_fall_back_to_float32_and_bound_what_waits_for_reuse() -> None:
    pool = HostBuffers(max_free_bytes=2 * 24 * 2)  # room for two (2, 3, 4) float16 buffers
    lease = pool.lease()
    with lease.active():
        x = torch.ones(2, 3, 4)
        x[0, 0, 0] = 1e5  # beyond float16
        out = to_host(x, float16=True)
        many = [to_host(torch.ones(2, 3, 4), float16=True) for _ in range(3)]
    assert out.dtype == torch.float32 and out[0, 0, 0] == 1e5
    assert len({t.data_ptr() for t in many}) == 3
    lease.release()
    again = pool.lease()
    with again.active():
        [to_host(torch.ones(2, 3, 4), float16=True) for _ in range(4)]
    assert pool.allocated == 4 + 2  # 4 the first time, then 2 kept for reuse and 2 new
