"""The documented import path of the Query builder; it lives in :mod:`pytest_insight.query.builder`."""

from __future__ import annotations

from pytest_insight.query.builder import Query, QueryResult, TestFilter, TimeLike

__all__ = ["Query", "QueryResult", "TestFilter", "TimeLike"]
