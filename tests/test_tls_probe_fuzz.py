"""Fuzzing the TLS parsers (hypothesis): arbitrary bytes give a result or TlsParseError only.

The record reader and the handshake exchange run on an in-memory StreamReader, so the same
code path as against a live server is fuzzed, with the per-probe byte limit in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.tlsprobe.hello import HelloSpec, client_hello
from scanner.tlsprobe.probe import _exchange
from scanner.tlsprobe.suites import TLS12, TLS13, candidates
from scanner.tlsprobe.wire import (
    HandshakeBuffer,
    TlsParseError,
    parse_certificates,
    parse_dh_params,
    parse_ecdh_params,
    parse_record_header,
    parse_server_hello,
)
from tests.tls_scripted import handshake, parse_client_hello, record, server_hello

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=400))
def test_server_hello_parser_never_crashes(data: bytes) -> None:
    try:
        hello = parse_server_hello(data)
    except TlsParseError:
        return
    assert len(hello.random) == 32 and len(hello.session_id) <= 32
    _ = hello.version, hello.key_share_group, hello.is_hrr


@FUZZ
@given(
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40)), max_size=8),
)
def test_well_formed_server_hello_round_trips(version: int, suite: int, exts: list) -> None:  # type: ignore[type-arg]
    blob = b"".join(struct.pack(">HH", t, len(d)) + d for t, d in exts)
    body = server_hello(version, suite, blob)[4:]
    try:
        hello = parse_server_hello(body)
    except TlsParseError as exc:
        # only impossible versions, repeated extensions or a bad ALPN body are refused
        assert version >> 8 != 3 or "repeats" in str(exc) or "ALPN" in str(exc) or exts
        return
    assert hello.cipher == suite and hello.legacy_version == version


@FUZZ
@given(st.binary(max_size=300))
def test_other_parsers_never_crash(data: bytes) -> None:
    for parse in (parse_certificates, parse_dh_params, parse_ecdh_params):
        with contextlib.suppress(TlsParseError):
            parse(data)
    with contextlib.suppress(TlsParseError):
        parse_record_header(data[:5])


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=10))
def test_handshake_reassembly_is_bounded(chunks: list[bytes]) -> None:
    buf = HandshakeBuffer()
    try:
        for c in chunks:
            for _mtype, body in buf.feed(c):
                assert len(body) <= 128 * 1024
    except TlsParseError:
        pass


def _run(data: bytes, read_kex: bool) -> object:
    async def go() -> object:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await _exchange(reader, HelloSpec(TLS12, (0x002F,)), read_kex)

    return asyncio.run(go())


@FUZZ
@given(st.binary(max_size=600), st.booleans())
def test_exchange_on_arbitrary_bytes(data: bytes, read_kex: bool) -> None:
    with contextlib.suppress(TlsParseError):
        _run(data, read_kex)


@FUZZ
@given(st.integers(0, 200), st.binary(max_size=64), st.booleans())
def test_exchange_on_mutated_flights(cut: int, noise: bytes, read_kex: bool) -> None:
    flight = server_hello(0x0303, 0x0033) + handshake(11, b"\x00\x00\x05\x00\x00\x02\x30\x00")
    flight += handshake(12, b"\x00\x02\xff\xff\x00\x01\x02\x00\x01\x05") + handshake(14, b"")
    data = record(22, flight)
    data = data[:cut] + noise + data[cut + len(noise) :]
    with contextlib.suppress(TlsParseError):
        _run(data, read_kex)


@given(st.sampled_from([0x0300, 0x0301, 0x0302, 0x0303, TLS13]), st.text("abc.", max_size=20))
def test_client_hello_is_well_formed(version: int, name: str) -> None:
    spec = HelloSpec(version, tuple(candidates(version)), name.strip(".") or None, alpn=("h2",))
    raw = client_hello(spec)
    assert raw[0] == 22 and int.from_bytes(raw[3:5], "big") == len(raw) - 5
    parsed = parse_client_hello(raw)
    assert parsed is not None and parsed.tls13 == (version == TLS13)
    if version != 0x0300:  # SSLv3 hellos carry no extensions, hence no padding
        assert not 256 <= len(raw) - 5 < 512  # padded past the range some terminators choke on
