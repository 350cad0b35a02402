"""Pack files: what a writer writes, a reader reads back, and a damaged pack is refused naming it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_insight.errors import CorruptStoreError
from pytest_insight.storage import packs
from pytest_insight.storage.session_files import session_file_name
from tests.conftest import BASE_TIME


def name(number: int) -> str:
    return session_file_name(f"s{number}")


def keyed(lines: list[tuple[str, bytes]]) -> list[tuple[str, bytes, packs.Key]]:
    """The lines with a key each: the pack's n-th session started n minutes after BASE_TIME."""
    return [
        (name_, line, packs.Key(f"id-{n}", "sut é", BASE_TIME + timedelta(minutes=n)))
        for n, (name_, line) in enumerate(lines)
    ]


def write(path: Path, lines: list[tuple[str, bytes]]) -> None:
    writer = packs.PackWriter(path)
    writer.append(keyed(lines))
    writer.finish(durable=True)


def test_names() -> None:
    made = packs.new_pack_name()
    assert packs.is_pack_file(made)
    assert made != packs.new_pack_name()
    assert not packs.is_pack_file(made.upper())
    assert not packs.is_pack_file(made[:-5] + ".json")
    assert not packs.is_pack_file("../" + made[3:])


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(st.binary(min_size=1, max_size=300).filter(lambda b: b"\n" not in b), max_size=30),
    read_bytes=st.integers(1, 2000),
)
def test_round_trip_reads_every_line_in_any_grouping(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], read_bytes: int
) -> None:
    path = tmp_path_factory.mktemp("pack") / packs.new_pack_name()
    items = [(name(n), line) for n, line in enumerate(lines)]
    write(path, items[: len(items) // 2])
    index = packs.read_index(path)
    assert list(index) == [n for n, _ in items[: len(items) // 2]]
    assert [entry.line for entry in index.values()] == list(range(1, len(index) + 1))
    assert [entry.key for entry in index.values()] == [key for _, _, key in keyed(items[: len(items) // 2])]
    path.unlink()
    writer = packs.PackWriter(path)
    writer.append(keyed(items)[: len(items) // 2])
    writer.append(keyed(items)[len(items) // 2 :])
    writer.finish(durable=False)
    index = packs.read_index(path)
    wanted = [n for n, _ in items[::3]]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(packs, "_READ_BYTES", read_bytes)  # lines read in groups of at most this many bytes
        assert list(packs.read_lines(path, index)) == items
        assert list(packs.read_lines(path, index, [*wanted, name(10_000)])) == items[::3]


def test_a_name_added_again_or_forgotten_is_left_out_of_the_index(tmp_path: Path) -> None:
    path = tmp_path / packs.new_pack_name()
    writer = packs.PackWriter(path)
    writer.append(keyed([(name(1), b"one"), (name(2), b"two"), (name(3), b"three")]))
    writer.append(keyed([(name(1), b"one again")]))
    writer.forget(name(2))
    assert len(writer) == 2
    writer.finish(durable=True)
    index = packs.read_index(path)
    assert list(packs.read_lines(path, index)) == [(name(3), b"three"), (name(1), b"one again")]
    assert path.read_bytes().startswith(b"one\ntwo\nthree\none again\n{")


def test_a_pack_is_never_written_over(tmp_path: Path) -> None:
    path = tmp_path / packs.new_pack_name()
    write(path, [(name(1), b"one")])
    with pytest.raises(FileExistsError):
        packs.PackWriter(path)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[:-1], "no index offset at its end"),
        (lambda data: data[:10], "no index offset at its end"),
        (lambda data: b"", "no index offset at its end"),
        (lambda data: data[:-17] + b"%016x\n" % (len(data) + 5), "no index offset at its end"),
        (lambda data: data[:-17] + b"zzzzzzzzzzzzzzzz\n", "no index offset at its end"),
        (
            lambda data: data.replace(b'"pytest-insight-pack":1', b'"pytest-insight-pack":2'),
            "not a pack of format 1",
        ),
        (lambda data: data.replace(b'"sessions":[', b'"sessions":[[]]x['), "unreadable pack index"),
        (lambda data: data.replace(b",0,3,", b",0,300,"), "entry out of place"),
        (lambda data: data.replace(b",4,3,", b",1,3,"), "entry out of place"),
        (lambda data: data.replace(b'[["', b'[["../'), "entry out of place"),
        (lambda data: data.replace(b',"id-0",', b",0,"), "entry out of place"),
        (lambda data: data.replace(b"+00:00", b""), "start time unreadable"),
        (lambda data: data.replace(b"2024-", b"yesterday-"), "start time unreadable"),
    ],
)
def test_a_damaged_pack_names_its_file(tmp_path: Path, damage: object, reason: str) -> None:
    path = tmp_path / packs.new_pack_name()
    write(path, [(name(1), b"one"), (name(2), b"two")])
    assert callable(damage)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CorruptStoreError, match=reason) as caught:
        packs.read_index(path)
    assert caught.value.path == str(path)


def test_a_pack_cut_short_after_its_index_was_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / packs.new_pack_name()
    write(path, [(name(1), b"one"), (name(2), b"two")])
    index = packs.read_index(path)
    path.write_bytes(b"one\ntw")
    with pytest.raises(CorruptStoreError, match="shorter than its index"):
        list(packs.read_lines(path, index))


def test_a_dropped_pack_reads_as_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        packs.read_index(tmp_path / packs.new_pack_name())
