"""Slot attention with learnable queries and the object-discovery head (tiny, CPU)."""

from __future__ import annotations

import torch

from dvx.probe.lightning.slot_attention import ObjectDiscoveryHead, SlotAttention
from tests.probe.heads_fixtures import one_torch_thread


def test_slot_attention_shapes_and_attention_normalised_over_slots() -> None:
    torch.manual_seed(0)
    sa = SlotAttention(num_slots=3, dim=8, iters=2)
    slots, attn = sa(torch.randn(2, 10, 8))
    assert slots.shape == (2, 3, 8) and attn.shape == (2, 3, 10)
    assert torch.allclose(attn.sum(dim=1), torch.ones(2, 10), atol=1e-5)


def test_learnable_queries_receive_gradients_and_later_frames_start_from_previous_slots() -> None:
    torch.manual_seed(0)
    sa = SlotAttention(num_slots=2, dim=4, iters=3)
    slots, _ = sa(torch.randn(1, 5, 4))
    slots.sum().backward()
    assert sa.queries.grad is not None and sa.queries.grad.abs().sum() > 0  # BO-QSA straight-through
    sa.zero_grad()
    init = torch.randn(1, 2, 4, requires_grad=True)
    slots, _ = sa(torch.randn(1, 5, 4), init)
    slots.sum().backward()
    assert init.grad is not None and sa.queries.grad is None  # a given init replaces the queries


def test_discovery_head_learns_to_reconstruct_and_returns_per_frame_masks() -> None:
    with one_torch_thread():
        torch.manual_seed(0)
        # two fixed "objects": the left and right halves carry different feature vectors
        feats = torch.zeros(4, 2, 6, 4, 4)
        feats[..., :2] = torch.randn(6, 1, 1)
        feats[..., 2:] = torch.randn(6, 1, 1)
        head = ObjectDiscoveryHead(in_dim=6, size=(4, 4), num_slots=3, dim=16, decoder_hidden=32)
        opt = torch.optim.Adam(head.parameters(), lr=3e-3)
        first = None
        for _ in range(60):
            loss, masks = head(feats)
            first = first if first is not None else float(loss.detach())
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert masks.shape == (4, 2, 3, 4, 4)
        assert torch.allclose(masks.sum(dim=2), torch.ones(4, 2, 4, 4), atol=1e-5)
        assert float(loss.detach()) < 0.5 * first
