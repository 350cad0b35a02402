"""The ``--insight*`` options, their ini mirrors, and how one setting is read from the three.

Every setting has a command line option, an environment variable and an ini
option; the command line wins over the environment, which wins over the ini
file. This module needs only pytest: it is imported in every pytest run,
recording or not.
"""

from __future__ import annotations

import itertools
import os
import shlex
from collections.abc import Mapping
from pathlib import Path

import pytest

__all__ = ["PUBLISH_TIMEOUT", "add_options", "check_spaced_paths", "read_flag", "read_seconds", "read_text"]

PUBLISH_TIMEOUT = 5.0
"""Seconds the end of a run may spend saving its session (``--insight-publish-timeout``)."""

# the options that take a value: one written after a space may be a path pytest misreads (check_spaced_paths)
_VALUED = frozenset(
    {
        "--insight-sut",
        "--insight-storage",
        "--insight-profile",
        "--insight-tag",
        "--insight-publish-timeout",
        "--insight-redact-pattern",
        "--insight-redact-allow",
    }
)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def add_options(parser: pytest.Parser) -> None:
    """Register the ``--insight*`` options in one group, and their ini mirrors."""
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
        "--insight-publish-timeout",
        metavar="SECONDS",
        default=None,
        dest="insight_publish_timeout",
        help=f"give up saving the session after this long; a session meant for a bucket is then kept "
        f"locally (default {PUBLISH_TIMEOUT:g}; env PYTEST_INSIGHT_PUBLISH_TIMEOUT)",
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
    parser.addini(
        "insight_publish_timeout",
        f"seconds to spend saving the session (default {PUBLISH_TIMEOUT:g})",
        default=None,
    )
    parser.addini("insight_redact", "redact secrets before saving (default true)", type="bool", default=None)
    parser.addini(
        "insight_redact_patterns", "extra regexes to redact, one a line", type="linelist", default=[]
    )
    parser.addini("insight_redact_allow", "values never redacted, one a line", type="linelist", default=[])
    parser.addini(
        "insight_flaky_note", "say which failures are known flaky (default true)", type="bool", default=None
    )


def read_flag(
    config: pytest.Config, env: Mapping[str, str], name: str, variable: str, default: bool = False
) -> bool:
    """The on/off setting ``name`` (option dest and ini name) or ``variable`` (environment).

    Raises:
        pytest.UsageError: the environment variable is not a yes or a no.
    """
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


def read_text(config: pytest.Config, env: Mapping[str, str], name: str, variable: str) -> str | None:
    """The text setting ``name`` or ``variable``, stripped; None when none of the three gives one."""
    for value in (config.getoption(name), env.get(variable), config.getini(name)):
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def read_seconds(
    config: pytest.Config, env: Mapping[str, str], name: str, variable: str, default: float
) -> float:
    """The duration setting ``name`` or ``variable``, in seconds.

    Raises:
        pytest.UsageError: the value is not a positive number.
    """
    raw = read_text(config, env, name, variable)
    if raw is None:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        option = "--" + name.replace("_", "-")
        raise pytest.UsageError(
            f"{option}, {variable}, ini {name}: {raw!r} is not a positive number of seconds"
        )
    return seconds


def check_spaced_paths(config: pytest.Config, env: Mapping[str, str]) -> None:
    """Refuse an option value after a space that pytest took for a test path when it chose its rootdir.

    pytest finds the rootdir and the ini file before it loads plugins, so
    it does not know yet that ``--insight-storage`` takes a value: in
    ``--insight-storage /elsewhere/store`` it takes an existing
    ``/elsewhere/store`` for a test path (pytest#1435). Outside the tests'
    own directory that can move the search up: the project's ini file is not
    found (no ``testpaths``, ``python_files``, markers) and node ids change.
    Only when pytest's own search, run again without the value, finds
    another rootdir or ini file is the run refused.
    ``--insight-storage=/elsewhere/store``, the ini option or the
    environment variable are read correctly.

    Raises:
        pytest.UsageError: a value after a space changed pytest's rootdir or ini file.
    """
    # what pytest parsed when it chose the rootdir: PYTEST_ADDOPTS, then the command line
    tokens = [*shlex.split(env.get("PYTEST_ADDOPTS", "")), *config.invocation_params.args]
    if _VALUED.isdisjoint(tokens) or config.option.inifilename:  # with -c, pytest searches for no ini file
        return
    here = config.invocation_params.dir
    spaced = [  # only an existing path is taken for a test path
        (option, value, path)
        for option, value in itertools.pairwise(tokens)
        if option in _VALUED and value and not value.startswith("-")
        if (path := (here / value).resolve()).exists()
    ]
    if not spaced:
        return
    tests = [here / arg.split("::")[0] for arg in config.args]
    found = [str(path.resolve()) for path in tests if path.exists()]
    base = Path(os.path.commonpath(found)) if found else here.resolve()
    for option, value, path in spaced:
        if path.is_relative_to(base):  # it cannot have moved the search
            continue
        intended = _setup_without_values(config)
        if intended is None or intended == (config.rootpath, config.inipath):
            continue
        ini = config.inipath or "no ini file"
        raise pytest.UsageError(
            f"{option} {value}: pytest took the path after the space for a test path, so its rootdir is "
            f"{config.rootpath} ({ini}) instead of {intended[0]} ({intended[1] or 'no ini file'}); "
            f"write {option}={value}"
        )


def _setup_without_values(config: pytest.Config) -> tuple[Path, Path | None] | None:
    """The rootdir and ini file pytest finds from the run's own test paths alone; None if it cannot say.

    Runs pytest's own search (an internal function, whose arguments vary
    between pytest releases: the ones it takes are passed).
    """
    import inspect

    try:
        from _pytest.config.findpaths import determine_setup
    except ImportError:
        return None
    given = config.args_source is pytest.Config.ArgsSource.ARGS
    arguments = {
        "inifile": None,
        "override_ini": config.option.override_ini,
        "args": list(config.args) if given else [],
        "rootdir_cmd_arg": config.option.rootdir or None,
        "invocation_dir": config.invocation_params.dir,
    }
    accepted = inspect.signature(determine_setup).parameters
    try:
        found = determine_setup(**{name: value for name, value in arguments.items() if name in accepted})
    except Exception:  # an internal that changed: the check is a courtesy, not a gate
        return None
    return Path(found[0]), None if found[1] is None else Path(found[1])
