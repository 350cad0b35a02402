"""Asking the stored history: the :class:`Query` builder and the summaries of what it selects."""

from __future__ import annotations

from pytest_insight.query.builder import Query, QueryResult, TestFilter

__all__ = ["Query", "QueryResult", "TestFilter"]
