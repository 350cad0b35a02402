"""The pytest plugin: record every run as a session (``pytest --insight``).

pytest imports this package in every run, through the ``pytest11`` entry
point ``insight``, whether recording is on or not; so it holds only the
hooks pytest looks up here and imports nothing beyond pytest and
:mod:`~pytest_insight.plugin.options` until a run records. Its modules:

- :mod:`~pytest_insight.plugin.options`: the ``--insight*`` options, their ini
  mirrors, and the precedence command line > environment > ini;
- :mod:`~pytest_insight.plugin.settings`: those merged into
  :class:`~pytest_insight.plugin.settings.InsightSettings`;
- :mod:`~pytest_insight.plugin.ci_context`: the CI run's tags;
- :mod:`~pytest_insight.plugin.recording`: the object registered for a
  recorded run, whose hooks feed
- :mod:`~pytest_insight.plugin.recorder`: pytest's reports into one session;
- :mod:`~pytest_insight.plugin.publish`: saving it at the end, within a
  deadline, keeping it locally when a bucket does not take it.

With pytest-xdist only the controller records (it receives every worker's
reports), so one run is one session. A failure to save is reported in the
terminal summary and leaves the exit status alone unless ``--insight-strict``
is set.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

from pytest_insight.plugin.options import add_options, check_spaced_paths, read_flag

if TYPE_CHECKING:
    from pytest_insight.plugin.recording import InsightPlugin

__all__ = ["pytest_addoption", "pytest_configure", "pytest_unconfigure", "unrewritten_imports"]

_PLUGIN_KEY: pytest.StashKey[InsightPlugin] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``--insight*`` options and their ini mirrors."""
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Register the recorder when recording is on, except on xdist workers."""
    if hasattr(config, "workerinput"):
        return  # the xdist controller receives every report and writes the one session
    check_spaced_paths(config, os.environ)
    if not read_flag(config, os.environ, "insight", "PYTEST_INSIGHT"):
        return  # not recording: the recorder, the model and the storage are never imported
    with unrewritten_imports(config):
        from pytest_insight.plugin.recording import InsightPlugin
        from pytest_insight.plugin.settings import resolve_settings

    plugin = InsightPlugin(config, resolve_settings(config))
    config.stash[_PLUGIN_KEY] = plugin
    config.pluginmanager.register(plugin, "insight-recorder")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Unregister the recorder."""
    plugin = config.stash.get(_PLUGIN_KEY, None)
    if plugin is not None:
        del config.stash[_PLUGIN_KEY]
        if plugin.log is not None:
            config.pluginmanager.unregister(plugin.log)
        config.pluginmanager.unregister(plugin)


@contextmanager
def unrewritten_imports(config: pytest.Config) -> Iterator[None]:
    """Import pytest-insight's modules past pytest's assertion rewriting, which they do not need.

    pytest rewrites the asserts of every module of a plugin's distribution,
    so each of the forty modules a recording run imports would go through
    its import hook: a second search for the file and the rewritten code
    read by Python code, 0.2 ms a module, and, where no rewritten copy can
    be cached (``PYTHONDONTWRITEBYTECODE``, a read-only site-packages), the
    module parsed and rewritten again in every run. The hook is taken out of
    ``sys.meta_path`` while ``pytest_configure`` and the end of the run
    import them (nothing else imports then), and put back where it was.
    """
    hook = getattr(config.pluginmanager, "rewrite_hook", None)
    try:
        position = sys.meta_path.index(hook)  # type: ignore[arg-type]
    except ValueError:  # --assert=plain, or another plugin moved it: import as usual
        yield
        return
    del sys.meta_path[position]
    try:
        yield
    finally:
        sys.meta_path.insert(min(position, len(sys.meta_path)), hook)  # type: ignore[arg-type]
