"""Certificate checks: pure judgements of the `service.tls_cert` facts.

Which certificates are judged: the leaf and every certificate on its path up to, but not
including, a self-signed root the server sent along (clients use their own copy of a root, so
its dates, key and signature are the trust store's business, not the server's). Certificates
unrelated to the leaf's path are ignored. Each finding names the certificate in `detail`
("leaf" or "ca:<subject>"), so a renewal keeps the finding's identity and a fix is seen as such.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from scanner.collectors.tls_cert import TlsCertFacts
from scanner.model import (
    Reference,
    Remediation,
    Result,
    Severity,
    TargetKind,
    error,
    failed,
    not_applicable,
    not_assessed,
    passed,
)
from scanner.plugins import Check, CheckMeta, FactsView
from scanner.tlscert import CertInfo, match_identity

FACTS = "service.tls_cert"

REF_ISO_CRYPTO = Reference(scheme="iso27001:2022", id="A.8.24")
REF_CIS_TRANSIT = Reference(scheme="cis-v8", id="3.10")
REF_BSI_CRYPTO = Reference(scheme="bsi", id="CON.1.A1")
REF_BSI_WEB_TLS = Reference(scheme="bsi", id="APP.3.2.A11")
SNIPPET_LANG = "shell"

NEW_CERT_SNIPPET = """\
# A new P-256 key and a request with subjectAltName; send the CSR to the unit's CA
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \\
  -keyout /etc/ssl/private/portal.key -out portal.csr \\
  -subj "/CN=portal.example.gov.vn" \\
  -addext "subjectAltName=DNS:portal.example.gov.vn"
# ... or, for a name reachable from the Internet, a free certificate that renews itself
certbot certonly --webroot -w /var/www/html -d portal.example.gov.vn
# Serve the certificate followed by its intermediates (leaf first)
cat portal.crt issuing-ca.crt > /etc/ssl/certs/portal-fullchain.pem
#   nginx:   ssl_certificate     /etc/ssl/certs/portal-fullchain.pem;
#            ssl_certificate_key /etc/ssl/private/portal.key;
#   Apache:  SSLCertificateFile    /etc/ssl/certs/portal-fullchain.pem
#            SSLCertificateKeyFile /etc/ssl/private/portal.key
"""

FULL_CHAIN_SNIPPET = """\
# Put the intermediates after the server certificate in one file (leaf first, root omitted)
cat portal.crt issuing-ca.crt > /etc/ssl/certs/portal-fullchain.pem
# certbot already writes it: /etc/letsencrypt/live/portal.example.gov.vn/fullchain.pem
#   nginx:   ssl_certificate     /etc/ssl/certs/portal-fullchain.pem;
#   Apache 2.4.8+:  SSLCertificateFile /etc/ssl/certs/portal-fullchain.pem
#   Apache before 2.4.8:  SSLCertificateChainFile /etc/ssl/certs/issuing-ca.crt
openssl s_client -connect portal.example.gov.vn:443 -showcerts </dev/null  # verify
"""

RENEW_SNIPPET = """\
# certbot renews everything due within 30 days; run it from a timer and reload the server
certbot renew --deploy-hook "systemctl reload nginx"
systemctl list-timers 'certbot*'
# For certificates from the unit's own CA: new CSR as below, then install and reload
openssl req -new -key /etc/ssl/private/portal.key -out portal.csr \\
  -subj "/CN=portal.example.gov.vn" -addext "subjectAltName=DNS:portal.example.gov.vn"
#   nginx:   ssl_certificate /etc/ssl/certs/portal-fullchain.pem;  then: nginx -s reload
#   Apache:  SSLCertificateFile /etc/ssl/certs/portal-fullchain.pem; then: apachectl graceful
"""


def cert_facts(facts: FactsView) -> TlsCertFacts:
    return facts.get(FACTS, TlsCertFacts)


def judged(f: TlsCertFacts) -> list[CertInfo]:
    """The leaf and its path, without a sent self-signed root above the leaf."""
    by_pos = {c.position: c for c in f.certificates}
    path = [by_pos[p] for p in f.chain.path if p in by_pos] or f.certificates[:1]
    return [c for c in path if c.position == 0 or not c.self_signed]


def cert_detail(c: CertInfo) -> str:
    return "leaf" if c.position == 0 else f"ca:{c.subject}"


def cert_role(c: CertInfo) -> str:
    return "the server certificate" if c.position == 0 else f"the CA certificate {c.subject!r}"


def no_chain(f: TlsCertFacts) -> Result | None:
    if f.certificates:
        return None
    return error(f"TLS at {f.endpoint}: no certificate could be analysed", errors=f.errors)


def _dates(c: CertInfo, f: TlsCertFacts) -> dict[str, Any]:
    return {
        "certificate": c.subject,
        "not_before": c.not_before.isoformat(),
        "not_after": c.not_after.isoformat(),
        "days_left": c.days_left(f.scanned_at),
        "scanned_at": f.scanned_at.isoformat(),
    }


# -- validity ------------------------------------------------------------------------------------


class Expired(Check):
    meta = CheckMeta(
        id="tls.cert.expired",
        title="Certificate is within its validity period",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "Clients reject an expired (or not yet valid) certificate; users learn to click "
            "through the warning, which is exactly what an attacker who intercepts the "
            "connection with his own certificate relies on."
        ),
        remediation=Remediation(
            text="Install a new certificate and automate its renewal.",
            snippet=RENEW_SNIPPET,
            snippet_lang=SNIPPET_LANG,
        ),
        references=(
            Reference(scheme="cwe", id="CWE-298"),
            REF_ISO_CRYPTO,
            REF_CIS_TRANSIT,
            REF_BSI_WEB_TLS,
        ),
        tags=("tls", "certificate"),
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result | list[Result]:
        f = cert_facts(facts)
        if (bad := no_chain(f)) is not None:
            return bad
        out: list[Result] = []
        for c in judged(f):
            if c.not_after < f.scanned_at:
                days = (f.scanned_at - c.not_after) // dt.timedelta(days=1)
                out.append(
                    failed(
                        f"TLS at {f.endpoint}: {cert_role(c)} expired {days} days ago "
                        f"({c.not_after:%Y-%m-%d})",
                        detail=cert_detail(c),
                        **_dates(c, f),
                    )
                )
            elif c.not_before > f.scanned_at:
                out.append(
                    failed(
                        f"TLS at {f.endpoint}: {cert_role(c)} is not valid before "
                        f"{c.not_before:%Y-%m-%d}",
                        detail=cert_detail(c),
                        **_dates(c, f),
                    )
                )
        if out:
            return out
        leaf = f.certificates[0]
        return passed(
            f"TLS at {f.endpoint}: the certificate is valid until {leaf.not_after:%Y-%m-%d} "
            f"({leaf.days_left(f.scanned_at)} days left)",
            **_dates(leaf, f),
        )


class ExpiringParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(
        default=30, ge=1, le=3650, description="warn when a certificate ends within this many days"
    )


class Expiring(Check):
    meta = CheckMeta(
        id="tls.cert.expiring",
        title="Certificate does not expire within the warning window",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "A certificate that ends in a few days turns into an outage (and into users "
            "trained to ignore warnings) unless someone renews it now; forgotten renewals are "
            "the most common cause of expired certificates."
        ),
        remediation=Remediation(
            text="Renew the certificate now and make renewal automatic.",
            snippet=RENEW_SNIPPET,
            snippet_lang=SNIPPET_LANG,
        ),
        references=(
            Reference(scheme="cwe", id="CWE-298"),
            REF_ISO_CRYPTO,
            REF_CIS_TRANSIT,
            REF_BSI_WEB_TLS,
        ),
        tags=("tls", "certificate"),
    )
    Params = ExpiringParams

    def evaluate(self, facts: FactsView, params: ExpiringParams) -> Result | list[Result]:
        f = cert_facts(facts)
        if (bad := no_chain(f)) is not None:
            return bad
        certs = judged(f)
        current = [c for c in certs if c.valid_at(f.scanned_at)]
        if not current:
            return not_applicable(
                f"TLS at {f.endpoint}: the certificate is outside its validity already "
                "(reported by tls.cert.expired)"
            )
        out = [
            failed(
                f"TLS at {f.endpoint}: {cert_role(c)} expires in {c.days_left(f.scanned_at)} "
                f"days ({c.not_after:%Y-%m-%d}), within the {params.days}-day window",
                detail=cert_detail(c),
                window_days=params.days,
                **_dates(c, f),
            )
            for c in current
            if c.days_left(f.scanned_at) < params.days
        ]
        if out:
            return out
        first = min(current, key=lambda c: c.not_after)
        return passed(
            f"TLS at {f.endpoint}: no certificate of the chain ends within {params.days} days "
            f"(the first ends {first.not_after:%Y-%m-%d})",
            window_days=params.days,
            **_dates(first, f),
        )


# -- key and signature ------------------------------------------------------------------------


class WeakKeyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rsa_min_bits: int = Field(default=2048, ge=512, le=16384, description="smallest RSA key")
    ec_min_bits: int = Field(default=256, ge=160, le=571, description="smallest EC curve size")
    dsa_allowed: bool = Field(default=False, description="accept DSA keys at all")


class WeakKey(Check):
    meta = CheckMeta(
        id="tls.cert.weak_key",
        title="Certificate keys are strong enough",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "RSA keys below 2048 bits and EC keys below 256 bits are within reach of "
            "factoring or discrete-log attacks (RSA-829 was factored in 2020); whoever "
            "recovers the key can impersonate the server. DSA is withdrawn from TLS."
        ),
        remediation=Remediation(
            text=(
                "Generate a new ECDSA P-256 (or RSA 3072) key, get a certificate for it and "
                "retire the old key."
            ),
            snippet=NEW_CERT_SNIPPET,
            snippet_lang=SNIPPET_LANG,
        ),
        references=(
            Reference(scheme="cwe", id="CWE-326"),
            REF_ISO_CRYPTO,
            REF_CIS_TRANSIT,
            REF_BSI_CRYPTO,
            Reference(scheme="bsi", id="TR-02102-2"),
        ),
        tags=("tls", "certificate", "crypto"),
    )
    Params = WeakKeyParams

    def evaluate(self, facts: FactsView, params: WeakKeyParams) -> Result | list[Result]:
        f = cert_facts(facts)
        if (bad := no_chain(f)) is not None:
            return bad
        out: list[Result] = []
        keys = []
        for c in judged(f):
            key = f"{c.key_type} {c.key_bits}" + (f" ({c.curve})" if c.curve else "")
            keys.append({"certificate": c.subject, "key": key})
            why = ""
            if c.key_type == "RSA" and c.key_bits < params.rsa_min_bits:
                why = f"an RSA key of {c.key_bits} bits (at least {params.rsa_min_bits} required)"
            elif c.key_type == "EC" and c.key_bits < params.ec_min_bits:
                why = f"an EC key of {c.key_bits} bits (at least {params.ec_min_bits} required)"
            elif c.key_type == "DSA" and not params.dsa_allowed:
                why = f"a DSA key ({c.key_bits} bits); DSA is not allowed"
            elif c.key_type == "unknown":
                out.append(
                    not_assessed(f"TLS at {f.endpoint}: {cert_role(c)} has a key Assay cannot read")
                )
                continue
            if why:
                out.append(
                    failed(
                        f"TLS at {f.endpoint}: {cert_role(c)} has {why}",
                        detail=cert_detail(c),
                        certificate=c.subject,
                        key=key,
                    )
                )
        if out:
            return out
        return passed(f"TLS at {f.endpoint}: every certificate key is strong enough", keys=keys)


WEAK_HASHES = frozenset({"sha1", "md5", "md2", "md4"})


class Sha1Signature(Check):
    meta = CheckMeta(
        id="tls.cert.sha1",
        title="Certificates are not signed with SHA-1 or MD5",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "SHA-1 and MD5 collisions are practical (SHAttered 2017, chosen-prefix 2020; a "
            "rogue CA was made from MD5 in 2008), so a signature over them no longer proves "
            "who issued the certificate; browsers reject such certificates."
        ),
        remediation=Remediation(
            text="Replace the certificate with one signed with SHA-256 or better.",
            snippet=NEW_CERT_SNIPPET,
            snippet_lang=SNIPPET_LANG,
        ),
        references=(
            Reference(scheme="cwe", id="CWE-328"),
            Reference(scheme="cwe", id="CWE-327"),
            REF_ISO_CRYPTO,
            REF_CIS_TRANSIT,
            REF_BSI_CRYPTO,
        ),
        tags=("tls", "certificate", "crypto"),
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result | list[Result]:
        f = cert_facts(facts)
        if (bad := no_chain(f)) is not None:
            return bad
        certs = judged(f)
        out = [
            failed(
                f"TLS at {f.endpoint}: {cert_role(c)} is signed with {c.signature_algorithm}",
                detail=cert_detail(c),
                certificate=c.subject,
                signature_algorithm=c.signature_algorithm,
            )
            for c in certs
            if c.signature_hash in WEAK_HASHES
        ]
        if out:
            return out
        return passed(
            f"TLS at {f.endpoint}: no certificate is signed with SHA-1 or MD5",
            signatures={c.subject: c.signature_algorithm for c in certs},
        )


# -- identity and trust -------------------------------------------------------------------------


class NameParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow_common_name: bool = Field(
        default=False,
        description=(
            "accept a match on the subject CN when the certificate has no subjectAltName "
            "(RFC 6125 permits it; current browsers do not)"
        ),
    )


class NameMismatch(Check):
    meta = CheckMeta(
        id="tls.cert.name_mismatch",
        title="Certificate is issued for the name or address scanned",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "A client accepts a certificate only for the name (or IP address) it connected "
            "to; a mismatch makes every visit a certificate warning, and users who click "
            "through cannot tell the real server from an interceptor."
        ),
        remediation=Remediation(
            text=(
                "Get a certificate whose subjectAltName lists every name (DNS:) and address "
                "(IP:) clients use for this service."
            ),
            snippet=NEW_CERT_SNIPPET,
            snippet_lang=SNIPPET_LANG,
        ),
        references=(
            Reference(scheme="cwe", id="CWE-297"),
            Reference(scheme="url", id="https://www.rfc-editor.org/rfc/rfc6125#section-6"),
            REF_ISO_CRYPTO,
            REF_BSI_WEB_TLS,
        ),
        tags=("tls", "certificate"),
    )
    Params = NameParams

    def evaluate(self, facts: FactsView, params: NameParams) -> Result:
        f = cert_facts(facts)
        if (bad := no_chain(f)) is not None:
            return bad
        leaf = f.certificates[0]
        m = match_identity(leaf, f.reference, params.allow_common_name)
        evidence: dict[str, Any] = {
            "reference": f.reference,
            "dns_names": list(leaf.dns_names),
            "ip_addresses": list(leaf.ip_addresses),
            "common_names": list(leaf.common_names),
        }
        if m.matched:
            return passed(
                f"TLS at {f.endpoint}: the certificate names {f.reference} ({m.how})",
                matched_by=m.how,
                **evidence,
            )
        if not leaf.san_present:
            cn = ", ".join(leaf.common_names) or "no common name"
            return failed(
                f"TLS at {f.endpoint}: the certificate has no subjectAltName (subject CN: {cn}), "
                f"so clients do not accept it for {f.reference}",
                **evidence,
            )
        shown = ", ".join(m.presented[:6]) + (" ..." if len(m.presented) > 6 else "")
        return failed(
            f"TLS at {f.endpoint}: the certificate is for {shown}, not for {f.reference}",
            **evidence,
        )


class Untrusted(Check):
    meta = CheckMeta(
        id="tls.cert.untrusted",
        title="Certificate chains to a trusted root",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "A self-signed certificate or one without a path to a trusted root cannot be "
            "told apart from an attacker's: clients either warn on every visit or were "
            "configured to accept anything, and both defeat TLS's authentication."
        ),
        remediation=Remediation(
            text=(
                "Use a certificate from a public CA or from the unit's own CA, and distribute "
                "that CA's root to the clients (and list it in the inventory's "
                "settings.tls_trust so Assay trusts it too)."
            ),
            snippet=NEW_CERT_SNIPPET,
            snippet_lang=SNIPPET_LANG,
        ),
        references=(
            Reference(scheme="cwe", id="CWE-295"),
            Reference(scheme="cwe", id="CWE-296"),
            REF_ISO_CRYPTO,
            REF_CIS_TRANSIT,
            REF_BSI_WEB_TLS,
        ),
        tags=("tls", "certificate", "trust"),
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result:
        f = cert_facts(facts)
        if (bad := no_chain(f)) is not None:
            return bad
        t = f.trust
        evidence: dict[str, Any] = {
            "trust": t.status,
            "stores": list(t.stores),
            "anchors_loaded": t.anchors,
        }
        if t.status == "trusted":
            return passed(
                f"TLS at {f.endpoint}: the certificate chains to the trusted root {t.anchor}",
                path=list(t.path),
                **evidence,
            )
        if t.status == "trusted_outside_validity":
            return passed(
                f"TLS at {f.endpoint}: the certificate chains to the trusted root {t.anchor}; "
                "its dates are judged by tls.cert.expired",
                path=list(t.path),
                reason=t.reason,
                **evidence,
            )
        if t.status == "self_signed":
            return failed(
                f"TLS at {f.endpoint}: the certificate is self-signed and no trust store "
                "Assay was given holds it",
                certificate=f.certificates[0].subject,
                **evidence,
            )
        if t.status == "untrusted":
            return failed(
                f"TLS at {f.endpoint}: no path from the certificate to a trusted root "
                f"(issuer {f.certificates[0].issuer}): {t.reason}",
                reason=t.reason,
                **evidence,
            )
        return error(
            f"TLS at {f.endpoint}: trust could not be decided: {t.reason}",
            store_errors=list(t.store_errors),
            **evidence,
        )


class ChainIncomplete(Check):
    meta = CheckMeta(
        id="tls.cert.chain_incomplete",
        title="Server sends the intermediate certificates of its chain",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "A server that omits its intermediate certificates works only in browsers that "
            "happen to have them cached or fetch them; mail servers, scripts, mobile apps and "
            "update agents fail the handshake, or get configured to skip verification."
        ),
        remediation=Remediation(
            text="Serve the full chain: the server certificate, then its intermediates.",
            snippet=FULL_CHAIN_SNIPPET,
            snippet_lang=SNIPPET_LANG,
        ),
        references=(
            Reference(scheme="cwe", id="CWE-296"),
            REF_ISO_CRYPTO,
            REF_BSI_WEB_TLS,
        ),
        tags=("tls", "certificate", "chain"),
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result:
        f = cert_facts(facts)
        if (bad := no_chain(f)) is not None:
            return bad
        ch = f.chain
        evidence: dict[str, Any] = {
            "sent": [c.subject for c in f.certificates],
            "path": list(ch.path),
            "order_ok": ch.order_ok,
            "unrelated": list(ch.unrelated),
        }
        if ch.root_sent and ch.path == (0,):
            return not_applicable(
                f"TLS at {f.endpoint}: the certificate is self-signed; there is no chain "
                "(see tls.cert.untrusted)"
            )
        if not ch.complete:
            if f.errors:
                return error(
                    f"TLS at {f.endpoint}: the chain could not be read completely: "
                    + "; ".join(f.errors),
                    **evidence,
                )
            urls = ", ".join(ch.missing_issuer_urls)
            hint = f" (its issuer publishes it at {urls}; not fetched)" if urls else ""
            return failed(
                f"TLS at {f.endpoint}: the issuer {ch.missing_issuer!r} of "
                f"{f.certificates[ch.path[-1]].subject!r} is neither sent nor a trusted "
                f"root{hint}",
                missing_issuer=ch.missing_issuer,
                aia_ca_issuers=list(ch.missing_issuer_urls),
                **evidence,
            )
        if ch.root_sent:
            top = "its root"
        elif ch.issuer_unknown:
            top = f"its last intermediate (the root {ch.missing_issuer!r} is not in the store)"
        else:
            top = "the trusted root"
        return passed(
            f"TLS at {f.endpoint}: the server sends {len(ch.path)} certificate(s), up to {top}",
            **evidence,
        )


REVOCATION_SNIPPET = """\\
# Certificates from the unit's CA: put a CRL distribution point and an OCSP responder into
# every server certificate it issues (openssl ca / x509 extension section)
[ server_cert ]
crlDistributionPoints = URI:http://pki.example.gov.vn/crl/issuing-ca.crl
authorityInfoAccess   = OCSP;URI:http://ocsp.example.gov.vn/, caIssuers;URI:http://pki.example.gov.vn/issuing-ca.crt
# then re-issue the server certificate and check what it carries
openssl x509 -in portal.crt -noout -ext crlDistributionPoints,authorityInfoAccess
"""


class NoRevocation(Check):
    meta = CheckMeta(
        id="tls.cert.no_revocation",
        title="Server certificate names a way to check its revocation (CRL or OCSP)",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "A certificate without a CRL distribution point or an OCSP responder cannot be "
            "withdrawn once its key leaks: clients keep trusting it until it expires, so the "
            "unit cannot stop an attacker who holds the copied key from impersonating the "
            "service."
        ),
        remediation=Remediation(
            text=(
                "Issue server certificates with a CRL distribution point and an OCSP URL "
                "(public CAs always do; a unit's own CA must be configured to), and publish "
                "the CRL where clients can reach it."
            ),
            snippet=REVOCATION_SNIPPET,
            snippet_lang="ini",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-299"),
            Reference(scheme="url", id="https://www.rfc-editor.org/rfc/rfc5280#section-4.2.1.13"),
            REF_ISO_CRYPTO,
            REF_BSI_CRYPTO,
        ),
        tags=("tls", "certificate", "revocation"),
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result:
        f = cert_facts(facts)
        if (bad := no_chain(f)) is not None:
            return bad
        leaf = f.certificates[0]
        if leaf.self_signed:
            return not_applicable(
                f"TLS at {f.endpoint}: the certificate is self-signed, so no issuer could "
                "revoke it (see tls.cert.untrusted)"
            )
        evidence: dict[str, Any] = {
            "certificate": leaf.subject,
            "crl_distribution_points": list(leaf.crl_urls),
            "ocsp": list(leaf.aia_ocsp),
        }
        if not leaf.crl_urls and not leaf.aia_ocsp:
            return failed(
                f"TLS at {f.endpoint}: the server certificate names neither a CRL "
                "distribution point nor an OCSP responder, so it cannot be revoked",
                detail="leaf",
                **evidence,
            )
        ways = [w for w, urls in (("CRL", leaf.crl_urls), ("OCSP", leaf.aia_ocsp)) if urls]
        return passed(
            f"TLS at {f.endpoint}: the server certificate can be checked for revocation "
            f"({' and '.join(ways)}; not fetched)",
            **evidence,
        )
