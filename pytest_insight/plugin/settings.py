"""The plugin's settings: the command line, the environment and the ini file merged into one value.

Imported only when a run is recorded (``pytest_configure`` reads the on/off
switch first, through :mod:`~pytest_insight.plugin.options`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec
import pytest

from pytest_insight.errors import ConfigurationError
from pytest_insight.exchange.redaction import Redactor
from pytest_insight.model.sessions import MAX_NAME_LENGTH
from pytest_insight.plugin.ci_context import ci_tags
from pytest_insight.plugin.options import PUBLISH_TIMEOUT, read_flag, read_seconds, read_text
from pytest_insight.storage.uris import split_uri, storage_schemes

__all__ = ["InsightSettings", "resolve_settings"]


class InsightSettings(msgspec.Struct, frozen=True):
    """The plugin's settings once command line, environment and ini are merged.

    ``storage`` and ``profile`` are never both set; with neither, the run is
    saved to :func:`~pytest_insight.core.storage.get_storage_instance`'s choice.
    """

    enabled: bool = False
    sut_name: str = ""
    storage: str | None = None
    profile: str | None = None
    tags: dict[str, str] = {}
    strict: bool = False
    redact: bool = True
    redact_patterns: tuple[str, ...] = ()
    redact_allow: tuple[str, ...] = ()
    flaky_note: bool = True
    publish_timeout: float = PUBLISH_TIMEOUT

    def redactor(self) -> Redactor:
        """A fresh :class:`Redactor` with these settings' patterns and allowed values."""
        return Redactor(self.redact_patterns, self.redact_allow)


def resolve_settings(config: pytest.Config, environ: Mapping[str, str] | None = None) -> InsightSettings:
    """Merge the command line, the environment and the ini file (in that order of precedence).

    Tags merge key by key: CI tags, then ini, environment and command line
    tags, each overriding the ones before. A relative ini storage path is
    taken relative to the ini file.

    Args:
        config: the pytest config.
        environ: the environment; ``os.environ`` when None.

    Raises:
        pytest.UsageError: a setting has an invalid value, or both
            ``--insight-storage`` and ``--insight-profile`` are given.
    """
    env = os.environ if environ is None else environ
    enabled = read_flag(config, env, "insight", "PYTEST_INSIGHT")
    if not enabled:
        return InsightSettings()
    sut_name = read_text(config, env, "insight_sut", "PYTEST_INSIGHT_SUT") or config.rootpath.name
    _check_sut(sut_name)
    storage, profile = _destination(config, env)
    tags = ci_tags(env)
    tags.update(_tags(config.getini("insight_tags") or [], "ini insight_tags"))
    tags.update(_tags(env.get("PYTEST_INSIGHT_TAGS", "").split(","), "PYTEST_INSIGHT_TAGS"))
    tags.update(_tags(config.getoption("insight_tags") or [], "--insight-tag"))
    strict = read_flag(config, env, "insight_strict", "PYTEST_INSIGHT_STRICT")
    redact = read_flag(config, env, "insight_redact", "PYTEST_INSIGHT_REDACT", default=True)
    patterns = (*config.getini("insight_redact_patterns"), *config.getoption("insight_redact_patterns"))
    allow = (*config.getini("insight_redact_allow"), *config.getoption("insight_redact_allow"))
    try:
        Redactor(patterns, allow)  # a bad pattern stops the run before its tests
    except ConfigurationError as exc:
        raise pytest.UsageError(f"insight: {exc}") from None
    note = read_flag(config, env, "insight_flaky_note", "PYTEST_INSIGHT_FLAKY_NOTE", default=True)
    timeout = read_seconds(
        config, env, "insight_publish_timeout", "PYTEST_INSIGHT_PUBLISH_TIMEOUT", PUBLISH_TIMEOUT
    )
    return InsightSettings(
        True,
        sut_name,
        storage,
        profile,
        tags,
        strict,
        redact=redact,
        redact_patterns=patterns,
        redact_allow=allow,
        flaky_note=note,
        publish_timeout=timeout,
    )


def _destination(config: pytest.Config, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    cli = (config.getoption("insight_storage"), config.getoption("insight_profile"))
    if cli[0] and cli[1]:
        raise pytest.UsageError("--insight-storage and --insight-profile cannot be used together")
    ini_storage = _checked_uri(config.getini("insight_storage"))
    if ini_storage and not split_uri(ini_storage, storage_schemes())[0] and config.inipath is not None:
        path = Path(ini_storage).expanduser()
        ini_storage = str(path if path.is_absolute() else config.inipath.parent / path)
    levels = (
        (_checked_uri(cli[0]), cli[1]),
        (_checked_uri(env.get("PYTEST_INSIGHT_STORAGE")), env.get("PYTEST_INSIGHT_PROFILE")),
        (ini_storage, config.getini("insight_profile")),
    )
    # at one level a profile wins over a storage URI, as in get_storage_instance()
    for storage, profile in levels:
        if profile and profile.strip():
            return None, profile.strip()
        if storage and storage.strip():
            return storage.strip(), None
    return None, None


def _checked_uri(uri: str | None) -> str | None:
    """``uri``, refused before the tests run (not after them) when it is a mistyped URI."""
    if uri and uri.strip():
        try:
            split_uri(uri.strip(), storage_schemes())
        except ConfigurationError as exc:
            raise pytest.UsageError(f"insight storage: {exc}") from None
    return uri


def _tags(items: list[str], source: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in items:
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise pytest.UsageError(f"{source}: {item.strip()!r} is not a key=value tag")
        tags[key.strip()] = value.strip()
    return tags


def _check_sut(name: str) -> None:
    if len(name) > MAX_NAME_LENGTH or any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise pytest.UsageError(
            f"SUT name {name[:64]!r}: at most {MAX_NAME_LENGTH} characters, no control characters"
        )
