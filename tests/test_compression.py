"""The gzip codec: ISA-L or zlib, readable by each other and by the standard library, same bytes each time."""

from __future__ import annotations

import gzip
import importlib.util
import os
import sys
from types import ModuleType

import pytest
from isal import igzip

from pytest_insight.format import compression
from pytest_insight.format.bundle import encode_session
from tests.conftest import build_session

RAW = b"".join(b'{"session_id": "s-%d", "outcome": "passed"}\n' % n for n in range(5000))


def _load_without_isal(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setitem(sys.modules, "isal", None)  # makes ``from isal import ...`` raise ImportError
    spec = importlib.util.find_spec("pytest_insight.format.compression")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["installed", "zlib"])
def codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return compression if request.param == "installed" else _load_without_isal(monkeypatch)


def test_isal_is_used_where_installed() -> None:
    assert compression.BACKEND == "isal"


def test_the_fallback_is_zlib(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _load_without_isal(monkeypatch).BACKEND == "zlib"


def test_output_is_deterministic_plain_gzip(codec: ModuleType) -> None:
    data = codec.gzip_compress(RAW)
    assert data == codec.gzip_compress(RAW)
    assert data[:4] == b"\x1f\x8b\x08\x00"
    assert data[4:8] == b"\0\0\0\0"
    assert data[9] == 255
    assert gzip.decompress(data) == RAW
    assert len(data) < len(RAW) / 5


def test_inflater_reads_any_gzip_in_bounded_steps(codec: ModuleType) -> None:
    for data in (gzip.compress(RAW), compression.gzip_compress(RAW), codec.gzip_compress(RAW)):
        inflate = codec.inflater()
        out, pending = b"", data
        while not inflate.eof:
            piece = inflate.decompress(pending, 4096)
            assert len(piece) <= 4096
            out += piece
            pending = inflate.unconsumed_tail
        assert out == RAW
        assert inflate.unused_data == b""


def test_a_damaged_checksum_is_one_of_the_codec_errors(codec: ModuleType) -> None:
    data = bytearray(gzip.compress(RAW))
    data[-8] ^= 0xFF
    with pytest.raises(codec.ERRORS):
        codec.inflater().decompress(bytes(data))


def _os_unknown(data: bytes) -> bytes:
    return data[:9] + b"\xff" + data[10:]


def test_every_bundle_is_one_pass_of_isal_level_2() -> None:
    noise = os.urandom(60_000).hex().encode()
    sessions = b"".join(encode_session(build_session(f"s-{n}", tests=50)).line + b"\n" for n in range(50))
    for raw in (noise, sessions):
        assert compression.gzip_compress(raw) == _os_unknown(igzip.compress(raw, 2, mtime=0))


@pytest.mark.parametrize("piece", [1, 4096, 1 << 20])
def test_a_gzip_written_in_pieces_is_the_same_gzip(codec: ModuleType, piece: int) -> None:
    noise = os.urandom(40_000).hex().encode()
    for raw in (b"", RAW, noise):
        writer = codec.GzipWriter()
        out = b"".join(writer.compress(raw[at : at + piece]) for at in range(0, len(raw), piece))
        assert out + writer.flush() == codec.gzip_compress(raw)


def test_a_large_gzip_written_in_pieces_is_about_as_small_as_one_written_at_once(codec: ModuleType) -> None:
    sessions = b"".join(encode_session(build_session(f"s-{n}", tests=60)).line + b"\n" for n in range(150))
    noise = os.urandom(700_000).hex().encode()
    assert len(sessions) > 1 << 20
    written = {}
    for name, raw in (("sessions", sessions), ("noise", noise)):
        writer = codec.GzipWriter()
        out = b"".join(writer.compress(raw[at : at + 65536]) for at in range(0, len(raw), 65536))
        written[name] = out + writer.flush()
        assert gzip.decompress(written[name]) == raw
    # past the first megabyte ISA-L's output depends on the pieces: a few percent larger, no more
    for name, raw in (("sessions", sessions), ("noise", noise)):
        assert len(written[name]) <= len(codec.gzip_compress(raw)) * 1.1
