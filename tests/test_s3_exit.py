"""A process that imported from S3 exits cleanly: never SIGABRT, whether it finished or was interrupted.

obstore's ``*_async`` calls abort a process at exit about one run in fifty to
one in thirty (``tests/obstore_exit_abort.py``): the S3 backend uses its
blocking calls in worker threads instead. These tests run real ``insight
import`` processes against moto's server, to the end and interrupted with
SIGINT while transfers flow, and check every exit status.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

import pytest_insight.storage.s3
from pytest_insight.core.storage import InMemoryStorage
from tests.conftest import BASE_TIME, MakeSession
from tests.faultproxy import Fault, FaultProxy, ProxyRequest
from tests.s3servers import S3Target

RUNS = 20
INTERRUPT_AFTER = 10  # downloads served before SIGINT: the import is under way, with transfers in flight


def _exported(mock_s3: S3Target, make_session: MakeSession, count: int) -> str:
    sessions = [
        make_session(sut_name=f"svc-{n % 4}", start=BASE_TIME + timedelta(days=n // 4)) for n in range(count)
    ]
    InMemoryStorage(sessions).export_sessions(f"s3://{mock_s3.bucket}/team")
    return f"s3://{mock_s3.bucket}/team"


def _import_command(uri: str, store: Path, face: str = "cli") -> list[str]:
    if face == "cli":
        return [sys.executable, "-m", "pytest_insight", "import", uri, "--storage", str(store)]
    code = (
        "import sys\n"
        "from pytest_insight.core.storage import JSONStorage\n"
        "JSONStorage(sys.argv[2]).import_sessions(sys.argv[1])"
    )
    return [sys.executable, "-c", code, uri, str(store)]


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition()`` until it holds (readiness, not a fixed sleep); False on timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_the_package_calls_no_async_obstore_function() -> None:
    """The cheap guard: the async calls' exit abort is a race a few runs cannot be sure to show."""
    package = Path(pytest_insight.storage.s3.__file__).parent
    sources = sorted(package.glob("*.py"))
    calls = {path.name: re.findall(r"\.\w+_async\(", path.read_text()) for path in sources}
    assert {name: found for name, found in calls.items() if found} == {}


@pytest.mark.slow
def test_imports_run_to_the_end_exit_zero_every_time(
    mock_s3: S3Target, make_session: MakeSession, tmp_path: Path
) -> None:
    uri = _exported(mock_s3, make_session, 40)
    statuses: Counter[int] = Counter()
    errors = []
    for run in range(RUNS):
        result = subprocess.run(
            _import_command(uri, tmp_path / f"store-{run}"), capture_output=True, text=True, check=False
        )
        statuses[result.returncode] += 1
        if result.returncode != 0:
            errors.append(result.stderr[-2000:])
    assert statuses == {0: RUNS}, errors


@pytest.mark.slow
@pytest.mark.parametrize(
    ("face", "interrupted_status"),
    [
        pytest.param("cli", 130, id="insight-exits-130-at-once"),
        pytest.param("library", -signal.SIGINT, id="library-raises-and-finalizes"),
    ],
)
def test_imports_interrupted_mid_transfer_exit_as_interrupted_every_time(
    mock_s3: S3Target, make_session: MakeSession, tmp_path: Path, face: str, interrupted_status: int
) -> None:
    """The command leaves at once (``os._exit``); a library caller's interpreter finalizes,
    after joining the worker threads whose requests were abandoned."""
    uri = _exported(mock_s3, make_session, 200)
    host, port = mock_s3.endpoint_url.removeprefix("http://").split(":")
    statuses: Counter[int] = Counter()
    interrupted = 0
    errors = []
    for run in range(RUNS):
        # a proxy per run: requests the previous process sent just before it died count for nobody
        proxy = FaultProxy((host, int(port)))
        downloads: list[ProxyRequest] = []

        def count(request: ProxyRequest, downloads: list[ProxyRequest] = downloads) -> Fault | None:
            if request.is_object_download:
                downloads.append(request)
            return None  # every request is answered: transfers are flowing when the signal comes

        proxy.plan(rules=[count])
        proxy.start()
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": proxy.endpoint_url,
            "PYTEST_INSIGHT_HOME": str(tmp_path / "home"),
        }
        try:
            with subprocess.Popen(
                _import_command(uri, tmp_path / f"store-{run}", face),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            ) as process:
                if _wait_for(lambda: len(downloads) >= INTERRUPT_AFTER, timeout=60):  # noqa: B023 (called in this iteration only)
                    process.send_signal(signal.SIGINT)
                    interrupted += 1
                _, err = process.communicate(timeout=60)
        finally:
            proxy.stop()
        statuses[process.returncode] += 1
        if process.returncode not in (0, interrupted_status):
            errors.append(err.decode()[-2000:])
    assert interrupted == RUNS
    assert set(statuses) <= {0, interrupted_status}, (statuses, errors)  # 0: done before the signal
    assert statuses[interrupted_status] >= RUNS // 2, statuses
