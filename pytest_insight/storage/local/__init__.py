"""The local store: sessions in JSON files under a directory, safe under many writers at once.

See docs/local-store.md for the on-disk format. It never imports the S3 backend.
"""

from __future__ import annotations

from pytest_insight.storage.local.store import LocalBackend

__all__ = ["LocalBackend"]
