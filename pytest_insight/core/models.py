"""The import path of the data model in earlier releases; it lives in :mod:`pytest_insight.model.sessions`."""

from __future__ import annotations

from pytest_insight.model.sessions import (
    EARLIEST,
    LATEST,
    MAX_DURATION_SECONDS,
    MAX_NAME_LENGTH,
    SCHEMA_VERSION,
    Duration,
    Name,
    RerunTestGroup,
    TestOutcome,
    TestResult,
    TestSession,
    UtcTime,
    to_utc,
)

__all__ = [
    "EARLIEST",
    "Duration",
    "LATEST",
    "MAX_DURATION_SECONDS",
    "MAX_NAME_LENGTH",
    "SCHEMA_VERSION",
    "Name",
    "RerunTestGroup",
    "TestOutcome",
    "TestResult",
    "TestSession",
    "UtcTime",
    "to_utc",
]
