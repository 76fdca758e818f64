"""Checks about the gathering itself: was every source gathered, and was the host key verified."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from checks.host._base import HostCheck, bsi, cisv8, iso, meta, refs
from scanner.gather.facts import HostConfigFacts, SectionState
from scanner.model import Result, Severity, error, not_applicable, passed

# -- the gathering ----------------------------------------------------------------------------


class GatherComplete(HostCheck):
    meta = meta(
        id="host.gather.complete",
        title="All host facts were gathered",
        severity=Severity.INFO,
        rationale="A partial gathering leaves checks unassessed; saying so keeps a missing "
        "section from being read as a clean bill of health.",
        fix="Fix the cause given (connection, time budget, rights) and scan the host again.",
        snippet="assay scan unit.yaml   # after raising ssh.budget or fixing access",
        verify="this check passes on the next scan.",
        references=refs(iso("A.8.8"), cisv8("7.5")),
        tags=("gathering",),
    )

    def judge(self, h: HostConfigFacts, p: Any) -> Iterable[Result]:
        if not h.complete:
            missing = [
                n
                for n, s in h.sections.items()
                if s.state in (SectionState.TRUNCATED, SectionState.NOT_GATHERED)
            ]
            return [
                error(
                    "gathering was incomplete: " + "; ".join(h.errors[:3]),
                    missing=missing,
                    errors=h.errors[:10],
                    noise=h.noise[:200],
                )
            ]
        return [
            passed(
                f"{len(h.sections)} fact sources gathered in {h.seconds:g}s via {h.via}",
                notes=h.errors[:10],
            )
        ]


class HostKey(HostCheck):
    meta = meta(
        id="host.ssh.host_key",
        title="The host's SSH key was verified",
        severity=Severity.INFO,
        rationale="Assay only trusts facts from a host whose key it knows; a key pinned on "
        "first use is reported so an administrator can confirm it out of band.",
        fix="Confirm the fingerprint out of band (console, provisioning records).",
        snippet="ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub   # on the host's console",
        verify="the fingerprint in the evidence matches the console output.",
        references=refs(iso("A.8.20", "A.8.21"), bsi("SYS.1.3.A8")),
        tags=("gathering",),
    )

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        if h.via == "local":
            return not_applicable("the local machine is gathered without SSH")
        if h.host_key is None:
            return error("no host key was recorded")
        k = h.host_key
        if k.source == "pinned_now":
            return passed(
                f"host key {k.type} {k.sha256} was unknown and is now pinned (trust on first use); "
                "confirm it out of band",
                fingerprint=k.sha256,
                store=k.store,
            )
        return passed(
            f"host key {k.type} {k.sha256} matches the store", fingerprint=k.sha256, store=k.store
        )
