"""What every host check shares: reading the facts, the "does this apply" gate, references.

A host check is a pure function of `HostConfigFacts` (collector `host.config`). Before it
judges, it asks `gate()` whether the fact sources it reads were gathered: a component that is
not installed gives `not_applicable` with that reason, a source that could not be read gives
`error` with the reason, so a skipped rule is never silent and never counted as a pass.

Many checks are rows of a table (a sysctl key and its value, a file and its mode, a package
that should be absent); `make_check` turns one row into a registered check class with its own
metadata, so 100+ checks stay small.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from scanner.gather.facts import HostConfigFacts, SectionState
from scanner.model import (
    Reference,
    Remediation,
    Result,
    Severity,
    TargetKind,
    error,
    not_applicable,
)
from scanner.plugins import Check, CheckMeta, FactsView, NoParams

FACTS = "host.config"

# Reference schemes used by the host checks: the CIS Debian Linux 12 Benchmark (item numbers
# of v1.x, which Ubuntu 24.04's benchmark shares for these items), BSI IT-Grundschutz
# requirements, ISO/IEC 27001:2022 Annex A controls and CIS Controls v8 safeguards.
CIS_DEBIAN = "cis-debian12"


def cis(*ids: str) -> tuple[Reference, ...]:
    return tuple(Reference(scheme=CIS_DEBIAN, id=i) for i in ids)


def bsi(*ids: str) -> tuple[Reference, ...]:
    return tuple(Reference(scheme="bsi", id=i) for i in ids)


def iso(*ids: str) -> tuple[Reference, ...]:
    return tuple(Reference(scheme="iso27001:2022", id=i) for i in ids)


def cisv8(*ids: str) -> tuple[Reference, ...]:
    return tuple(Reference(scheme="cis-v8", id=i) for i in ids)


def refs(*groups: Iterable[Reference]) -> tuple[Reference, ...]:
    return tuple(r for g in groups for r in g)


def host_facts(facts: FactsView) -> HostConfigFacts:
    return facts.get(FACTS, HostConfigFacts)


# What a missing source means, in words a reader understands.
WHAT = {
    "sshd": "the OpenSSH server (sshd)",
    "audit": "auditd (auditctl)",
    "nginx": "nginx",
    "fw_nft": "nftables (nft)",
    "fw_iptables": "iptables",
    "fw_ufw": "ufw",
    "fw_firewalld": "firewalld",
    "units": "systemd",
    "packages": "a package manager (dpkg or rpm)",
    "updates": "a package manager (apt, dnf or yum)",
    "apt_config": "apt",
    "lsblk": "lsblk",
    "find": "find",
    "listening": "ss or netstat",
}


def gate(h: HostConfigFacts, *sections: str) -> Result | None:
    """None when every section was gathered, else the Result that says why not."""
    for name in sections:
        info = h.section(name)
        if info.state is SectionState.OK:
            continue
        what = WHAT.get(name, name)
        if info.state is SectionState.MISSING:
            return not_applicable(f"{what} is not installed on this host", section=name)
        if info.state is SectionState.DENIED:
            return error(
                f"{what}: not readable with the login's rights "
                f"({info.note or 'permission denied'}); log in as root or set sudo: true",
                section=name,
            )
        if info.state is SectionState.FAILED:
            return error(
                f"{what}: the query failed: {info.note or f'exit status {info.rc}'}", section=name
            )
        reason = h.errors[0] if h.errors else "the gathering ended early"
        return error(f"{what}: not gathered ({info.state.value}): {reason}", section=name)
    return None


class HostCheck(Check):
    """Base of every host check: gate on `sections`, then `judge`."""

    sections: ClassVar[tuple[str, ...]] = ()

    def evaluate(self, facts: FactsView, params: Any) -> Result | Iterable[Result]:
        h = host_facts(facts)
        blocked = gate(h, *self.sections)
        if blocked is not None:
            return blocked
        return self.judge(h, params)

    def judge(self, h: HostConfigFacts, params: Any) -> Result | Iterable[Result]:
        raise NotImplementedError


def meta(
    id: str,
    title: str,
    severity: Severity,
    rationale: str,
    fix: str,
    snippet: str,
    verify: str,
    references: Sequence[Reference],
    lang: str = "shell",
    tags: Sequence[str] = (),
) -> CheckMeta:
    """CheckMeta for a host check; `verify` (the command that shows the fix worked) is part
    of the remediation text so every report shows it beside the snippet."""
    return CheckMeta(
        id=id,
        title=title,
        target_kind=TargetKind.SSH,
        facts=(FACTS,),
        severity=severity,
        rationale=rationale,
        remediation=Remediation(text=f"{fix} Verify: {verify}", snippet=snippet, snippet_lang=lang),
        references=tuple(references),
        tags=("host", *tags),
    )


def class_name(check_id: str) -> str:
    """`host.sysctl.ip_forward` -> `SysctlIpForward` (the entry point's attribute)."""
    parts = check_id.split(".")[1:]
    return "".join(p.capitalize() for w in parts for p in re.split(r"[_-]", w))


def make_check(
    check_meta: CheckMeta,
    sections: tuple[str, ...],
    judge: Callable[[HostConfigFacts, Any], Result | Iterable[Result]],
    params: type[BaseModel] = NoParams,
    namespace: dict[str, Any] | None = None,
) -> type[HostCheck]:
    """A registered-check class for one table row; put into `namespace` under its class name."""

    def _judge(self: HostCheck, h: HostConfigFacts, p: Any) -> Result | Iterable[Result]:
        return judge(h, p)

    name = class_name(check_meta.id)
    cls = type(
        name,
        (HostCheck,),
        {
            "meta": check_meta,
            "sections": sections,
            "Params": params,
            "judge": _judge,
            "__doc__": check_meta.title,
            "__module__": namespace.get("__name__", __name__) if namespace else __name__,
        },
    )
    if namespace is not None:
        if name in namespace:
            raise ValueError(f"two host checks map to the class name {name}")
        namespace[name] = cls
    return cls
