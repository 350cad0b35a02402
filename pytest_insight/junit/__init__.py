"""JUnit XML in and out: reports of pytest, Surefire and others as sessions, and sessions as reports."""

from __future__ import annotations

__all__ = ["SESSION_ID_PROPERTY"]

SESSION_ID_PROPERTY = "pytest-insight.session_id"
"""The suite property that carries a session's id through an export and back."""
