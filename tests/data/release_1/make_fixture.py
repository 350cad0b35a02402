"""Build the data of this folder: what the release before the msgspec codec wrote.

Run once, at commit 9c6535f (before the codec changed), with
``python -m tests.data.release_1.make_fixture``; never again, since the point
is bytes written by that release. ``test_release_compat.py`` checks that the
current code reads them, keeps their bundle ids on re-export and stores
nothing twice.

- ``export/``: ``export_sessions`` to a directory, the bucket layout
  (``v1/sut=<sut>/date=<day>/<id>.jsonl.gz``), as an S3 export writes it;
- ``store/``: a local store (``JSONStorage``) holding the same sessions,
  saved one by one and in one bulk save (a pack);
- ``sessions.json``: every session's ``to_dict()``, what reading must give.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

from pytest_insight.core.storage import InMemoryStorage, Storage
from pytest_insight.model.sessions import TestOutcome, TestResult, TestSession
from pytest_insight.storage.local.store import LocalBackend
from tests.conftest import BASE_TIME, build_session

HERE = Path(__file__).parent


def sessions() -> list[TestSession]:
    """Sessions that exercise what the encoding must keep: non-ASCII, odd floats, nesting, reruns."""
    built = [
        build_session(f"release1-{n}", sut_name=sut, start=BASE_TIME + timedelta(hours=n * 7), tests=5)
        for n, sut in enumerate(["checkout-api", "checkout-api", "web ü/ui", "checkout-api", "web ü/ui"])
    ]
    odd = built[0]
    odd.session_duration = 1e-05
    odd.testing_system = {"python": "3.12.1", "big": 2**70, "nested": {"a": [1, 2.5, None, True]}}
    odd.session_tags = {"branch": "main", "émoji": "✓😀"}
    start = odd.session_start_time
    odd.test_results.append(
        TestResult(
            "tests/test_odd.py::test_tiny[\u2028\x7f]",
            TestOutcome.PASSED,
            start,
            start + timedelta(microseconds=9),
            9.5e-06,
            capstdout='tab\tnul\x00 quote" backslash\\ é 😀\n',
            longreprtext="",
        )
    )
    return built


def main() -> None:
    for name in ("export", "store"):
        shutil.rmtree(HERE / name, ignore_errors=True)
    made = sessions()
    InMemoryStorage(made).export_sessions(HERE / "export")
    store = Storage(LocalBackend(HERE / "store", pack_from=2))
    store.save_session(made[0])
    store.save_session(made[1])
    store.save_sessions(made[2:])
    (HERE / "sessions.json").write_text(
        json.dumps([session.to_dict() for session in made], indent=1, sort_keys=True) + "\n"
    )


if __name__ == "__main__":
    main()
