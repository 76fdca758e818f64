"""Mandatory access control, core dumps and login banners."""

from __future__ import annotations

import re
from typing import Any

from checks.host._base import HostCheck, bsi, cis, cisv8, iso, make_check, meta, refs
from scanner.gather.facts import HostConfigFacts
from scanner.model import Result, Severity, failed, not_applicable, passed

# -- MAC, core dumps, banners -----------------------------------------------------------------


class MacEnabled(HostCheck):
    meta = meta(
        id="host.mac.enabled",
        title="AppArmor or SELinux confines services",
        severity=Severity.MEDIUM,
        rationale="Mandatory access control limits what a compromised service can touch even "
        "when it runs as root; BSI asks for it on Linux servers.",
        fix="Enable AppArmor (Debian/Ubuntu) or SELinux in enforcing mode (RHEL).",
        snippet="apt-get install apparmor apparmor-utils && aa-enforce /etc/apparmor.d/*\n"
        "# RHEL: setenforce 1 && sed -i 's/^SELINUX=.*/SELINUX=enforcing/' /etc/selinux/config",
        verify="`aa-status` shows profiles in enforce mode (RHEL: `getenforce` prints Enforcing).",
        references=refs(
            cis("1.3.1.1", "1.3.1.2", "1.3.1.3"), bsi("SYS.1.3.A10"), iso("A.8.9"), cisv8("4.1")
        ),
        tags=("mac",),
    )
    sections = ("mac",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        if h.mac.get("selinux", "").lower() == "enforcing":
            return passed("SELinux is enforcing")
        if h.mac.get("apparmor_enabled") == "Y":
            try:
                profiles = int(h.mac.get("apparmor_profiles", "0"))
            except ValueError:
                profiles = 0
            if profiles > 0:
                return passed(f"AppArmor is enabled with {profiles} profiles", profiles=profiles)
            return failed("AppArmor is enabled but no profile is loaded")
        return failed("neither AppArmor nor SELinux (enforcing) is active", mac=h.mac)


class CoreDumps(HostCheck):
    meta = meta(
        id="host.core.restricted",
        title="Core dumps are restricted",
        severity=Severity.LOW,
        rationale="Core dumps contain process memory: keys, passwords and personal data, "
        "written to disk where they may be read later.",
        fix="Set a hard core limit of 0 (and Storage=none for systemd-coredump).",
        snippet="echo '* hard core 0' > /etc/security/limits.d/60-assay-core.conf\n"
        "mkdir -p /etc/systemd/coredump.conf.d\n"
        "printf '[Coredump]\\nStorage=none\\nProcessSizeMax=0\\n' > "
        "/etc/systemd/coredump.conf.d/60-assay.conf",
        verify="`grep -r 'hard core' /etc/security/limits.conf /etc/security/limits.d` shows 0.",
        references=refs(cis("1.5.1"), bsi("SYS.1.3.A4"), iso("A.8.9")),
        tags=("kernel",),
    )
    sections = ("pam", "coredump")

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        limit = any(
            re.match(r"\*\s+hard\s+core\s+0\b", ln)
            for k, lines in h.pam_map.items()
            if k.startswith("security/limits")
            for ln in lines
        )
        if (
            "systemd-coredump" in h.packages
            and h.coredump.get("Storage", "external").lower() != "none"
        ):
            return failed("systemd-coredump stores core dumps (Storage is not none)")
        if limit:
            return passed("a hard core limit of 0 applies to all users")
        return failed("no '* hard core 0' limit is set")


def _issue_blocks(h: HostConfigFacts) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    cur = ""
    for ln in h.issue.splitlines():
        if ln.startswith("== "):
            cur = ln[3:].strip()
            out[cur] = []
        elif cur:
            out[cur].append(ln)
    return {k: "\n".join(v) for k, v in out.items()}


def _banner_judge(path: str) -> Any:
    def judge(h: HostConfigFacts, p: Any) -> Result:
        blocks = _issue_blocks(h)
        if path not in blocks:
            return not_applicable(f"{path} does not exist")
        text = blocks[path]
        os_words = [
            w
            for w in ("debian", "ubuntu", "red hat", "centos", "rocky", "kernel")
            if w in text.lower()
        ]
        escapes = re.findall(r"\\[mrsv]", text)
        if os_words or escapes:
            return failed(
                f"{path} discloses the system: {', '.join(os_words + escapes)}",
                found=os_words + escapes,
            )
        return passed(f"{path} discloses no OS details")

    return judge


for _name, _path in (
    ("issue", "/etc/issue"),
    ("issue_net", "/etc/issue.net"),
    ("motd", "/etc/motd"),
):
    make_check(
        meta(
            id=f"host.banner.{_name}",
            title=f"{_path} does not reveal the operating system",
            severity=Severity.INFO,
            rationale="OS names, versions and kernel releases in login banners tell an attacker "
            "which exploits to try before they have logged in; BSI asks to limit such disclosure.",
            fix=f"Replace {_path} with a neutral legal notice.",
            snippet=f"echo 'Authorised use only. Activity is monitored.' > {_path}",
            verify=f"`grep -Ei 'debian|ubuntu|kernel|\\\\[mrsv]' {_path}` prints nothing.",
            references=refs(cis("1.7.1", "1.7.2", "1.7.3"), bsi("SYS.1.3.A14"), iso("A.8.9")),
            tags=("banner",),
        ),
        ("issue",),
        _banner_judge(_path),
        namespace=globals(),
    )
