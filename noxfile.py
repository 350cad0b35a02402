"""Development sessions: tests, lint, typecheck, demo, bench and a local S3 server."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

PYTHON = "3"


def install(session: nox.Session, *extras: str) -> None:
    """Install the project in editable mode with the given extras."""
    wanted = f"[{','.join(extras)}]" if extras else ""
    session.install("-e", f".{wanted}")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the whole test suite, SeaweedFS and moto servers included."""
    install(session, "test")
    session.run("pytest", "-n", "2", "--dist", "loadgroup", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the package, the tests and this file."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", "pytest_insight", "tests", "infra", "noxfile.py")
    session.run("ruff", "format", "--check", "pytest_insight", "tests", "infra", "noxfile.py")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package, then on the tests, infra/ and this file."""
    install(session, "dev")
    session.run("mypy", "--strict", "pytest_insight")
    session.run("mypy", "--strict", "--explicit-package-bases", "tests", "infra", "noxfile.py")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job end to end: record a real pytest run, store, export, import, summarise."""
    install(session, "test")
    session.run("python", "infra/demo.py", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks: store save/load scaling, exchange throughput, S3 against its peers."""
    install(session, "test")
    session.install("awscli", "s5cmd")
    session.run("python", "-m", "tests.bench", *session.posargs)


@nox.session(python=PYTHON, name="s3-server")
def s3_server(session: nox.Session) -> None:
    """Start a local SeaweedFS S3 server on 127.0.0.1 until Ctrl-C."""
    install(session, "test")
    session.run("python", "infra/local_s3.py", *session.posargs)
