"""Cipher suites and key exchange: broken suites, forward secrecy, DH size, CBC, order."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from checks.tls import (
    FACTS,
    REF_CWE_BROKEN,
    REF_CWE_STRENGTH,
    REF_TR02102,
    REFERENCES,
    SNIPPET_LANG,
    accepted,
    by_protocol,
    no_handshake,
    tls_facts,
    where,
)
from scanner.model import (
    Remediation,
    Result,
    Severity,
    TargetKind,
    failed,
    not_applicable,
    passed,
)
from scanner.plugins import Check, CheckMeta, FactsView
from scanner.tlsprobe.suites import GROUP_BITS

CIPHER_SNIPPET = """\
# nginx: forward-secret AEAD suites only (TLS 1.3 suites are always AEAD)
ssl_protocols TLSv1.2 TLSv1.3;
ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
ssl_prefer_server_ciphers off;

# Apache httpd (mod_ssl)
SSLProtocol -all +TLSv1.2 +TLSv1.3
SSLCipherSuite ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305
SSLHonorCipherOrder off
"""  # noqa: E501

DH_SNIPPET = """\
# nginx: a 3072-bit DH group (or drop DHE suites altogether), standard curves for ECDHE
#   openssl dhparam -out /etc/nginx/dhparam.pem 3072   (or use RFC 7919 ffdhe3072)
ssl_dhparam /etc/nginx/dhparam.pem;
ssl_ecdh_curve X25519:prime256v1:secp384r1;

# Apache httpd 2.4.8+: append the DH parameters to the certificate file, and
SSLOpenSSLConfCmd Curves X25519:prime256v1:secp384r1
"""

ORDER_SNIPPET = """\
# nginx: either remove the weak suites (preferred), or make the server choose
ssl_prefer_server_ciphers on;

# Apache httpd (mod_ssl)
SSLHonorCipherOrder on
"""


def _meta(
    id: str, title: str, severity: Severity, rationale: str, text: str, snippet: str, *tags: str
) -> CheckMeta:
    return CheckMeta(
        id=id,
        title=title,
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=severity,
        rationale=rationale,
        remediation=Remediation(text=text, snippet=snippet, snippet_lang=SNIPPET_LANG),
        references=(REF_CWE_BROKEN, REF_CWE_STRENGTH, REF_TR02102, *REFERENCES),
        tags=("tls", "cipher", *tags),
    )


def _by_flag(facts: FactsView, flags: dict[str, tuple[str, Severity]], what: str) -> list[Result]:
    f = tls_facts(facts)
    if (err := no_handshake(f)) is not None:
        return [err]
    pairs = accepted(f)
    out: list[Result] = []
    for flag, (label, severity) in flags.items():
        hits = [(v, s) for v, s in pairs if flag in s.flags]
        if hits:
            names = by_protocol(hits)
            n = len({s.code for _, s in hits})
            out.append(
                failed(
                    f"TLS at {where(f)} accepts {n} {label} suite(s)",
                    detail=flag,
                    severity=severity,
                    suites=names,
                )
            )
    if not out:
        out.append(passed(f"TLS at {where(f)} accepts no {what} suites", checked=sorted(flags)))
    return out


class NullAnonExport(Check):
    meta = _meta(
        "tls.cipher.null_anon_export",
        "No NULL, anonymous or export cipher suites",
        Severity.HIGH,
        "NULL suites send data in cleartext, anonymous suites let anyone in the path "
        "impersonate the server, and export suites (40/56-bit, FREAK, Logjam) are broken in "
        "minutes: any of them accepted lets an active attacker read or change the traffic.",
        "Remove eNULL, aNULL and EXPORT suites from the server's cipher list.",
        CIPHER_SNIPPET,
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> list[Result]:
        return _by_flag(
            facts,
            {
                "null": ("NULL (unencrypted)", Severity.CRITICAL),
                "anon": ("anonymous (unauthenticated)", Severity.HIGH),
                "export": ("export-grade", Severity.HIGH),
            },
            "NULL, anonymous or export",
        )


class Rc4TripleDes(Check):
    meta = _meta(
        "tls.cipher.rc4_3des",
        "No RC4, 3DES or other obsolete bulk ciphers",
        Severity.MEDIUM,
        "RC4 has exploitable keystream biases (RFC 7465 forbids it), and 3DES, DES, IDEA and "
        "RC2 have 64-bit blocks open to SWEET32 birthday attacks or keys too short to resist "
        "brute force.",
        "Remove RC4, 3DES, DES, IDEA and RC2 suites; keep AES-GCM or ChaCha20-Poly1305.",
        CIPHER_SNIPPET,
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> list[Result]:
        return _by_flag(
            facts,
            {
                "rc4": ("RC4", Severity.HIGH),
                "3des": ("3DES (64-bit block, SWEET32)", Severity.MEDIUM),
                "weak_enc": ("DES/RC2/IDEA or under-112-bit", Severity.HIGH),
            },
            "RC4, 3DES or other obsolete",
        )


class NoForwardSecrecy(Check):
    meta = _meta(
        "tls.cipher.no_forward_secrecy",
        "Only forward-secret key exchange (ECDHE/DHE)",
        Severity.MEDIUM,
        "With static RSA or static (EC)DH key exchange, whoever obtains the server's private "
        "key later can decrypt every recorded session; static RSA also enables ROBOT-style "
        "padding-oracle attacks.",
        "Offer only ECDHE (and, if needed, DHE) suites under TLS 1.2; TLS 1.3 always has "
        "forward secrecy.",
        CIPHER_SNIPPET,
        "forward-secrecy",
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result:
        f = tls_facts(facts)
        if (err := no_handshake(f)) is not None:
            return err
        pairs = accepted(f)
        bad = [(v, s) for v, s in pairs if "fs" not in s.flags and s.kex != "NULL"]
        if not bad:
            return passed(f"TLS at {where(f)} accepts forward-secret suites only")
        fs_any = any("fs" in s.flags for _, s in pairs)
        return failed(
            f"TLS at {where(f)} accepts {len({s.code for _, s in bad})} suite(s) without "
            "forward secrecy" + ("" if fs_any else ", and none with it"),
            severity=None if fs_any else Severity.HIGH,
            suites=by_protocol(bad),
            key_exchange=sorted({s.kex for _, s in bad}),
        )


class WeakDhParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_dh_bits: int = Field(default=2048, ge=512, description="smallest acceptable DH prime")
    min_ec_bits: int = Field(default=250, ge=128, description="smallest acceptable curve size")


class WeakDh(Check):
    meta = _meta(
        "tls.dh.weak",
        "Diffie-Hellman groups are strong enough",
        Severity.MEDIUM,
        "A 1024-bit DH group can be broken by a well-resourced attacker (Logjam showed that a "
        "few common primes protect most servers), and curves under 250 bits fall short of "
        "current recommendations (BSI asks for 3000-bit DH from 2023).",
        "Use a DH prime of at least 2048 bits (3072 for BSI) or drop DHE suites, and offer "
        "X25519/P-256/P-384 for ECDHE.",
        DH_SNIPPET,
        "key-exchange",
    )
    Params = WeakDhParams

    def evaluate(self, facts: FactsView, params: WeakDhParams) -> list[Result]:
        f = tls_facts(facts)
        if (err := no_handshake(f)) is not None:
            return [err]
        out: list[Result] = []
        if f.dh_bits is not None and f.dh_bits < params.min_dh_bits:
            out.append(
                failed(
                    f"TLS at {where(f)} uses a {f.dh_bits}-bit DH group "
                    f"(at least {params.min_dh_bits} required)",
                    detail="dh",
                    severity=Severity.HIGH if f.dh_bits <= 1024 else None,
                    dh_bits=f.dh_bits,
                    dh_suite=f.dh_suite,
                )
            )
        groups = sorted(set(f.groups_tls12) | set(f.groups_tls13))
        weak = [
            g
            for g in groups
            if not g.startswith("ffdhe") and GROUP_BITS.get(g, 1024) < params.min_ec_bits
        ]
        weak += [g for g in groups if g.startswith("ffdhe") and GROUP_BITS[g] < params.min_dh_bits]
        if weak:
            out.append(
                failed(
                    f"TLS at {where(f)} accepts weak groups: {', '.join(weak)}",
                    detail="groups",
                    groups=weak,
                )
            )
        if out:
            return out
        evidence: dict[str, Any] = {"dh_bits": f.dh_bits, "groups": groups}
        if f.dh_bits is None and not groups:
            return [not_applicable(f"TLS at {where(f)}: no (EC)DHE key exchange seen")]
        return [passed(f"TLS at {where(f)} uses strong (EC)DH parameters", **evidence)]


class CbcTls10(Check):
    meta = _meta(
        "tls.cipher.cbc_tls10",
        "No CBC suites under SSL 3.0 / TLS 1.0 (BEAST, POODLE)",
        Severity.MEDIUM,
        "SSL 3.0 and TLS 1.0 use a predictable CBC IV, which BEAST exploits to recover "
        "cookies, and SSL 3.0's padding is open to POODLE; under these versions CBC is "
        "unsafe regardless of the cipher.",
        "Disable TLS 1.0 (and SSL 3.0); where TLS 1.0 must stay for old clients, it has no "
        "safe CBC suite left, which is one more reason to drop it.",
        CIPHER_SNIPPET,
        "cbc",
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result:
        f = tls_facts(facts)
        if (err := no_handshake(f)) is not None:
            return err
        hits = [(v, s) for v, s in accepted(f) if v in ("SSLv3", "TLSv1.0") and "cbc" in s.flags]
        if not hits:
            old = [v for v in f.supported if v in ("SSLv3", "TLSv1.0")]
            msg = "accepts no CBC suite under " + "/".join(old) if old else "does not offer TLS 1.0"
            return passed(f"TLS at {where(f)} {msg}")
        return failed(
            f"TLS at {where(f)} accepts {len(hits)} CBC suite(s) under SSL 3.0/TLS 1.0",
            suites=by_protocol(hits),
        )


class NoServerOrder(Check):
    meta = _meta(
        "tls.cipher.no_server_order",
        "Server enforces its cipher order when weak suites remain",
        Severity.LOW,
        "A server that follows the client's order lets a client (or an attacker influencing "
        "it) choose the weakest suite the server still accepts; when every accepted suite is "
        "strong, the client's choice is harmless and Mozilla recommends it.",
        "Remove the weak suites (best), or enable server cipher preference.",
        ORDER_SNIPPET,
        "order",
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> list[Result]:
        f = tls_facts(facts)
        if (err := no_handshake(f)) is not None:
            return [err]
        pairs = accepted(f)
        out: list[Result] = []
        for p in f.protocols:
            if not p.supported:
                continue
            weak = [s.name for v, s in pairs if v == p.version and not s.strong]
            if weak and p.server_order is False:
                out.append(
                    failed(
                        f"TLS at {where(f)} lets the client choose under {p.version}, where "
                        f"{len(weak)} weak suite(s) are accepted",
                        detail=p.version,
                        weak_suites=weak,
                    )
                )
        if out:
            return out
        return [
            passed(
                f"TLS at {where(f)}: no weak suite can be chosen by the client",
                server_order={p.version: p.server_order for p in f.protocols if p.supported},
            )
        ]
