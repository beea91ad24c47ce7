"""The errors dvx reports to a user as one clear line (the CLI prints ``str(err)`` and exits non-zero)."""

from __future__ import annotations


class DvxError(Exception):
    """Base class: a problem with the user's input or environment, reported without a traceback."""

    exit_code = 2


class UnknownNameError(DvxError, KeyError):
    """A registry lookup failed (unknown model, dataset, task, block)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(DvxError, ValueError):
    """An option is out of range or inconsistent (bad timestep, bad resolution, ...)."""


class DataError(DvxError):
    """A data root is missing, has the wrong layout, or a split names absent videos."""


class CorruptVideoError(DataError):
    """A frame or video file cannot be decoded (truncated, corrupt, empty)."""

    def __init__(self, video_id: str, reason: str) -> None:
        super().__init__(f"video {video_id!r} cannot be read: {reason}")
        self.video_id = video_id
        self.reason = reason


class OutputError(DvxError):
    """An output (predictions, a synthetic world) could not be written: disk full, no permission, ..."""


class StoreError(DvxError):
    """The feature store is missing, not a dvx store, unwritable, or inconsistent."""


class NoStoreError(StoreError):
    """Nothing at the store location yet (an absent or empty folder or prefix): not a damaged store."""


class DamagedStoreError(StoreError):
    """The store's root metadata is missing or unreadable (``dvx cache verify --repair`` restores it)."""


class RecipeMismatchError(StoreError):
    """A store's recorded recipe differs from the one asked for."""


class CacheMissError(StoreError):
    """The cache lacks features that a probe asked for."""
