"""Protocol versions: legacy SSL/TLS offered, TLS 1.3 missing."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from checks.tls import (
    FACTS,
    REF_CWE_BROKEN,
    REF_CWE_DOWNGRADE,
    REF_TR02102,
    REFERENCES,
    SNIPPET_LANG,
    no_handshake,
    tls_facts,
    where,
)
from scanner.model import Remediation, Result, Severity, TargetKind, failed, passed
from scanner.plugins import Check, CheckMeta, FactsView

PROTOCOL_SNIPPET = """\
# nginx (http or server block)
ssl_protocols TLSv1.2 TLSv1.3;

# Apache httpd (mod_ssl)
SSLProtocol -all +TLSv1.2 +TLSv1.3
"""

_SEVERITY = {"SSLv2": Severity.CRITICAL, "SSLv3": Severity.HIGH}


class LegacyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    forbidden: list[str] = Field(
        default_factory=lambda: ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"],
        description="protocol versions a server must not accept",
    )


class LegacyProtocols(Check):
    meta = CheckMeta(
        id="tls.protocol.legacy",
        title="No SSL 3.0, TLS 1.0 or TLS 1.1 offered",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "SSL 3.0 is broken (POODLE) and TLS 1.0/1.1 were deprecated by RFC 8996: they rely "
            "on MD5/SHA-1 in the handshake, allow CBC attacks such as BEAST, and let an "
            "attacker downgrade clients that would otherwise use TLS 1.2 or 1.3."
        ),
        remediation=Remediation(
            text="Accept TLS 1.2 and TLS 1.3 only, also on mail and FTP services with STARTTLS.",
            snippet=PROTOCOL_SNIPPET,
            snippet_lang=SNIPPET_LANG,
        ),
        references=(REF_CWE_BROKEN, REF_CWE_DOWNGRADE, REF_TR02102, *REFERENCES),
        tags=("tls", "protocol"),
    )
    Params = LegacyParams

    def evaluate(self, facts: FactsView, params: LegacyParams) -> list[Result]:
        f = tls_facts(facts)
        if (err := no_handshake(f)) is not None:
            return [err]
        bad = [v for v in f.supported if v in params.forbidden]
        if not bad:
            return [
                passed(
                    f"TLS at {where(f)} accepts only {', '.join(f.supported)}",
                    supported=f.supported,
                )
            ]
        return [
            failed(
                f"TLS at {where(f)} accepts {v}",
                detail=v,
                severity=_SEVERITY.get(v),
                protocol=v,
                suites=len(p.codes) if (p := f.protocol(v)) else 0,
                supported=f.supported,
            )
            for v in bad
        ]


class NoTls13(Check):
    meta = CheckMeta(
        id="tls.protocol.no_tls13",
        title="TLS 1.3 is offered",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.LOW,
        rationale=(
            "TLS 1.3 removes static RSA, CBC and renegotiation, always gives forward secrecy "
            "and protects the downgrade; NIST SP 800-52r2 requires it from 2024 and BSI "
            "TR-02102-2 recommends TLS 1.2 only until the end of 2031."
        ),
        remediation=Remediation(
            text="Enable TLS 1.3 (OpenSSL 1.1.1 or newer) alongside TLS 1.2.",
            snippet=PROTOCOL_SNIPPET,
            snippet_lang=SNIPPET_LANG,
        ),
        references=(REF_TR02102, *REFERENCES),
        tags=("tls", "protocol"),
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result:
        f = tls_facts(facts)
        if (err := no_handshake(f)) is not None:
            return err
        if "TLSv1.3" in f.supported:
            return passed(f"TLS at {where(f)} offers TLS 1.3", supported=f.supported)
        p = f.protocol("TLSv1.3")
        return failed(
            f"TLS at {where(f)} does not offer TLS 1.3 (best: {f.supported[-1]})",
            supported=f.supported,
            tls13_answer=p.answer if p else "",
        )
