"""The errors pytest-insight raises, all under one root.

::

    InsightError                      (Exception)
    ├── ConfigurationError            (+ValueError)  bad option, URI, profile or strategy
    │   └── UnknownProfileError                      a profile name that is not defined
    ├── DependencyError               (+ImportError) an optional dependency is missing
    ├── StorageError                  (+OSError)     a store could not be read or written
    │   ├── CorruptStoreError                        a stored file that cannot be parsed
    │   ├── StoreLockedError                         the store lock could not be taken in time
    │   ├── AccessDeniedError                        the server refused the operation
    │   ├── NotFoundError                            a bucket, file or object that does not exist
    │   └── EndpointError                            the server could not be reached
    ├── SessionExistsError            (+ValueError)  saving an id that is already stored
    └── InvalidDataError              (+ValueError)  input that is not a valid session or bundle
        └── BundleTooLargeError                      decompressed data above the configured limit

Every error carries the context it is about (``uri``, ``key``, ``path``,
``line``, ``field``) as attributes, and its message is one line that names it.
"""

from __future__ import annotations

from collections.abc import Collection

__all__ = [
    "AccessDeniedError",
    "BundleTooLargeError",
    "ConfigurationError",
    "CorruptStoreError",
    "DependencyError",
    "EndpointError",
    "InsightError",
    "InvalidDataError",
    "NotFoundError",
    "SessionExistsError",
    "StorageError",
    "StoreLockedError",
    "UnknownProfileError",
    "did_you_mean",
    "file_error",
]


def did_you_mean(value: str, choices: Collection[str]) -> str:
    """``"; did you mean 'x'?"`` for the choice closest to ``value``, or ``""`` when none is close.

    ``keep-both`` finds ``keep_both`` and ``S3`` finds ``s3``: case and dashes
    are the commonest slips and fall below a plain similarity cut-off.
    """
    normal = {choice.lower().replace("-", "_"): choice for choice in choices}
    close = normal.get(value.lower().replace("-", "_"))
    starting = [choice for choice in choices if len(value) >= 3 and choice.startswith(value)]
    if close is None and len(starting) == 1:  # "replace" for "replace_existing"
        close = starting[0]
    if close is None:
        import difflib  # only a mistake needs it: not loaded by every run

        matches = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.7)
        close = matches[0] if matches else None
    return f"; did you mean {close!r}?" if close is not None else ""


class InsightError(Exception):
    """Root of every error pytest-insight raises on purpose."""


class ConfigurationError(InsightError, ValueError):
    """An option, storage URI, profile or merge strategy is not valid."""


class UnknownProfileError(ConfigurationError):
    """A profile name that is not defined; ``known`` lists the defined names."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = sorted(known)
        listing = ", ".join(self.known) if self.known else "none defined"
        super().__init__(f"unknown profile {name!r}{did_you_mean(name, known)} (known profiles: {listing})")


class DependencyError(InsightError, ImportError):
    """An optional dependency needed for the requested feature is not installed."""


class StorageError(InsightError, OSError):
    """A store or exchange location could not be read or written.

    Attributes:
        uri: the storage or object location the error is about, if known.
    """

    def __init__(self, message: str, *, uri: str | None = None) -> None:
        super().__init__(message)
        self.uri = uri

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CorruptStoreError(StorageError):
    """A stored file that cannot be parsed; names the file and line."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: corrupt store file: {reason}", uri=path)
        self.path = path
        self.line = line
        self.reason = reason


class StoreLockedError(StorageError):
    """The store lock could not be taken within the timeout."""


class AccessDeniedError(StorageError):
    """The server refused an operation; ``action`` and ``key`` say which."""

    def __init__(self, message: str, *, uri: str | None = None, action: str = "", key: str = "") -> None:
        super().__init__(message, uri=uri)
        self.action = action
        self.key = key


class NotFoundError(StorageError):
    """A file, bucket or object that does not exist."""


class EndpointError(StorageError):
    """The storage server could not be reached."""


class SessionExistsError(InsightError, ValueError):
    """A session with the same id is already stored."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} is already stored")
        self.session_id = session_id


class InvalidDataError(InsightError, ValueError):
    """Input that is not a valid session, bundle or export file.

    Attributes:
        source: the file, URI or object key the data came from.
        line: the 1-based line number within the source, when it has lines.
        field: the dotted path of the offending field, when one is to blame.
        reason: what is wrong, without the location.
    """

    def __init__(
        self,
        reason: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.source = source
        self.line = line
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.source is not None:
            where = self.source if self.line is None else f"{self.source}:{self.line}"
        what = f"{self.field}: {self.reason}" if self.field else self.reason
        return f"{where}: {what}" if where else what

    def located(self, source: str | None = None, line: int | None = None) -> InvalidDataError:
        """Return a copy of this error placed at ``source`` and ``line``."""
        return type(self)(
            self.reason,
            source=source if source is not None else self.source,
            line=line if line is not None else self.line,
            field=self.field,
        )


class BundleTooLargeError(InvalidDataError):
    """Decompressed data exceeded the configured limit (a gzip bomb or an oversized line)."""


def file_error(exc: OSError, path: str, verb: str = "read") -> StorageError:
    """The error to raise for ``exc``, met while trying to ``verb`` the local file ``path``."""
    if isinstance(exc, FileNotFoundError):
        return NotFoundError(f"{path}: no such file", uri=path)
    return StorageError(f"{path}: cannot {verb}: {exc.strerror or exc}", uri=path)
