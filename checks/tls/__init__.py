"""TLS checks: pure judgements of the `service.tls` facts (and certificates, elsewhere).

Suite attributes come from Assay's suite table (scanner/tlsprobe/suites.csv), so the facts
need only hold the codes a server accepted and a stored scan can be judged again.
"""

from __future__ import annotations

from scanner.collectors.tls import TlsFacts
from scanner.model import Reference, Result, error
from scanner.plugins import FactsView
from scanner.tlsprobe.suites import CipherSuite, suite

FACTS = "service.tls"

REF_CWE_BROKEN = Reference(scheme="cwe", id="CWE-327")
REF_CWE_STRENGTH = Reference(scheme="cwe", id="CWE-326")
REF_CWE_DOWNGRADE = Reference(scheme="cwe", id="CWE-757")
REF_ISO_CRYPTO = Reference(scheme="iso27001:2022", id="A.8.24")
REF_ISO_NETWORK = Reference(scheme="iso27001:2022", id="A.8.21")
REF_CIS_TRANSIT = Reference(scheme="cis-v8", id="3.10")
REF_BSI_CRYPTO = Reference(scheme="bsi", id="CON.1.A1")
REF_BSI_WEB_TLS = Reference(scheme="bsi", id="APP.3.2.A11")
REF_TR02102 = Reference(scheme="bsi", id="TR-02102-2")
REF_TCVN = Reference(scheme="tcvn-11930", id="2017")
REF_DECREE_13 = Reference(scheme="decree-13", id="2023/ND-CP")
REFERENCES: tuple[Reference, ...] = (
    REF_ISO_CRYPTO,
    REF_ISO_NETWORK,
    REF_CIS_TRANSIT,
    REF_BSI_CRYPTO,
    REF_BSI_WEB_TLS,
    REF_TCVN,
    REF_DECREE_13,
)
SNIPPET_LANG = "nginx / apache"


def tls_facts(facts: FactsView) -> TlsFacts:
    return facts.get(FACTS, TlsFacts)


def where(f: TlsFacts) -> str:
    via = f" (STARTTLS {f.starttls})" if f.starttls else ""
    return f"{f.address}:{f.port}{via}"


def no_handshake(f: TlsFacts) -> Result | None:
    """An `error` result when no protocol version was accepted at all (nothing to judge)."""
    if f.supported:
        return None
    return error(
        f"TLS at {where(f)}: no hello was accepted, the endpoint could not be assessed",
        errors=f.errors,
        answers={p.version: p.answer for p in f.protocols},
    )


def accepted(f: TlsFacts) -> list[tuple[str, CipherSuite]]:
    """(protocol, suite) for every accepted suite that the suite table knows."""
    out: list[tuple[str, CipherSuite]] = []
    for version, codes in f.accepted().items():
        for code in codes:
            s = suite(int(code, 16))
            if s is not None:
                out.append((version, s))
    return out


def by_protocol(pairs: list[tuple[str, CipherSuite]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for version, s in pairs:
        out.setdefault(version, []).append(s.name)
    return out
