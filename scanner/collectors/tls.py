"""TLS handshake facts of one service: protocols, suites, groups, order, DH size, chain.

Assay sends its own ClientHellos (scanner/tlsprobe) instead of handshaking through the local
OpenSSL, which has dropped RC4, 3DES and export suites and would therefore never see them on a
server. No handshake is completed and no application data is exchanged; beyond hellos, only
the vulnerability probes send a few crafted records (a malformed heartbeat, an early
ChangeCipherSpec, ROBOT's key exchanges with garbage premaster secrets).
The raw certificate chain of a TLS <= 1.2 handshake is kept (base64 DER) for the certificate
checks, which parse it themselves.
"""

from __future__ import annotations

import base64
import datetime as dt

from pydantic import BaseModel, Field

from scanner.model import Facts, Target, TargetKind
from scanner.plugins import CollectContext, Collector
from scanner.tlsprobe.endpoint import open_plain, tls_endpoint
from scanner.tlsprobe.scan import ScanResult, scan_endpoint
from scanner.tlsprobe.suites import VERSION_NAMES, group_name, suite

ID = "service.tls"


class TlsProtocol(BaseModel):
    version: str  # "TLSv1.2"
    supported: bool
    answer: str = ""  # what the first hello got ("ServerHello", "alert protocol_version")
    suites: list[str] = Field(default_factory=list)  # IANA names (OpenSSL's if unregistered)
    codes: list[str] = Field(default_factory=list)  # "0x000A", same order as suites
    server_order: bool | None = None  # None: not determinable (fewer than two suites)
    preferred: str | None = None  # the suite the server prefers, when it has an order


class TlsFacts(Facts):
    address: str
    port: int
    starttls: str = ""
    server_name: str | None = None
    protocols: list[TlsProtocol] = Field(default_factory=list)
    groups_tls13: list[str] = Field(default_factory=list)
    groups_tls12: list[str] = Field(default_factory=list)  # ECDHE curves under TLS <= 1.2
    ecdh_default: str | None = None
    dh_bits: int | None = None  # finite-field DHE prime size from ServerKeyExchange
    dh_suite: str | None = None
    alpn: list[str] = Field(default_factory=list)
    fallback_scsv: bool | None = None  # None: fewer than two protocols, not testable
    secure_renegotiation: bool | None = None
    compression: bool | None = None  # DEFLATE accepted (CRIME)
    ocsp_stapling: bool | None = None  # None: TLS 1.3 only (not readable) or no answer
    heartbeat: bool | None = None  # heartbeat extension accepted (None: not testable)
    heartbleed_leaked: int | None = None  # bytes a malformed heartbeat got back (0: none)
    early_ccs: str | None = None  # refused / accepted / inconclusive (None: not testable)
    early_ccs_reason: str = ""
    # ROBOT: not_vulnerable / weak_oracle / strong_oracle / inconclusive (None: not tested)
    robot: str | None = None
    robot_reason: str = ""
    robot_protocol: str | None = None  # the version tested (None: no static-RSA suite)
    robot_answers: dict[str, str] = Field(default_factory=dict)  # variant -> server's answer
    certificate_chain: list[str] = Field(default_factory=list)  # base64 DER, leaf first
    probes: int = 0  # connections made
    scanned_year: int = 0  # profiles with year horizons judge against this
    errors: list[str] = Field(default_factory=list)

    def protocol(self, version: str) -> TlsProtocol | None:
        return next((p for p in self.protocols if p.version == version), None)

    @property
    def supported(self) -> list[str]:
        return [p.version for p in self.protocols if p.supported]

    def accepted(self) -> dict[str, list[str]]:
        """Suite codes accepted per supported protocol."""
        return {p.version: list(p.codes) for p in self.protocols if p.supported}


def _name(code: int) -> str:
    s = suite(code)
    return s.name if s else f"0x{code:04X}"


def facts_from_scan(res: ScanResult, year: int) -> TlsFacts:
    ep = res.endpoint
    protocols = []
    for version in sorted(res.protocols):
        pr = res.protocols[version]
        protocols.append(
            TlsProtocol(
                version=VERSION_NAMES[version],
                supported=pr.supported,
                answer=pr.answer,
                suites=[_name(c) for c in pr.suites],
                codes=[f"0x{c:04X}" for c in pr.suites],
                server_order=pr.server_order,
                preferred=_name(pr.preferred) if pr.preferred is not None else None,
            )
        )
    return TlsFacts(
        address=ep.address,
        port=ep.port,
        starttls=ep.starttls,
        server_name=ep.server_name,
        protocols=protocols,
        groups_tls13=[group_name(g) for g in res.groups_tls13],
        groups_tls12=[group_name(g) for g in res.groups_tls12],
        ecdh_default=group_name(res.ecdh_default) if res.ecdh_default is not None else None,
        dh_bits=res.dh_bits,
        dh_suite=_name(res.dh_suite) if res.dh_suite is not None else None,
        alpn=res.alpn,
        fallback_scsv=res.fallback_scsv,
        secure_renegotiation=res.secure_renegotiation,
        compression=res.compression,
        ocsp_stapling=res.ocsp_stapling,
        heartbeat=res.heartbeat,
        heartbleed_leaked=res.heartbleed_leaked,
        early_ccs=res.early_ccs,
        early_ccs_reason=res.early_ccs_reason,
        robot=res.robot,
        robot_reason=res.robot_reason,
        robot_protocol=VERSION_NAMES[res.robot_protocol] if res.robot_protocol else None,
        robot_answers=res.robot_answers,
        certificate_chain=[base64.b64encode(c).decode("ascii") for c in res.certificates],
        probes=res.probes,
        scanned_year=year,
        errors=res.errors,
    )


class TlsCollector(Collector):
    """Enumerates one TLS endpoint with crafted hellos, in parallel under a budget."""

    id = ID
    target_kind = TargetKind.SERVICE
    facts_model = TlsFacts
    timeout = 120.0  # a slow server with many suites needs a few hundred connections
    parallel = 8  # connections open at once to one endpoint
    max_probes = 2500  # connections to one endpoint in all

    def applies(self, target: Target) -> bool:
        return tls_endpoint(target) is not None

    async def collect(self, target: Target, ctx: CollectContext) -> TlsFacts:
        ep = tls_endpoint(target)
        if ep is None:
            raise ValueError(f"{target.label} is not a TLS endpoint")
        ctx.scope.ensure_address(ep.address)
        if ep.starttls:
            # one upgrade first: a service without STARTTLS raises StartTlsNotOffered (not
            # applicable) instead of failing every probe
            _reader, writer = await open_plain(ep, ctx.probe_timeout)
            writer.close()
        res = await scan_endpoint(ep, ctx.probe_timeout, self.parallel, self.max_probes)
        return facts_from_scan(res, dt.datetime.now(dt.UTC).year)
