"""pytest-insight storage."""

from __future__ import annotations
