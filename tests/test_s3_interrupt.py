"""Ctrl-C during an S3 import: transfers stop within a second, committed batches stay, exit 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from pytest_insight.core.storage import InMemoryStorage, JSONStorage
from tests.conftest import BASE_TIME, MakeSession
from tests.faultproxy import Fault, FaultProxy, ProxyRequest
from tests.s3servers import S3Target

SERVED = 40  # downloads answered before every other one stalls


def wait_for(condition: object, timeout: float) -> None:
    """Poll ``condition()`` until it is true (readiness, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


@pytest.mark.slow
def test_ctrl_c_stops_an_import_within_a_second_and_exits_130(
    mock_s3: S3Target, make_session: MakeSession, tmp_path: Path
) -> None:
    sessions = [
        make_session(sut_name=f"svc-{n % 4}", start=BASE_TIME + timedelta(days=n)) for n in range(120)
    ]
    InMemoryStorage(sessions).export_sessions(f"s3://{mock_s3.bucket}/team")
    host, port = mock_s3.endpoint_url.removeprefix("http://").split(":")
    proxy = FaultProxy((host, int(port)))
    downloads = 0

    def stall_after_some(request: ProxyRequest) -> Fault | None:
        nonlocal downloads
        if not request.is_object_download:
            return None
        downloads += 1
        return Fault.STALL if downloads > SERVED else None

    proxy.plan(rules=[stall_after_some])
    proxy.start()
    store = tmp_path / "store"
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": proxy.endpoint_url,
        "PYTEST_INSIGHT_HOME": str(tmp_path / "home"),
    }
    command = [sys.executable, "-m", "pytest_insight", "import", f"s3://{mock_s3.bucket}/team", "--storage"]
    try:
        with subprocess.Popen(
            [*command, str(store)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as process:
            try:
                wait_for(lambda: proxy.counts[Fault.STALL] >= 4, timeout=60)  # every transfer now hangs
                interrupted = time.monotonic()
                process.send_signal(signal.SIGINT)
                code = process.wait(timeout=30)
            except BaseException:
                process.kill()  # or leaving the with block waits for it forever
                raise
            took = time.monotonic() - interrupted
            _, err = process.communicate()
    finally:
        proxy.stop()
    assert code == 130, err
    assert took < 1.0, f"exited {took:.2f} s after Ctrl-C"
    assert "interrupted" in err.decode()
    kept = JSONStorage(store).load_sessions()  # a whole number of batches, each readable
    assert {s.session_id for s in kept} <= {s.session_id for s in sessions}
