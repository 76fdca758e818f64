"""Terrapin (CVE-2023-48795): prefix truncation of the SSH handshake.

An attacker on the path can delete messages at the start of the encrypted channel (for example
the extension negotiation that announces safer signature algorithms) without either side
noticing, when the channel uses ChaCha20-Poly1305 or an encrypt-then-MAC MAC and the
implementation does not reset sequence numbers at NEWKEYS. Servers that support strict key
exchange announce it with `kex-strict-s-v00@openssh.com` in their KEXINIT (OpenSSH 9.6+ and the
patched distribution builds).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from checks.ssh._common import FACTS, ssh_facts, where
from scanner.model import (
    Reference,
    Remediation,
    Result,
    Severity,
    TargetKind,
    error,
    failed,
    passed,
)
from scanner.plugins import Check, CheckMeta, FactsView

CHACHA = "chacha20-poly1305@openssh.com"

SNIPPET = """\
# Best: update OpenSSH (9.6+, or the distribution's patched package) so it offers strict kex.
# Until then, take the affected modes out of /etc/ssh/sshd_config:
Ciphers -chacha20-poly1305@openssh.com
MACs -*-etm@openssh.com
# check and apply:  sshd -t && systemctl reload ssh
"""


def _cbc(name: str) -> bool:
    return name.endswith("-cbc") or name == "rijndael-cbc@lysator.liu.se"


class Terrapin(Check):
    meta = CheckMeta(
        id="ssh.terrapin",
        title="SSH server is not open to the Terrapin prefix-truncation attack",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "Without strict key exchange, an attacker who can intercept the connection can "
            "remove messages from the start of a ChaCha20-Poly1305 or encrypt-then-MAC channel "
            "(CVE-2023-48795), for example to downgrade the signature algorithms a client "
            "uses for public-key login or to disable keystroke-timing protection."
        ),
        remediation=Remediation(
            text=(
                "Update the SSH server so it offers strict key exchange; until then remove "
                "chacha20-poly1305@openssh.com and the -etm MACs."
            ),
            snippet=SNIPPET,
            snippet_lang="sshd_config",
        ),
        references=(
            Reference(scheme="cve", id="CVE-2023-48795"),
            Reference(scheme="cwe", id="CWE-354"),
            Reference(scheme="iso27001:2022", id="A.8.8"),
            Reference(scheme="bsi", id="CON.1.A1"),
            Reference(scheme="url", id="https://terrapin-attack.com/"),
        ),
        tags=("ssh", "crypto", "cve"),
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> Result:
        f = ssh_facts(facts)
        if f.kexinit_error:
            return error(f"{where(f)}: the algorithm lists could not be read: {f.kexinit_error}")
        ciphers, macs = f.ciphers, f.macs
        chacha = CHACHA in ciphers
        etm = [m for m in macs if m.endswith("-etm@openssh.com")]
        cbc = [c for c in ciphers if _cbc(c)]
        evidence: dict[str, Any] = {
            "strict_kex": f.strict_kex,
            "chacha20_poly1305": chacha,
            "etm_macs": etm,
            "cbc_ciphers": cbc,
        }
        if f.strict_kex:
            return passed(f"{where(f)} offers strict key exchange (kex-strict-s-v00)", **evidence)
        if not chacha and not etm:
            return passed(
                f"{where(f)} offers neither ChaCha20-Poly1305 nor an encrypt-then-MAC MAC",
                **evidence,
            )
        modes = []
        if chacha:
            modes.append("ChaCha20-Poly1305")
        if etm and cbc:
            modes.append("CBC with encrypt-then-MAC")
        if modes:
            return failed(
                f"{where(f)} is vulnerable to Terrapin: no strict key exchange, and "
                f"{' and '.join(modes)} offered",
                **evidence,
            )
        # EtM with CTR only: the truncation works, exploiting it is not known to be practical
        return failed(
            f"{where(f)} has no strict key exchange and offers encrypt-then-MAC MACs "
            f"({', '.join(etm)}); with CTR ciphers the truncation is not known to be exploitable",
            severity=Severity.LOW,
            **evidence,
        )
