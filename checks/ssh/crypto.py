"""Weak key exchange, cipher and MAC algorithms offered by an SSH server.

The three checks judge the server's KEXINIT lists against `algorithms.yaml` under a profile.
Each weak algorithm is its own finding (detail = the algorithm name), so removing one from the
configuration shows up as fixed in the next scan. The evidence carries a ready sshd_config line
built from what the server offers minus what failed.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from checks.ssh._common import CRYPTO_REFS, FACTS, ProfileParams, judge, ssh_facts, where
from checks.ssh.algorithms import Category, Verdict, table
from scanner.collectors.ssh import SshFacts
from scanner.model import (
    Reference,
    Remediation,
    Result,
    Severity,
    Status,
    TargetKind,
    error,
    failed,
    passed,
)
from scanner.plugins import Check, CheckMeta, FactsView

_RELOAD = "# check and apply:  sshd -t && systemctl reload ssh"

KEX_SNIPPET = f"""\
# /etc/ssh/sshd_config (OpenSSH 8.5+; with 9.9+ put mlkem768x25519-sha256 first)
KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512
{_RELOAD}
"""  # noqa: E501

CIPHER_SNIPPET = f"""\
# /etc/ssh/sshd_config
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr
{_RELOAD}
"""  # noqa: E501

MAC_SNIPPET = f"""\
# /etc/ssh/sshd_config
MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com
{_RELOAD}
"""


class AlgorithmListCheck(Check):
    """Judges one KEXINIT list; subclasses name the list, its sshd_config keyword and label."""

    category: ClassVar[Category]
    directive: ClassVar[str]
    label: ClassVar[str]
    Params = ProfileParams

    def offered(self, f: SshFacts) -> list[str]:
        raise NotImplementedError

    def evaluate(self, facts: FactsView, params: ProfileParams) -> list[Result]:
        f = ssh_facts(facts)
        if f.kexinit_error:
            return [error(f"{where(f)}: the algorithm lists could not be read: {f.kexinit_error}")]
        t = table()
        judged = judge(self.category, self.offered(f), params.profile)
        allowed = set(params.allow)
        bad = [j for j in judged if j.verdict in params.fail_on and j.name not in allowed]
        bad_names = {j.name for j in bad}
        warn = [j for j in judged if j.verdict is Verdict.WARN and j.name not in bad_names]
        keep = [
            j.name
            for j in judged
            if j.name not in bad_names
            and "marker" not in (getattr(t.lookup(self.category, j.name), "tags", ()))
        ]
        common: dict[str, Any] = {
            "profile": params.profile,
            "table_version": t.version,
            "offered": [j.name for j in judged],
        }
        if bad:
            suggested = f"{self.directive} {','.join(keep)}" if keep else ""
            return [
                failed(
                    f"{where(f)} offers the {self.label} {j.name}: {j.reason}",
                    detail=j.name,
                    algorithm=j.name,
                    verdict=j.verdict.value,
                    reason=j.reason,
                    suggested=suggested,
                    **common,
                )
                for j in bad
            ]
        note = f"; {len(warn)} to phase out: {', '.join(j.name for j in warn)}" if warn else ""
        return [
            passed(
                f"{where(f)} offers no weak {self.label}{note}",
                warnings=[{"algorithm": j.name, "reason": j.reason} for j in warn],
                **common,
            )
        ]


class KexParams(ProfileParams):
    min_gex_bits: int = Field(
        default=2048, ge=1024, description="smallest group a group-exchange server may give"
    )


class KexWeak(AlgorithmListCheck):
    category = "kex"
    directive = "KexAlgorithms"
    label = "key exchange"
    meta = CheckMeta(
        id="ssh.kex.weak",
        title="SSH server offers no weak key exchange",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "The key exchange protects every later byte of the session. SHA-1 exchange hashes "
            "and 1024-bit Diffie-Hellman groups are within reach of well-funded attackers "
            "(Logjam-style precomputation), and a server that still offers them lets old or "
            "downgraded clients use them."
        ),
        remediation=Remediation(
            text=(
                "List only modern key exchanges in KexAlgorithms (post-quantum hybrid and "
                "X25519 first, 3072-bit or larger groups as fallback), then reload sshd."
            ),
            snippet=KEX_SNIPPET,
            snippet_lang="sshd_config",
        ),
        references=(
            *CRYPTO_REFS,
            Reference(scheme="url", id="https://www.rfc-editor.org/rfc/rfc9142"),
        ),
        tags=("ssh", "crypto"),
    )

    Params = KexParams

    def offered(self, f: SshFacts) -> list[str]:
        return f.kex

    def evaluate(self, facts: FactsView, params: ProfileParams) -> list[Result]:
        results = super().evaluate(facts, params)
        f = ssh_facts(facts)
        minimum = getattr(params, "min_gex_bits", 2048)
        if f.kexinit_error or not f.gex_modulus_bits or f.gex_modulus_bits >= minimum:
            return results
        gex = failed(
            f"{where(f)} hands out {f.gex_modulus_bits}-bit groups in Diffie-Hellman group "
            f"exchange (asked for 1024, at least {minimum} required)",
            detail="gex-modulus",
            modulus_bits=f.gex_modulus_bits,
            minimum=minimum,
            remediation="remove the small groups from /etc/ssh/moduli: "
            "awk '$5 >= 3071' /etc/ssh/moduli > /etc/ssh/moduli.safe && "
            "mv /etc/ssh/moduli.safe /etc/ssh/moduli",
        )
        return [r for r in results if r.status is not Status.PASS] + [gex]


class CipherWeak(AlgorithmListCheck):
    category = "cipher"
    directive = "Ciphers"
    label = "cipher"
    meta = CheckMeta(
        id="ssh.cipher.weak",
        title="SSH server offers no weak cipher",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "CBC-mode ciphers in SSH allow recovery of plaintext from a session, 3DES and "
            "other 64-bit block ciphers fall to birthday attacks on long sessions (Sweet32), "
            "and RC4 (arcfour) has a biased keystream; any of them offered can be chosen by a "
            "client or forced by a downgrade."
        ),
        remediation=Remediation(
            text="Offer only AEAD ciphers (ChaCha20-Poly1305, AES-GCM) and AES-CTR.",
            snippet=CIPHER_SNIPPET,
            snippet_lang="sshd_config",
        ),
        references=CRYPTO_REFS,
        tags=("ssh", "crypto"),
    )

    def offered(self, f: SshFacts) -> list[str]:
        return f.ciphers


class MacWeak(AlgorithmListCheck):
    category = "mac"
    directive = "MACs"
    label = "MAC"
    meta = CheckMeta(
        id="ssh.mac.weak",
        title="SSH server offers no weak MAC",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "The MAC is what stops an attacker on the path from altering the session. MD5 "
            "and SHA-1 are deprecated, 64-bit tags (umac-64) are short enough to forge by "
            "brute force over long sessions, and encrypt-and-MAC modes compute the tag over "
            "the plaintext."
        ),
        remediation=Remediation(
            text="Offer only encrypt-then-MAC SHA-2 MACs (the AEAD ciphers need no MAC).",
            snippet=MAC_SNIPPET,
            snippet_lang="sshd_config",
        ),
        references=CRYPTO_REFS,
        tags=("ssh", "crypto"),
    )

    def offered(self, f: SshFacts) -> list[str]:
        return f.macs
