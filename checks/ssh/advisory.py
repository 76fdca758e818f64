"""Advisories about the offered algorithms: post-quantum readiness, NIST curves, unknown names.

These are opinions on which reasonable policies differ, so they never fail: each topic is one
passing result with `advisory: true` and info severity, which reports list without lowering a
score. The topics come from the `tags` of `algorithms.yaml`.
"""

from __future__ import annotations

from pydantic import BaseModel

from checks.ssh._common import FACTS, ssh_facts, where
from checks.ssh.algorithms import CATEGORIES, Category, table
from scanner.collectors.ssh import SshFacts
from scanner.model import Reference, Remediation, Result, Severity, TargetKind, error, passed
from scanner.plugins import Check, CheckMeta, FactsView

PQ_SNIPPET = """\
# /etc/ssh/sshd_config (OpenSSH 9.0+; 9.9+ also has mlkem768x25519-sha256, put it first)
KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org
"""


def _lists(f: SshFacts) -> dict[Category, list[str]]:
    return {
        "kex": f.kex,
        "hostkey": f.host_key_algorithms,
        "cipher": f.ciphers,
        "mac": f.macs,
        "compression": list(dict.fromkeys(f.compression_s2c + f.compression_c2s)),
    }


class AlgorithmAdvisory(Check):
    meta = CheckMeta(
        id="ssh.advisory.algorithms",
        title="SSH algorithm advisories (post-quantum, NIST curves, unknown names)",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.INFO,
        rationale=(
            "Sessions recorded today can be decrypted once a large quantum computer exists "
            "unless the key exchange is post-quantum hybrid; some policies prefer "
            "Curve25519 over the NIST curves; and an algorithm Assay does not know cannot be "
            "judged. None of this is a failure, but an IT officer should know it."
        ),
        remediation=Remediation(
            text="Offer a post-quantum hybrid key exchange first where the server supports one.",
            snippet=PQ_SNIPPET,
            snippet_lang="sshd_config",
        ),
        references=(
            Reference(scheme="iso27001:2022", id="A.8.24"),
            Reference(scheme="bsi", id="CON.1.A1"),
            Reference(scheme="url", id="https://www.openssh.com/pq.html"),
        ),
        tags=("ssh", "crypto", "advisory"),
    )

    def evaluate(self, facts: FactsView, params: BaseModel) -> list[Result]:
        f = ssh_facts(facts)
        if f.kexinit_error:
            return [error(f"{where(f)}: the algorithm lists could not be read: {f.kexinit_error}")]
        t = table()
        lists = _lists(f)
        tagged: dict[str, list[str]] = {"post-quantum": [], "nist-curve": []}
        unknown: list[str] = []
        for cat in CATEGORIES:
            for name in lists[cat]:
                entry = t.lookup(cat, name)
                if entry is None:
                    unknown.append(f"{cat}:{name}")
                    continue
                for tag in tagged:
                    if tag in entry.tags:
                        tagged[tag].append(name)
        out: list[Result] = []
        pq = tagged["post-quantum"]
        if pq:
            msg = f"{where(f)} offers post-quantum hybrid key exchange ({', '.join(pq)})"
        else:
            msg = (
                f"Advisory: {where(f)} offers no post-quantum hybrid key exchange; recorded "
                "sessions could be decrypted by a future quantum computer"
            )
        out.append(passed(msg, "post-quantum", advisory=not pq, offered=pq))
        nist = list(dict.fromkeys(tagged["nist-curve"]))
        out.append(
            passed(
                f"Advisory: {where(f)} offers NIST-curve algorithms ({', '.join(nist)})"
                if nist
                else f"{where(f)} offers no NIST-curve algorithms",
                "nist-curve",
                advisory=bool(nist),
                offered=nist,
            )
        )
        out.append(
            passed(
                f"Advisory: {where(f)} offers algorithms not in Assay's table "
                f"{t.version}: {', '.join(unknown)}"
                if unknown
                else f"{where(f)} offers only algorithms Assay's table {t.version} knows",
                "unknown-algorithms",
                advisory=bool(unknown),
                unknown=unknown,
                table_version=t.version,
            )
        )
        return out
