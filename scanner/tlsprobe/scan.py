"""Enumeration of one TLS endpoint: protocols, suites per protocol, groups, order, DH size.

Phases, each a batch of probes run in parallel under the endpoint's budget (at most
`parallel` connections at once and `max_probes` in all):

A. one hello per protocol (SSLv3 .. TLS 1.3) offering every suite the protocol defines;
B. suites per supported protocol by remove-and-retry (offer many, drop the one the server
   picks, ask again), split into interleaved chunks that run side by side; TLS 1.3 groups by
   HelloRetryRequest; TLS 1.2 ECDHE curves and the DH prime size from ServerKeyExchange;
   ALPN; TLS_FALLBACK_SCSV; one hello asking for heartbeats and OCSP stapling (status_request),
   with one malformed heartbeat (Heartbleed) only to a server that accepts the heartbeat
   extension; an early
   ChangeCipherSpec (CCS injection);
C. server preference: the accepted suites offered in one order and then reversed; ROBOT (at
   most ten key exchanges with crafted RSA blocks) where a static-RSA suite was accepted.

The local OpenSSL is not involved, so suites it has dropped (RC4, 3DES, export) are found.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from scanner.tlsprobe.endpoint import TlsEndpoint, TlsProbeError
from scanner.tlsprobe.hello import HelloSpec
from scanner.tlsprobe.probe import Answer, ccs_injection, heartbleed, probe
from scanner.tlsprobe.robot import CONNECTIONS as ROBOT_CONNECTIONS
from scanner.tlsprobe.robot import RobotAnswer, assess, robot_probe, static_rsa
from scanner.tlsprobe.suites import (
    ECDHE_GROUPS,
    GROUP_CODES,
    SSL3,
    TLS10,
    TLS11,
    TLS12,
    TLS13,
    TLS13_GROUPS,
    VERSION_NAMES,
    candidates,
    suite,
)

ORDER = (SSL3, TLS10, TLS11, TLS12, TLS13)
CHUNK = 24  # suites per remove-and-retry chain; more chains run in parallel
ALPN_PROTOCOLS = ("h2", "http/1.1")


class BudgetExhausted(TlsProbeError):
    """The endpoint's probe budget ran out before enumeration finished."""


@dataclass
class ProtocolResult:
    version: int
    supported: bool
    answer: str  # what the first hello got: "ServerHello", "alert protocol_version", ...
    suites: list[int] = field(default_factory=list)
    server_order: bool | None = None
    preferred: int | None = None


@dataclass
class ScanResult:
    endpoint: TlsEndpoint
    protocols: dict[int, ProtocolResult] = field(default_factory=dict)
    groups_tls13: list[int] = field(default_factory=list)
    groups_tls12: list[int] = field(default_factory=list)
    ecdh_default: int | None = None
    dh_bits: int | None = None
    dh_suite: int | None = None
    alpn: list[str] = field(default_factory=list)
    fallback_scsv: bool | None = None
    secure_renegotiation: bool | None = None
    compression: bool | None = None
    ocsp_stapling: bool | None = None  # None: not testable (no TLS <= 1.2) or no answer
    heartbeat: bool | None = None  # the server accepts the heartbeat extension
    heartbleed_leaked: int | None = None  # bytes over-read by a malformed heartbeat (0: none)
    early_ccs: str | None = None  # refused / accepted / inconclusive (CVE-2014-0224)
    early_ccs_reason: str = ""
    robot: str | None = None  # not_vulnerable / weak_oracle / strong_oracle / inconclusive
    robot_reason: str = ""
    robot_protocol: int | None = None  # None: no static-RSA suite under TLS <= 1.2
    robot_answers: dict[str, str] = field(default_factory=dict)  # variant -> what came back
    certificates: list[bytes] = field(default_factory=list)
    probes: int = 0
    errors: list[str] = field(default_factory=list)


class EndpointScanner:
    def __init__(
        self, ep: TlsEndpoint, timeout: float, parallel: int = 8, max_probes: int = 2500
    ) -> None:
        self.ep, self.timeout = ep, timeout
        self.sem = asyncio.Semaphore(max(1, parallel))
        self.max_probes = max_probes
        self.result = ScanResult(ep)

    async def ask(self, spec: HelloSpec, read_kex: bool = False) -> Answer:
        if self.result.probes >= self.max_probes:
            raise BudgetExhausted(
                f"tls {self.ep.label}: probe budget of {self.max_probes} connections used up"
            )
        self.result.probes += 1
        async with self.sem:
            return await probe(self.ep, spec, self.timeout, read_kex)

    def _spec(self, version: int, suites: list[int] | tuple[int, ...], **kw: object) -> HelloSpec:
        return HelloSpec(version, tuple(suites), self.ep.server_name, **kw)  # type: ignore[arg-type]

    def _note(self, what: str, answer: Answer) -> None:
        if answer.kind in ("timeout", "error"):
            self.result.errors.append(f"{what}: {answer.describe()}")

    # -- phase A ----------------------------------------------------------------------------
    async def protocols(self) -> None:
        answers = await asyncio.gather(
            *(
                self.ask(self._spec(v, candidates(v), deflate=v < TLS13), read_kex=v < TLS13)
                for v in ORDER
            )
        )
        res = self.result
        for v, ans in zip(ORDER, answers, strict=True):
            ok = ans.accepted_as(v)
            pr = ProtocolResult(v, ok, ans.describe())
            if ans.hello is not None and not ok:
                pr.answer = f"answered {VERSION_NAMES.get(ans.hello.version, 'another version')}"
            res.protocols[v] = pr
            self._note(f"{VERSION_NAMES[v]} hello", ans)
        if all(a.kind in ("timeout", "error") for a in answers):
            raise TlsProbeError(f"tls {self.ep.label}: {answers[-1].describe()}")
        legacy = [(v, a) for v, a in zip(ORDER, answers, strict=True) if v < TLS13]
        for v, ans in reversed(legacy):
            if res.protocols[v].supported and ans.hello is not None:
                res.certificates = list(ans.certificates)
                res.secure_renegotiation = ans.hello.secure_renegotiation
                res.compression = ans.hello.compression != 0
                break
        if not any(p.supported for p in res.protocols.values()):
            res.errors.append("the server refused every protocol version from SSLv3 to TLS 1.3")

    # -- phase B ----------------------------------------------------------------------------
    async def _chain(self, version: int, offer: list[int]) -> list[int]:
        found: list[int] = []
        while offer:
            ans = await self.ask(self._spec(version, offer))
            if not ans.accepted_as(version) or ans.hello is None:
                self._note(f"{VERSION_NAMES[version]} suites", ans)
                break
            chosen = ans.hello.cipher
            if chosen not in offer:
                self.result.errors.append(
                    f"{VERSION_NAMES[version]}: server chose suite 0x{chosen:04X}, not offered"
                )
                break
            found.append(chosen)
            offer.remove(chosen)
        return found

    async def suites(self, version: int) -> None:
        cands = candidates(version)
        lanes = max(1, min(len(cands) // CHUNK + 1, 16))
        chains = [cands[i::lanes] for i in range(lanes)]
        found = await asyncio.gather(*(self._chain(version, c) for c in chains))
        order = {c: i for i, c in enumerate(cands)}
        self.result.protocols[version].suites = sorted(
            (s for chunk in found for s in chunk), key=order.__getitem__
        )

    async def groups13(self) -> None:
        suites13 = candidates(TLS13)

        async def one(group: int) -> int | None:
            ans = await self.ask(self._spec(TLS13, suites13, groups=(group,), key_share=False))
            self._note("TLS 1.3 group", ans)
            if ans.hello is not None and ans.hello.key_share_group == group:
                return group
            return None

        found = await asyncio.gather(*(one(g) for g in TLS13_GROUPS))
        self.result.groups_tls13 = [g for g in found if g is not None]

    async def groups12(self, version: int) -> None:
        """ECDHE curves under TLS <= 1.2, read from the ServerKeyExchange.

        With an ECDSA certificate the certificate's own curve must be offered too (RFC 8422
        5.1), so each curve is offered followed by that one; a server that prefers its
        certificate's curve over the one tested may hide the latter (noted in the docs).
        """
        ecdhe = [c for c in candidates(version) if (s := suite(c)) and s.kex == "ECDHE"]
        anchor = _certificate_curve(self.result.certificates)

        async def one(groups: tuple[int, ...]) -> int | None:
            ans = await self.ask(self._spec(version, ecdhe, groups=groups), read_kex=True)
            self._note("ECDHE group", ans)
            kex = ans.kex
            if not (ans.accepted_as(version) and kex and kex.group):
                return None
            return kex.group if not groups or kex.group == groups[0] else None

        offers = [(g,) if anchor in (None, g) else (g, anchor) for g in ECDHE_GROUPS]
        default, *found = await asyncio.gather(one(()), *(one(o) for o in offers))
        self.result.ecdh_default = default
        self.result.groups_tls12 = [g for g in found if g is not None]

    async def dh_size(self, version: int) -> None:
        dhe = [c for c in candidates(version) if (s := suite(c)) and s.kex == "DHE"]
        ans = await self.ask(self._spec(version, dhe), read_kex=True)
        self._note("DHE key exchange", ans)
        if ans.accepted_as(version) and ans.kex is not None and ans.kex.dh_bits:
            self.result.dh_bits = ans.kex.dh_bits
            self.result.dh_suite = ans.hello.cipher if ans.hello else None

    async def alpn(self, version: int) -> None:
        cands = candidates(version)

        async def one(proto: str) -> str | None:
            ans = await self.ask(self._spec(version, cands, alpn=(proto,)))
            return ans.hello.alpn if ans.accepted_as(version) and ans.hello else None

        found = await asyncio.gather(*(one(p) for p in ALPN_PROTOCOLS))
        self.result.alpn = [p for p in found if p]

    async def heartbleed(self, version: int) -> None:
        """CVE-2014-0160: offer heartbeats; only a server that takes them gets one malformed
        heartbeat (a 16 KiB claim, no payload). The reply's size is kept, its bytes never.

        The same hello asks for OCSP stapling: under TLS <= 1.2 a server that staples says so
        with an empty status_request extension in its ServerHello (RFC 6066 section 8). Under
        TLS 1.3 that travels in the encrypted Certificate message, which a hello cannot read."""
        self._count()
        async with self.sem:
            spec = self._spec(version, candidates(version), heartbeat=True, status_request=True)
            hb = await heartbleed(self.ep, spec, self.timeout, wait=min(self.timeout, 2.0))
        if hb.offered is None:
            self.result.errors.append(f"heartbeat and OCSP stapling: {hb.reason}")
            return
        self.result.heartbeat = hb.offered
        self.result.heartbleed_leaked = hb.leaked
        self.result.ocsp_stapling = hb.stapled

    def _count(self) -> None:
        if self.result.probes >= self.max_probes:
            raise BudgetExhausted(
                f"tls {self.ep.label}: probe budget of {self.max_probes} connections used up"
            )
        self.result.probes += 1

    async def early_ccs(self, version: int) -> None:
        """CVE-2014-0224: a ChangeCipherSpec before any key exchange must be refused."""
        self._count()
        async with self.sem:
            spec = self._spec(version, candidates(version))
            ans = await ccs_injection(self.ep, spec, self.timeout, wait=min(self.timeout, 2.0))
        if ans.verdict is None:
            self.result.errors.append(f"early ChangeCipherSpec: {ans.reason}")
            return
        self.result.early_ccs, self.result.early_ccs_reason = ans.verdict, ans.reason

    async def fallback(self, lower: int) -> None:
        ans = await self.ask(self._spec(lower, candidates(lower), fallback_scsv=True))
        if ans.alert is not None and ans.alert.description == 86:
            self.result.fallback_scsv = True
        elif ans.accepted_as(lower):
            self.result.fallback_scsv = False
        else:
            self._note("TLS_FALLBACK_SCSV", ans)

    async def robot(self) -> None:
        """ROBOT, on the highest TLS <= 1.2 version that accepted a static-RSA suite."""
        res = self.result
        rsa_suites: list[int] = []
        version = None
        export_only = False
        for v in reversed(ORDER[:-1]):
            pr = res.protocols.get(v)
            if pr is None or not pr.supported:
                continue
            rsa_suites = static_rsa(pr.suites)
            export_only |= any((s := suite(c)) and s.kex == "RSA" for c in pr.suites)
            if rsa_suites:
                version = v
                break
        if version is None:
            if export_only:
                res.robot_reason = (
                    "only export RSA suites are accepted, whose key exchange uses a temporary key"
                )
            return
        res.robot_protocol = version
        if self.max_probes - res.probes < ROBOT_CONNECTIONS:
            res.robot_reason = f"probe budget left too small for {ROBOT_CONNECTIONS} connections"
            return
        spec = self._spec(version, rsa_suites)

        async def connect(variant: str) -> RobotAnswer:
            self._count()
            async with self.sem:
                return await robot_probe(
                    self.ep, spec, variant, self.timeout, wait=min(self.timeout, 2.0)
                )

        verdict, res.robot_answers = await assess(connect)
        res.robot, res.robot_reason = verdict.verdict, verdict.reason

    # -- phase C ----------------------------------------------------------------------------
    async def order(self, version: int) -> None:
        pr = self.result.protocols[version]
        if len(pr.suites) < 2:
            pr.preferred = pr.suites[0] if pr.suites else None
            return
        fwd, rev = await asyncio.gather(
            self.ask(self._spec(version, pr.suites)),
            self.ask(self._spec(version, list(reversed(pr.suites)))),
        )
        if fwd.hello is None or rev.hello is None:
            self._note(f"{VERSION_NAMES[version]} order", fwd if fwd.hello is None else rev)
            return
        a, b = fwd.hello.cipher, rev.hello.cipher
        if a == b:
            pr.server_order, pr.preferred = True, a
        elif a == pr.suites[0] and b == pr.suites[-1]:
            pr.server_order = False

    async def run(self) -> ScanResult:
        await self.protocols()
        res = self.result
        supported = [v for v in ORDER if res.protocols[v].supported]
        legacy = [v for v in supported if v < TLS13]
        jobs = [self.suites(v) for v in supported]
        if TLS13 in supported:
            jobs.append(self.groups13())
        if legacy:
            best = legacy[-1]
            jobs += [self.groups12(best), self.dh_size(best)]
            jobs += [self.heartbleed(best), self.early_ccs(best)]
        if supported and not self.ep.starttls:
            jobs.append(self.alpn(supported[-1]))
        if len(supported) >= 2:
            jobs.append(self.fallback(supported[-2]))
        await asyncio.gather(*jobs)
        await asyncio.gather(*(self.order(v) for v in supported), self.robot())
        return res


def _certificate_curve(certificates: list[bytes]) -> int | None:
    """The named group of an EC leaf certificate's key, if the leaf is EC."""
    if not certificates:
        return None
    try:
        key = x509.load_der_x509_certificate(certificates[0]).public_key()
    except ValueError:
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return GROUP_CODES.get(key.curve.name)
    return None


async def scan_endpoint(
    ep: TlsEndpoint, timeout: float, parallel: int = 8, max_probes: int = 2500
) -> ScanResult:
    """Enumerate `ep`; raises TlsProbeError only when not a single hello could be judged."""
    scanner = EndpointScanner(ep, timeout, parallel, max_probes)
    try:
        return await scanner.run()
    except BudgetExhausted as exc:
        scanner.result.errors.append(str(exc))
        return scanner.result
