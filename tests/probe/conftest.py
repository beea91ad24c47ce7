"""Fixtures for the probe tests: the real sample data beside the checkout (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import shared_data as shared_data_path


@pytest.fixture
def shared_data() -> Path:
    return shared_data_path().resolve()
