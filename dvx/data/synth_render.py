"""The synthetic dynamic world's generator: seeded procedural videos with exact ground truth (numpy only).

A video is a pure function of ``(seed, index, WorldParams)``: :func:`plan_video` draws what the video
contains (motion class, camera pan, sprites with shape, depth, size, position, velocity, colours) and
:func:`render` draws the textures and renders frames, instance ids, semantic ids, depth and point tracks.
Everything moves by whole pixels per frame, so motion is exact (a brick-wall frame t+1 *is* frame t
shifted by the pan) and every label is exact (no interpolation, hard-edged shapes).

Geometry: the camera looks at a fronto-parallel textured wall at depth :data:`BACKGROUND_DEPTH`; sprites
are flat textured shapes parallel to it, nearer to the camera, their size inversely proportional to their
depth. A pan is an image-plane translation of the whole scene (a small rotation about the optical centre),
so sprites fixed in the world move exactly with the wall (no parallax). Coordinates are 0-based pixel
indices (x = column, y = row) of pixel centres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dvx.errors import ConfigError

GENERATOR_VERSION = 1

#: motion classes, decidable from motion alone (label = index in this tuple)
MOTION_CLASSES: tuple[str, ...] = (
    "static",  # nothing moves
    "pan_left",  # the camera pans left: the whole image content moves right, sprites fixed in the world
    "pan_right",  # the camera pans right: the whole image content moves left
    "object_left",  # static camera; the actor (instance 1) moves left, other sprites are still
    "object_right",
    "object_up",
    "object_down",
)
#: camera x velocity sign of the pan classes (world -> image: x_img = x_world - camera_x(t))
PAN_SIGN: dict[str, int] = {"pan_left": -1, "pan_right": 1}
#: image-plane direction (dx, dy) of the actor in the object classes
OBJECT_DIRECTION: dict[str, tuple[int, int]] = {
    "object_left": (-1, 0),
    "object_right": (1, 0),
    "object_up": (0, -1),
    "object_down": (0, 1),
}
#: the directions a non-actor sprite may take in a world where every sprite moves (8-neighbourhood)
DIRECTIONS: tuple[tuple[int, int], ...] = (
    (-1, -1),
    (0, -1),
    (1, -1),
    (-1, 0),
    (1, 0),
    (-1, 1),
    (0, 1),
    (1, 1),
)
SHAPE_CLASSES: tuple[str, ...] = ("disc", "square", "triangle", "cross")
#: semantic ids: 0 background, then the shapes (the same ids are the Cityscapes-layout train ids)
SEMANTIC_CLASSES: tuple[str, ...] = ("background", *SHAPE_CLASSES)
BACKGROUNDS: tuple[str, ...] = ("bricks", "noise", "stripes")

BACKGROUND_DEPTH = 20.0
MIN_DEPTH, MAX_DEPTH = 3.0, 12.0
POINTS_PER_SPRITE = 15
BACKGROUND_POINTS = 32
MAX_SPRITE_SCALE = 4.0
MIN_SIDE = 8  # a sprite is never smaller than 8x8 px (>= 15 tracked points fit on every shape)

#: each shape class has its own procedural texture: (pattern, colour A, colour B)
SHAPE_LOOK: dict[str, tuple[str, tuple[int, int, int], tuple[int, int, int]]] = {
    "disc": ("rings", (200, 60, 50), (240, 150, 60)),
    "square": ("checker", (40, 70, 200), (120, 170, 240)),
    "triangle": ("stripes", (40, 160, 60), (170, 220, 80)),
    "cross": ("dots", (150, 50, 170), (230, 140, 220)),
}
#: background tint per motion class for colour-coded worlds
TINTS: dict[str, tuple[int, int, int]] = {
    "static": (235, 235, 235),
    "pan_left": (230, 40, 40),
    "pan_right": (40, 200, 60),
    "object_left": (50, 80, 230),
    "object_right": (230, 210, 40),
    "object_up": (220, 50, 200),
    "object_down": (40, 210, 220),
}
TINT_WEIGHT = 0.65  # colour-coded background = (1 - w) * texture + w * tint

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class WorldParams:
    """What every video of a world shares (a video is a function of (seed, index, WorldParams))."""

    frames: int = 16
    height: int = 128
    width: int = 128
    colour_coded: bool = False
    brick_wall_every: int = 2  # every k-th video of each pan class is a brick wall (0: none)
    speed: int = 0  # the most px per frame of a moving actor or pan (0: min(height, width) / 32, rounded)
    sprite_scale: float = 1.0  # sprite sizes x this (1: a sprite at depth 5 spans 18% of the shorter side)
    all_sprites_move: bool = False  # object_* classes: the other sprites move too (own directions)

    def __post_init__(self) -> None:
        if self.frames < 2:
            raise ConfigError(f"a synthetic video needs at least 2 frames, got {self.frames}")
        if min(self.height, self.width) < 32:
            raise ConfigError(f"synthetic frames must be at least 32x32 px, got {self.height}x{self.width}")
        if self.speed < 0:
            raise ConfigError(f"speed must be >= 0 px per frame (0: the default), got {self.speed}")
        if not 0.0 < self.sprite_scale <= MAX_SPRITE_SCALE:  # NaN too
            raise ConfigError(f"sprite scale must lie in (0, {MAX_SPRITE_SCALE:g}], got {self.sprite_scale}")
        if self.brick_wall_every < 0:
            raise ConfigError(
                f"brick_wall_every must be >= 0 (0 = no brick walls), got {self.brick_wall_every}"
            )


@dataclass(frozen=True)
class SpritePlan:
    """One sprite: a flat textured shape at a depth, moving by whole pixels per frame (world coordinates)."""

    instance: int  # 1-based object id (DAVIS object k, MOVi segmentation id k); 1 = the actor, the nearest
    shape: str
    depth: float
    side: int  # the shape's bounding square, px
    xy: tuple[int, int]  # top-left corner in world pixels at frame 0
    velocity: tuple[int, int]  # world px per frame (the actor of object_* classes; all with all_sprites_move)
    colours: tuple[RGB, RGB]
    period: int  # texture pattern period, px

    @property
    def semantic_id(self) -> int:
        return SEMANTIC_CLASSES.index(self.shape)

    def to_json(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "class": self.shape,
            "semantic_id": self.semantic_id,
            "depth": self.depth,
            "side": self.side,
            "xy": list(self.xy),
            "velocity": list(self.velocity),
            "colours": [list(c) for c in self.colours],
            "period": self.period,
        }


@dataclass(frozen=True)
class VideoPlan:
    """Everything a video contains, drawn from (seed, index) before any pixel is rendered."""

    seed: int
    index: int
    motion_class: str
    kind: str  # "scene" or "brick_wall"
    background: str
    camera_velocity: int  # camera x velocity in px per frame (the image content moves by -camera_velocity)
    camera_x0: int  # camera x at frame 0 (world column shown at image column 0)
    sprites: tuple[SpritePlan, ...]

    @property
    def label(self) -> int:
        return MOTION_CLASSES.index(self.motion_class)

    def camera_x(self, t: int) -> int:
        return self.camera_x0 + self.camera_velocity * t

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "index": self.index,
            "motion_class": self.motion_class,
            "label": self.label,
            "kind": self.kind,
            "background": self.background,
            "camera_velocity": self.camera_velocity,
            "camera_x0": self.camera_x0,
            "sprites": [s.to_json() for s in self.sprites],
        }


@dataclass
class Tracks:
    """Point tracks: 2-D positions over time of points fixed on sprites and on the background."""

    xy: np.ndarray  # (F, N, 2) float32, x then y, 0-based pixel coordinates (may lie outside the frame)
    occluded: np.ndarray  # (F, N) bool: hidden by a nearer surface or outside the frame
    owner: np.ndarray  # (N,) int32: instance id the point lies on (0 = background)
    frame_names: list[str]

    @property
    def visible(self) -> np.ndarray:
        return ~self.occluded


@dataclass
class SyntheticVideo:
    """A rendered video with its exact ground truth."""

    plan: VideoPlan
    frames: np.ndarray  # (F, H, W, 3) uint8 RGB
    instances: np.ndarray  # (F, H, W) uint8, 0 background, k = sprite k
    semantic: np.ndarray  # (F, H, W) uint8 ids into SEMANTIC_CLASSES
    depth: np.ndarray  # (F, H, W) float32
    tracks: Tracks
    sprite_pixels: list[
        tuple[np.ndarray, np.ndarray]
    ]  # per sprite: texture (s, s, 3) uint8, shape (s, s) bool

    @property
    def sprite_mean_rgb(self) -> np.ndarray:
        """(K, 3) float: each sprite's mean texture colour over its shape."""
        if not self.sprite_pixels:
            return np.zeros((0, 3))
        return np.stack([tex[mask].mean(axis=0) for tex, mask in self.sprite_pixels])

    def footprints(self, t: int) -> np.ndarray:
        """(K, H, W) bool: where each sprite's shape lies at frame t, ignoring occlusion (amodal masks)."""
        _, h, w, _ = self.frames.shape
        out = np.zeros((len(self.plan.sprites), h, w), dtype=bool)
        cx = self.plan.camera_x(t)
        for k, (sprite, (_, mask)) in enumerate(zip(self.plan.sprites, self.sprite_pixels, strict=True)):
            x, y = _image_xy(sprite, t, cx)
            dst, src = _clip(x, y, sprite.side, h, w)
            if dst is not None:
                out[k][dst] = mask[src]
        return out


# ---- planning ---------------------------------------------------------------------------------------
def video_kind(index: int, params: WorldParams) -> str:
    """Every ``brick_wall_every``-th video of each pan class is a brick wall (the last of each group)."""
    motion = MOTION_CLASSES[index % len(MOTION_CLASSES)]
    ordinal = index // len(MOTION_CLASSES)
    k = params.brick_wall_every
    return "brick_wall" if motion in PAN_SIGN and k > 0 and ordinal % k == k - 1 else "scene"


def max_speed(params: WorldParams) -> int:
    """The most px per frame of a moving actor or camera pan: ``speed``, or by default 1/32 of the shorter
    side (2 px at 64x96, 4 px at 128x192)."""
    return params.speed or max(1, round(min(params.height, params.width) / 32))


def plan_video(seed: int, index: int, params: WorldParams) -> VideoPlan:
    """Draw a video's content; the motion class is ``MOTION_CLASSES[index % 7]``."""
    if index < 0:
        raise ConfigError(f"video index must be >= 0, got {index}")
    rng = np.random.default_rng([seed, index, 0])
    motion = MOTION_CLASSES[index % len(MOTION_CLASSES)]
    kind = video_kind(index, params)
    cam_v, cam_x0 = 0, 0
    if motion in PAN_SIGN:
        speed = int(rng.integers(1, max_speed(params) + 1))
        cam_v = PAN_SIGN[motion] * speed
        cam_x0 = speed * (params.frames - 1) if cam_v < 0 else 0
    background = "bricks" if kind == "brick_wall" else BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    sprites = () if kind == "brick_wall" else _plan_sprites(rng, motion, params, cam_x0)
    return VideoPlan(seed, index, motion, kind, background, cam_v, cam_x0, sprites)


def sprite_side(depth: float, params: WorldParams) -> int:
    """Apparent size is inversely proportional to depth (a monocular depth cue)."""
    side = round(0.18 * params.sprite_scale * min(params.height, params.width) * 5.0 / depth)
    return int(np.clip(side, MIN_SIDE, min(params.height, params.width) // 2))


def _plan_sprites(
    rng: np.random.Generator, motion: str, params: WorldParams, cam_x0: int
) -> tuple[SpritePlan, ...]:
    n = int(rng.integers(1, 4))
    depths = np.sort(rng.uniform(MIN_DEPTH, MAX_DEPTH, n))
    depths = np.concatenate([depths[:1], rng.permutation(depths[1:])])  # instance 1 (the actor) is nearest
    shapes = rng.integers(len(SHAPE_CLASSES), size=n)
    h, w, f = params.height, params.width, params.frames
    out = []
    for k in range(n):
        depth = round(float(depths[k]), 3)
        side = sprite_side(depth, params)
        vx = vy = 0
        if motion in OBJECT_DIRECTION and (k == 0 or params.all_sprites_move):
            dx, dy = OBJECT_DIRECTION[motion] if k == 0 else DIRECTIONS[int(rng.integers(len(DIRECTIONS)))]
            extent = min(w if dx else h, h if dy else w)
            vmax = max(1, min(max_speed(params), (extent - side) // (f - 1)))
            speed = int(rng.integers(1, vmax + 1))
            vx, vy = dx * speed, dy * speed
        x = _start(rng, w - side, vx * (f - 1))
        y = _start(rng, h - side, vy * (f - 1))
        shape = SHAPE_CLASSES[int(shapes[k])]
        _, base_a, base_b = SHAPE_LOOK[shape]
        jitter = rng.integers(-25, 26, size=(2, 3))
        colours = tuple(
            tuple(int(v) for v in np.clip(np.asarray(base) + j, 0, 255))
            for base, j in zip((base_a, base_b), jitter, strict=True)
        )
        period = max(2, side // 5) + int(rng.integers(0, 2))
        out.append(
            SpritePlan(k + 1, shape, depth, side, (x + cam_x0, y), (vx, vy), colours, period)  # type: ignore[arg-type]
        )
    return tuple(out)


def _start(rng: np.random.Generator, room: int, path: int) -> int:
    """A start coordinate in [0, room] such that a displacement ``path`` stays in [0, room] when it can."""
    lo, hi = (0, room - path) if path >= 0 else (-path, room)
    if lo > hi:  # the path is longer than the room: start where it leaves the frame last
        lo = hi = 0 if path >= 0 else room
    return int(rng.integers(lo, hi + 1))


# ---- textures ---------------------------------------------------------------------------------------
def _muted(rng: np.random.Generator) -> np.ndarray:
    grey = rng.uniform(60, 200)
    return np.clip(grey + rng.uniform(-30, 30, 3), 0, 255)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Bilinearly interpolated value noise in [0, 1], one value per ``cell`` px."""
    cell = max(cell, 1.0)
    grid = rng.random((int(h / cell) + 2, int(w / cell) + 2))
    fy, fx = np.arange(h) / cell, np.arange(w) / cell
    y0, x0 = fy.astype(int), fx.astype(int)
    ty, tx = (fy - y0)[:, None], (fx - x0)[None, :]
    a, b = grid[y0][:, x0], grid[y0][:, x0 + 1]
    c, d = grid[y0 + 1][:, x0], grid[y0 + 1][:, x0 + 1]
    return (a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty


def _mix(weight: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a * (1 - weight[..., None]) + b * weight[..., None]


def background_texture(rng: np.random.Generator, kind: str, h: int, w: int, scale: int) -> np.ndarray:
    """(h, w, 3) uint8 world texture; ``scale`` = min(frame height, width) sets the pattern sizes."""
    if kind == "bricks":
        bh = max(4, round(scale / 10))
        bw = 2 * bh + int(rng.integers(0, bh // 2 + 1))
        mortar = max(1, bh // 6)
        yy, xx = np.mgrid[0:h, 0:w]
        row = yy // bh
        xs = xx + (row % 2) * (bw // 2)
        col = xs // bw
        brick = np.array([rng.uniform(130, 180), rng.uniform(55, 90), rng.uniform(35, 65)])
        jitter = rng.normal(0, 12, size=(row.max() + 1, col.max() + 1, 1)) + rng.normal(0, 4, (1, 1, 3))
        img = brick + jitter[row, col]
        in_mortar = (yy % bh < mortar) | (xs % bw < mortar)
        img[in_mortar] = rng.uniform(185, 215)
        img = img + rng.normal(0, 6, size=(h, w, 1))
    elif kind == "noise":
        n = 0.65 * _smooth_noise(rng, h, w, scale / 6) + 0.35 * _smooth_noise(rng, h, w, scale / 20)
        img = _mix(n, _muted(rng), _muted(rng)) + rng.normal(0, 4, size=(h, w, 1))
    elif kind == "stripes":
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(scale / 12, scale / 5)
        yy, xx = np.mgrid[0:h, 0:w]
        phase = 2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period
        n = np.clip(2 * np.sin(phase + rng.uniform(0, 2 * np.pi)), -1, 1) * 0.5 + 0.5
        img = _mix(n, _muted(rng), _muted(rng)) + rng.normal(0, 4, size=(h, w, 1))
    else:
        raise ConfigError(f"unknown background {kind!r}; known: {', '.join(BACKGROUNDS)}")
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def tint(texture: np.ndarray, colour: RGB) -> np.ndarray:
    out = (1 - TINT_WEIGHT) * texture + TINT_WEIGHT * np.asarray(colour, dtype=np.float64)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def shape_mask(shape: str, side: int) -> np.ndarray:
    v, u = np.mgrid[0:side, 0:side]
    c = (side - 1) / 2
    if shape == "disc":
        return (u - c) ** 2 + (v - c) ** 2 <= (side / 2) ** 2
    if shape == "square":
        return np.ones((side, side), dtype=bool)
    if shape == "triangle":  # apex up, base on the bottom row
        return np.abs(u - c) <= (v + 1) / 2
    if shape == "cross":
        arm = max(side / 6, 1.5)
        return (np.abs(u - c) <= arm) | (np.abs(v - c) <= arm)
    raise ConfigError(f"unknown shape {shape!r}; known: {', '.join(SHAPE_CLASSES)}")


def sprite_texture(rng: np.random.Generator, sprite: SpritePlan) -> tuple[np.ndarray, np.ndarray]:
    """(texture (s, s, 3) uint8, shape mask (s, s) bool): the shape class's pattern in its colours."""
    s, p = sprite.side, sprite.period
    v, u = np.mgrid[0:s, 0:s]
    c = (s - 1) / 2
    pattern = SHAPE_LOOK[sprite.shape][0]
    if pattern == "rings":
        n = (np.sqrt((u - c) ** 2 + (v - c) ** 2) // p) % 2
    elif pattern == "checker":
        n = (u // p + v // p) % 2
    elif pattern == "stripes":
        n = ((u + v) // p) % 2
    else:  # dots
        q = max(p, 3)
        n = ((u % q - (q - 1) / 2) ** 2 + (v % q - (q - 1) / 2) ** 2 <= (q / 3) ** 2).astype(float)
    a, b = (np.asarray(col, dtype=np.float64) for col in sprite.colours)
    img = _mix(n.astype(np.float64), a, b) + rng.normal(0, 4, size=(s, s, 1))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), shape_mask(sprite.shape, s)


# ---- rendering --------------------------------------------------------------------------------------
def _image_xy(sprite: SpritePlan, t: int, camera_x: int) -> tuple[int, int]:
    return sprite.xy[0] + sprite.velocity[0] * t - camera_x, sprite.xy[1] + sprite.velocity[1] * t


def _clip(x: int, y: int, side: int, h: int, w: int) -> tuple[Any, Any]:
    """(destination slices, source slices) of a side x side patch at (x, y) clipped to an h x w frame."""
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
    if x0 >= x1 or y0 >= y1:
        return None, None
    return (slice(y0, y1), slice(x0, x1)), (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x))


def render(plan: VideoPlan, params: WorldParams) -> SyntheticVideo:
    """Render a planned video: frames plus exact instance, semantic, depth and track ground truth."""
    f, h, w = params.frames, params.height, params.width
    span = abs(plan.camera_velocity) * (f - 1)
    world = background_texture(
        np.random.default_rng([plan.seed, plan.index, 1]), plan.background, h, w + span, min(h, w)
    )
    if params.colour_coded:
        world = tint(world, TINTS[plan.motion_class])
    pixels = [
        sprite_texture(np.random.default_rng([plan.seed, plan.index, 2, s.instance]), s) for s in plan.sprites
    ]
    frames = np.empty((f, h, w, 3), dtype=np.uint8)
    instances = np.zeros((f, h, w), dtype=np.uint8)
    depth = np.full((f, h, w), BACKGROUND_DEPTH, dtype=np.float32)
    far_to_near = sorted(range(len(plan.sprites)), key=lambda k: -plan.sprites[k].depth)
    for t in range(f):
        cx = plan.camera_x(t)
        frames[t] = world[:, cx : cx + w]
        for k in far_to_near:
            sprite = plan.sprites[k]
            tex, mask = pixels[k]
            x, y = _image_xy(sprite, t, cx)
            dst, src = _clip(x, y, sprite.side, h, w)
            if dst is None:
                continue
            m = mask[src]
            frames[t][dst][m] = tex[src][m]
            instances[t][dst][m] = sprite.instance
            depth[t][dst][m] = sprite.depth
    lut = np.zeros(256, dtype=np.uint8)
    for sprite in plan.sprites:
        lut[sprite.instance] = sprite.semantic_id
    tracks = _tracks(plan, params, pixels, instances)
    return SyntheticVideo(plan, frames, instances, lut[instances], depth, tracks, pixels)


def _tracks(
    plan: VideoPlan, params: WorldParams, pixels: list[tuple[np.ndarray, np.ndarray]], instances: np.ndarray
) -> Tracks:
    """POINTS_PER_SPRITE points per sprite (sprite order), then BACKGROUND_POINTS points on the wall."""
    rng = np.random.default_rng([plan.seed, plan.index, 3])
    f, h, w = params.frames, params.height, params.width
    starts, velocities, owners = [], [], []
    for sprite, (_, mask) in zip(plan.sprites, pixels, strict=True):
        vv, uu = np.nonzero(mask)
        pick = rng.choice(len(vv), size=min(POINTS_PER_SPRITE, len(vv)), replace=False)
        starts.append(np.stack([uu[pick] + sprite.xy[0], vv[pick] + sprite.xy[1]], axis=1))
        velocities.append(np.broadcast_to(sprite.velocity, (len(pick), 2)))
        owners.append(np.full(len(pick), sprite.instance))
    flat = rng.choice(h * w, size=min(BACKGROUND_POINTS, h * w), replace=False)
    starts.append(np.stack([flat % w + plan.camera_x0, flat // w], axis=1))
    velocities.append(np.zeros((len(flat), 2), dtype=int))
    owners.append(np.zeros(len(flat), dtype=int))
    start, vel, owner = np.concatenate(starts), np.concatenate(velocities), np.concatenate(owners)
    t = np.arange(f)[:, None, None]
    camera = np.stack([[plan.camera_x(i), 0] for i in range(f)])[:, None, :]
    xy = start[None] + vel[None] * t - camera  # (F, N, 2) integer pixel positions
    x, y = xy[..., 0], xy[..., 1]
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    seen = np.zeros_like(inside)
    ti = np.broadcast_to(np.arange(f)[:, None], inside.shape)
    seen[inside] = instances[ti[inside], y[inside], x[inside]] == np.broadcast_to(owner, inside.shape)[inside]
    names = [f"{i:05d}" for i in range(f)]
    return Tracks(xy.astype(np.float32), ~seen, owner.astype(np.int32), names)


def generate_video(seed: int, index: int, params: WorldParams | None = None) -> SyntheticVideo:
    """The video ``index`` of the world ``seed``: the same call always gives identical arrays."""
    params = params or WorldParams()
    return render(plan_video(seed, index, params), params)
