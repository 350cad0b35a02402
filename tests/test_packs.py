"""Pack files: what a writer writes, a reader reads back, and a damaged pack is refused naming it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_insight.errors import CorruptStoreError
from pytest_insight.storage.local import packs
from pytest_insight.storage.local.session_files import session_file_name
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


def same_length(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    """A damage that keeps the file's length, so its offsets still point where they did."""
    assert len(old) == len(new)
    return lambda data: data.replace(old, new, 1)


NO_OFFSETS = "no index offsets at its end"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[:-1], NO_OFFSETS),
        (lambda data: data[:10], NO_OFFSETS),
        (lambda data: b"", NO_OFFSETS),
        (lambda data: data[:-33] + b"%016x%016x\n" % (len(data) + 5, len(data) + 9), NO_OFFSETS),
        (lambda data: data[:-33] + b"%016x%016x\n" % (10, 4), NO_OFFSETS),  # names before the index
        (lambda data: data[:-33] + b"z" * 32 + b"\n", NO_OFFSETS),
        (same_length(b'"pytest-insight-pack":1', b'"pytest-insight-pack":2'), "not a pack of format 1"),
        (same_length(b'"sessions":[', b'"sessions":{'), "unreadable pack index"),
        (same_length(b",0,3,", b",0,9,"), "entry out of place"),  # the line would run into the index
        (same_length(b",4,3,", b",1,3,"), "entry out of place"),  # overlaps the line before
        (same_length(b'[["' + name(1)[:3].encode(), b'[["../'), "entry out of place"),
        (same_length(b'"id-0"', b"123456"), "entry out of place"),
        (same_length(b"+00:00", b"      "), "start time unreadable"),
        (same_length(b"2024-", b"yest-"), "start time unreadable"),
    ],
)
def test_a_damaged_pack_names_its_file(tmp_path: Path, damage: Callable[[bytes], bytes], reason: str) -> None:
    path = tmp_path / packs.new_pack_name()
    write(path, [(name(1), b"one"), (name(2), b"two")])
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CorruptStoreError, match=reason) as caught:
        packs.read_index(path)
    assert caught.value.path == str(path)


def names_line_not_hex(data: bytes) -> bytes:
    start = int(data[-17:-1], 16)  # the names line's offset, from the footer
    return data[:start] + b"z" + data[start + 1 :]


@pytest.mark.parametrize("damage", [names_line_not_hex, lambda data: data[:-34] + data[-33:]])
def test_a_damaged_names_line_is_refused(tmp_path: Path, damage: Callable[[bytes], bytes]) -> None:
    path = tmp_path / packs.new_pack_name()
    write(path, [(name(1), b"one"), (name(2), b"two")])
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CorruptStoreError, match="not a whole pack"):
        packs.read_names(path)


@settings(max_examples=40, deadline=None)
@given(stored=st.sets(st.integers(0, 200), max_size=40), asked=st.lists(st.integers(0, 200), max_size=20))
def test_the_names_line_answers_membership_in_memory_and_on_disk(
    tmp_path_factory: pytest.TempPathFactory, stored: set[int], asked: list[int]
) -> None:
    path = tmp_path_factory.mktemp("pack") / packs.new_pack_name()
    write(path, [(name(n), b"x") for n in sorted(stored)])
    names = packs.read_names(path)
    assert len(names) == 64 * len(stored)
    assert packs.members(names) == {name(n) for n in stored}
    assert [packs.holds(names, name(n)) for n in asked] == [n in stored for n in asked]
    assert packs.file_holds(path, [name(n) for n in asked]) == {name(n) for n in asked if n in stored}


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
