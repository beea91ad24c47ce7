"""Typed, validated configs handed from the CLI to the runners (and saved beside results)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dvx.errors import ConfigError


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(",") if v != "")
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values:
        raise ConfigError(f"{what} is empty")
    return values


def check_timesteps(ts: tuple[int, ...]) -> None:
    """Every T on the DDPM training scale, 0..999 (the one range check, for the CLI and the config)."""
    bad = [t for t in ts if not 0 <= t <= 999]
    if bad:
        raise ConfigError(
            f"timestep(s) {bad} outside 0..999 (T is on the DDPM training scale for every model)"
        )


def parse_timesteps(text: str) -> tuple[int, ...]:
    ts = parse_int_list(text, "--timesteps")
    check_timesteps(ts)
    return tuple(sorted(set(ts)))


def parse_resolution(text: str, what: str = "--resolution") -> tuple[int, int]:
    """``"HxW"`` (``256x448``, ``256X448``, ``256*448``) or a single ``N`` for N x N -> (height, width)."""
    parts = text.lower().replace("*", "x").replace(" ", "").split("x")
    try:
        h, w = (int(p) for p in (parts * 2 if len(parts) == 1 else parts))
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not HxW (e.g. 256x448)") from None
    if h <= 0 or w <= 0:
        raise ConfigError(f"{what} must be positive, got {text!r}")
    return h, w


_SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
_TIME_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB' (binary units, as parse_size reads them)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def parse_size(text: str, what: str = "size") -> int:
    """``500G``, ``1.5T``, ``200MiB``, ``1024`` (bytes; binary units) -> bytes."""
    t = text.strip().upper().replace("IB", "").replace(" ", "")
    num = t.rstrip("BKMGTP")
    unit = t[len(num) :].rstrip("B") or ""
    try:
        value = float(num)
    except ValueError:
        raise ConfigError(f"{what} must look like 500G, 1.5T or 200M, got {text!r}") from None
    if unit not in _SIZE_UNITS or value < 0:
        raise ConfigError(f"{what} must look like 500G, 1.5T or 200M, got {text!r}")
    return int(value * _SIZE_UNITS[unit])


def parse_duration(text: str, what: str = "duration") -> float:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` -> seconds."""
    t = text.strip().lower()
    unit = t[-1:] if t[-1:] in _TIME_UNITS else "s"
    num = t[:-1] if t[-1:] in _TIME_UNITS else t
    try:
        value = float(num)
    except ValueError:
        raise ConfigError(f"{what} must look like 30d, 12h, 90m or 45s, got {text!r}") from None
    if value < 0:
        raise ConfigError(f"{what} must not be negative, got {text!r}")
    return value * _TIME_UNITS[unit]


def parse_size_choice(text: str) -> tuple[tuple[int, int] | None, str | None]:
    """``--resolution``: ``HxW`` -> ((H, W), None); a preset name (``dift``, ``videowalk``, ...) -> (None,
    name); ``model`` -> (None, None), the model's own size."""
    from dvx.data.input_size import MODEL_DEFAULT, SIZE_PRESETS

    name = text.strip().lower()
    if name == MODEL_DEFAULT:
        return None, None
    if name in SIZE_PRESETS:
        return None, name
    if name and name[0].isalpha():
        known = ", ".join([MODEL_DEFAULT, *SIZE_PRESETS])
        raise ConfigError(f"--resolution {text!r} is neither HxW nor a preset ({known})")
    return parse_resolution(text), None


def parse_names(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    return names or None


@dataclass(frozen=True)
class ExtractConfig:
    """Everything ``dvx extract`` needs; feature-determining fields end up in the store's recipe."""

    model: str
    dataset: str
    data_root: str
    store: str
    timesteps: tuple[int, ...] | None = None  # None: per family (seed 002: UNets 50, DiTs 16, ViTs 0)
    blocks: tuple[str, ...] | None = None  # None: every block
    heads: tuple[int, ...] | None = None  # attention q/k blocks as these heads' blocks <name>.h<i>
    resolution: tuple[int, int] | None = None  # None: the model's default (or ``resize``)
    resize: str | None = None  # a named size instead (dvx.data.input_size: dift, dino, videowalk)
    preset: str | None = None  # the extraction preset the values were resolved from (dvx.extract.presets)
    clip_len: int | None = None  # None: the model's native clip length (video models)
    frame_stride: int = 1
    max_frames: int | None = None
    ensemble: int = 1
    seed: int = 0
    batch_size: int = 8
    device: str = "auto"
    dtype: str | None = None  # None: float32 on CPU; on CUDA bfloat16 for SD3/Wan, float16 otherwise
    latent: str = "mean"
    split: str | None = None
    videos: tuple[str, ...] | None = None  # restrict to these video ids
    weights: str | None = None  # hub id or local folder replacing the registry's source
    revision: str | None = None
    codec: str = "raw"
    skip_bad: bool = False
    dry_run: bool = False
    progress: bool = True
    devices: int = 1  # local worker processes (ranks) this command starts; 1 under torchrun/srun
    threads: int | None = None  # CPU threads per process; None: torch's default (cores / devices)
    claim_ttl: float = 300.0  # seconds a video claim lives without a heartbeat (crashed jobs' expire)

    def __post_init__(self) -> None:
        if self.timesteps is not None:
            check_timesteps(self.timesteps)
        for name in ("ensemble", "batch_size", "frame_stride", "devices"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
        if self.clip_len is not None and self.clip_len < 1:
            raise ConfigError("--clip-len must be >= 1")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError("--max-frames must be >= 1")
        if self.threads is not None and self.threads < 1:
            raise ConfigError("--threads must be >= 1")
        if self.heads is not None and (not self.heads or min(self.heads) < 0):
            raise ConfigError("--heads must be head indices >= 0, e.g. 0,3")
        if not self.claim_ttl > 0:
            raise ConfigError("--claim-ttl must be > 0 seconds")
        if self.latent not in ("mean", "sample"):
            raise ConfigError(f"--latent must be 'mean' or 'sample', got {self.latent!r}")
        if self.resize is not None:
            from dvx.data.input_size import size_preset

            size_preset(self.resize)
            if self.resolution is not None:
                raise ConfigError(
                    f"--resolution is both {self.resolution[0]}x{self.resolution[1]} and {self.resize!r}"
                )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ProbeConfig:
    """Everything ``dvx probe`` needs. ``options`` holds the task's own knobs (None = task default)."""

    task: str
    store: str
    model: str
    data_root: str
    dataset: str | None = None  # None: the task's dataset reader (davis for davis17, ...)
    recipe: str | None = None  # fingerprint prefix, when several recipes of the model exist
    timesteps: tuple[int, ...] | None = None  # None: the task's default; () = every T in the store
    blocks: tuple[str, ...] | None = None  # None: the task's default; () = every block in the store
    split: str | None = None
    out: str | None = None  # predictions / checkpoints / logs; never inside the store
    results: str | None = None  # results directory (default: $DVX_RESULTS_DIR or ~/.local/share/dvx/results)
    device: str = "auto"
    seed: int = 0
    force: bool = False  # recompute and replace an existing results record
    progress: bool = True
    options: tuple[tuple[str, Any], ...] = ()  # (name, value) pairs, hashable and ordered

    def option(self, name: str, default: Any = None) -> Any:
        for k, v in self.options:
            if k == name and v is not None:
                return v
        return default

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["options"] = {k: v for k, v in self.options if v is not None}
        return out
