"""Patching: pending security updates, automatic updates, pending reboots and whether the
release is still supported."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from checks.host._base import HostCheck, bsi, cis, cisv8, iso, meta, refs
from scanner.gather.facts import HostConfigFacts
from scanner.model import Result, Severity, error, failed, not_applicable, passed

# -- patching ---------------------------------------------------------------------------------

_PATCH = refs(bsi("OPS.1.1.3.A15", "OPS.1.1.3.A16"), iso("A.8.8", "A.8.19"), cisv8("7.3"))


class SecurityUpdatesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_pending: int = Field(default=0, ge=0, description="Pending security updates tolerated")


class SecurityUpdates(HostCheck):
    meta = meta(
        id="host.patch.security_updates",
        title="No security updates are pending",
        severity=Severity.HIGH,
        rationale="Published security updates tell attackers exactly what is vulnerable; "
        "unpatched hosts are the most common way into a network.",
        fix="Install the pending security updates (and reboot if the kernel or libc changed).",
        snippet="apt-get update && apt-get upgrade   # RHEL: dnf upgrade --security",
        verify="`apt list --upgradable 2>/dev/null | grep -- -security` (RHEL: "
        "`dnf updateinfo list --security`) prints nothing.",
        references=refs(cis("1.2.2.1"), _PATCH),
        tags=("patching",),
    )
    Params = SecurityUpdatesParams
    sections = ("updates",)

    def judge(self, h: HostConfigFacts, p: SecurityUpdatesParams) -> Result:
        sec = [u for u in h.updates if u.security]
        shown = [f"{u.name} {u.current} -> {u.candidate}".strip() for u in sec][:100]
        if len(sec) > p.max_pending:
            return failed(
                f"{len(sec)} security updates are pending (package lists as last refreshed)",
                pending=shown,
                method=h.update_method,
            )
        return passed(f"{len(sec)} security updates pending", method=h.update_method)


class UnattendedUpgrades(HostCheck):
    meta = meta(
        id="host.patch.unattended_upgrades",
        title="Security updates are installed automatically",
        severity=Severity.MEDIUM,
        rationale="Automatic security updates close known holes within a day without waiting "
        "for a maintenance window that may never come.",
        fix="Install and enable unattended-upgrades (RHEL: dnf-automatic with apply_updates).",
        snippet="apt-get install unattended-upgrades\n"
        "dpkg-reconfigure -plow unattended-upgrades   # writes "
        'APT::Periodic::Unattended-Upgrade "1"\n'
        "# RHEL: dnf install dnf-automatic && systemctl enable --now dnf-automatic.timer",
        verify='`apt-config dump | grep Unattended-Upgrade` shows "1".',
        references=refs(bsi("OPS.1.1.3.A3"), iso("A.8.8"), cisv8("7.3", "7.4")),
        tags=("patching",),
    )
    sections = ("packages",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        if "dnf-automatic" in h.packages:
            if h.dnf_automatic.get("apply_updates", "no").lower() in ("yes", "true", "1"):
                return passed("dnf-automatic applies updates")
            return failed("dnf-automatic is installed but apply_updates is not yes")
        if "apt" not in h.packages and "dpkg" not in h.packages:
            return not_applicable("neither apt nor dnf is the package manager of this host")
        if "unattended-upgrades" not in h.packages:
            return failed("unattended-upgrades is not installed")
        if h.apt_config.get("APT::Periodic::Unattended-Upgrade", "0") in ("0", ""):
            return failed(
                "unattended-upgrades is installed but APT::Periodic::Unattended-Upgrade is 0"
            )
        return passed(
            "unattended-upgrades runs",
            setting=h.apt_config.get("APT::Periodic::Unattended-Upgrade"),
        )


class RebootRequired(HostCheck):
    meta = meta(
        id="host.patch.reboot_required",
        title="No installed update waits for a reboot",
        severity=Severity.LOW,
        rationale="A kernel or library update protects only after the reboot; until then the "
        "old vulnerable code keeps running.",
        fix="Reboot the host in the next maintenance window.",
        snippet="systemctl reboot",
        verify="`test -e /var/run/reboot-required || echo ok` prints ok.",
        references=_PATCH,
        tags=("patching",),
    )
    sections = ("reboot",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        if h.reboot_required:
            return failed("/var/run/reboot-required exists: updates wait for a reboot")
        return passed("no reboot is pending")


# End of security support (LTS where it exists), as published by each distribution.
EOL: dict[tuple[str, str], date] = {
    ("debian", "9"): date(2022, 6, 30),
    ("debian", "10"): date(2024, 6, 30),
    ("debian", "11"): date(2026, 8, 31),
    ("debian", "12"): date(2028, 6, 30),
    ("debian", "13"): date(2030, 6, 30),
    ("ubuntu", "16.04"): date(2021, 4, 30),
    ("ubuntu", "18.04"): date(2023, 5, 31),
    ("ubuntu", "20.04"): date(2025, 5, 31),
    ("ubuntu", "22.04"): date(2027, 6, 1),
    ("ubuntu", "24.04"): date(2029, 5, 31),
    ("rhel", "7"): date(2024, 6, 30),
    ("rhel", "8"): date(2029, 5, 31),
    ("rhel", "9"): date(2032, 5, 31),
    ("rocky", "8"): date(2029, 5, 31),
    ("rocky", "9"): date(2032, 5, 31),
    ("almalinux", "8"): date(2029, 3, 1),
    ("almalinux", "9"): date(2032, 5, 31),
    ("centos", "7"): date(2024, 6, 30),
    ("centos", "8"): date(2021, 12, 31),
}


class OsSupported(HostCheck):
    meta = meta(
        id="host.patch.os_supported",
        title="The operating system release still receives security updates",
        severity=Severity.HIGH,
        rationale="A release past its end of support gets no more security fixes; every new "
        "vulnerability stays open for good.",
        fix="Upgrade to a supported release of the distribution.",
        snippet="# Debian: follow the release notes, e.g. bookworm -> trixie\n"
        "sed -i 's/bookworm/trixie/g' /etc/apt/sources.list && apt-get update && apt-get "
        "full-upgrade",
        verify="`cat /etc/os-release` shows a release whose support has not ended.",
        references=refs(bsi("OPS.1.1.3.A16"), iso("A.8.8"), cisv8("2.2")),
        tags=("patching",),
    )
    sections = ("os_release", "meta")

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        os_id = h.os.get("ID", "").lower()
        version = h.os.get("VERSION_ID", "")
        major = version if os_id == "ubuntu" else version.split(".")[0]
        end = EOL.get((os_id, major))
        name = h.os.get("PRETTY_NAME", f"{os_id} {version}")
        if end is None:
            return not_applicable(
                f"{name}: no end-of-support date is known to Assay for this release"
            )
        try:
            now = datetime.fromtimestamp(int(h.meta.get("time", "")), UTC).date()
        except ValueError:
            return error("the host's clock was not gathered; the support status cannot be judged")
        if now > end:
            return failed(
                f"{name}: security support ended on {end.isoformat()}", ended=end.isoformat()
            )
        return passed(f"{name}: supported until {end.isoformat()}", until=end.isoformat())
