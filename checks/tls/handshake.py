"""Handshake features: insecure renegotiation, TLS compression (CRIME), OCSP stapling, and
the vulnerability probes (Heartbleed, early CCS, ROBOT).

All three are read from hellos Assay sends anyway (phase A and one stapling hello), so they
cost at most one connection. TLS 1.3 removed renegotiation and compression, so a TLS 1.3-only
endpoint is `not_applicable` for those two.
"""

from __future__ import annotations

import base64
import binascii

from cryptography import x509
from pydantic import BaseModel

from checks.tls import FACTS as TLS_FACTS
from checks.tls import (
    REF_BSI_WEB_TLS,
    REF_ISO_CRYPTO,
    REFERENCES,
    accepted,
    by_protocol,
    no_handshake,
    tls_facts,
    where,
)
from scanner.collectors.tls import TlsFacts
from scanner.model import (
    Reference,
    Remediation,
    Result,
    Severity,
    TargetKind,
    failed,
    not_applicable,
    not_assessed,
    passed,
)
from scanner.plugins import Check, CheckMeta, FactsView
from scanner.tlscert import describe

LEGACY = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2")


def _legacy(f: TlsFacts) -> list[str]:
    return [v for v in f.supported if v in LEGACY]


RENEGOTIATION_SNIPPET = """\
# Any OpenSSL since 0.9.8m implements RFC 5746; update the TLS library (or the appliance's
# firmware) that answers without the renegotiation_info extension, then verify:
openssl s_client -connect portal.example.gov.vn:443 -tls1_2 </dev/null | grep -i renegotiation
#   expected: "Secure Renegotiation IS supported"
"""


class InsecureRenegotiation(Check):
    meta = CheckMeta(
        id="tls.renegotiation.insecure",
        title="TLS renegotiation is secure (RFC 5746)",
        target_kind=TargetKind.SERVICE,
        facts=(TLS_FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "Without the RFC 5746 renegotiation_info extension a man in the middle can splice "
            "its own request in front of a client's authenticated session "
            "(CVE-2009-3555), for example to have a logged-in officer's browser send a form."
        ),
        remediation=Remediation(
            text="Update the TLS library or appliance so that it supports RFC 5746.",
            snippet=RENEGOTIATION_SNIPPET,
            snippet_lang="shell",
        ),
        references=(
            Reference(scheme="cve", id="CVE-2009-3555"),
            Reference(scheme="url", id="https://www.rfc-editor.org/rfc/rfc5746"),
            *REFERENCES,
        ),
        tags=("tls", "handshake"),
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result:
        f = tls_facts(facts)
        if (err := no_handshake(f)) is not None:
            return err
        legacy = _legacy(f)
        if not legacy:
            return not_applicable(f"TLS at {where(f)} speaks only TLS 1.3 (no renegotiation)")
        if f.secure_renegotiation is None:
            return not_assessed(f"TLS at {where(f)}: no {legacy[-1]} hello could be read")
        if f.secure_renegotiation:
            return passed(
                f"TLS at {where(f)} answers {legacy[-1]} with the renegotiation_info extension"
            )
        return failed(
            f"TLS at {where(f)} answers {legacy[-1]} without the renegotiation_info extension "
            "(RFC 5746): renegotiation is not protected",
            protocol=legacy[-1],
        )


COMPRESSION_SNIPPET = """\
# nginx and Apache built on OpenSSL 1.1.0+ never compress; older Apache:
SSLCompression off
# verify: the answer must say "Compression: NONE"
openssl s_client -connect portal.example.gov.vn:443 -tls1_2 </dev/null | grep -i compression
"""


class Compression(Check):
    meta = CheckMeta(
        id="tls.compression",
        title="TLS compression is off (CRIME)",
        target_kind=TargetKind.SERVICE,
        facts=(TLS_FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "With TLS-level compression the length of each record leaks how well attacker "
            "chosen text compresses against secrets in the same stream, which recovers session "
            "cookies in a few thousand requests (CRIME, CVE-2012-4929)."
        ),
        remediation=Remediation(
            text="Turn TLS compression off (or update to a TLS library that no longer has it).",
            snippet=COMPRESSION_SNIPPET,
            snippet_lang="apache",
        ),
        references=(Reference(scheme="cve", id="CVE-2012-4929"), *REFERENCES),
        tags=("tls", "handshake"),
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result:
        f = tls_facts(facts)
        if (err := no_handshake(f)) is not None:
            return err
        legacy = _legacy(f)
        if not legacy:
            return not_applicable(f"TLS at {where(f)} speaks only TLS 1.3 (no compression)")
        if f.compression is None:
            return not_assessed(f"TLS at {where(f)}: no {legacy[-1]} hello could be read")
        if f.compression:
            return failed(
                f"TLS at {where(f)} accepted DEFLATE compression under {legacy[-1]}",
                protocol=legacy[-1],
            )
        return passed(f"TLS at {where(f)} refuses TLS compression (DEFLATE offered)")


STAPLING_SNIPPET = """\
# nginx: staple the CA's OCSP answer (the resolver must reach the CA's OCSP responder)
ssl_stapling on;
ssl_stapling_verify on;
ssl_trusted_certificate /etc/ssl/certs/issuing-ca-chain.pem;
resolver 10.20.0.53;
# Apache httpd (mod_ssl), outside <VirtualHost>:
SSLUseStapling on
SSLStaplingCache shmcb:/var/run/ocsp(128000)
# verify
openssl s_client -connect portal.example.gov.vn:443 -status </dev/null | grep -A2 'OCSP response'
"""


def _leaf_ocsp(f: TlsFacts) -> tuple[str, ...] | None:
    """The OCSP URLs of the leaf the TLS hellos received; None when it cannot be read."""
    if not f.certificate_chain:
        return None
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(f.certificate_chain[0]))
    except (ValueError, binascii.Error):
        return None
    return describe(cert, 0).aia_ocsp


class OcspStapling(Check):
    meta = CheckMeta(
        id="tls.ocsp_stapling",
        title="Server staples the OCSP status of its certificate",
        target_kind=TargetKind.SERVICE,
        facts=(TLS_FACTS,),
        severity=Severity.LOW,
        rationale=(
            "When the certificate names an OCSP responder but the server does not staple its "
            "answer, every client must ask the CA itself: that is slow, tells the CA who visits "
            "the service, and clients that cannot reach the responder usually accept the "
            "certificate anyway, so a revoked certificate keeps working."
        ),
        remediation=Remediation(
            text="Enable OCSP stapling on the server.",
            snippet=STAPLING_SNIPPET,
            snippet_lang="nginx / apache",
        ),
        references=(
            Reference(scheme="url", id="https://www.rfc-editor.org/rfc/rfc6066#section-8"),
            REF_ISO_CRYPTO,
            REF_BSI_WEB_TLS,
        ),
        tags=("tls", "handshake", "revocation"),
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result:
        f = tls_facts(facts)
        if (err := no_handshake(f)) is not None:
            return err
        if not _legacy(f):
            return not_assessed(
                f"TLS at {where(f)} offers only TLS 1.3, where the certificate and its stapled "
                "status travel inside the encrypted handshake (not read)"
            )
        urls = _leaf_ocsp(f)
        if urls is None:
            return not_assessed(f"TLS at {where(f)}: the server certificate could not be read")
        if not urls:
            return not_applicable(
                f"TLS at {where(f)}: the certificate names no OCSP responder, so there is "
                "nothing to staple (see tls.cert.no_revocation)"
            )
        if f.ocsp_stapling is None:
            return not_assessed(f"TLS at {where(f)}: the stapling hello got no answer")
        if f.ocsp_stapling:
            return passed(f"TLS at {where(f)} staples the OCSP status", ocsp=list(urls))
        return failed(
            f"TLS at {where(f)} does not staple the OCSP status its certificate points to "
            f"({urls[0]})",
            ocsp=list(urls),
        )


HEARTBLEED_SNIPPET = """\
# The server's OpenSSL is 1.0.1 to 1.0.1f: update it (or the appliance firmware), restart
# every service that links it, then replace the certificate and key and revoke the old one,
# since the key may have been read from memory.
openssl version            # on the server: must not be 1.0.1 - 1.0.1f
apt-get install --only-upgrade openssl libssl1.0.0 && systemctl restart nginx
"""


class Heartbleed(Check):
    meta = CheckMeta(
        id="tls.heartbleed",
        title="Not vulnerable to Heartbleed (CVE-2014-0160)",
        target_kind=TargetKind.SERVICE,
        facts=(TLS_FACTS,),
        severity=Severity.CRITICAL,
        rationale=(
            "A server with the Heartbleed bug answers a heartbeat that claims more payload "
            "than it carries with up to 64 KiB of its own memory per request, without any "
            "login: private keys, session cookies and passwords of other users are read "
            "remotely and leave no trace in the logs."
        ),
        remediation=Remediation(
            text=(
                "Update OpenSSL (1.0.1g or later), restart the services, then replace the "
                "key and certificate and revoke the old certificate."
            ),
            snippet=HEARTBLEED_SNIPPET,
            snippet_lang="shell",
        ),
        references=(
            Reference(scheme="cve", id="CVE-2014-0160"),
            Reference(scheme="cwe", id="CWE-125"),
            Reference(scheme="url", id="https://www.rfc-editor.org/rfc/rfc6520"),
            *REFERENCES,
        ),
        tags=("tls", "handshake", "vulnerability"),
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result:
        f = tls_facts(facts)
        if (err := no_handshake(f)) is not None:
            return err
        if not _legacy(f):
            return not_applicable(f"TLS at {where(f)} speaks only TLS 1.3 (no heartbeats)")
        if f.heartbeat is None or f.heartbleed_leaked is None:
            return not_assessed(f"TLS at {where(f)}: the heartbeat probe got no answer")
        if f.heartbleed_leaked > 0:
            return failed(
                f"TLS at {where(f)} answered a heartbeat that carried no payload with "
                f"{f.heartbleed_leaked} bytes of its memory (Heartbleed)",
                leaked_bytes=f.heartbleed_leaked,
            )
        if f.heartbeat:
            return passed(
                f"TLS at {where(f)} accepts heartbeats but did not answer a malformed one"
            )
        return passed(f"TLS at {where(f)} does not accept the heartbeat extension")


FALLBACK_SNIPPET = """\\
# TLS_FALLBACK_SCSV (RFC 7507) is built into OpenSSL since 1.0.1j: update the TLS library or
# appliance; better still, turn the old protocols off so that there is nothing to fall back to
ssl_protocols TLSv1.2 TLSv1.3;          # nginx
SSLProtocol -all +TLSv1.2 +TLSv1.3      # Apache httpd
"""


class FallbackScsv(Check):
    meta = CheckMeta(
        id="tls.fallback_scsv",
        title="Protocol downgrade is refused (TLS_FALLBACK_SCSV)",
        target_kind=TargetKind.SERVICE,
        facts=(TLS_FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "Clients that retry a failed handshake with a lower protocol can be pushed down by "
            "an attacker who breaks the first attempt; a server that ignores the fallback "
            "signal (RFC 7507) accepts the downgrade to an old protocol and its weaknesses "
            "(POODLE, BEAST)."
        ),
        remediation=Remediation(
            text=(
                "Update the TLS library so that it honours TLS_FALLBACK_SCSV, or accept only "
                "TLS 1.2 and 1.3."
            ),
            snippet=FALLBACK_SNIPPET,
            snippet_lang="nginx / apache",
        ),
        references=(
            Reference(scheme="url", id="https://www.rfc-editor.org/rfc/rfc7507"),
            Reference(scheme="cwe", id="CWE-757"),
            *REFERENCES,
        ),
        tags=("tls", "handshake", "downgrade"),
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result:
        f = tls_facts(facts)
        if (err := no_handshake(f)) is not None:
            return err
        if len(f.supported) < 2:
            return not_applicable(
                f"TLS at {where(f)} accepts only {f.supported[0]}: there is nothing to downgrade to"
            )
        lower = f.supported[-2]
        if f.fallback_scsv is None:
            return not_assessed(f"TLS at {where(f)}: the {lower} fallback hello got no answer")
        if f.fallback_scsv:
            return passed(
                f"TLS at {where(f)} refuses a {lower} hello marked as a fallback "
                "(inappropriate_fallback)"
            )
        return failed(
            f"TLS at {where(f)} accepts a {lower} hello marked as a fallback although it "
            f"speaks {f.supported[-1]}: a downgrade is not detected",
            protocols=f.supported,
        )


CCS_SNIPPET = """\\
# The server's OpenSSL is older than 0.9.8za / 1.0.0m / 1.0.1h: update it (or the appliance
# firmware) and restart every service that links it
openssl version
apt-get install --only-upgrade openssl && systemctl restart nginx
"""


class CcsInjection(Check):
    meta = CheckMeta(
        id="tls.ccs_injection",
        title="Early ChangeCipherSpec is refused (CVE-2014-0224)",
        target_kind=TargetKind.SERVICE,
        facts=(TLS_FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "A server that accepts a ChangeCipherSpec before the key exchange switches to keys "
            "derived from an empty master secret; a man in the middle between it and a client "
            "with the same flaw can then read and change the whole session."
        ),
        remediation=Remediation(
            text="Update OpenSSL to 0.9.8za, 1.0.0m, 1.0.1h or later and restart the services.",
            snippet=CCS_SNIPPET,
            snippet_lang="shell",
        ),
        references=(
            Reference(scheme="cve", id="CVE-2014-0224"),
            Reference(scheme="cwe", id="CWE-841"),
            *REFERENCES,
        ),
        tags=("tls", "handshake", "vulnerability"),
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result:
        f = tls_facts(facts)
        if (err := no_handshake(f)) is not None:
            return err
        if not _legacy(f):
            return not_applicable(f"TLS at {where(f)} speaks only TLS 1.3 (no early CCS)")
        if f.early_ccs == "refused":
            return passed(
                f"TLS at {where(f)} refuses an early ChangeCipherSpec ({f.early_ccs_reason})"
            )
        if f.early_ccs == "accepted":
            return failed(
                f"TLS at {where(f)} accepted a ChangeCipherSpec before the key exchange "
                f"({f.early_ccs_reason})",
                answer=f.early_ccs_reason,
            )
        why = f.early_ccs_reason or "the probe got no answer"
        return not_assessed(
            f"TLS at {where(f)}: the early ChangeCipherSpec test was inconclusive ({why})"
        )


ROBOT_SNIPPET = """\
# Turn off static-RSA key exchange (TLS_RSA_WITH_*): only ECDHE (and DHE) suites remain
ssl_ciphers 'ECDHE+AESGCM:ECDHE+CHACHA20:!kRSA:!aNULL';  # nginx
ssl_protocols TLSv1.2 TLSv1.3;
SSLCipherSuite ECDHE+AESGCM:ECDHE+CHACHA20:!kRSA:!aNULL  # Apache httpd
SSLProtocol -all +TLSv1.2 +TLSv1.3
# appliances (F5, Citrix, Cisco, Radware ...): install the vendor's ROBOT fix as well
# verify: no static-RSA suite may be accepted any more
openssl s_client -connect portal.example.gov.vn:443 -tls1_2 -cipher kRSA </dev/null
#   expected: handshake failure
"""


def _static_rsa(f: TlsFacts) -> dict[str, list[str]]:
    """Static-RSA key-exchange suites accepted per protocol up to TLS 1.2."""
    pairs = [(v, s) for v, s in accepted(f) if v in LEGACY and s.kex == "RSA"]
    return by_protocol(pairs)


class Robot(Check):
    meta = CheckMeta(
        id="tls.robot",
        title="RSA key exchange is no padding oracle (ROBOT)",
        target_kind=TargetKind.SERVICE,
        facts=(TLS_FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "A server whose answer to a static-RSA key exchange depends on whether the "
            "decrypted premaster secret was well-formed PKCS#1 v1.5 is a Bleichenbacher "
            "oracle: with enough queries an attacker decrypts recorded sessions, without "
            "forward secrecy, or signs messages with the server's private key (ROBOT, 2017)."
        ),
        remediation=Remediation(
            text=(
                "Disable the static-RSA (TLS_RSA_WITH_*) suites, keeping ECDHE ones, or update "
                "the TLS stack or appliance firmware to a version with the ROBOT fix."
            ),
            snippet=ROBOT_SNIPPET,
            snippet_lang="nginx / apache",
        ),
        references=(
            Reference(scheme="cve", id="CVE-2017-13099"),
            Reference(scheme="cve", id="CVE-2017-6168"),
            Reference(scheme="cve", id="CVE-2017-17382"),
            Reference(scheme="cve", id="CVE-2017-12373"),
            Reference(scheme="cwe", id="CWE-203"),
            Reference(scheme="url", id="https://robotattack.org/"),
            Reference(scheme="url", id="https://www.kb.cert.org/vuls/id/144389"),
            Reference(scheme="url", id="https://www.rfc-editor.org/rfc/rfc5246#section-7.4.7.1"),
            *REFERENCES,
        ),
        tags=("tls", "handshake", "vulnerability"),
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result:
        f = tls_facts(facts)
        if (err := no_handshake(f)) is not None:
            return err
        rsa = _static_rsa(f)
        if not rsa:
            return not_applicable(
                f"TLS at {where(f)} accepts no static-RSA key exchange (TLS_RSA_WITH_*)"
            )
        tested = f.robot_protocol or max(rsa, key=LEGACY.index)
        if f.robot == "not_vulnerable":
            return passed(
                f"TLS at {where(f)} answers every malformed RSA premaster secret under "
                f"{tested} alike ({f.robot_reason.removeprefix('every variant got: ')})",
                protocol=tested,
                answers=f.robot_answers,
            )
        if f.robot in ("strong_oracle", "weak_oracle"):
            strong = f.robot == "strong_oracle"
            kind = "strong" if strong else "weak"
            return failed(
                f"TLS at {where(f)} is a {kind} RSA padding oracle under {tested} (ROBOT): "
                f"{f.robot_reason}",
                severity=Severity.CRITICAL if strong else None,
                oracle=f.robot,
                protocol=tested,
                answers=f.robot_answers,
            )
        why = f.robot_reason or "; ".join(f.errors[:1]) or "the probe did not run"
        return not_assessed(
            f"TLS at {where(f)}: the ROBOT test under {tested} was inconclusive ({why})",
            protocol=tested,
            answers=f.robot_answers,
        )
