"""The certificate chain a TLS service presents, read once per scan and analysed offline.

The handshake is stdlib `ssl` with verification switched off, run with asyncio `start_tls`
over the connection `scanner.tlsprobe.open_plain` returns (so STARTTLS services work the
same way): Assay wants the chain exactly as sent, including an expired, self-signed or
incomplete one. TLS 1.0 and security level 0 are allowed so that a weak server still yields
its chain; the cipher and protocol judgement belongs to the ClientHello prober. When even
that handshake fails for want of a shared protocol or suite (a server offering only SSL 3.0,
RC4, 3DES or export suites, which this OpenSSL build lacks), Assay's own ClientHello prober
offers everything and reads the chain from the cleartext Certificate message of TLS <= 1.2.

The chain comes from `SSLObject`'s unverified chain (public from Python 3.13, a private method
on the `_ssl` object before that). Every cost is bounded: the connect, the preamble and the
handshake each by the probe timeout, the certificate message by OpenSSL's 100 KiB limit, the
analysis by `MAX_CERTS` and `MAX_CHAIN_BYTES`. Trust is decided at the scan's own time against
the system store plus the inventory's `settings.tls_trust`; what the checks judge later is all
in `TlsCertFacts`, so a stored scan can be re-evaluated without the server.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import ssl
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from scanner.model import Facts, Target, TargetKind
from scanner.plugins import CollectContext, Collector
from scanner.tlscert import (
    CertInfo,
    ChainInfo,
    TrustInfo,
    analyse_chain,
    load_store,
    parse_chain,
    verify_trust,
)
from scanner.tlsprobe.endpoint import TlsEndpoint, TlsProbeError, open_plain, tls_endpoint
from scanner.tlsprobe.hello import HelloSpec
from scanner.tlsprobe.probe import probe
from scanner.tlsprobe.suites import SSL3, TLS12, VERSION_NAMES, candidates, suite

MAX_CHAIN_BYTES = 256 * 1024  # DER bytes of the chain kept (OpenSSL refuses >100 KiB anyway)
CIPHERS = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"


class TlsCertError(TlsProbeError):
    """The chain could not be read; the message names the endpoint and what happened."""


class TlsCertFacts(Facts):
    endpoint: str  # "10.0.0.5:443" or "10.0.0.5:25 (STARTTLS smtp)"
    address: str
    port: int
    starttls: str = ""
    server_name: str | None = None  # the SNI sent
    reference: str  # the identity the certificate must name: SNI name, else the address
    scanned_at: dt.datetime
    protocol: str = ""  # of the handshake that read the chain, e.g. "TLSv1.3"
    cipher: str = ""
    received: int = 0  # certificates the server sent
    certificates: list[CertInfo] = Field(default_factory=list)
    chain: ChainInfo
    trust: TrustInfo
    der: list[str] = Field(default_factory=list)  # base64 DER as sent, for re-analysis
    errors: list[str] = Field(default_factory=list)

    @property
    def leaf(self) -> CertInfo | None:
        return self.certificates[0] if self.certificates else None


def client_context() -> ssl.SSLContext:
    """A client context that accepts anything, to see what a weak server presents."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings(), contextlib.suppress(ValueError, ssl.SSLError):
        # deliberate: a server that still speaks only TLS 1.0 must yield its chain too
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    with contextlib.suppress(ssl.SSLError):
        ctx.set_ciphers(CIPHERS)
    ctx.options |= getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0)
    return ctx


def unverified_chain(sslobj: Any) -> list[bytes]:
    """DER of every certificate the peer sent, leaf first."""
    getter = getattr(sslobj, "get_unverified_chain", None)  # Python 3.13+
    if getter is None:
        getter = getattr(getattr(sslobj, "_sslobj", None), "get_unverified_chain", None)
    if getter is None:
        der = sslobj.getpeercert(binary_form=True)
        return [der] if der else []
    chain = getter() or []
    out: list[bytes] = []
    for cert in chain:
        if isinstance(cert, bytes):
            out.append(cert)
        else:
            out.append(cert.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
    return out


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or exc.strerror or str(exc)
        text = str(reason).lower().replace("_", " ")
        if "excessive message size" in text:
            return "the certificate message exceeds OpenSSL's 100 KiB limit"
        if "asn1" in text or "bad certificate" in text or "decode" in text:
            return f"the server's certificates cannot be decoded (OpenSSL: {reason})"
        return f"TLS error: {reason}"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "the server reset the connection during the handshake"
    if isinstance(exc, OSError):
        return f"network error during the handshake: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# OpenSSL's words for "we share no protocol or suite": a server the local library cannot
# talk to (SSLv3 only, RC4/3DES/export only) still shows its chain to Assay's own prober.
_NEGOTIATION = (
    "handshake failure",
    "no shared cipher",
    "no ciphers available",
    "no protocols available",
    "unsupported protocol",
    "wrong version number",
    "protocol version",
    "insufficient security",
    "unsafe legacy renegotiation",
    "dh key too small",
)


def _negotiation_failed(exc: ssl.SSLError) -> bool:
    text = f"{exc.reason or ''} {exc}".lower().replace("_", " ")
    return any(n in text for n in _NEGOTIATION)


async def raw_chain(ep: TlsEndpoint, timeout: float, why: str) -> tuple[list[bytes], str, str]:
    """The chain from Assay's own ClientHello (TLS 1.2 down to SSL 3.0, every suite offered).

    Certificates travel in cleartext before TLS 1.3, so the prober reads them from the
    Certificate message without completing a handshake the local OpenSSL could not do.
    """
    reasons = [f"OpenSSL: {why}"]
    for version in (TLS12, SSL3):
        spec = HelloSpec(version, tuple(candidates(version)), ep.server_name)
        answer = await probe(ep, spec, timeout, read_kex=True)
        if answer.hello is not None and answer.certificates:
            found = suite(answer.hello.cipher)
            name = found.iana if found else f"0x{answer.hello.cipher:04X}"
            proto = VERSION_NAMES.get(answer.hello.version, f"0x{answer.hello.version:04X}")
            return list(answer.certificates), proto, name
        reasons.append(f"{VERSION_NAMES[version]} hello: {answer.describe()}")
    raise TlsCertError(
        f"tls {ep.label}: no handshake reached the certificate ({'; '.join(reasons)})"
    )


async def read_chain(ep: TlsEndpoint, timeout: float) -> tuple[list[bytes], str, str]:
    """Handshake with `ep` and return (DER chain, protocol, cipher)."""
    reader, writer = await open_plain(ep, timeout)
    try:
        try:
            await writer.start_tls(
                client_context(),
                server_hostname=ep.server_name,
                ssl_handshake_timeout=timeout,
            )
        except (TimeoutError, ConnectionAbortedError) as exc:
            # asyncio reports its handshake deadline as ConnectionAbortedError
            if isinstance(exc, TimeoutError) or "longer than" in str(exc):
                raise TlsCertError(
                    f"tls {ep.label}: no complete TLS handshake within {timeout:g}s"
                ) from None
            raise TlsCertError(f"tls {ep.label}: {_why(exc)}") from None
        except (ssl.SSLError, OSError, EOFError, asyncio.IncompleteReadError) as exc:
            if isinstance(exc, ssl.SSLEOFError | EOFError | asyncio.IncompleteReadError) or (
                "eof" in str(exc).lower()
            ):
                raise TlsCertError(
                    f"tls {ep.label}: the server closed the connection during the handshake"
                ) from None
            if isinstance(exc, ssl.SSLError) and _negotiation_failed(exc):
                return await raw_chain(ep, timeout, _why(exc))
            raise TlsCertError(f"tls {ep.label}: {_why(exc)}") from None
        sslobj = writer.get_extra_info("ssl_object")
        if sslobj is None:
            raise TlsCertError(f"tls {ep.label}: the handshake gave no TLS session")
        chain = unverified_chain(sslobj)
        cipher = sslobj.cipher()
        return chain, sslobj.version() or "", cipher[0] if cipher else ""
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        del reader


def analyse(
    ep: TlsEndpoint,
    ders: list[bytes],
    scanned_at: dt.datetime,
    trust_paths: Sequence[Path | str] = (),
    protocol: str = "",
    cipher: str = "",
) -> TlsCertFacts:
    """Facts from a chain as read (also used on recorded chains)."""
    errors: list[str] = []
    total, kept = 0, list[bytes]()
    for der in ders:
        total += len(der)
        if total > MAX_CHAIN_BYTES:
            errors.append(
                f"the chain is larger than {MAX_CHAIN_BYTES // 1024} KiB; "
                f"{len(kept)} of {len(ders)} certificates analysed"
            )
            break
        kept.append(der)
    parsed = parse_chain(kept)
    errors.extend(parsed.errors)
    store = load_store(trust_paths)
    if parsed.certs:
        chain = analyse_chain(parsed.certs, parsed.infos, store.anchors)
        trust = verify_trust(parsed.certs, parsed.infos, store, scanned_at)
    else:
        chain = ChainInfo(complete=False)
        trust = TrustInfo(
            status="unknown",
            reason="no certificate could be read from the chain",
            verified_at=scanned_at,
        )
    return TlsCertFacts(
        endpoint=ep.label,
        address=ep.address,
        port=ep.port,
        starttls=ep.starttls,
        server_name=ep.server_name,
        reference=ep.server_name or ep.address,
        scanned_at=scanned_at,
        protocol=protocol,
        cipher=cipher,
        received=len(ders),
        certificates=list(parsed.infos),
        chain=chain,
        trust=trust,
        der=[base64.b64encode(d).decode("ascii") for d in kept[: len(parsed.certs)]],
        errors=errors,
    )


class TlsCertCollector(Collector):
    """Reads the presented chain of every TLS or STARTTLS service and analyses it."""

    id = "service.tls_cert"
    target_kind = TargetKind.SERVICE
    facts_model = TlsCertFacts
    timeout = 30.0

    def applies(self, target: Target) -> bool:
        return tls_endpoint(target) is not None

    async def collect(self, target: Target, ctx: CollectContext) -> TlsCertFacts:
        ep = tls_endpoint(target)
        if ep is None:  # the runner only calls collect() when applies() said yes
            raise TlsCertError(f"tls {target.label}: not a TLS service")
        ctx.scope.ensure_address(ep.address)
        ders, protocol, cipher = await read_chain(ep, ctx.probe_timeout)
        if not ders:
            raise TlsCertError(f"tls {ep.label}: the server sent no certificate")
        scanned_at = dt.datetime.now(dt.UTC)
        # Loading the store and verifying are CPU work (a few ms); off the event loop so
        # other targets' probes keep their deadlines.
        return await asyncio.to_thread(
            analyse, ep, ders, scanned_at, ctx.tls_trust, protocol, cipher
        )
