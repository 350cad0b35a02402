"""Development sessions: tests, lint, typecheck, docs, demo, bench, a local S3 server, and the lock.

Every session installs from the committed ``uv.lock`` (``uv sync --locked``), so a
fresh machine tests with the versions the last reviewed commit tested with. A
stale lock fails the session instead of resolving anew. ``nox -s lock``
regenerates the lock (and the hashed bootstrap requirements for nox and uv);
``nox -s tests-newest`` runs the suite on the newest releases, so an upgrade is
tried before it is committed.
"""

from __future__ import annotations

import os
import shutil
import sys

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

PYTHON = "3"
BOOTSTRAP = "requirements/bootstrap"
# uv must take the machine's Python, never download one of its own
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")


def sync(session: nox.Session, *groups: str, project: bool = True) -> None:
    """Install exactly what ``uv.lock`` holds for ``groups`` (and the project with every extra)."""
    command = ["uv", "sync", "--locked", "--no-default-groups"]
    command += [f"--group={group}" for group in groups]
    command += ["--all-extras"] if project else ["--no-install-project"]
    session.run_install(*command)


def ensure_chromium(session: nox.Session) -> None:
    """Install Debian's chromium for the report's browser test, where we may (root, apt) and it is missing."""
    if shutil.which("chromium") or sys.platform != "linux":
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        session.warn("no chromium: install it (apt-get install chromium) or the browser test fails")
        return
    session.run("apt-get", "update", "-qq", external=True)
    session.run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", external=True)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the whole test suite, SeaweedFS, moto and a real Chromium included."""
    sync(session, "test")
    ensure_chromium(session)
    session.run("pytest", "-n", "2", "--dist", "loadgroup", *session.posargs)


@nox.session(python=PYTHON, name="tests-newest")
def tests_newest(session: nox.Session) -> None:
    """The suite on the newest release of every dependency, ignoring the lock: try an upgrade here."""
    session.install("--upgrade", "--resolution=highest", "-e", ".[s3,infra,report]", "--group=test")
    ensure_chromium(session)
    session.run("pytest", "-n", "2", "--dist", "loadgroup", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the package, the tests and this file; the import contracts (pyproject.toml)."""
    sync(session, "lint")  # lint-imports reads the package's imports
    session.run("ruff", "check", "pytest_insight", "tests", "infra", "noxfile.py")
    session.run("ruff", "format", "--check", "pytest_insight", "tests", "infra", "noxfile.py")
    session.run("lint-imports")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package, then on the tests, infra/ and this file."""
    sync(session, "typecheck")
    session.run("mypy", "--strict", "pytest_insight")
    session.run("mypy", "--strict", "--explicit-package-bases", "tests", "infra", "noxfile.py")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job end to end: record a real pytest run, store, export, import, summarise."""
    sync(session, "test")
    session.run("python", "infra/demo.py", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks: store save/load scaling, exchange throughput, S3 against its peers."""
    sync(session, "bench")
    session.run("python", "-m", "tests.bench", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site into build/site; any warning (a broken link, a bad reference) fails it."""
    sync(session, "docs", project=False)
    session.run("mkdocs", "build", "--strict", "--quiet", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python=PYTHON, name="s3-server")
def s3_server(session: nox.Session) -> None:
    """Start a local SeaweedFS S3 server on 127.0.0.1 until Ctrl-C."""
    sync(session, "test")
    session.run("insight", "dev-s3", *session.posargs)


@nox.session(venv_backend="none")
def lock(session: nox.Session) -> None:
    """Upgrade ``uv.lock`` and the bootstrap requirements to the newest releases the ranges allow.

    Review the diff, run ``nox -s tests-newest`` (or the plain sessions, which now use
    the new lock), and commit the lock on its own.
    """
    uv = (sys.executable, "-m", "uv")  # the uv installed beside nox from the bootstrap requirements
    session.run(*uv, "lock", "--upgrade", *session.posargs)
    session.run(
        *uv,
        "pip",
        "compile",
        "--quiet",
        "--universal",
        "--generate-hashes",
        "--upgrade",
        f"{BOOTSTRAP}.in",
        "--output-file",
        f"{BOOTSTRAP}.txt",
    )
