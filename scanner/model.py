"""Domain objects shared by every stage: targets, facts, results and outcomes.

Everything here is a pydantic model so it can be stored as JSON, re-read for a later
re-evaluation and published as a JSON Schema.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"
    NOT_ASSESSED = "not_assessed"


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


class TargetKind(StrEnum):
    HOST = "host"
    SERVICE = "service"
    WEB = "web"
    SSH = "ssh"
    STORE = "store"
    DOCUMENT = "document"


class ServiceInfo(BaseModel):
    """What discovery learnt about one open port."""

    model_config = ConfigDict(frozen=True)

    name: str = ""  # nmap service name ("ftp", "redis", "telnet"), or a guess
    product: str = ""
    version: str = ""
    extrainfo: str = ""
    cpe: tuple[str, ...] = ()
    tunnel: str = ""  # "ssl" when nmap saw TLS in front of the service
    method: str = ""  # "probed" (nmap -sV), "banner", "table" (port number guess)
    note: str = ""  # why identification is missing or partial


class Target(BaseModel):
    """One thing that checks are run against."""

    model_config = ConfigDict(frozen=True)

    kind: TargetKind
    unit: str
    address: str | None = None
    port: int | None = None
    protocol: str = "tcp"
    url: str | None = None
    path: str | None = None
    paths: tuple[str, ...] = ()  # a web target's configured pages besides `url` (inventory)
    names: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    service: ServiceInfo | None = None

    @property
    def key(self) -> str:
        """Stable identity of the target inside a scan (also used in fingerprints)."""
        if self.kind is TargetKind.SERVICE:
            return f"service:{self.address}:{self.port}/{self.protocol}"
        if self.kind in (TargetKind.HOST, TargetKind.SSH):
            return f"{self.kind.value}:{self.address}"
        if self.kind is TargetKind.WEB:
            return f"web:{self.url}"
        return f"{self.kind.value}:{self.path}"

    @property
    def host_key(self) -> str | None:
        return f"host:{self.address}" if self.address else None

    @property
    def label(self) -> str:
        if self.kind is TargetKind.SERVICE:
            name = self.service.name if self.service and self.service.name else "?"
            return f"{self.address}:{self.port}/{self.protocol} ({name})"
        return self.key.split(":", 1)[1]


class Facts(BaseModel):
    """Base class of every collector's facts. Subclasses add typed fields."""

    model_config = ConfigDict(extra="forbid")


class Reference(BaseModel):
    model_config = ConfigDict(frozen=True)

    scheme: str  # "cwe", "iso27001:2022", "cis-v8", "bsi", "tcvn-11930", "decree-13", "url"
    id: str

    def __str__(self) -> str:
        return f"{self.scheme} {self.id}"


class Remediation(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    snippet: str = ""
    snippet_lang: str = ""  # "sshd_config", "nginx", "shell", "redis.conf", ...


class Result(BaseModel):
    """What a check returns for one target (a check may return several)."""

    status: Status
    message: str
    evidence: dict[str, Any] = {}
    detail: str = ""  # distinguishes several results of one check on one target
    severity: Severity | None = None  # overrides the check's default when set


def passed(message: str, detail: str = "", **evidence: Any) -> Result:
    return Result(status=Status.PASS, message=message, evidence=evidence, detail=detail)


def failed(
    message: str, detail: str = "", severity: Severity | None = None, **evidence: Any
) -> Result:
    return Result(
        status=Status.FAIL, message=message, evidence=evidence, detail=detail, severity=severity
    )


def not_applicable(message: str, **evidence: Any) -> Result:
    return Result(status=Status.NOT_APPLICABLE, message=message, evidence=evidence)


def not_assessed(message: str, **evidence: Any) -> Result:
    return Result(status=Status.NOT_ASSESSED, message=message, evidence=evidence)


def error(message: str, **evidence: Any) -> Result:
    return Result(status=Status.ERROR, message=message, evidence=evidence)


def fingerprint(check_id: str, target_key: str, detail: str = "") -> str:
    """Stable identity of a finding across scans: never includes time or volatile text."""
    raw = "\x1f".join((check_id, target_key, detail)).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


class Outcome(BaseModel):
    """A stored, reportable result: one check on one target."""

    scan_id: str
    unit: str
    check_id: str
    title: str
    status: Status
    severity: Severity
    target: Target
    message: str
    evidence: dict[str, Any] = {}
    remediation: Remediation | None = None
    references: tuple[Reference, ...] = ()
    detail: str = ""
    fingerprint: str
