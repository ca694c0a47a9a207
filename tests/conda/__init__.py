"""Helpers for the conda tests: a local channel (channel.py) and its packages (fixtures.py)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def require_module(name: str) -> ModuleType:
    """Import `name`; skip without it on a developer's machine, fail in CI (CI=true), where
    `pip install -e '.[test]'` must have installed it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed (CI=true: scripts/setup.sh installs .[test])",
                        pytrace=False)
        pytest.skip(f"{name} is not installed; pip install -e '.[test]'", allow_module_level=True)
