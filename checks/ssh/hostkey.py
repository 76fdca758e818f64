"""Host keys: weak key types and sizes, and RSA signatures with SHA-1.

A host key is what a client pins on first contact; a weak one lets an attacker who can break
it impersonate the server to every client that trusts it. Each distinct key (by fingerprint)
is one finding, so a rotated key is a new finding and the old one shows as fixed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from checks.ssh._common import CRYPTO_REFS, FACTS, ssh_facts, where
from scanner.collectors.ssh import SshHostKeyFacts
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

HOSTKEY_SNIPPET = """\
# remove the DSA key and replace a short RSA key (Debian/Ubuntu paths)
rm -f /etc/ssh/ssh_host_dsa_key /etc/ssh/ssh_host_dsa_key.pub
rm -f /etc/ssh/ssh_host_rsa_key /etc/ssh/ssh_host_rsa_key.pub
ssh-keygen -q -t rsa -b 4096 -N '' -f /etc/ssh/ssh_host_rsa_key
test -f /etc/ssh/ssh_host_ed25519_key || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
# /etc/ssh/sshd_config: only these host keys
#   HostKey /etc/ssh/ssh_host_ed25519_key
#   HostKey /etc/ssh/ssh_host_rsa_key
sshd -t && systemctl reload ssh
# tell users the new fingerprints:  ssh-keygen -lf /etc/ssh/ssh_host_rsa_key.pub
"""  # noqa: E501

RSA_SHA1_SNIPPET = """\
# /etc/ssh/sshd_config: RSA keys sign with SHA-2 only (ssh-rsa means SHA-1)
HostKeyAlgorithms ssh-ed25519,rsa-sha2-512,rsa-sha2-256
# check and apply:  sshd -t && systemctl reload ssh
"""

SHA1_SIGNATURES = ("ssh-rsa", "ssh-rsa-cert-v01@openssh.com", "x509v3-sign-rsa")


class HostKeyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_rsa_bits: int = Field(default=2048, ge=1024, description="RSA keys below this fail")
    recommended_rsa_bits: int = Field(
        default=3072, ge=1024, description="RSA keys below this are reported as a warning"
    )
    fail_below_recommended: bool = Field(
        default=False, description="fail (low severity) below recommended_rsa_bits too"
    )
    min_ecdsa_bits: int = Field(default=256, ge=160)


def _distinct(keys: list[SshHostKeyFacts]) -> dict[str, tuple[SshHostKeyFacts, list[str]]]:
    out: dict[str, tuple[SshHostKeyFacts, list[str]]] = {}
    for k in keys:
        out.setdefault(k.fingerprint, (k, []))[1].append(k.algorithm)
    return out


def _describe(k: SshHostKeyFacts) -> str:
    size = f"{k.curve} " if k.curve else (f"{k.bits}-bit " if k.bits else "")
    return f"{size}{k.family.upper() if k.family != 'unknown' else k.key_type} key {k.fingerprint}"


class HostKeyWeak(Check):
    meta = CheckMeta(
        id="ssh.hostkey.weak",
        title="SSH host keys are of a strong type and size",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "Clients trust the host key to know they reach the real server. DSA keys are "
            "limited to 1024 bits and SHA-1 and were removed from OpenSSH 10; RSA keys under "
            "2048 bits can be factored with public resources, and 3072 bits is the size "
            "recommended beyond 2030 (NIST SP 800-57, BSI TR-02102). A broken host key lets "
            "an attacker impersonate the server and capture passwords."
        ),
        remediation=Remediation(
            text=(
                "Remove DSA host keys, replace RSA host keys shorter than 3072 bits with 4096-bit "
                "ones, keep an Ed25519 key, and publish the new fingerprints to the users."
            ),
            snippet=HOSTKEY_SNIPPET,
            snippet_lang="shell",
        ),
        references=(*CRYPTO_REFS, Reference(scheme="cwe", id="CWE-326")),
        tags=("ssh", "crypto", "host-key"),
    )
    Params = HostKeyParams

    def evaluate(self, facts: FactsView, params: HostKeyParams) -> list[Result]:
        f = ssh_facts(facts)
        if f.kexinit_error:
            return [error(f"{where(f)}: the host keys could not be read: {f.kexinit_error}")]
        out: list[Result] = [
            Result(
                status=Status.ERROR,
                message=f"{where(f)}: the host key for {alg} could not be obtained: {why}",
                detail=f"unread {alg}",
                evidence={"algorithm": alg, "reason": why},
            )
            for alg, why in f.host_key_errors.items()
        ]
        warnings: list[dict[str, Any]] = []
        summary: list[dict[str, Any]] = []
        for fp, (k, algs) in _distinct(f.host_keys).items():
            ev: dict[str, Any] = {
                "fingerprint": fp,
                "type": k.key_type,
                "bits": k.bits,
                "curve": k.curve,
                "algorithms": algs,
            }
            summary.append(ev)
            detail = f"{k.family} {fp}"
            text = _describe(k)
            if k.family == "dsa":
                out.append(failed(f"{where(f)} has a DSA host key ({text})", detail, **ev))
            elif k.family == "rsa" and k.bits < params.min_rsa_bits:
                out.append(
                    failed(
                        f"{where(f)} has an RSA host key of {k.bits} bits, under "
                        f"{params.min_rsa_bits} ({text})",
                        detail,
                        **ev,
                    )
                )
            elif k.family == "rsa" and k.bits < params.recommended_rsa_bits:
                if params.fail_below_recommended:
                    out.append(
                        failed(
                            f"{where(f)} has an RSA host key of {k.bits} bits, under the "
                            f"recommended {params.recommended_rsa_bits} ({text})",
                            detail,
                            severity=Severity.LOW,
                            **ev,
                        )
                    )
                else:
                    warnings.append(ev)
            elif k.family == "ecdsa" and k.bits < params.min_ecdsa_bits:
                out.append(failed(f"{where(f)} has a weak ECDSA host key ({text})", detail, **ev))
        if any(r.status is Status.FAIL for r in out):
            return out
        if not f.host_keys:
            return out or [error(f"{where(f)} offered no host-key algorithm Assay could use")]
        note = (
            f"; {len(warnings)} RSA key(s) under the recommended {params.recommended_rsa_bits} bits"
            if warnings
            else ""
        )
        out.append(
            passed(
                f"{where(f)} host keys are strong: "
                + ", ".join(_describe(k) for k, _ in _distinct(f.host_keys).values())
                + note,
                keys=summary,
                warnings=warnings,
            )
        )
        return out


class HostKeyRsaSha1(Check):
    meta = CheckMeta(
        id="ssh.hostkey.rsa_sha1",
        title="SSH server does not sign with RSA/SHA-1 (ssh-rsa)",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "The ssh-rsa host-key algorithm signs the key exchange with SHA-1, for which "
            "chosen-prefix collisions cost well under a hundred thousand dollars (SHA-1 is a "
            "Shambles, 2020); OpenSSH disabled it by default in 8.8. rsa-sha2-256/512 use the "
            "same key with SHA-2."
        ),
        remediation=Remediation(
            text="Offer RSA host keys only with rsa-sha2-512 and rsa-sha2-256.",
            snippet=RSA_SHA1_SNIPPET,
            snippet_lang="sshd_config",
        ),
        references=(*CRYPTO_REFS, Reference(scheme="cwe", id="CWE-328")),
        tags=("ssh", "crypto", "host-key"),
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result:
        f = ssh_facts(facts)
        if f.kexinit_error:
            return error(f"{where(f)}: the algorithm lists could not be read: {f.kexinit_error}")
        sha1 = [a for a in f.host_key_algorithms if a in SHA1_SIGNATURES]
        signed = {k.algorithm: k.signature_algorithm for k in f.host_keys if k.algorithm in sha1}
        if sha1:
            seen = (
                f"; the server signed the exchange with {', '.join(sorted(set(signed.values())))}"
                if signed
                else ""
            )
            return failed(
                f"{where(f)} offers SHA-1 RSA signatures ({', '.join(sha1)}){seen}",
                offered=sha1,
                observed_signatures=signed,
            )
        rsa = [a for a in f.host_key_algorithms if a.startswith("rsa-sha2-")]
        return passed(
            f"{where(f)} offers no SHA-1 RSA signatures"
            + (f" (RSA with {', '.join(rsa)})" if rsa else ""),
            host_key_algorithms=f.host_key_algorithms,
        )
