"""The one atomic write and the one ExceptionGroup policy every module uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from pytest_insight.errors import StorageError
from pytest_insight.files import write_atomic
from pytest_insight.tasks import leaves, run_concurrently, unwrapped


def test_a_write_that_fails_part_way_keeps_the_old_file_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "export.json"
    target.write_bytes(b"old")

    def pieces() -> Iterator[bytes]:
        yield b"new, half of it"
        raise RuntimeError("the encoder failed")

    with pytest.raises(RuntimeError, match="encoder failed"):
        write_atomic(target, pieces())
    assert target.read_bytes() == b"old"
    assert [path.name for path in tmp_path.iterdir()] == ["export.json"]


@pytest.mark.parametrize("durable", [True, False])
def test_a_write_replaces_the_file_and_makes_its_directory(tmp_path: Path, durable: bool) -> None:
    target = tmp_path / "new" / "dir" / "bundle.jsonl.gz"
    write_atomic(target, [b"a", b"b"], durable=durable)
    write_atomic(target, b"c", durable=durable)
    assert target.read_bytes() == b"c"
    assert [path.name for path in target.parent.iterdir()] == ["bundle.jsonl.gz"]


def test_a_write_that_cannot_happen_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageError, match=r"file/x\.json: cannot write"):
        write_atomic(tmp_path / "file" / "x.json", b"{}")


def test_one_failure_in_a_task_group_is_raised_as_itself() -> None:
    async def main() -> None:
        with unwrapped():
            async with anyio.create_task_group() as group:
                group.start_soon(anyio.sleep_forever)
                raise KeyError("the one")

    with pytest.raises(KeyError, match="the one"):
        anyio.run(main)


def test_several_failures_stay_a_group_and_their_leaves_are_flat() -> None:
    group = ExceptionGroup("outer", [ValueError("a"), ExceptionGroup("inner", [KeyError("b")])])
    with pytest.raises(ExceptionGroup) as caught, unwrapped():
        raise group
    assert [type(leaf) for leaf in leaves(caught.value)] == [ValueError, KeyError]


def test_the_first_failing_job_cancels_the_rest() -> None:
    finished: list[str] = []

    async def fails() -> None:
        raise OSError("disk full")

    async def waits() -> None:
        await anyio.sleep_forever()
        finished.append("never")

    with pytest.raises(OSError, match="disk full"):
        anyio.run(run_concurrently, [waits, fails, waits])
    assert finished == []
