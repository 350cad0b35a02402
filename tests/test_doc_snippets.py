"""Every Python snippet of README.md and docs/ runs as written, against the demo's data.

The data is what ``nox -s demo`` records: its suite (``infra/demo.py``), run
three times by the real plugin into the default store. S3 snippets reach moto's
server through ``AWS_ENDPOINT_URL``, with the buckets they name created first.
A snippet that cannot run here says so in an HTML comment right above it:
``<!-- snippet: not run, <reason> -->``. The spec's examples run in
``tests/test_spec_examples.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.demo import SUITE
from pytest_insight.core.storage import JSONStorage, get_storage_instance
from pytest_insight.model.sessions import TestSession
from tests.s3servers import S3Target

ROOT = Path(__file__).parent.parent
_BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)```", re.DOTALL)
_NOT_RUN = re.compile(r"<!-- snippet: not run, .+ -->")
_BUCKET = re.compile(r"""S3Storage\(\s*"(?P<a>[a-z0-9.-]+)"|s3://(?P<b>[a-z0-9.-]+)""")


@dataclass(frozen=True)
class Snippet:
    source: str
    line: int
    code: str


def snippets() -> list[Snippet]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            if not _NOT_RUN.fullmatch(match["before"].strip()):
                line = text.count("\n", 0, match.start("code")) + 1
                found.append(Snippet(path.relative_to(ROOT).as_posix(), line, match["code"]))
    return found


SNIPPETS = snippets()


@pytest.fixture(scope="module")
def demo_sessions(tmp_path_factory: pytest.TempPathFactory) -> list[TestSession]:
    """The demo suite's three runs, recorded by the real plugin (once for the module)."""
    suite = tmp_path_factory.mktemp("demo-suite")
    (suite / "test_checkout.py").write_text(SUITE, encoding="utf-8")
    (suite / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    store = suite.parent / f"{suite.name}-store"
    for build in (1, 2, 3):
        subprocess.run(
            [
                sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--reruns", "1",
                "--insight", "--insight-sut", "checkout", f"--insight-storage={store}",
                "--insight-tag", f"build={build}",
            ],
            cwd=suite, capture_output=True, check=False, env={**os.environ, "PYTEST_ADDOPTS": ""},
        )  # fmt: skip
    sessions = JSONStorage(store).load_sessions()
    assert len(sessions) == 3
    return sessions


@pytest.fixture
def demo_store(demo_sessions: list[TestSession]) -> None:
    """The default store holds the demo's sessions."""
    get_storage_instance().save_sessions(demo_sessions)


def test_the_docs_have_snippets() -> None:
    assert len(SNIPPETS) >= 5


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"{s.source}:{s.line}" for s in SNIPPETS])
def test_snippet_runs_as_written(
    snippet: Snippet,
    demo_store: None,
    moto_server_s3: S3Target,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for match in _BUCKET.finditer(snippet.code):
        bucket = match["a"] or match["b"]
        if bucket not in {item["Name"] for item in moto_server_s3.client.list_buckets()["Buckets"]}:
            moto_server_s3.client.create_bucket(Bucket=bucket)
    workdir = tmp_path / "snippet"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.syspath_prepend(str(ROOT))  # `from infra...` as from a checkout
    exec(compile(snippet.code, f"{snippet.source}:{snippet.line}", "exec"), {"__name__": "__snippet__"})  # noqa: S102
