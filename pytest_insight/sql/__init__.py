"""SQL over the stored sessions: DuckDB views over a local store or a bucket (``insight sql``).

Importing this package does not import DuckDB; :func:`run_sql` does, and
raises :class:`~pytest_insight.errors.DependencyError` with the install line
when the ``[sql]`` extra is missing.
"""

from __future__ import annotations

from pytest_insight.sql.engine import INSTALL_HINT, SqlResult, connect, run_sql
from pytest_insight.sql.target import BucketTarget, LayoutTarget, LocalTarget, Target, resolve_target

__all__ = [
    "INSTALL_HINT",
    "BucketTarget",
    "LayoutTarget",
    "LocalTarget",
    "SqlResult",
    "Target",
    "connect",
    "resolve_target",
    "run_sql",
]
