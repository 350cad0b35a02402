"""The ``insight`` command line: a thin face over the library (see :mod:`pytest_insight.cli.main`)."""

from __future__ import annotations

__all__: list[str] = []
