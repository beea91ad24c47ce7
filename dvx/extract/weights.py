"""Where a backbone's files come from and what they are: hub id, local folder, or a tiny model built here.

- ``tiny:<family>``: a tiny random-init model of the same classes as the real one, built from config with
  a fixed seed, saved with ``save_pretrained`` into the dvx cache once (atomically), then loaded with the
  same ``from_pretrained`` code path as the real weights.
- a local folder in the diffusers/transformers layout;
- a Hugging Face hub id (``snapshot_download`` of the files the family needs). Offline
  (``HF_HUB_OFFLINE=1``, or the hub not answering a connection within a second) only the local HF cache is
  read, never retried against the network; a model not in it is one line naming ``--weights DIR`` and the
  files that folder needs.

The recipe records a digest of the files actually used (configs and weights), so the same weights
reached by different routes share one cache and different weights never do.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlparse

from dvx.errors import ConfigError

COMPLETE = ".dvx-complete"


def cache_dir() -> Path:
    root = os.environ.get("DVX_CACHE_DIR")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "dvx"


def materialize_tiny(name: str, build: Callable[[Path], None]) -> Path:
    """Build the tiny model ``name`` into the cache once; concurrent builders race safely (rename)."""
    folder = cache_dir() / "tiny" / name
    if (folder / COMPLETE).exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f"{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        build(tmp)
        (tmp / COMPLETE).write_text("ok\n")
        try:
            os.rename(tmp, folder)
        except OSError:  # another process finished first; theirs is identical
            if not (folder / COMPLETE).exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def resolve_folder(
    source: str,
    revision: str | None,
    allow_patterns: Sequence[str] | None,
    build_tiny: Callable[[Path], None] | None = None,
    tiny_name: str | None = None,
) -> Path:
    """A local folder holding the model's files (building or downloading them if needed)."""
    if source.startswith("tiny:"):
        if build_tiny is None or tiny_name is None:
            raise ConfigError(f"{source!r}: this family has no tiny model")
        return materialize_tiny(tiny_name, build_tiny)
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if source.startswith((".", "/", "~")) or source.count("/") != 1:
        raise ConfigError(f"model folder {source!r} does not exist (and it is not a hub id like 'org/name')")
    patterns = list(allow_patterns or []) or None
    offline = hub_offline()
    if offline is not None:
        return _from_local_cache(source, revision, patterns, offline)
    try:
        from huggingface_hub import snapshot_download

        exact = _hub_default_files(source, revision, patterns)
        if exact is not None:  # online: exactly the files from_pretrained reads, no other variants
            return Path(snapshot_download(source, revision=revision, allow_patterns=exact))
        return Path(
            snapshot_download(
                source,
                revision=revision,
                allow_patterns=patterns,
                ignore_patterns=[f"*{m}*" for m in _VARIANT_MARKERS],
            )
        )
    # network, auth, missing repo or revision (huggingface_hub's HTTP and connection errors are OSErrors),
    # an invalid repo id (a ValueError): one clear line; anything else is a bug and keeps its traceback
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"cannot get {source!r} (revision {revision or 'main'}) from the Hugging Face hub or its local "
            f"cache: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from err


def hub_offline(timeout: float = 1.0) -> str | None:
    """Why the hub cannot be used now (``HF_HUB_OFFLINE`` is set, or its endpoint accepts no connection
    within ``timeout`` seconds), or None when it can."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in (
        "1",
        "true",
        "yes",
        "on",
    ):
        return "HF_HUB_OFFLINE is set"
    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    result: list[str | None] = [f"no answer within {timeout:g}s"]

    def connect() -> None:  # in a thread: name resolution has no timeout of its own
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result[0] = None
        except OSError as err:
            result[0] = f"unreachable ({err.strerror or type(err).__name__})"

    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(timeout + 0.1)
    return None if result[0] is None else f"{constants.ENDPOINT} is {result[0]}"


def _from_local_cache(source: str, revision: str | None, patterns: list[str] | None, why: str) -> Path:
    """The model's snapshot in the local HF cache, or one line naming --weights and the files needed."""
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(source, revision=revision, allow_patterns=patterns, local_files_only=True)
        )
    except (OSError, ValueError):  # LocalEntryNotFoundError and friends: not cached
        needed = ", ".join(patterns or ["the whole repository"])
        raise ConfigError(
            f"{source!r} is not in the local Hugging Face cache and the hub cannot be reached ({why}): "
            f"pass a folder holding its files with --weights DIR (needed: {needed})"
        ) from None


def _hub_default_files(repo: str, revision: str | None, patterns: list[str] | None) -> list[str] | None:
    """The repo files matching ``patterns`` that ``from_pretrained`` reads by default (safetensors over
    .bin, no fp16/EMA/ONNX/Flax variants); None when the hub cannot be listed (offline: use the cache)."""
    import fnmatch

    try:
        from huggingface_hub import HfApi, constants

        if constants.HF_HUB_OFFLINE:
            return None
        files = HfApi().list_repo_files(repo, revision=revision)
    except (OSError, ValueError):  # unreachable or not listable: snapshot_download decides, or says why
        return None
    if patterns:
        files = [f for f in files if any(fnmatch.fnmatch(f, p) for p in patterns)]
    return default_variant(files)


def _file_sha256(path: Path, memo: dict[str, str]) -> str:
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    if key not in memo:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        memo[key] = h.hexdigest()
    return memo[key]


_VARIANT_MARKERS = (".fp16.", ".bf16.", "non_ema", ".ema.", ".msgpack", ".onnx", ".ckpt", ".h5", ".ot")


# (.bin weights name, safetensors weights name) of transformers and diffusers: a local folder holding
# both formats is read as safetensors by ``from_pretrained`` (single file first, then a sharded index)
_BIN_TO_SAFETENSORS = (("diffusion_pytorch_model", "diffusion_pytorch_model"), ("pytorch_model", "model"))


def _preferred_over(base: str) -> tuple[str, ...]:
    """For a ``.bin`` weights file (single, shard or ``.bin.index.json``), the non-variant safetensors
    names whose presence in the same folder makes ``from_pretrained`` read those instead of it."""
    stem = base[: base.index(".bin")]
    for bin_name, safe_name in _BIN_TO_SAFETENSORS:
        if stem == bin_name or stem.startswith(bin_name + "-"):  # "-00001-of-00002": a shard
            return (f"{safe_name}.safetensors", f"{safe_name}.safetensors.index.json")
    return (f"{stem}.safetensors",)


def default_variant(names: Sequence[str]) -> list[str]:
    """Of a folder's file names (or relative paths), those ``from_pretrained`` reads by default: configs,
    tokenizer files and the default-variant weights (safetensors preferred over .bin).

    A ``.bin`` is dropped only when the same folder holds the non-variant safetensors that
    ``from_pretrained`` would read instead (``pytorch_model*.bin`` vs ``model.safetensors`` or its index,
    ``diffusion_pytorch_model*.bin`` vs ``diffusion_pytorch_model.safetensors`` or its index); an fp16 or
    other variant safetensors beside a .bin does not replace it.
    """
    out = []
    by_dir: dict[str, set[str]] = {}
    for n in names:
        head, _, base = n.rpartition("/")
        by_dir.setdefault(head, set()).add(base)
    for n in names:
        head, _, base = n.rpartition("/")
        if base.startswith(".") or any(m in base for m in _VARIANT_MARKERS):
            continue
        if base.endswith((".bin", ".bin.index.json")) and any(
            s in by_dir[head] for s in _preferred_over(base)
        ):
            continue
        out.append(n)
    return out


def used_files(candidates: Sequence[Path]) -> list[Path]:
    """The files that ``from_pretrained`` reads by default (see :func:`default_variant`), each judged
    against the files of its own folder; other variants present in a shared HF cache are ignored."""
    keep = set(default_variant([p.as_posix() for p in candidates]))
    return [p for p in candidates if p.as_posix() in keep]


def digest_folder(folder: Path, subfolders: Sequence[str]) -> str:
    """sha256 over (relative path, file sha256) of every file in ``subfolders`` of ``folder``.

    Per-file digests are memoised in the dvx cache by (path, size, mtime), so a multi-GB model is hashed
    once per machine.
    """
    memo_path = cache_dir() / "digests.json"
    try:
        memo: dict[str, str] = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    before = len(memo)
    files: list[Path] = []
    for sub in subfolders:
        base = folder / sub if sub else folder
        if not base.exists():
            raise ConfigError(f"{folder}: expected {sub or 'files'} in the model folder")
        candidates = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        files += used_files(candidates)
    h = hashlib.sha256()
    for p in sorted(set(files)):
        h.update(f"{p.relative_to(folder).as_posix()}\0{_file_sha256(p, memo)}\n".encode())
    if len(memo) != before:
        try:
            memo_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo_path.with_name(f"digests.{uuid.uuid4().hex[:8]}.tmp")
            tmp.write_text(json.dumps(memo))
            os.replace(tmp, memo_path)
        except OSError:
            pass  # the memo is only an optimisation
    return h.hexdigest()
