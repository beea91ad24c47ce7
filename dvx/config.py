"""Typed, validated configs handed from the CLI to the runners (and saved beside results)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from dvx.errors import ConfigError
from dvx.options import Options, option, to_json

#: the longest clip a video model may be run on (frames per forward): SVD's native 14 and Wan's 81 are far
#: below it; beyond it the padded clip alone exhausts any host memory
MAX_CLIP_LEN = 1024
#: the largest frame side (pixels) any option may ask for
MAX_SIDE = 8192
#: upper bounds of the count options of ``dvx extract``: far above any real use, low enough that a typo
#: (``--batch-size 1000000000000``) is an error instead of a run that allocates or loops without bound
MAX_COUNTS = {"batch_size": 4096, "ensemble": 1024, "devices": 1024, "threads": 1024}


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
    if max(h, w) > MAX_SIDE:
        raise ConfigError(f"{what} {text!r}: at most {MAX_SIDE} pixels per side")
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
    if unit not in _SIZE_UNITS or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{what} must look like 500G, 1.5T or 200M (finite, >= 0), got {text!r}")
    if value * _SIZE_UNITS[unit] > 2**63 - 1:
        raise ConfigError(f"{what} {text!r} is larger than any storage")
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
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{what} must be a finite, non-negative duration, got {text!r}")
    return value * _TIME_UNITS[unit]


def check_device(device: str, what: str = "--device") -> str:
    """``device`` if torch can name it (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``, ...); whether it
    is present is checked where it is used."""
    if device == "auto":
        return device
    import torch

    try:
        torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"{what} {device!r} is not a torch device (auto, cpu, cuda, cuda:N, mps)") from None
    return device


def check_output_folder(path: str | None, what: str) -> None:
    """An output folder option: it may not exist yet, but it must not be a file."""
    if path is not None and Path(path).expanduser().is_file():
        raise ConfigError(f"{what} {path!r} is a file; give a folder")


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
class ExtractConfig(Options):
    """Everything ``dvx extract`` needs, each option declared once (``dvx extract``'s options are generated
    from these fields, see dvx.options); feature-determining fields end up in the store's recipe. The
    command adds only ``--preset`` (a published recipe that fills several fields) and ``--json``."""

    model: str = option(help="Registered model name (see `dvx ls models`).")
    dataset: str = option(
        help="Dataset reader (`dvx ls datasets`): synthetic, davis, jhmdb, ucf101, hmdb51, cityscapes, "
        "movi-c, movi-e, movi, tapvid-davis, tapvid-kinetics, tapvid-rgb-stacking."
    )
    data_root: str = option(help="The dataset's folder (or its parent).")
    store: str = option(help="Feature store: a local path or an fsspec URL (s3://bucket/prefix).")
    # None: per family (seed 002: UNets 50, DiTs 16, ViTs 0)
    timesteps: tuple[int, ...] | None = option(
        None,
        "Comma-separated T on the DDPM scale 0..999 [default: seed 002's: 50 for UNets, 16 for the flow "
        "DiTs SD3/Wan, 0 for baselines].",
        parse=parse_timesteps,
        metavar="T,T",
    )
    blocks: tuple[str, ...] | None = option(  # None: every hidden-state block
        None,
        "Comma-separated block names or globs (up.1,up.*) [default: every hidden-state block]. Attention "
        "q/k blocks only when named, component-wise globs allowed: layer.*.attn1.q,up.1.s0.0.attn1.k.",
        parse=parse_names,
        metavar="B,B",
    )
    heads: tuple[int, ...] | None = option(  # attention q/k blocks as these heads' blocks <name>.h<i>
        None,
        "Attention q/k blocks asked for in --blocks are stored per head, these heads only (0,3 stores "
        "<name>.h0 and <name>.h3).",
        parse=lambda t: parse_int_list(t, "--heads"),
        metavar="H,H",
    )
    # None: the model's default (or ``resize``). --resolution sets this field or ``resize``: its parser
    # returns the pair (size, preset name), which the command splits (see dvx.cli.extract)
    resolution: tuple[int, int] | None = option(
        None,
        "HxW the frames are resized to, or a preset: dift (DAVIS as DIFT: shorter side 480, longer side "
        "floored to a multiple of 32, aspect kept; per video), dino (the same with 64), videowalk (320x320, "
        "JHMDB as videowalk), model [default: the model's].",
        parse=parse_size_choice,
        metavar="HxW|PRESET",
    )
    resize: str | None = option(None, cli=False)  # a named size instead (dvx.data.input_size)
    preset: str | None = option(None, cli=False)  # the preset the values were resolved from (presets.py)
    clip_len: int | None = option(None, "Frames per clip for video models [default: native].")
    frame_stride: int = option(1, "Use every N-th frame.")
    max_frames: int | None = option(None, "At most this many frames per video (after stride).")
    ensemble: int = option(1, "Noise draws averaged per (clip, T) (DIFT uses 8).")
    seed: int = option(0, "Seed of the per-(video, clip, T, member) noise.")
    batch_size: int = option(8, "Images or clips per denoiser forward.")
    device: str = option("auto", "cpu, cuda, cuda:1, ... [auto: cuda if available].")
    dtype: Literal["float32", "float16", "bfloat16"] | None = option(
        None, "Compute dtype [default: float32 on CPU; on CUDA bfloat16 for SD3/Wan, float16 otherwise]."
    )
    latent: Literal["mean", "sample"] = option("mean", "VAE posterior mean or a seeded sample.")
    split: str | None = option(
        None,
        "Official split file to follow [default: the dataset's: DAVIS ImageSets/2017/val.txt when present; "
        "else every video present]; 'all' (DAVIS) = every video present.",
    )
    videos: tuple[str, ...] | None = option(
        None, "Only these comma-separated video ids.", parse=parse_names, metavar="ID,ID"
    )
    weights: str | None = option(None, "Hub id or local folder replacing the model's default weights.")
    revision: str | None = option(None, "Hub revision of --weights / the default weights.")
    codec: str = option("raw", "Store codec: raw, lz4, zstd, blosc-zstd-bitshuffle.")
    skip_bad: bool = option(
        False, "Record unreadable videos and videos with non-finite features in the store index and go on."
    )
    dry_run: bool = option(
        False,
        "Print what is cached, each block's map size, the storage and forward passes the run needs; write "
        "nothing.",
    )
    progress: bool = option(True, "No progress bars.", flag="--no-progress")
    devices: int = option(  # local worker processes (ranks) this command starts; 1 under torchrun/srun
        1,
        "Worker processes on this node, one per GPU (or CPU processes). Under torchrun/srun leave it at 1: "
        "each launched process is one worker.",
    )
    threads: int | None = option(
        None,
        "CPU threads per worker process [default: torch's default / --devices]. CPU features are "
        "bit-identical across launches only with the same value.",
    )
    claim_ttl: float = option(
        300.0,
        "Seconds a video claim stays valid without a heartbeat: how long a crashed job on another node "
        "keeps its videos from others (a dead process on this node is noticed at once).",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.timesteps is not None:
            check_timesteps(self.timesteps)
        for name in ("ensemble", "batch_size", "frame_stride", "devices"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
        for name, most in MAX_COUNTS.items():
            value = getattr(self, name)
            if value is not None and value > most:
                raise ConfigError(f"--{name.replace('_', '-')} must be at most {most}, got {value}")
        if self.clip_len is not None and not 1 <= self.clip_len <= MAX_CLIP_LEN:
            raise ConfigError(f"--clip-len must lie in 1..{MAX_CLIP_LEN} frames, got {self.clip_len}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError("--max-frames must be >= 1")
        if self.threads is not None and self.threads < 1:
            raise ConfigError("--threads must be >= 1")
        if self.heads is not None and (not self.heads or min(self.heads) < 0):
            raise ConfigError("--heads must be head indices >= 0, e.g. 0,3")
        from dvx.store.claims import check_ttl

        check_ttl(self.claim_ttl)
        check_device(self.device)
        if self.latent not in ("mean", "sample"):
            raise ConfigError(f"--latent must be 'mean' or 'sample', got {self.latent!r}")
        if self.weights is not None and not self.weights.strip():
            raise ConfigError("--weights is empty: give a hub id (org/name) or a local model folder")
        if self.resolution is not None and max(self.resolution) > MAX_SIDE:
            raise ConfigError(f"--resolution {self.resolution}: at most {MAX_SIDE} pixels per side")
        if self.resize is not None:
            from dvx.data.input_size import size_preset

            size_preset(self.resize)
            if self.resolution is not None:
                raise ConfigError(
                    f"--resolution is both {self.resolution[0]}x{self.resolution[1]} and {self.resize!r}"
                )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _all_or(parse: Callable[[str], tuple[Any, ...]]) -> Callable[[str], tuple[Any, ...]]:
    """A list parser where ``all`` means every one in the store (the empty tuple)."""

    def read(text: str) -> tuple[Any, ...]:
        return () if text.strip().lower() == "all" else parse(text)

    return read


def parse_ids(text: str, what: str) -> tuple[str, ...]:
    names = parse_names(text)
    if not names:
        raise ConfigError(f"{what} names no video")
    return names


@dataclass(frozen=True)
class ProbeConfig(Options):
    """Everything ``dvx probe`` needs, each option declared once (the CLI is generated from these fields,
    see dvx.options). ``options`` holds the task's own typed options: give a mapping (or the task's options
    instance) and it is resolved here against the task's options class and its registry defaults, so a
    name the task does not take fails at once. The resolved config is saved in every results record and
    beside every output."""

    task: str = option(help="Probe task (`dvx ls tasks`; `dvx probe --task TASK --help` shows its options).")
    store: str = option(help="Feature store path or URL (opened read-only).")
    model: str = option(help="Model whose cached features to probe.")
    data_root: str = option(help="Dataset folder with the labels.")
    dataset: str | None = option(None, "Dataset reader [default: the task's].")
    recipe: str | None = option(None, "Recipe fingerprint prefix when the model has several.")
    # None: every T / block in the store; () (``all``) likewise
    timesteps: tuple[int, ...] | None = option(
        None,
        "Comma-separated T, or 'all' [default: every T in the store].",
        parse=_all_or(parse_timesteps),
        metavar="T,T|all",
    )
    blocks: tuple[str, ...] | None = option(
        None,
        "Comma-separated blocks, or 'all' [default: every block in the store].",
        parse=_all_or(lambda t: parse_ids(t, "--blocks")),
        metavar="B,B|all",
    )
    split: str | None = option(None, "Dataset split [default: the dataset's for this task].")
    videos: tuple[str, ...] | None = option(
        None,
        "Probe only these video ids (comma-separated) [default: every video of the split].",
        parse=lambda t: parse_ids(t, "--videos"),
        metavar="ID,ID",
    )
    exclude: tuple[str, ...] = option(
        (),
        "Leave these video ids out (comma-separated).",
        parse=lambda t: parse_ids(t, "--exclude"),
        metavar="ID,ID",
    )
    include_failed: bool = option(
        False,
        "Also probe videos whose extraction failed (--skip-bad); they are left out by default.",
    )
    out: str | None = option(
        None,
        "Folder for predictions, checkpoints and logs: <out>/<task>/<dataset>/<model>@<fp8>/T<T>/<block>/.",
    )
    results: str | None = option(
        None, "Results directory [default: $DVX_RESULTS_DIR or ~/.local/share/dvx/results]."
    )
    device: str = option("auto", "cpu, cuda, cuda:N, mps or auto.")
    seed: int = option(0, "Seed of everything random in the probe.")
    force: bool = option(False, "Recompute and replace existing results records.")
    progress: bool = option(True, "No progress bars.", flag="--no-progress")
    options: Options | Mapping[str, Any] | None = option(None, cli=False)  # resolved to the task's class

    def __post_init__(self) -> None:
        super().__post_init__()
        check_output_folder(self.out, "--out")
        check_output_folder(self.results, "--results")
        from dvx.probe.task import task_options

        object.__setattr__(self, "options", task_options(self.task, self.options))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = to_json(self)
        return out
