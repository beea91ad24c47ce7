"""Attention q/k blocks: names from the config, equality with q/k recomputed from each module's own weights
on the same input, one forward, per-head blocks, block resolution and the store round trip."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dvx.config import ExtractConfig
from dvx.data.synthetic import SynthConfig, write_world
from dvx.errors import ConfigError, UnknownNameError
from dvx.extract.attention import AttentionLayer, is_self_attention, name_layers
from dvx.extract.base import Backbone, RunOptions
from dvx.extract.models import attention_layers_in, load_backbone, model_spec
from tests.conftest import extract_tiny
from tests.extract.backbone_checks import frames, seed_fn

CLIPS = {"tiny-svd": 14, "tiny-modelscope": 16, "tiny-wan": 9, "tiny-sd": 2, "tiny-sd3": 2}


@pytest.fixture(scope="module", params=list(CLIPS))
def backbone(request: pytest.FixtureRequest) -> Backbone:
    bb = load_backbone(model_spec(request.param), RunOptions())
    bb.ensure_loaded()
    return bb


def denoiser(bb: Backbone) -> torch.nn.Module:
    return bb.attention_root()


def test_every_self_attention_layer_is_named_from_the_config(backbone: Backbone) -> None:
    layers = backbone.attention_index.layers
    loaded = denoiser(backbone)
    # the config-only (meta device) list equals the one walked on the loaded weights
    assert name_layers(loaded) == layers == attention_layers_in(backbone.spec.name, backbone.folder)
    paths = {p for p, m in loaded.named_modules() if is_self_attention(m)}
    assert {a.path for a in layers} == paths and len({a.name for a in layers}) == len(layers)
    owners = set(backbone.block_names)
    assert all(a.owner in owners for a in layers)
    assert all(a.heads * a.head_dim == loaded.get_submodule(a.path).to_q.out_features for a in layers)


@contextmanager
def inputs_of(bb: Backbone, layers: list[AttentionLayer]) -> Iterator[dict[str, tuple[Any, dict]]]:
    """Record the (args, kwargs) each attention module is called with."""
    seen: dict[str, tuple[Any, dict]] = {}
    root = denoiser(bb)
    hooks = [
        root.get_submodule(a.path).register_forward_pre_hook(
            lambda _m, args, kwargs, n=a.name: seen.setdefault(n, (args, kwargs)), with_kwargs=True
        )
        for a in layers
    ]
    try:
        yield seen
    finally:
        for h in hooks:
            h.remove()


def reference_qk(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """q and k as the attention uses them, from the module's weights: projections, the model's q/k norms,
    and Wan's rotary embedding written out on interleaved (even, odd) channel pairs. (B', N, heads, d)."""
    x = args[0] if args else kwargs["hidden_states"]
    heads = module.heads
    q, k = module.to_q(x), module.to_k(x)
    if type(module).__name__ == "WanAttention":  # RMSNorm over all heads, then the rotation per pair
        q, k = module.norm_q(q), module.norm_k(k)
    q, k = (t.unflatten(-1, (heads, -1)) for t in (q, k))
    norm_q, norm_k = getattr(module, "norm_q", None), getattr(module, "norm_k", None)
    if type(module).__name__ == "Attention" and norm_q is not None:  # per-head norms (SD3.5-style)
        q, k = norm_q(q), norm_k(k)
    rope = args[3] if len(args) > 3 else kwargs.get("rotary_emb")
    if rope is not None:
        cos, sin = rope[0][..., 0::2], rope[1][..., 1::2]

        def rotate(t: torch.Tensor) -> torch.Tensor:
            even, odd = t[..., 0::2], t[..., 1::2]
            out = torch.empty_like(t)
            out[..., 0::2] = even * cos - odd * sin
            out[..., 1::2] = even * sin + odd * cos
            return out

        q, k = rotate(q), rotate(k)
    return q, k


def expected_map(t: torch.Tensor, layer: AttentionLayer, n_frames: int, h: int, w: int) -> torch.Tensor:
    """(B', N, heads, d) of one clip (or n_frames images) -> (frames, C, h, w), position by position."""
    c = t.shape[-2] * t.shape[-1]
    flat = t.reshape(*t.shape[:2], c)
    out = torch.empty(n_frames, c, h, w)
    for f in range(n_frames):
        for y in range(h):
            for x in range(w):
                if (
                    layer.layout == "tokens"
                ):  # a sequence per clip (video) or per image: frame-major, row-major
                    per_seq = flat.shape[1] // (h * w)
                    out[f, :, y, x] = flat[f // per_seq, ((f % per_seq) * h + y) * w + x]
                elif layer.layout == "spatial":  # one sequence per frame
                    out[f, :, y, x] = flat[f, y * w + x]
                else:  # temporal: one sequence per position, tokens are frames
                    out[f, :, y, x] = flat[y * w + x, f]
    return out


def test_qk_blocks_equal_a_reference_from_the_module_weights(backbone: Backbone) -> None:
    index = backbone.attention_index
    layers = [index.layers[0], index.layers[len(index.layers) // 2], index.layers[-1]]
    x = frames(CLIPS[backbone.spec.name], 64, 64)
    blocks = [b for a in layers for b in a.blocks]
    with inputs_of(backbone, layers) as seen:
        got = backbone.features(x, [50], blocks, seed_fn, ensemble=1)[50]
    for layer in layers:
        args, kwargs = seen[layer.name]
        q, k = reference_qk(denoiser(backbone).get_submodule(layer.path), args, kwargs)
        stored_q, stored_k = got[f"{layer.name}.q"], got[f"{layer.name}.k"]
        n_frames, _, h, w = stored_q.shape
        torch.testing.assert_close(stored_q, expected_map(q, layer, n_frames, h, w), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(stored_k, expected_map(k, layer, n_frames, h, w), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny-svd", "tiny-wan"])
def test_capture_adds_no_forward_and_leaves_hidden_states_alone(name: str) -> None:
    bb = load_backbone(model_spec(name), RunOptions())
    bb.ensure_loaded()
    calls = []
    hook = denoiser(bb).register_forward_pre_hook(lambda *_: calls.append(1))
    x = frames(CLIPS[name], 64, 64)
    hidden = [bb.block_names[-1]]
    try:
        alone = bb.features(x, [50, 200], hidden, seed_fn, ensemble=1)
        n_alone = len(calls)
        every_qk = bb.attention_index.block_names
        both = bb.features(x, [50, 200], hidden + every_qk, seed_fn, ensemble=1)
    finally:
        hook.remove()
    assert len(calls) - n_alone == n_alone == 1  # two T in one batch: one forward, with or without q/k
    for t in (50, 200):
        torch.testing.assert_close(both[t][hidden[0]], alone[t][hidden[0]], rtol=0, atol=0)
        assert set(both[t]) == {*hidden, *every_qk}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny-svd", "tiny-wan"])
def test_dvx_extract_with_qk_blocks_runs_no_extra_forward(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through `dvx extract` itself (the runner, its batching and its store writes): a video extracted with
    every q/k block (per head too) beside a hidden-state block runs the denoiser as often as the hidden
    state alone, and stores the same hidden state."""
    import dvx.extract.runner as runner

    calls: list[str] = []
    real = runner.load_backbone

    def counted(*args: Any, **kwargs: Any) -> Backbone:
        bb = real(*args, **kwargs)
        bb.ensure_loaded()
        denoiser(bb).register_forward_pre_hook(lambda *_: calls.append(name))
        return bb

    monkeypatch.setattr(runner, "load_backbone", counted)
    world = tmp_path / "world"
    write_world(SynthConfig(out=world, videos=1, frames=CLIPS[name], height=32, width=32, seed=0))
    hidden, every_qk = {
        "tiny-svd": ("up.3", ("*.*.*.*.attn1.*", "mid.*.*.attn1.*")),
        "tiny-wan": ("layer.3", ("layer.*.attn1.*",)),
    }[name]
    _, alone = extract_tiny(name, "synthetic", world, tmp_path / "a", (hidden,), timesteps=(50, 200))
    n_alone = len(calls)
    _, both = extract_tiny(
        name, "synthetic", world, tmp_path / "b", (hidden, *every_qk), timesteps=(50, 200), heads=(0, 1)
    )
    assert n_alone >= 1 and len(calls) == 2 * n_alone
    stored = both.index().blocks()
    assert any(b.endswith(".q.h1") for b in stored) and any(b.endswith(".k.h0") for b in stored)
    for t in (50, 200):
        np.testing.assert_array_equal(
            alone.read("synth_000000", t, hidden), both.read("synth_000000", t, hidden)
        )


def test_per_head_blocks_are_channel_slices() -> None:
    bb = load_backbone(model_spec("tiny-wan"), RunOptions())
    layer = bb.attention_index.layers[1]
    names = bb.resolve_blocks([f"{layer.name}.q"], heads=[1, 0])
    assert names == [f"{layer.name}.q.h1", f"{layer.name}.q.h0"]
    got = bb.features(frames(9, 64, 64), [50], [*names, f"{layer.name}.q"], seed_fn, ensemble=1)[50]
    d = layer.head_dim
    for h in (0, 1):
        torch.testing.assert_close(
            got[f"{layer.name}.q.h{h}"], got[f"{layer.name}.q"][:, h * d : (h + 1) * d]
        )


def test_block_resolution() -> None:
    bb = load_backbone(model_spec("tiny-sd"), RunOptions())
    assert bb.resolve_blocks(["up.*"]) == ["up.0", "up.1", "up.2", "up.3"]  # hidden-state globs unchanged
    assert bb.resolve_blocks(None) == bb.block_names
    assert bb.resolve_blocks(["up.2", "up.*.*.*.attn1.k"]) == [
        "up.2",
        "up.1.s0.0.attn1.k",
        "up.1.s1.0.attn1.k",
        "up.2.s0.0.attn1.k",
        "up.2.s1.0.attn1.k",
        "up.3.s0.0.attn1.k",
        "up.3.s1.0.attn1.k",
    ]
    assert bb.resolve_blocks(["mid.s0.0.attn1.q.h7", "down.0.s0.0.attn1.q"]) == [
        "down.0.s0.0.attn1.q",
        "mid.s0.0.attn1.q.h7",
    ]
    with pytest.raises(UnknownNameError, match=r"Did you mean .up\.1\.s0\.0\.attn1\.q"):
        bb.resolve_blocks(["up.1.s0.0.attn1.qq"])
    with pytest.raises(ConfigError, match="has 8 heads"):
        bb.resolve_blocks(["mid.s0.0.attn1.q.h8"])
    with pytest.raises(ConfigError, match="has 8 heads"):
        bb.resolve_blocks(["mid.s0.0.attn1.q"], heads=[9])
    with pytest.raises(ConfigError, match="--heads keeps heads of attention"):
        bb.resolve_blocks(["up.1"], heads=[0])
    dino = load_backbone(model_spec("tiny-dinov2"), RunOptions())
    assert not dino.attention_index and dino.resolve_blocks(["layer.*"]) == dino.block_names[:-1]  # not norm


def test_capture_without_torch_sdpa_is_a_one_line_error() -> None:
    from diffusers.models.attention_processor import AttnProcessor

    bb = load_backbone(model_spec("tiny-sd"), RunOptions())
    bb.ensure_loaded()
    layer = bb.attention_index.layers[0]
    module = denoiser(bb).get_submodule(layer.path)
    before, sdpa = module.processor, torch.nn.functional.scaled_dot_product_attention
    module.set_processor(AttnProcessor())  # the classic processor: baddbmm, no scaled_dot_product_attention
    try:
        with pytest.raises(ConfigError, match="native attention backend"):
            bb.features(frames(2, 64, 64), [50], layer.blocks, seed_fn, ensemble=1)
    finally:
        module.set_processor(before)
    assert torch.nn.functional.scaled_dot_product_attention is sdpa  # the wrapper is gone again


def test_extract_stores_qk_and_head_blocks(tmp_path: Path) -> None:
    world = tmp_path / "world"
    write_world(SynthConfig(out=world, videos=1, frames=9, height=32, width=32, seed=0))
    report, group = extract_tiny(
        "tiny-wan", "synthetic", world, tmp_path / "store", ("layer.1", "layer.1.attn1.*"), heads=(1,)
    )
    assert report.blocks == ("layer.1", "layer.1.attn1.q.h1", "layer.1.attn1.k.h1")
    assert group.read("synth_000000", 50, "layer.1.attn1.q.h1").shape == (3, 12, 4, 4)
    with pytest.raises(ConfigError, match="--heads must be"):
        ExtractConfig(model="m", dataset="d", data_root=".", store=".", heads=(-1,))


def test_a_layer_map_has_its_block_input_size() -> None:
    """docs/models.md: attention runs before a block's up/downsampler, at the block's input size."""
    bb = load_backbone(model_spec("tiny-sd"), RunOptions())
    names = ["up.2", "up.2.s0.0.attn1.q", "down.1", "down.1.s0.0.attn1.k"]
    got = bb.features(frames(1, 128, 128), [50], names, seed_fn, ensemble=1)[50]
    assert [tuple(got[n].shape[-2:]) for n in names] == [(16, 16), (8, 8), (4, 4), (8, 8)]
