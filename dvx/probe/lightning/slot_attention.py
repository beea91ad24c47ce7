"""Object discovery head: slot attention with learnable queries, trained by feature reconstruction.

After MoTok / DINOSAUR / VideoSAUR (seed 002 §3.2.2: "cross-attention layers with learnable queries,
called slots, are trained to group foreground regions in video with feature-level reconstruction as the
learning signal"):

- **encoder**: every position's cached feature -> LayerNorm -> MLP -> ``slot_dim`` (the backbone stays
  frozen: its features are read from the cache);
- **slot attention** (Locatello et al. 2020): ``iters`` rounds of attention whose softmax runs over the
  slots (they compete for positions), weighted-mean updates, a GRU and a residual MLP. The first frame's
  slots start from **learnable queries** (BO-QSA: the last round receives the queries' gradient by a
  straight-through estimator, the earlier rounds are detached); every later frame starts from the
  previous frame's slots (SAVi-style recurrence), so a slot keeps its object through the video;
- **decoder**: an MLP broadcast decoder (DINOSAUR) maps each slot plus a learned position embedding to
  a feature and an alpha logit per position; the alphas are softmaxed over slots, and the mixture must
  reconstruct the (per-position layer-normalised) input features. The loss is their mean squared error.
- **masks**: the decoder's alphas, (K, h, w) per frame; the task upsamples them to the label resolution
  and takes the arg-max slot per pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SlotAttention(nn.Module):
    """Slot attention with learnable initial queries (``num_slots`` x ``dim``)."""

    def __init__(self, num_slots: int, dim: int, iters: int = 3, hidden: int | None = None) -> None:
        super().__init__()
        self.num_slots = num_slots
        self.iters = iters
        self.scale = dim**-0.5
        self.queries = nn.Parameter(torch.randn(1, num_slots, dim) * dim**-0.5)
        self.norm_inputs = nn.LayerNorm(dim)
        self.norm_slots = nn.LayerNorm(dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.gru = nn.GRUCell(dim, dim)
        hidden = hidden or 4 * dim
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(
        self, inputs: torch.Tensor, init: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs (B, N, D), init (B, K, D) or None (the learnable queries) -> slots (B, K, D) and the
        last round's attention (B, K, N), normalised over slots."""
        b, _, d = inputs.shape
        inputs = self.norm_inputs(inputs)
        k, v = self.to_k(inputs), self.to_v(inputs)
        queries = self.queries.expand(b, -1, -1) if init is None else init
        slots = queries
        attn = inputs.new_zeros(b, self.num_slots, inputs.shape[1])
        for i in range(self.iters):
            if init is None:  # BO-QSA: earlier rounds detached, the queries learn straight-through
                slots = slots.detach() + queries - queries.detach() if i == self.iters - 1 else slots.detach()
            prev = slots
            q = self.to_q(self.norm_slots(slots))
            logits = torch.einsum("bkd,bnd->bkn", q, k) * self.scale
            attn = logits.softmax(dim=1) + 1e-8
            weights = attn / attn.sum(dim=-1, keepdim=True)
            updates = torch.einsum("bkn,bnd->bkd", weights, v)
            slots = self.gru(updates.reshape(-1, d), prev.reshape(-1, d)).reshape(b, -1, d)
            slots = slots + self.mlp(self.norm_mlp(slots))
        return slots, attn


class BroadcastDecoder(nn.Module):
    """Slots (B, K, D) -> reconstruction (B, N, C) and alpha masks (B, K, N) (softmax over slots)."""

    def __init__(self, dim: int, out_dim: int, positions: int, hidden: int = 256) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.randn(1, 1, positions, dim) * 0.02)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, out_dim + 1),
        )

    def forward(self, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.mlp(slots.unsqueeze(2) + self.pos)  # (B, K, N, C + 1)
        feats, alpha = x[..., :-1], x[..., -1].softmax(dim=1)  # (B, K, N, C), (B, K, N)
        return (alpha.unsqueeze(-1) * feats).sum(dim=1), alpha


class ObjectDiscoveryHead(nn.Module):
    """Cached features of a clip (B, S, C, h, w) -> reconstruction loss and per-frame slot masks."""

    def __init__(
        self,
        in_dim: int,
        size: tuple[int, int],
        num_slots: int,
        dim: int = 128,
        iters: int = 3,
        decoder_hidden: int = 256,
    ) -> None:
        super().__init__()
        self.size = size
        self.encoder = nn.Sequential(
            nn.LayerNorm(in_dim), nn.Linear(in_dim, dim), nn.ReLU(), nn.Linear(dim, dim)
        )
        self.slots = SlotAttention(num_slots, dim, iters)
        self.decoder = BroadcastDecoder(dim, in_dim, size[0] * size[1], decoder_hidden)

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (mean squared reconstruction error, masks (B, S, K, h, w))."""
        b, s, c, h, w = feats.shape
        tokens = feats.permute(0, 1, 3, 4, 2).reshape(b, s, h * w, c).float()
        target = F.layer_norm(tokens, (c,))
        enc = self.encoder(tokens)
        slots: torch.Tensor | None = None
        losses, masks = [], []
        for t in range(s):
            slots, _ = self.slots(enc[:, t], slots)
            recon, alpha = self.decoder(slots)
            losses.append(F.mse_loss(recon, target[:, t]))
            masks.append(alpha.reshape(b, -1, h, w))
        return torch.stack(losses).mean(), torch.stack(masks, dim=1)
