"""STUB: the pytest plugin (being written)."""

from __future__ import annotations
