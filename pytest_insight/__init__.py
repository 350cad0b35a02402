"""pytest-insight: keep, share and question your pytest history."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("pytest-insight")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
