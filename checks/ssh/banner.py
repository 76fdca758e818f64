"""What an SSH server tells anyone before login: its version string and its pre-login banner.

The identification line must name the software (`SSH-2.0-OpenSSH_9.2p1`), but distributions
append their patch level (`Debian-2+deb12u3`), which tells an attacker exactly which fixes are
missing. The pre-login banner (sshd's `Banner`) is free text shown to every client; a legal
notice belongs there, host names, operating systems, versions, addresses and the names of the
administrators do not.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from checks.ssh._common import FACTS, ssh_facts, where
from scanner.model import (
    Reference,
    Remediation,
    Result,
    Severity,
    TargetKind,
    failed,
    not_assessed,
    passed,
)
from scanner.plugins import Check, CheckMeta, FactsView

_DISTRO = re.compile(
    r"(debian|ubuntu|raspbian|deb\d+u\d+|ubuntu\d|\bel\d|\.el\d|\.fc\d+|freebsd|netbsd|openbsd"
    r"|suse|alpine|red\s?hat|rhel|centos|rocky|alma|amzn|photon|gentoo|arch)",
    re.IGNORECASE,
)
_VERSION_IN_SOFTWARE = re.compile(r"\d+(\.\d+)+")

VERSION_SNIPPET = """\
# /etc/ssh/sshd_config (Debian and Ubuntu): drop the distribution suffix
DebianBanner no
# The upstream version (OpenSSH_9.2p1) is part of the protocol and stays; keep it current.
# check and apply:  sshd -t && systemctl reload ssh
"""

PRELOGIN_SNIPPET = """\
# a neutral legal notice, nothing about the system or its people
printf 'Authorised use only. Activity may be monitored and recorded.\\n' > /etc/issue.net
# /etc/ssh/sshd_config
Banner /etc/issue.net
# check and apply:  sshd -t && systemctl reload ssh
"""


class VersionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail_on_upstream_version: bool = Field(
        default=False,
        description="also fail when only the upstream version (OpenSSH_9.2p1) is shown",
    )


class BannerVersion(Check):
    meta = CheckMeta(
        id="ssh.banner.version",
        title="SSH version string does not disclose the distribution patch level",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.LOW,
        rationale=(
            "The distribution suffix of the SSH identification (for example "
            "'Debian-2+deb12u3') tells anyone who connects which security updates the host "
            "has and lacks, and which operating system it runs, so attacks can be chosen "
            "without probing."
        ),
        remediation=Remediation(
            text=(
                "Turn the distribution suffix off where the package supports it (Debian, "
                "Ubuntu: DebianBanner no) and keep the server updated."
            ),
            snippet=VERSION_SNIPPET,
            snippet_lang="sshd_config",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-497"),
            Reference(scheme="iso27001:2022", id="A.8.9"),
            Reference(scheme="bsi", id="SYS.1.3.A14"),
            Reference(scheme="cis-v8", id="4.1"),
        ),
        tags=("ssh", "disclosure"),
    )
    Params = VersionParams

    def evaluate(self, facts: FactsView, params: VersionParams) -> Result:
        f = ssh_facts(facts)
        ev: dict[str, Any] = {
            "identification": f.identification,
            "software": f.software,
            "comments": f.comments,
        }
        distro = _DISTRO.search(f.comments) or _DISTRO.search(f.software)
        if f.comments and (distro or any(c.isdigit() for c in f.comments)):
            return failed(
                f"{where(f)} discloses its distribution patch level: {f.identification}", **ev
            )
        if params.fail_on_upstream_version and _VERSION_IN_SOFTWARE.search(f.software):
            return failed(f"{where(f)} discloses its version: {f.identification}", **ev)
        return passed(
            f"{where(f)} shows no distribution patch level ({f.identification})",
            **ev,
        )


# -- the pre-login banner -----------------------------------------------------------------------
BannerTopic = Literal["hostname", "ip_address", "os", "version", "person", "email", "phone"]
TOPICS: tuple[BannerTopic, ...] = (
    "hostname",
    "ip_address",
    "os",
    "version",
    "person",
    "email",
    "phone",
)

_FQDN = re.compile(
    r"\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}\b(?!\.\w)", re.IGNORECASE
)
_HOST_LABEL = re.compile(
    r"(?i:\b(?:host(?:name)?|server|node|welcome to|máy chủ)\s*[:=]?\s+)([A-Za-z][\w-]*\d[\w-]*)"
)
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f:]{2,39}(?![\w:])")
_OS = re.compile(
    r"\b(debian|ubuntu|centos|red hat|rhel|rocky linux|almalinux|fedora|opensuse|suse|alpine"
    r"|arch linux|freebsd|openbsd|netbsd|windows(?: server)?|linux|kernel|solaris|aix|hp-ux"
    r"|cisco ios|junos|routeros|esxi|proxmox|synology|qnap)\b",
    re.IGNORECASE,
)
_VERSION = re.compile(r"(?<![\w.])v?\d+\.\d+(?:\.\d+)*(?:[-+~][\w.+~-]*)?(?![\w.])")
_DATE = re.compile(r"^\d{1,2}\.\d{1,2}\.\d{2,4}$")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(
    r"(?i:\b(?:ext|tel|phone|mobile|hotline|đt|sđt|điện thoại)\b\.?\s*[:.]?\s*)"
    r"(\+?\d[\d .-]{2,18}\d)"
    r"|(?<![\w.])\+\d{2,3}[ .-]?\d{2,4}[ .-]?\d{3,4}[ .-]?\d{3,4}(?![\w.])"
)
_ROLE = re.compile(
    r"(?i:\b(?:contact|admin(?:istrator)?|sysadmin|call|owner|operator|responsible|mr|mrs|ms|dr"
    r"|liên hệ|quản trị(?: viên)?|người quản trị|phụ trách|ông|bà|anh|chị)\b\.?\s*[:,-]?\s*)"
    r"((?:[^\W\d_][\w'-]*\s+){0,4}[^\W\d_][\w'-]*)"
)
_SURNAMES = (
    "nguyen|nguyễn|tran|trần|le|lê|pham|phạm|hoang|hoàng|huynh|huỳnh|phan|vu|vũ|vo|võ|dang|đặng"
    "|bui|bùi|do|đỗ|ho|hồ|ngo|ngô|duong|dương|ly|lý|truong|trương|dinh|đinh"
)
_SURNAME = re.compile(r"\b(?i:" + _SURNAMES + r")\s+(?:[^\W\d_][\w'-]*\s+){0,2}[^\W\d_][\w'-]*")


def _capitalised_run(text: str, minimum: int) -> str:
    words: list[str] = []
    for word in text.split():
        if not word[:1].isupper():
            break
        words.append(word.strip(",.;:"))
    return " ".join(words) if len(words) >= minimum else ""


def scan_banner(text: str) -> dict[BannerTopic, list[str]]:
    """What the banner discloses, by topic (at most five examples each). Pure and bounded."""
    text = text[:8192]
    found: dict[BannerTopic, list[str]] = {t: [] for t in TOPICS}

    def add(topic: BannerTopic, value: str) -> None:
        value = value.strip()
        if value and value not in found[topic] and len(found[topic]) < 5:
            found[topic].append(value)

    ips = set()
    for m in _IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(m.group(0))
        except ValueError:
            continue
        ips.add(m.group(0))
        add("ip_address", m.group(0))
    for m in _IPV6.finditer(text):
        tok = m.group(0)
        if "::" in tok or tok.count(":") == 7:
            try:
                ipaddress.IPv6Address(tok)
            except ValueError:
                continue
            add("ip_address", tok)
    emails = [m.group(0) for m in _EMAIL.finditer(text)]
    for e in emails:
        add("email", e)
    email_domains = {e.split("@", 1)[1].lower() for e in emails}
    for m in _FQDN.finditer(text):
        name = m.group(0)
        if name in ips or name.lower() in email_domains or not re.search("[a-zA-Z]", name):
            continue
        add("hostname", name)
    for m in _HOST_LABEL.finditer(text):
        if not any(h.startswith(m.group(1) + ".") for h in found["hostname"]):
            add("hostname", m.group(1))
    for m in _OS.finditer(text):
        add("os", m.group(0))
    for m in _VERSION.finditer(text):
        v = m.group(0)
        if v in ips or _DATE.match(v) or any(v in h for h in found["hostname"]):
            continue
        add("version", v)
    for m in _PHONE.finditer(text):
        add("phone", (m.group(1) or m.group(0)))
    for m in _ROLE.finditer(text):
        name = _capitalised_run(m.group(1), 2)
        if name:
            add("person", name)
    for m in _SURNAME.finditer(text):
        name = _capitalised_run(m.group(0), 3)
        if name and not any(name in p or p in name for p in found["person"]):
            add("person", name)
    return found


_TOPIC_TEXT: dict[BannerTopic, str] = {
    "hostname": "host names",
    "ip_address": "IP addresses",
    "os": "the operating system",
    "version": "software versions",
    "person": "names of people",
    "email": "e-mail addresses",
    "phone": "phone numbers or extensions",
}


class PreloginParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topics: list[BannerTopic] = Field(
        default_factory=lambda: list(TOPICS), description="what the banner must not disclose"
    )


class BannerPrelogin(Check):
    meta = CheckMeta(
        id="ssh.banner.prelogin",
        title="SSH pre-login banner discloses nothing about the system or its people",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.LOW,
        rationale=(
            "The pre-login banner is shown to every client before authentication. Host "
            "names, operating system and versions help an attacker choose exploits, internal "
            "addresses map the network, and the names and extensions of administrators are "
            "the first targets of phishing and pretexting calls."
        ),
        remediation=Remediation(
            text="Keep the banner to a neutral legal notice.",
            snippet=PRELOGIN_SNIPPET,
            snippet_lang="shell",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-200"),
            Reference(scheme="iso27001:2022", id="A.8.9"),
            Reference(scheme="bsi", id="SYS.1.3.A14"),
            Reference(scheme="cis-v8", id="4.1"),
        ),
        tags=("ssh", "disclosure"),
    )
    Params = PreloginParams

    def evaluate(self, facts: FactsView, params: PreloginParams) -> list[Result]:
        f = ssh_facts(facts)
        if not f.prelogin_banner.strip():
            if f.auth_methods is None:
                return [
                    not_assessed(f"{where(f)}: the pre-login banner was not read: {f.auth_error}")
                ]
            return [passed(f"{where(f)} shows no pre-login banner", banner="")]
        found = scan_banner(f.prelogin_banner)
        excerpt = f.prelogin_banner[:300]
        hits = [t for t in params.topics if found[t]]
        if hits:
            return [
                failed(
                    f"{where(f)} pre-login banner discloses {_TOPIC_TEXT[t]}: "
                    f"{', '.join(found[t])}",
                    t,
                    topic=t,
                    found=found[t],
                    banner=excerpt,
                )
                for t in hits
            ]
        return [passed(f"{where(f)} pre-login banner discloses nothing listed", banner=excerpt)]
