"""The data model: sessions, results, outcomes, and the one msgspec schema of a stored session.

The bottom layer: it imports nothing of pytest-insight but :mod:`pytest_insight.errors`.
"""

from __future__ import annotations

from pytest_insight.model.sessions import RerunTestGroup, TestOutcome, TestResult, TestSession

__all__ = ["RerunTestGroup", "TestOutcome", "TestResult", "TestSession"]
