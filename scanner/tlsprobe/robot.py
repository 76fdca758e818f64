"""ROBOT: is a static-RSA key exchange a padding oracle (Bleichenbacher 1998, Böck et al. 2017)?

A server that decrypts the client's RSA-encrypted premaster secret must answer the same way
whether or not the plaintext was a well-formed PKCS#1 v1.5 block (RFC 5246 section 7.4.7.1);
any difference (another alert, a close instead of an alert, a reset, silence) lets an attacker
decrypt recorded sessions or sign with the server's key, one adaptive query at a time.

Assay sends, one connection each, a ClientKeyExchange whose encrypted premaster secret is built
here with raw RSA (m^e mod n over Python ints, so any malformation is possible), followed by a
ChangeCipherSpec and a Finished of garbage, and notes what the server does next. The variants
are the five of the ROBOT paper; their answers are compared, and a difference is repeated once
so that a flaky network is not reported as an oracle. Nothing secret is kept: the answers are
short descriptions such as "alert bad_record_mac, then closed".
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from scanner.tlsprobe.endpoint import TlsEndpoint, TlsProbeError
from scanner.tlsprobe.hello import HelloSpec
from scanner.tlsprobe.probe import MAX_BYTES_PER_PROBE, _Reader, first_flight
from scanner.tlsprobe.suites import SSL3, suite
from scanner.tlsprobe.wire import (
    CT_ALERT,
    CT_CHANGE_CIPHER_SPEC,
    CT_HANDSHAKE,
    HS_CERTIFICATE,
    TlsParseError,
    parse_alert,
)

CORRECT = "correct"
WRONG_FIRST_BYTES = "wrong_first_bytes"
ZERO_IN_PADDING = "zero_in_padding"
NO_SEPARATOR = "no_separator"
WRONG_VERSION = "wrong_version"
VARIANTS: tuple[str, ...] = (
    CORRECT,
    WRONG_FIRST_BYTES,
    ZERO_IN_PADDING,
    NO_SEPARATOR,
    WRONG_VERSION,
)
CONNECTIONS = 2 * len(VARIANTS)  # one round, and one repeat when the answers differ

PMS_LENGTH = 48  # TLS premaster secret: client_version (2) + random (46)
MIN_MODULUS_BYTES = PMS_LENGTH + 3 + 8  # 0x00 0x02, at least 8 padding bytes, 0x00 separator
HS_CLIENT_KEY_EXCHANGE = 16
# Stands for the client's encrypted Finished (IV + verify_data + MAC + padding of a CBC suite):
# the server cannot decrypt it under any premaster secret it derived, so every variant ends in
# the same record error unless the server already reacted to the key exchange itself.
GARBAGE_FINISHED = bytes(range(0x40, 0x70))

Random = Callable[[int], bytes]
# What a server that insists on a client certificate answers the empty one Assay sends: it
# stops there, so identical answers say nothing about its RSA decryption.
CLIENT_CERT_ALERTS = (
    "handshake_failure",
    "bad_certificate",
    "certificate_required",
    "access_denied",
)


def _nonzero(n: int, rand: Random) -> bytes:
    """`n` random bytes none of which is 0x00 (PKCS#1 padding must not contain a zero)."""
    return bytes(b or 0x5A for b in rand(n))


def pkcs1_block(variant: str, k: int, version: int, rand: Random = os.urandom) -> bytes:
    """The k-byte plaintext of one ROBOT variant (k: the modulus length in bytes).

    correct:           00 02 | nonzero padding | 00 | client_version | 46 random bytes
    wrong_first_bytes: 41 17 instead of 00 02 (not PKCS#1 conformant at all)
    zero_in_padding:   a 00 in the middle of the padding (the premaster secret comes out long)
    no_separator:      no 00 anywhere after 00 02 (nothing marks where the message starts)
    wrong_version:     conformant, but the premaster secret starts with 02 02
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown ROBOT variant {variant!r}")
    if k < MIN_MODULUS_BYTES:
        raise ValueError(f"an RSA modulus of {k} bytes cannot carry a premaster secret")
    head = b"\x41\x17" if variant == WRONG_FIRST_BYTES else b"\x00\x02"
    padding = bytearray(_nonzero(k - 3 - PMS_LENGTH, rand))
    if variant == ZERO_IN_PADDING:
        padding[len(padding) // 2] = 0
    separator = _nonzero(1, rand) if variant == NO_SEPARATOR else b"\x00"
    pms_version = b"\x02\x02" if variant == WRONG_VERSION else struct.pack(">H", version)
    secret = _nonzero(46, rand) if variant == NO_SEPARATOR else rand(46)
    block = head + bytes(padding) + separator + pms_version + secret
    assert len(block) == k
    return block


def rsa_encrypt_raw(block: bytes, key: rsa.RSAPublicKey) -> bytes:
    """m^e mod n, with no padding of its own: the block is sent exactly as built."""
    numbers = key.public_numbers()
    k = (key.key_size + 7) // 8
    m = int.from_bytes(block, "big")
    if len(block) != k or m >= numbers.n:
        raise ValueError("the block does not fit under the RSA modulus")
    return pow(m, numbers.e, numbers.n).to_bytes(k, "big")


def _record(ctype: int, version: int, body: bytes) -> bytes:
    return struct.pack(">BHH", ctype, version, len(body)) + body


def key_exchange_flight(ciphertext: bytes, version: int, empty_certificate: bool = False) -> bytes:
    """ClientKeyExchange (RFC 5246 7.4.7.1: a 2-byte length, then the ciphertext; SSLv3 has
    no length), then ChangeCipherSpec and the garbage Finished, as three records at once.

    `empty_certificate`: the server asked for a client certificate, so an empty Certificate
    message goes first (RFC 5246 7.4.6); a server that only requests one then goes on to
    decrypt the premaster secret instead of stopping at the missing certificate."""
    prefix = b"" if version == SSL3 else struct.pack(">H", len(ciphertext))
    body = prefix + ciphertext
    cke = bytes([HS_CLIENT_KEY_EXCHANGE]) + len(body).to_bytes(3, "big") + body
    if empty_certificate:
        cke = bytes([HS_CERTIFICATE]) + b"\x00\x00\x03\x00\x00\x00" + cke
    return (
        _record(CT_HANDSHAKE, version, cke)
        + _record(CT_CHANGE_CIPHER_SPEC, version, b"\x01")
        + _record(CT_HANDSHAKE, version, GARBAGE_FINISHED)
    )


def static_rsa(codes: list[int] | tuple[int, ...]) -> list[int]:
    """The static-RSA key-exchange suites among `codes`, export ones left out: those encrypt
    the premaster secret under a temporary key from ServerKeyExchange, not the certificate's."""
    return [c for c in codes if (s := suite(c)) and s.kex == "RSA" and "export" not in s.flags]


def server_rsa_key(certificates: tuple[bytes, ...] | list[bytes]) -> rsa.RSAPublicKey | None:
    if not certificates:
        return None
    try:
        key = x509.load_der_x509_certificate(certificates[0]).public_key()
    except ValueError:
        return None
    return key if isinstance(key, rsa.RSAPublicKey) else None


@dataclass(frozen=True)
class RobotAnswer:
    """What one variant's connection got. `answer` is None when the key exchange could not be
    sent (no hello, no RSA certificate, ...); `reason` then says why."""

    answer: str | None
    reason: str = ""
    client_cert_requested: bool = False


async def _reaction(rd: _Reader, wait: float) -> str:
    """The server's first reaction to the key-exchange flight, and whether it then closed."""
    try:
        async with asyncio.timeout(wait):
            rec = await rd.record()
    except TimeoutError:
        return "timeout"
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    except TlsParseError:
        return "malformed record"
    if rec is None:
        return "closed"
    ctype, body = rec
    first = f"alert {parse_alert(body).name}" if ctype == CT_ALERT and body else f"type {ctype}"
    try:
        async with asyncio.timeout(min(wait, 1.0)):
            rest = await rd.record()
    except TimeoutError:
        return f"{first}, then open"
    except (ConnectionResetError, BrokenPipeError):
        return f"{first}, then reset"
    except TlsParseError:
        return f"{first}, then malformed"
    return f"{first}, then closed" if rest is None else f"{first}, then more"


async def robot_probe(
    ep: TlsEndpoint, spec: HelloSpec, variant: str, timeout: float, wait: float = 2.0
) -> RobotAnswer:
    """One connection: a hello offering static-RSA suites, up to ServerHelloDone, then the
    key-exchange flight of `variant`, and at most `wait` seconds for the server's reaction."""
    try:
        async with (
            asyncio.timeout(timeout + wait + 2),
            first_flight(ep, spec, timeout) as (ans, reader, writer),
        ):
            if ans.hello is None:
                return RobotAnswer(None, ans.describe())
            if ans.alert is not None or ans.reason:
                why = f"alert {ans.alert.name}" if ans.alert else ans.reason
                return RobotAnswer(None, f"the handshake ended before ServerHelloDone ({why})")
            chosen = suite(ans.hello.cipher)
            if chosen is None or chosen.kex != "RSA":
                return RobotAnswer(
                    None, f"the server chose 0x{ans.hello.cipher:04X}, not a static-RSA suite"
                )
            key = server_rsa_key(ans.certificates)
            if key is None:
                return RobotAnswer(None, "the server sent no RSA certificate")
            try:
                block = pkcs1_block(variant, (key.key_size + 7) // 8, spec.version)
                flight = key_exchange_flight(
                    rsa_encrypt_raw(block, key),
                    ans.hello.version,
                    empty_certificate=ans.client_cert_requested,
                )
            except ValueError as exc:
                return RobotAnswer(None, f"RSA key of {key.key_size} bits: {exc}")
            asked = ans.client_cert_requested
            try:
                writer.write(flight)
                await writer.drain()
            except (ConnectionResetError, BrokenPipeError):
                return RobotAnswer("reset", client_cert_requested=asked)
            got = await _reaction(_Reader(reader, MAX_BYTES_PER_PROBE), wait)
            return RobotAnswer(got, client_cert_requested=asked)
    except TimeoutError:
        return RobotAnswer(None, f"no answer to the hello within {timeout:g}s")
    except TlsParseError as exc:
        return RobotAnswer(None, f"malformed answer to the hello: {exc}")
    except (ConnectionResetError, BrokenPipeError):
        return RobotAnswer(None, "connection reset before the key exchange")
    except TlsProbeError as exc:
        return RobotAnswer(None, str(exc))
    except OSError as exc:
        return RobotAnswer(None, f"socket error: {exc.strerror or exc}")


@dataclass(frozen=True)
class RobotVerdict:
    verdict: str | None  # not_vulnerable / weak_oracle / strong_oracle / inconclusive
    reason: str


def _round_failed(answers: Mapping[str, RobotAnswer]) -> RobotVerdict | None:
    """A verdict when a round could not be judged (some key exchange was never sent)."""
    missing = [v for v in VARIANTS if answers[v].answer is None]
    if not missing:
        return None
    why = answers[missing[0]].reason
    if len(missing) == len(VARIANTS):
        return RobotVerdict(None, why)
    return RobotVerdict("inconclusive", f"variant {missing[0]} could not be sent ({why})")


def judge(first: Mapping[str, str], second: Mapping[str, str] | None = None) -> RobotVerdict:
    """The ROBOT verdict from the answers of one round and, when they differ, a repeat.

    Identical answers: no oracle (unless they are silence or junk, which prove nothing).
    Answers that differ the same way twice: an oracle, "strong" when a conformant block
    (correct) and a non-conformant one (wrong_first_bytes) get different answers, since that
    is the original Bleichenbacher oracle; "weak" when only the deeper defects are told apart,
    which needs far more queries. Answers that change on the repeat are noise, never a pass.
    """
    answers = [first[v] for v in VARIANTS]
    if len(set(answers)) == 1:
        if answers[0] == "timeout":
            return RobotVerdict(
                "inconclusive", "the server never reacted to the key exchange (timeout)"
            )
        if answers[0].startswith("malformed"):
            return RobotVerdict("inconclusive", "the server answered the key exchange with junk")
        return RobotVerdict("not_vulnerable", f"every variant got: {answers[0]}")
    if second is None:
        return RobotVerdict("inconclusive", "the answers differ and were not repeated")
    changed = [v for v in VARIANTS if first[v] != second[v]]
    if changed:
        shown = "; ".join(f"{v}: {first[v]} / {second[v]}" for v in changed)
        return RobotVerdict("inconclusive", f"the answers changed on the repeat ({shown})")
    odd = ", ".join(f"{v}: {first[v]}" for v in VARIANTS)
    if first[CORRECT] != first[WRONG_FIRST_BYTES]:
        return RobotVerdict("strong_oracle", f"a conformant block is told apart ({odd})")
    return RobotVerdict("weak_oracle", f"malformed blocks are told apart ({odd})")


async def assess(
    connect: Callable[[str], Awaitable[RobotAnswer]],
) -> tuple[RobotVerdict, dict[str, str]]:
    """Run the variants (one connection each, side by side) and judge them; repeat once when
    they differ. Returns the verdict and the first round's answers per variant."""

    async def one_round() -> dict[str, RobotAnswer]:
        got = await asyncio.gather(*(connect(v) for v in VARIANTS))
        return dict(zip(VARIANTS, got, strict=True))

    first = await one_round()
    shown = {v: a.answer or f"not sent: {a.reason}" for v, a in first.items()}
    if (failed := _round_failed(first)) is not None:
        return failed, shown
    answers = {v: a.answer or "" for v, a in first.items()}
    if len(set(answers.values())) == 1:
        if any(a.client_cert_requested for a in first.values()) and any(
            answers[CORRECT].startswith(f"alert {name}") for name in CLIENT_CERT_ALERTS
        ):
            return RobotVerdict(
                "inconclusive",
                f"the server requires a client certificate and stopped there "
                f"({answers[CORRECT]}), so no premaster secret was decrypted",
            ), shown
        return judge(answers), shown
    second = await one_round()
    if (failed := _round_failed(second)) is not None:
        return RobotVerdict("inconclusive", f"on the repeat: {failed.reason}"), shown
    return judge(answers, {v: a.answer or "" for v, a in second.items()}), shown
