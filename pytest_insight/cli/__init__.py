"""pytest-insight cli."""

from __future__ import annotations
