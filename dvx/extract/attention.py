"""Attention query/key features: q and k of every self-attention layer, captured as the attention uses them.

**What is captured.** For each self-attention layer of a denoiser (UNet spatial and temporal transformer
blocks, DiT self-attention; cross-attention layers are skipped, their keys are text or image-embedding
tokens), the ``query`` and ``key`` tensors handed to ``torch.nn.functional.scaled_dot_product_attention``
while that layer runs: after every projection, norm (``norm_q``/``norm_k``: Wan's RMSNorm across heads,
SD3.5's per-head norms) and rotary embedding (Wan) the model applies, exactly what the attention
multiplies. diffusers' processors (``AttnProcessor2_0``, ``JointAttnProcessor2_0``, ``WanAttnProcessor``
through the native ``dispatch_attention_fn`` backend) all call that function; it is wrapped only while a
capture is active and only records for the layers asked for, in the same forward as the hidden-state
blocks (no extra forward). Another attention backend (``DIFFUSERS_ATTN_BACKEND=flash`` ...) bypasses it,
and a capture then fails with a one-line error rather than storing nothing.

**Token layout -> stored layout.** q/k arrive as (batch, heads, tokens, head_dim); they are stored like
every block, (frames, C, h, w) with C = heads x head_dim in head-major order, so head i is channels
``[i d, (i + 1) d)`` and a per-head block ``<name>.h<i>`` is exactly that slice:

- DiT (SD3, Wan): the image/video tokens (the first tokens of SD3's joint attention, whose keys are the
  concatenation [image tokens, text tokens]), reshaped to the patch grid like the ``layer.N`` blocks;
- UNet spatial attention: tokens are the row-major positions of the transformer's (h, w) input;
- UNet temporal attention (SVD ``temporal_transformer_blocks``, ModelScope ``temp_attentions`` and its
  ``transformer_in``): the attention runs over frames, one sequence per position (batch index
  ``b * h w + y w + x``, token = frame); it is mapped back to one (C, h, w) map per frame.

**Names** (``<owner>...<attn>.<q|k>[.h<i>]``, unambiguous whatever a block holds; docs/models.md):

- UNet: ``<block>.s<i>.<j>.<attn>`` for transformer block j of the i-th spatial transformer of
  ``<block>`` (``down.N``, ``mid``, ``up.N``; diffusers ``attentions[i].transformer_blocks[j]``);
  ``<block>.t<i>.<j>.<attn>`` for the temporal ones (SVD ``attentions[i].temporal_transformer_blocks[j]``,
  ModelScope ``temp_attentions[i].transformer_blocks[j]``); ModelScope's ``transformer_in`` is
  ``in.t0.<j>.<attn>``; ``<attn>`` is diffusers' attribute (``attn1``, ``attn2``), e.g. ``up.1.s0.0.attn1.q``;
- DiT: ``layer.<N>.<attn>`` for ``transformer_blocks[N].attn`` (SD3) / ``blocks[N].attn1`` (Wan), e.g.
  ``layer.17.attn1.k``.

Layer lists come from the model config alone: the denoiser class is built on the ``meta`` device (no
weights, no memory) and its modules are walked; a self-attention module no naming rule covers is an error,
so a new architecture is noticed rather than silently skipped.
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dvx.errors import ConfigError

QK = ("q", "k")
LAYOUTS = ("tokens", "spatial", "temporal")

_BLOCK = r"(?P<blk>down_blocks\.\d+|up_blocks\.\d+|mid_block)"
_ATTN = r"(?P<attn>attn\d*)"
# module path -> (name, owner block, layout, grid module path); groups as in the patterns
_RULES: tuple[tuple[re.Pattern[str], str, str, str, str | None], ...] = (
    (
        re.compile(rf"{_BLOCK}\.attentions\.(?P<i>\d+)\.transformer_blocks\.(?P<j>\d+)\.{_ATTN}"),
        "{blk}.s{i}.{j}.{attn}",
        "{blk}",
        "spatial",
        "{blk_path}.attentions.{i}",
    ),
    (
        re.compile(rf"{_BLOCK}\.attentions\.(?P<i>\d+)\.temporal_transformer_blocks\.(?P<j>\d+)\.{_ATTN}"),
        "{blk}.t{i}.{j}.{attn}",
        "{blk}",
        "temporal",
        "{blk_path}.attentions.{i}",
    ),
    (
        re.compile(rf"{_BLOCK}\.temp_attentions\.(?P<i>\d+)\.transformer_blocks\.(?P<j>\d+)\.{_ATTN}"),
        "{blk}.t{i}.{j}.{attn}",
        "{blk}",
        "temporal",
        "{blk_path}.temp_attentions.{i}",
    ),
    (
        re.compile(rf"transformer_in\.transformer_blocks\.(?P<j>\d+)\.{_ATTN}"),
        "in.t0.{j}.{attn}",
        "down.0",  # runs before the first down block
        "temporal",
        "transformer_in",
    ),
    (
        re.compile(rf"(?:transformer_blocks|blocks)\.(?P<n>\d+)\.{_ATTN}"),
        "layer.{n}.{attn}",
        "layer.{n}",
        "tokens",
        None,
    ),
)


def _short(block_path: str) -> str:
    """``down_blocks.1`` -> ``down.1``, ``mid_block`` -> ``mid`` (dvx's hidden-state block names)."""
    return "mid" if block_path == "mid_block" else block_path.replace("_blocks", "")


@dataclass(frozen=True)
class AttentionLayer:
    """One self-attention layer whose q and k can be stored."""

    name: str  # e.g. "up.1.s0.0.attn1", "layer.17.attn1"
    path: str  # module path inside the denoiser
    owner: str  # the hidden-state block it runs in (the forward may stop after it)
    layout: str  # "tokens" (DiT), "spatial" or "temporal" (UNet)
    heads: int
    head_dim: int
    grid: str | None = None  # UNet: the transformer module whose input (B', C, h, w) gives (h, w)

    @property
    def blocks(self) -> list[str]:
        return [f"{self.name}.{w}" for w in QK]


@dataclass(frozen=True)
class AttentionBlock:
    """A stored q/k block: a layer, which of q/k, and one head or all."""

    layer: AttentionLayer
    which: str  # "q" or "k"
    head: int | None = None

    @property
    def name(self) -> str:
        return f"{self.layer.name}.{self.which}" + ("" if self.head is None else f".h{self.head}")


def is_self_attention(module: nn.Module) -> bool:
    return (
        hasattr(module, "to_q")
        and hasattr(module, "heads")
        and not getattr(module, "is_cross_attention", True)
    )


def name_layers(model: nn.Module) -> list[AttentionLayer]:
    """Every self-attention layer of a diffusers denoiser, named by :data:`_RULES`, in execution order."""
    layers = []
    for path, module in model.named_modules():
        if not is_self_attention(module):
            continue
        for pattern, name, owner, layout, grid in _RULES:
            m = pattern.fullmatch(path)
            if m is None:
                continue
            groups = {k: v for k, v in m.groupdict().items() if v is not None}
            if "blk" in groups:
                groups["blk_path"] = groups["blk"]
                groups["blk"] = _short(groups["blk"])
            heads = int(module.heads)
            layers.append(
                AttentionLayer(
                    name=name.format(**groups),
                    path=path,
                    owner=owner.format(**groups),
                    layout=layout,
                    heads=heads,
                    head_dim=int(module.to_q.out_features) // heads,
                    grid=grid.format(**groups) if grid else None,
                )
            )
            break
        else:
            raise ConfigError(
                f"{type(model).__name__}: self-attention module {path!r} has no dvx block name "
                "(an architecture dvx does not know yet)"
            )
    return sorted(layers, key=_execution_rank)  # stable: module order within an owner block


def _execution_rank(layer: AttentionLayer) -> tuple[int, int]:
    """UNets run down blocks, mid, then up blocks (diffusers registers mid after up); DiT layers in order."""
    kind, _, idx = layer.owner.partition(".")
    return {"down": 0, "mid": 1, "up": 2}.get(kind, 3), int(idx) if idx.isdigit() else 0


def layers_from_config(folder: Path) -> list[AttentionLayer]:
    """The attention layers of the diffusers model saved in ``folder`` (its config.json), built on the meta
    device: no weights are read and no memory is allocated."""
    import diffusers

    cls_name = json.loads((folder / "config.json").read_text()).get("_class_name")
    cls = getattr(diffusers, str(cls_name), None)
    if cls is None:
        raise ConfigError(f"{folder}/config.json names no diffusers model class ({cls_name!r})")
    with torch.device("meta"):
        model = cls.from_config(cls.load_config(folder))
    return name_layers(model)


def _matches(pattern: str, name: str) -> bool:
    """Component-wise glob: ``layer.*.attn1.q`` matches ``layer.3.attn1.q`` but ``layer.*`` (two
    components) matches no four-component attention name, so hidden-state globs keep their meaning."""
    parts, pats = name.split("."), pattern.split(".")
    return len(parts) == len(pats) and all(
        fnmatch.fnmatchcase(n, p) for n, p in zip(parts, pats, strict=True)
    )


class AttentionIndex:
    """A model's attention layers and the q/k block names they give, with name resolution."""

    def __init__(self, layers: Sequence[AttentionLayer]) -> None:
        self.layers = list(layers)
        self._by_name = {layer.name: layer for layer in self.layers}

    def __bool__(self) -> bool:
        return bool(self.layers)

    @property
    def block_names(self) -> list[str]:
        """Every q/k block (all heads), in layer order."""
        return [b for layer in self.layers for b in layer.blocks]

    def parse(self, name: str) -> AttentionBlock | None:
        """``<layer>.<q|k>`` or ``<layer>.<q|k>.h<i>`` -> the block; None when it names no attention block.
        A head index beyond the layer's heads is an error."""
        m = re.fullmatch(r"(?P<layer>.+)\.(?P<which>[qk])(?:\.h(?P<head>\d+))?", name)
        layer = self._by_name.get(m["layer"]) if m else None
        if m is None or layer is None:
            return None
        head = None if m["head"] is None else int(m["head"])
        if head is not None and head >= layer.heads:
            raise ConfigError(
                f"attention block {name}: layer {layer.name} has {layer.heads} heads (h0-h{layer.heads - 1})"
            )
        return AttentionBlock(layer, m["which"], head)

    def match(self, pattern: str) -> list[str]:
        """q/k block names (all heads) matching ``pattern`` component-wise; an exact per-head name
        (``...q.h3``) matches itself."""
        if self.parse(pattern) is not None:
            return [pattern]
        return [b for b in self.block_names if _matches(pattern, b)]

    def ordered(self, names: Iterable[str]) -> list[str]:
        """q/k block names in layer order (q before k, all heads before single heads, heads ascending)."""
        pos = {layer.name: i for i, layer in enumerate(self.layers)}

        def key(name: str) -> tuple[int, int, int]:
            block = self.parse(name)
            assert block is not None
            return pos[block.layer.name], QK.index(block.which), -1 if block.head is None else block.head

        return sorted(set(names), key=key)

    def expand(self, names: Sequence[str], heads: Sequence[int] | None) -> list[str]:
        """With ``heads``, each all-heads q/k name becomes its per-head names ``<name>.h<i>``."""
        if not heads:
            return list(names)
        out = []
        for name in names:
            block = self.parse(name)
            assert block is not None
            if block.head is not None:
                out.append(name)
                continue
            bad = [h for h in heads if not 0 <= h < block.layer.heads]
            if bad:
                raise ConfigError(
                    f"--heads {','.join(map(str, heads))}: layer {block.layer.name} has "
                    f"{block.layer.heads} heads (0-{block.layer.heads - 1})"
                )
            out += [f"{name}.h{h}" for h in heads]
        return out


def to_block_layout(x: torch.Tensor, layer: AttentionLayer, grid: tuple[int, int] | None) -> torch.Tensor:
    """(B', heads, N, d) q or k -> the layout of the family's hidden-state block outputs: (B, N, C) tokens
    for DiTs, (B x frames, C, h, w) maps for UNets."""
    b, heads, n, d = x.shape
    tokens = x.permute(0, 2, 1, 3).reshape(b, n, heads * d)
    if layer.layout == "tokens":
        return tokens
    assert grid is not None
    h, w = grid
    if layer.layout == "spatial":  # (B', h w, C): B' = images (x frames), tokens = positions
        return tokens.reshape(b, h, w, -1).permute(0, 3, 1, 2)
    # temporal: B' = batch x positions, tokens = frames
    batch = b // (h * w)
    return tokens.reshape(batch, h, w, n, -1).permute(0, 3, 4, 1, 2).reshape(batch * n, -1, h, w)


def head_slice(x: torch.Tensor, block: AttentionBlock) -> torch.Tensor:
    """Keep one head's channels (last axis for tokens, axis 1 for maps)."""
    if block.head is None:
        return x
    d = block.layer.head_dim
    sl = slice(block.head * d, (block.head + 1) * d)
    return x[..., sl] if block.layer.layout == "tokens" else x[:, sl]


_ACTIVE = threading.Lock()


def _first_arg(args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> torch.Tensor:
    return args[0] if args else kwargs[name]


@contextmanager
def capture_qk(root: nn.Module, blocks: Sequence[AttentionBlock]) -> Iterator[dict[str, torch.Tensor]]:
    """While active, the q/k of ``blocks``' layers are recorded as the attention computes them; on exit the
    yielded dict holds each block in the hidden-state layout (:func:`to_block_layout`, one head if asked).
    Only one capture runs at a time in a process (it wraps a torch function)."""
    import torch.nn.functional as F

    layers = {b.layer.name: b.layer for b in blocks}
    raw: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    grids: dict[str, tuple[int, int]] = {}
    current: list[tuple[str, int]] = []  # (layer running now, its number of own tokens)
    result: dict[str, torch.Tensor] = {}
    original = F.scaled_dot_product_attention

    def sdpa(*args: Any, **kwargs: Any) -> torch.Tensor:
        if current and current[-1][0] not in raw:
            name, n = current[-1]
            q, k = (_first_arg(args[i:], kwargs, key) for i, key in ((0, "query"), (1, "key")))
            raw[name] = (q[:, :, :n].detach(), k[:, :, :n].detach())
        return original(*args, **kwargs)

    def enter(name: str) -> Any:
        def hook(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            current.append((name, int(_first_arg(args, kwargs, "hidden_states").shape[1])))

        return hook

    def leave(_m: nn.Module, _args: Any, _out: Any) -> None:
        current.pop()

    def size_of(path: str) -> Any:
        def hook(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            grids[path] = tuple(_first_arg(args, kwargs, "hidden_states").shape[-2:])

        return hook

    if not _ACTIVE.acquire(blocking=False):
        raise RuntimeError("an attention capture is already running in this process")
    handles = []
    try:
        for layer in layers.values():
            module = root.get_submodule(layer.path)
            handles.append(module.register_forward_pre_hook(enter(layer.name), with_kwargs=True))
            handles.append(module.register_forward_hook(leave))
        for grid in sorted({layer.grid for layer in layers.values() if layer.grid is not None}):
            handles.append(
                root.get_submodule(grid).register_forward_pre_hook(size_of(grid), with_kwargs=True)
            )
        F.scaled_dot_product_attention = sdpa
        yield result
    finally:
        F.scaled_dot_product_attention = original
        for h in handles:
            h.remove()
        current.clear()
        _ACTIVE.release()
    missing = sorted(name for name in layers if name not in raw)
    if missing:
        raise ConfigError(
            f"attention layer(s) {', '.join(missing[:3])} ran no torch scaled_dot_product_attention: q/k "
            "capture needs diffusers' native attention backend (unset DIFFUSERS_ATTN_BACKEND)"
        )
    for block in blocks:
        layer = block.layer
        q, k = raw[layer.name]
        grid = grids.get(layer.grid) if layer.grid else None
        result[block.name] = head_slice(to_block_layout(q if block.which == "q" else k, layer, grid), block)
