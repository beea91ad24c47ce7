"""The synthetic world's generator: determinism, exact motion, occlusion, depth, tracks, colour coding."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from dvx.data.synth_render import (
    BACKGROUND_DEPTH,
    BACKGROUND_POINTS,
    MOTION_CLASSES,
    OBJECT_DIRECTION,
    PAN_SIGN,
    POINTS_PER_SPRITE,
    TINTS,
    SyntheticVideo,
    WorldParams,
    generate_video,
    max_speed,
    plan_video,
    sprite_side,
    video_kind,
)
from dvx.errors import ConfigError

PARAMS = WorldParams(frames=8, height=64, width=80)
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def videos() -> list[SyntheticVideo]:
    """Two rounds of the 7 motion classes for a few seeds (round 2 holds the brick walls)."""
    return [generate_video(seed, i, PARAMS) for seed in SEEDS for i in range(14)]


def _arrays(v: SyntheticVideo) -> list[np.ndarray]:
    return [v.frames, v.instances, v.semantic, v.depth, v.tracks.xy, v.tracks.occluded, v.tracks.owner]


def test_same_seed_and_index_give_identical_arrays() -> None:
    a, b = generate_video(7, 3, PARAMS), generate_video(7, 3, PARAMS)
    assert a.plan == b.plan
    for x, y in zip(_arrays(a), _arrays(b), strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y)


def test_other_seed_or_index_gives_other_video() -> None:
    base = generate_video(7, 3, PARAMS)
    assert not np.array_equal(base.frames, generate_video(8, 3, PARAMS).frames)
    assert not np.array_equal(base.frames, generate_video(7, 10, PARAMS).frames)  # same class, next round


def test_shapes_and_dtypes(videos: list[SyntheticVideo]) -> None:
    f, h, w = PARAMS.frames, PARAMS.height, PARAMS.width
    for v in videos:
        assert v.frames.shape == (f, h, w, 3) and v.frames.dtype == np.uint8
        assert v.instances.shape == v.semantic.shape == v.depth.shape == (f, h, w)
        assert v.instances.dtype == np.uint8 and v.semantic.dtype == np.uint8 and v.depth.dtype == np.float32
        n = POINTS_PER_SPRITE * len(v.plan.sprites) + BACKGROUND_POINTS
        assert v.tracks.xy.shape == (f, n, 2) and v.tracks.occluded.shape == (f, n)
        assert v.tracks.frame_names[0] == "00000" and len(v.tracks.frame_names) == f


def test_motion_class_and_kind_follow_the_index() -> None:
    for i in range(21):
        plan = plan_video(0, i, PARAMS)
        assert plan.motion_class == MOTION_CLASSES[i % 7] and plan.label == i % 7
        is_brick = plan.motion_class in PAN_SIGN and (i // 7) % 2 == 1
        assert plan.kind == ("brick_wall" if is_brick else "scene")
    never = WorldParams(frames=8, height=64, width=80, brick_wall_every=0)
    assert all(video_kind(i, never) == "scene" for i in range(28))
    always = WorldParams(frames=8, height=64, width=80, brick_wall_every=1)
    assert video_kind(1, always) == "brick_wall" and video_kind(3, always) == "scene"


def test_brick_wall_is_a_pure_pan_without_sprites(videos: list[SyntheticVideo]) -> None:
    walls = [v for v in videos if v.plan.kind == "brick_wall"]
    assert {v.plan.motion_class for v in walls} == {"pan_left", "pan_right"}
    for v in walls:
        assert v.plan.sprites == () and v.plan.background == "bricks"
        assert not v.instances.any() and not v.semantic.any() and (v.depth == BACKGROUND_DEPTH).all()
        assert (v.tracks.owner == 0).all()
        shift = -v.plan.camera_velocity  # image content moves by minus the camera velocity
        assert shift != 0 and np.sign(shift) == -PAN_SIGN[v.plan.motion_class]
        s = abs(shift)
        for t in range(PARAMS.frames - 1):
            a, b = v.frames[t], v.frames[t + 1]
            assert not np.array_equal(a, b)
            if shift > 0:  # pan left: content moves right
                assert np.array_equal(b[:, s:], a[:, :-s])
            else:
                assert np.array_equal(b[:, :-s], a[:, s:])


def test_pan_scenes_move_everything_together(videos: list[SyntheticVideo]) -> None:
    pans = [v for v in videos if v.plan.motion_class in PAN_SIGN and v.plan.kind == "scene"]
    assert pans
    for v in pans:
        assert all(sp.velocity == (0, 0) for sp in v.plan.sprites)
        shift = -v.plan.camera_velocity
        s = abs(shift)
        for t in range(PARAMS.frames - 1):
            for arr in (v.frames, v.instances, v.depth):
                a, b = arr[t], arr[t + 1]
                assert (
                    np.array_equal(b[:, s:], a[:, :-s]) if shift > 0 else np.array_equal(b[:, :-s], a[:, s:])
                )


def _centroid(mask: np.ndarray) -> np.ndarray:
    yy, xx = np.nonzero(mask)
    return np.array([xx.mean(), yy.mean()])


def test_object_classes_move_only_the_actor_in_their_direction(videos: list[SyntheticVideo]) -> None:
    for v in videos:
        motion = v.plan.motion_class
        if motion == "static":
            assert all(np.array_equal(v.frames[0], fr) for fr in v.frames)
        if motion not in OBJECT_DIRECTION:
            continue
        assert v.plan.camera_velocity == 0
        actor, *others = v.plan.sprites
        assert actor.instance == 1 and actor.depth == min(s.depth for s in v.plan.sprites)
        assert all(o.velocity == (0, 0) for o in others)
        step = np.array(actor.velocity)
        assert np.array_equal(np.sign(step), OBJECT_DIRECTION[motion])
        # the actor is the nearest sprite, so its whole shape is visible while inside the frame
        first, last = v.footprints(0)[0], v.footprints(PARAMS.frames - 1)[0]
        if first.sum() == v.sprite_pixels[0][1].sum() == last.sum():
            moved = _centroid(v.instances[-1] == 1) - _centroid(v.instances[0] == 1)
            assert np.allclose(moved, step * (PARAMS.frames - 1))
        still = (v.instances[0] > 1) & (v.instances[-1] > 1) & (v.instances[0] == v.instances[-1])
        assert np.array_equal(v.frames[0][still], v.frames[-1][still])


def test_occlusion_follows_depth_and_depth_map_matches(videos: list[SyntheticVideo]) -> None:
    overlaps = 0
    for v in videos:
        depths = np.array([s.depth for s in v.plan.sprites] + [np.inf])
        for t in range(PARAMS.frames):
            fp = v.footprints(t)  # (K, H, W) amodal
            if not len(fp):
                continue
            covered = fp.any(axis=0)
            nearest = np.where(fp, depths[:-1, None, None], np.inf).argmin(axis=0) + 1
            assert np.array_equal(v.instances[t], np.where(covered, nearest, 0))
            overlaps += int((fp.sum(axis=0) > 1).sum())
            lut_depth = np.array([BACKGROUND_DEPTH] + [s.depth for s in v.plan.sprites], dtype=np.float32)
            assert np.array_equal(v.depth[t], lut_depth[v.instances[t]])
            lut_sem = np.array([0] + [s.semantic_id for s in v.plan.sprites])
            assert np.array_equal(v.semantic[t], lut_sem[v.instances[t]])
    assert overlaps > 0  # the fixture really exercises occlusion


def test_instance_pixels_show_their_sprite_texture(videos: list[SyntheticVideo]) -> None:
    for v in videos[:14]:
        for k, (sprite, (tex, _)) in enumerate(zip(v.plan.sprites, v.sprite_pixels, strict=True)):
            for t in (0, PARAMS.frames - 1):
                yy, xx = np.nonzero(v.instances[t] == sprite.instance)
                x0 = sprite.xy[0] + sprite.velocity[0] * t - v.plan.camera_x(t)
                y0 = sprite.xy[1] + sprite.velocity[1] * t
                assert np.array_equal(v.frames[t, yy, xx], tex[yy - y0, xx - x0])
            assert np.allclose(v.sprite_mean_rgb[k], tex[v.sprite_pixels[k][1]].mean(axis=0))


def test_tracks_land_on_their_owner_when_visible(videos: list[SyntheticVideo]) -> None:
    hidden = 0
    for v in videos:
        tr = v.tracks
        assert np.array_equal(tr.xy, np.rint(tr.xy))  # whole-pixel motion
        x, y = tr.xy[..., 0].astype(int), tr.xy[..., 1].astype(int)
        inside = (x >= 0) & (x < PARAMS.width) & (y >= 0) & (y < PARAMS.height)
        assert not (tr.visible & ~inside).any()
        t_idx = np.broadcast_to(np.arange(PARAMS.frames)[:, None], x.shape)
        under = np.full(x.shape, -1)
        under[inside] = v.instances[t_idx[inside], y[inside], x[inside]]
        owner = np.broadcast_to(tr.owner, x.shape)
        assert np.array_equal(tr.visible, under == owner)
        hidden += int((inside & tr.occluded).sum())
        # every point moves rigidly with its owner (sprite velocity) minus the camera
        for n, k in enumerate(tr.owner):
            vel = np.array(v.plan.sprites[k - 1].velocity if k else (0, 0)) - [v.plan.camera_velocity, 0]
            assert np.array_equal(np.diff(tr.xy[:, n], axis=0), np.broadcast_to(vel, (PARAMS.frames - 1, 2)))
        counts = np.bincount(tr.owner)
        assert counts[0] == BACKGROUND_POINTS and (counts[1:] == POINTS_PER_SPRITE).all()
    assert hidden > 0  # some points really are occluded by nearer surfaces


def test_colour_coding_makes_motion_classes_separable_by_mean_colour() -> None:
    coded = WorldParams(frames=4, height=48, width=48, colour_coded=True)
    tints = np.array([TINTS[c] for c in MOTION_CLASSES], dtype=float)
    means, labels = [], []
    for seed in SEEDS:
        for i in range(14):
            v = generate_video(seed, i, coded)
            means.append(v.frames.reshape(-1, 3).mean(axis=0))
            labels.append(v.plan.label)
    means_a = np.array(means)
    nearest = np.linalg.norm(means_a[:, None] - tints[None], axis=2).argmin(axis=1)
    assert np.array_equal(nearest, labels)
    class_means = np.array([means_a[np.array(labels) == c].mean(axis=0) for c in range(len(MOTION_CLASSES))])
    gaps = np.linalg.norm(class_means[:, None] - class_means[None], axis=2)
    assert gaps[~np.eye(len(MOTION_CLASSES), dtype=bool)].min() > 40
    plain = generate_video(0, 1, WorldParams(frames=4, height=48, width=48))
    assert not np.array_equal(plain.frames, generate_video(0, 1, coded).frames)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"frames": 1},
        {"height": 16},
        {"width": 31},
        {"brick_wall_every": -1},
        {"speed": -1},
        {"sprite_scale": 0.0},
        {"sprite_scale": float("nan")},
        {"sprite_scale": 5.0},
    ],
    ids=str,
)
def test_bad_params_are_config_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        WorldParams(**kwargs)


def test_negative_index_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="index"):
        plan_video(0, -1, PARAMS)


#: sha256 of 14 default videos (seed 3) made by the generator before the speed, sprite-scale and
#: all-sprites-move knobs existed: with the knobs at their defaults every world is byte-identical
DEFAULT_WORLD_SHA = "13abad94d0b51cf6d220424ae7d7ed7d22f5e75670b1703a617238e300210e66"


def _world_sha(params: WorldParams) -> str:
    m = hashlib.sha256()
    for i in range(14):
        v = generate_video(3, i, params)
        m.update(json.dumps(v.plan.to_json(), sort_keys=True).encode())
        m.update(v.frames.tobytes())
        m.update(v.tracks.xy.tobytes())
    return m.hexdigest()


def test_the_motion_and_size_knobs_at_their_defaults_leave_every_world_as_it_was() -> None:
    assert _world_sha(PARAMS) == DEFAULT_WORLD_SHA
    explicit = WorldParams(frames=8, height=64, width=80, speed=0, sprite_scale=1.0, all_sprites_move=False)
    assert _world_sha(explicit) == DEFAULT_WORLD_SHA


def test_speed_bounds_every_actor_and_pan_and_can_exceed_the_default() -> None:
    fast = WorldParams(frames=8, height=64, width=80, speed=6)
    plans = [plan_video(s, i, fast) for s in range(6) for i in range(14)]
    speeds = [abs(p.camera_velocity) for p in plans] + [
        max(map(abs, sp.velocity)) for p in plans for sp in p.sprites
    ]
    assert max(speeds) <= 6 and max(speeds) > max_speed(PARAMS) == 2


def test_sprite_scale_scales_every_sprite() -> None:
    big = WorldParams(frames=8, height=64, width=80, sprite_scale=2.0)
    for i in (0, 3, 4):
        small_plan, big_plan = plan_video(0, i, PARAMS), plan_video(0, i, big)
        for a, b in zip(small_plan.sprites, big_plan.sprites, strict=True):
            assert a.depth == b.depth
            assert b.side == sprite_side(b.depth, big) and b.side >= a.side
        assert any(b.side > a.side for a, b in zip(small_plan.sprites, big_plan.sprites, strict=True))


def test_all_sprites_move_moves_every_sprite_of_the_object_classes_and_only_there() -> None:
    every = WorldParams(frames=8, height=64, width=80, all_sprites_move=True)
    for seed in range(4):
        for i in range(14):
            v = generate_video(seed, i, every)
            motion = v.plan.motion_class
            if motion in OBJECT_DIRECTION:
                actor = v.plan.sprites[0]
                assert np.array_equal(
                    np.sign(actor.velocity), OBJECT_DIRECTION[motion]
                )  # the label still holds
                assert all(s.velocity != (0, 0) for s in v.plan.sprites)
                for k, s in enumerate(v.plan.sprites):  # each sprite's footprint moves by its velocity
                    a, b = v.footprints(0)[k], v.footprints(1)[k]
                    if a.sum() == b.sum() == v.sprite_pixels[k][1].sum():  # whole in both frames
                        assert np.allclose(_centroid(b) - _centroid(a), s.velocity)
            else:
                assert all(s.velocity == (0, 0) for s in v.plan.sprites)
