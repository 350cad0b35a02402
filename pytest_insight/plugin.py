"""The pytest plugin: record every run as a session (``pytest --insight``).

Each setting has a command line option, an environment variable and an ini
option; the command line wins over the environment, which wins over the ini
file. With pytest-xdist only the controller records (it receives every
worker's reports), so one run is one session. A failure to save is reported
in the terminal summary and leaves the exit status alone unless
``--insight-strict`` is set.

Importing this module stays cheap: the storage layer (anyio, and boto3 for
S3) is imported only when a run is saved.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_insight.ci_context import ci_tags
from pytest_insight.errors import ConfigurationError, InsightError
from pytest_insight.exchange.redaction import Redactor
from pytest_insight.model.sessions import MAX_NAME_LENGTH, TestOutcome, TestSession
from pytest_insight.recorder import SessionRecorder, testing_system
from pytest_insight.storage.uris import split_uri, storage_schemes

__all__ = [
    "InsightPlugin",
    "InsightSettings",
    "pytest_addoption",
    "pytest_configure",
    "pytest_unconfigure",
    "resolve_settings",
]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class InsightSettings:
    """The plugin's settings once command line, environment and ini are merged.

    ``storage`` and ``profile`` are never both set; with neither, the run is
    saved to :func:`~pytest_insight.core.storage.get_storage_instance`'s choice.
    """

    enabled: bool = False
    sut_name: str = ""
    storage: str | None = None
    profile: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    strict: bool = False
    redact: bool = True
    redact_patterns: tuple[str, ...] = ()
    redact_allow: tuple[str, ...] = ()
    flaky_note: bool = True


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``--insight*`` options and their ini mirrors."""
    group = parser.getgroup("insight", "pytest-insight: record test sessions")
    group.addoption(
        "--insight",
        action="store_const",
        const=True,
        default=None,
        dest="insight",
        help="record this run as a session (env PYTEST_INSIGHT=1, ini insight = true)",
    )
    group.addoption(
        "--no-insight",
        action="store_const",
        const=False,
        dest="insight",
        help="do not record this run, whatever the environment or ini file say",
    )
    group.addoption(
        "--insight-sut",
        metavar="NAME",
        default=None,
        dest="insight_sut",
        help="system under test the session belongs to (default: the rootdir's name; env PYTEST_INSIGHT_SUT)",
    )
    group.addoption(
        "--insight-storage",
        metavar="URI",
        default=None,
        dest="insight_storage",
        help="storage to save to: a path, file://, s3://bucket/prefix or memory:// "
        "(env PYTEST_INSIGHT_STORAGE)",
    )
    group.addoption(
        "--insight-profile",
        metavar="NAME",
        default=None,
        dest="insight_profile",
        help="named storage profile to save to (env PYTEST_INSIGHT_PROFILE)",
    )
    group.addoption(
        "--insight-tag",
        metavar="KEY=VALUE",
        action="append",
        default=None,
        dest="insight_tags",
        help="session tag, repeatable (env PYTEST_INSIGHT_TAGS='k=v,k2=v2')",
    )
    group.addoption(
        "--insight-strict",
        action="store_const",
        const=True,
        default=None,
        dest="insight_strict",
        help="make a failure to save the session fail the run (env PYTEST_INSIGHT_STRICT=1)",
    )
    group.addoption(
        "--insight-no-redact",
        action="store_const",
        const=False,
        default=None,
        dest="insight_redact",
        help="keep secrets in captured output and tags (env PYTEST_INSIGHT_REDACT=0, ini insight_redact)",
    )
    group.addoption(
        "--insight-redact-pattern",
        metavar="REGEX",
        action="append",
        default=[],
        dest="insight_redact_patterns",
        help="also redact what this regular expression matches, repeatable (ini insight_redact_patterns)",
    )
    group.addoption(
        "--insight-redact-allow",
        metavar="VALUE",
        action="append",
        default=[],
        dest="insight_redact_allow",
        help="never redact this exact value, repeatable (ini insight_redact_allow)",
    )
    group.addoption(
        "--no-insight-flaky-note",
        action="store_const",
        const=False,
        default=None,
        dest="insight_flaky_note",
        help="do not say which failures are known flaky at the end of the run "
        "(env PYTEST_INSIGHT_FLAKY_NOTE=0, ini insight_flaky_note = false)",
    )
    parser.addini("insight", "record every run as a session", type="bool", default=None)
    parser.addini("insight_sut", "system under test the sessions belong to", default=None)
    parser.addini("insight_storage", "storage URI to save sessions to", default=None)
    parser.addini("insight_profile", "storage profile to save sessions to", default=None)
    parser.addini("insight_tags", "session tags, one key=value per line", type="linelist", default=None)
    parser.addini("insight_strict", "make a failure to save fail the run", type="bool", default=None)
    parser.addini("insight_redact", "redact secrets before saving (default true)", type="bool", default=None)
    parser.addini(
        "insight_redact_patterns", "extra regexes to redact, one a line", type="linelist", default=[]
    )
    parser.addini("insight_redact_allow", "values never redacted, one a line", type="linelist", default=[])
    parser.addini(
        "insight_flaky_note", "say which failures are known flaky (default true)", type="bool", default=None
    )


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
    enabled = _flag(config, env, "insight", "PYTEST_INSIGHT")
    if not enabled:
        return InsightSettings()
    sut_name = _text(config, env, "insight_sut", "PYTEST_INSIGHT_SUT") or config.rootpath.name
    _check_sut(sut_name)
    storage, profile = _destination(config, env)
    tags = ci_tags(env)
    tags.update(_tags(config.getini("insight_tags") or [], "ini insight_tags"))
    tags.update(_tags(env.get("PYTEST_INSIGHT_TAGS", "").split(","), "PYTEST_INSIGHT_TAGS"))
    tags.update(_tags(config.getoption("insight_tags") or [], "--insight-tag"))
    strict = _flag(config, env, "insight_strict", "PYTEST_INSIGHT_STRICT")
    redact = _flag(config, env, "insight_redact", "PYTEST_INSIGHT_REDACT", default=True)
    patterns = (*config.getini("insight_redact_patterns"), *config.getoption("insight_redact_patterns"))
    allow = (*config.getini("insight_redact_allow"), *config.getoption("insight_redact_allow"))
    try:
        Redactor(patterns, allow)  # a bad pattern stops the run before its tests
    except ConfigurationError as exc:
        raise pytest.UsageError(f"insight: {exc}") from None
    note = _flag(config, env, "insight_flaky_note", "PYTEST_INSIGHT_FLAKY_NOTE", default=True)
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
    )


def _flag(
    config: pytest.Config, env: Mapping[str, str], name: str, variable: str, default: bool = False
) -> bool:
    option = config.getoption(name)
    if option is not None:
        return bool(option)
    raw = env.get(variable, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    if raw:
        raise pytest.UsageError(
            f"{variable}={env[variable]!r}: expected one of 1, true, yes, on, 0, false, no, off"
        )
    ini = config.getini(name)
    return default if ini is None else bool(ini)


def _text(config: pytest.Config, env: Mapping[str, str], name: str, variable: str) -> str | None:
    for value in (config.getoption(name), env.get(variable), config.getini(name)):
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


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


class InsightPlugin:
    """Records the run and saves it at the end; registered only when recording."""

    def __init__(self, config: pytest.Config, settings: InsightSettings) -> None:
        self.config = config
        self.settings = settings
        self.recorder: SessionRecorder | None = None
        self.summary: str | None = None
        self.flaky_note: str | None = None
        self.saved = False

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Start the session clock."""
        self.recorder = SessionRecorder(
            self.settings.sut_name, tags=self.settings.tags, system=testing_system(pytest.__version__)
        )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record one test report."""
        if self.recorder is not None:
            self.recorder.add_report(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """Record collection errors and modules skipped at collection."""
        if self.recorder is not None and not report.passed:
            self.recorder.add_report(report)

    def pytest_warning_recorded(self, warning_message: Any, when: str, nodeid: str, location: Any) -> None:
        """Mark the test that emitted a warning."""
        if self.recorder is not None:
            self.recorder.add_warning(nodeid)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Save the session; on failure note it and, if strict, fail the run."""
        if self.recorder is None or self.config.option.collectonly:
            return
        recorded = self.recorder.build()
        redactor = Redactor(self.settings.redact_patterns, self.settings.redact_allow)
        if self.settings.redact:
            redactor.session(recorded)
        try:
            storage = _open_storage(self.settings)
            if self.settings.flaky_note:
                self.flaky_note = _flaky_note(storage, recorded)
            storage.save_recorded_session(recorded)
        except (InsightError, OSError) as exc:
            self._failed(session, recorded.session_id, exc)
        else:
            self.saved = True
            redacted = f"; {redactor.summary()}" if redactor.total else ""
            self.summary = (
                f"pytest-insight: saved session {recorded.session_id} "
                f"({len(recorded.test_results)} test results{redacted}) to {storage.uri}"
            )

    def _failed(self, session: pytest.Session, session_id: str, exc: BaseException) -> None:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        self.summary = f"pytest-insight: could not save session {session_id}: {reason}"
        if self.settings.strict and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Print the one line saying where the session went, or why it did not."""
        if self.flaky_note is not None:
            terminalreporter.write_line(self.flaky_note, yellow=True)
        if self.summary is not None:
            terminalreporter.write_line(self.summary, red=not self.saved, green=self.saved)


def _flaky_note(storage: Any, recorded: TestSession) -> str | None:
    if not recorded.outcome_counts().keys() & {TestOutcome.FAILED, TestOutcome.ERROR}:
        return None  # nothing failed: no history to read, and the analyses are not even imported
    from pytest_insight.analysis.known_flaky import note_for_run

    return note_for_run(storage, recorded)


def _open_storage(settings: InsightSettings) -> Any:
    from pytest_insight.core.storage import get_storage_instance, open_storage

    if settings.storage is not None:
        return open_storage(settings.storage)
    return get_storage_instance(settings.profile)


_PLUGIN_KEY = pytest.StashKey[InsightPlugin]()


def pytest_configure(config: pytest.Config) -> None:
    """Register the recorder when recording is on, except on xdist workers."""
    if hasattr(config, "workerinput"):
        return  # the xdist controller receives every report and writes the one session
    settings = resolve_settings(config)
    if not settings.enabled:
        return
    plugin = InsightPlugin(config, settings)
    config.stash[_PLUGIN_KEY] = plugin
    config.pluginmanager.register(plugin, "insight-recorder")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Unregister the recorder."""
    plugin = config.stash.get(_PLUGIN_KEY, None)
    if plugin is not None:
        del config.stash[_PLUGIN_KEY]
        config.pluginmanager.unregister(plugin)
