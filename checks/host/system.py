"""Patching, firewall, listening services, logging and audit, time, mounts, disk encryption,
mandatory access control, core dumps, login banners and the gathering itself.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from checks.host._base import HostCheck, bsi, cis, cisv8, gate, iso, make_check, meta, refs
from scanner.gather.facts import HostConfigFacts, SectionState
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


# -- firewall ---------------------------------------------------------------------------------

_FW = refs(
    cis("4.1.1", "4.2.1"), bsi("SYS.1.1.A19", "NET.1.1.A8"), iso("A.8.20"), cisv8("4.4", "4.5")
)
FW_SECTIONS = ("fw_nft", "fw_iptables", "fw_ufw", "fw_firewalld")


@dataclass(frozen=True)
class Firewall:
    tool: str
    active: bool
    default_deny: bool
    detail: str


def firewalls(h: HostConfigFacts) -> list[Firewall]:
    out = []
    if h.section("fw_ufw").state is SectionState.OK and h.ufw:
        active = any(ln.lower().startswith("status: active") for ln in h.ufw)
        deny = any(re.match(r"default: (deny|reject) \(incoming\)", ln.lower()) for ln in h.ufw)
        out.append(Firewall("ufw", active, active and deny, (h.ufw[0] if h.ufw else "")))
    if h.section("fw_firewalld").state is SectionState.OK and h.firewalld:
        active = h.firewalld[0].strip() == "running"
        target = next((ln for ln in h.firewalld if ln.startswith("target:")), "target: default")
        deny = active and target.split(":", 1)[1].strip() in (
            "default",
            "DROP",
            "REJECT",
            "%%REJECT%%",
        )
        out.append(Firewall("firewalld", active, deny, target))
    if h.section("fw_nft").state is SectionState.OK and h.nft:
        text = "\n".join(h.nft)
        hooks = re.findall(r"type filter hook input priority [^;]+;\s*policy (\w+);", text)
        rules = sum(
            1 for ln in h.nft if not ln.startswith(("table", "chain", "type", "}", "policy"))
        )
        active = bool(hooks) and (rules > 0 or any(p in ("drop", "reject") for p in hooks))
        out.append(
            Firewall(
                "nftables", active, any(p == "drop" for p in hooks), f"input policies: {hooks}"
            )
        )
    if h.section("fw_iptables").state is SectionState.OK and h.iptables:
        v4 = [ln for ln in h.iptables if not ln.startswith("v6 ")]
        policy = next((ln.split()[2] for ln in v4 if ln.startswith("-P INPUT")), "ACCEPT")
        appended = [ln for ln in v4 if ln.startswith("-A")]
        out.append(
            Firewall(
                "iptables",
                bool(appended) or policy != "ACCEPT",
                policy in ("DROP", "REJECT"),
                f"INPUT policy {policy}",
            )
        )
    return out


def _fw_gate(h: HostConfigFacts) -> Result | None:
    states = {s: h.section(s).state for s in FW_SECTIONS}
    denied = [s for s, st in states.items() if st in (SectionState.DENIED, SectionState.FAILED)]
    if denied and not any(f.active for f in firewalls(h)):
        return gate(h, denied[0])
    return None


class FirewallActive(HostCheck):
    meta = meta(
        id="host.firewall.active",
        title="A host firewall is active",
        severity=Severity.HIGH,
        rationale="A host firewall limits every service to the clients that need it, even when "
        "a service is started by mistake or the network filter fails.",
        fix="Enable a firewall (nftables, ufw or firewalld) that allows only the needed services.",
        snippet="apt-get install ufw\nufw allow 22/tcp\nufw default deny incoming\nufw enable\n"
        "# RHEL: systemctl enable --now firewalld",
        verify="`ufw status` shows active (or `nft list ruleset` shows an input chain).",
        references=_FW,
        tags=("firewall",),
    )
    sections = ()

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        blocked = _fw_gate(h)
        if blocked:
            return blocked
        found = firewalls(h)
        active = [f.tool for f in found if f.active]
        if active:
            return passed(f"active firewall: {', '.join(active)}", tools=active)
        missing = [s for s in FW_SECTIONS if h.section(s).state is SectionState.MISSING]
        if len(missing) == len(FW_SECTIONS):
            return failed("no firewall tool (nft, iptables, ufw, firewalld) is installed")
        return failed(
            "a firewall tool is installed but no filter is active", tools=[f.tool for f in found]
        )


class FirewallDefaultDeny(HostCheck):
    meta = meta(
        id="host.firewall.default_deny",
        title="The host firewall drops unsolicited inbound traffic by default",
        severity=Severity.MEDIUM,
        rationale="With a default-deny policy only explicitly allowed services are reachable; "
        "an allow-by-default firewall lets every new listener through.",
        fix="Set the default inbound policy to deny, after allowing the needed services.",
        snippet="ufw default deny incoming\n# nftables: chain input { type filter hook input "
        "priority 0; policy drop; }",
        verify="`ufw status verbose` shows 'Default: deny (incoming)' (or the nft input chain "
        "has policy drop).",
        references=refs(cis("4.2.7", "4.3.x"), _FW),
        tags=("firewall",),
    )

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        blocked = _fw_gate(h)
        if blocked:
            return blocked
        found = [f for f in firewalls(h) if f.active]
        if not found:
            return failed("no active firewall, so nothing is denied by default")
        deny = [f.tool for f in found if f.default_deny]
        if deny:
            return passed(f"inbound default is deny ({', '.join(deny)})")
        return failed(
            "the active firewall accepts inbound traffic by default",
            firewalls=[f.detail for f in found],
        )


# -- listening services -----------------------------------------------------------------------


def _exposed(address: str) -> bool:
    try:
        return not ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address not in ("localhost",)


class ListeningParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected: list[str] = Field(
        default_factory=lambda: ["22/tcp"],
        description="Ports ('22/tcp') that may listen on non-loopback addresses",
    )


class Listening(HostCheck):
    meta = meta(
        id="host.listen.expected",
        title="Only expected services listen on the network",
        severity=Severity.MEDIUM,
        rationale="Each listening service is attack surface; a service that nobody expects is "
        "also one nobody patches or monitors.",
        fix="Stop and disable services that are not needed, bind internal ones to loopback, or "
        "add the port to the policy's expected list.",
        snippet="ss -tulnp   # find the process\nsystemctl disable --now SERVICE",
        verify="`ss -tulnp` lists only expected ports on non-loopback addresses.",
        references=refs(cis("2.1.22"), bsi("SYS.1.1.A6"), iso("A.8.9", "A.8.20"), cisv8("4.8")),
        tags=("services",),
    )
    Params = ListeningParams
    sections = ("listening",)

    def judge(self, h: HostConfigFacts, p: ListeningParams) -> Result:
        exposed = sorted(
            {f"{x.port}/{x.proto}": x.process for x in h.listening if _exposed(x.address)}.items()
        )
        odd = [f"{k} ({v or '?'})" for k, v in exposed if k not in p.expected]
        if odd:
            return failed(
                f"unexpected listeners: {', '.join(odd)}", unexpected=odd, expected=p.expected
            )
        return passed(
            f"{len(exposed)} network listeners, all expected", listening=[k for k, _ in exposed]
        )


DB_PORTS = {
    3306: "MySQL/MariaDB",
    5432: "PostgreSQL",
    6379: "Redis",
    27017: "MongoDB",
    9200: "Elasticsearch",
    11211: "memcached",
    2375: "Docker API",
    5984: "CouchDB",
    8086: "InfluxDB",
    9042: "Cassandra",
}


class DatabaseWildcard(HostCheck):
    meta = meta(
        id="host.listen.db_wildcard",
        title="Databases and admin APIs do not listen on every interface",
        severity=Severity.HIGH,
        rationale="Databases and admin APIs bound to 0.0.0.0 are reachable from every network "
        "the host is on; most have weak or no authentication by default.",
        fix="Bind the service to loopback or to the one internal address its clients use.",
        snippet="# e.g. PostgreSQL: listen_addresses = 'localhost'\n# Redis: bind 127.0.0.1 -::1\n"
        "# MySQL/MariaDB: bind-address = 127.0.0.1",
        verify="`ss -tlnp` shows the port on 127.0.0.1 or an internal address, not 0.0.0.0 or *.",
        references=refs(
            bsi("NET.1.1.A8", "SYS.1.1.A19"), iso("A.8.20", "A.8.22"), cisv8("4.4", "12.2")
        ),
        tags=("services",),
    )
    sections = ("listening",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        bad = sorted(
            {
                f"{DB_PORTS[x.port]} {x.address}:{x.port}"
                for x in h.listening
                if x.port in DB_PORTS and x.address in ("0.0.0.0", "::", "*", "[::]")
            }
        )
        if bad:
            return failed(f"listening on all interfaces: {', '.join(bad)}", listeners=bad)
        return passed("no database or admin API listens on all interfaces")


# -- logging and audit ------------------------------------------------------------------------

_LOG = refs(bsi("OPS.1.1.5.A3", "SYS.1.1.A10"), iso("A.8.15"), cisv8("8.2"))


def _journald_gate(h: HostConfigFacts) -> Result | None:
    if not h.journald and "systemd" not in h.packages and h.meta.get("init") != "systemd":
        return not_applicable("systemd-journald is not used on this host")
    return None


class JournaldPersistent(HostCheck):
    meta = meta(
        id="host.log.journald_persistent",
        title="The systemd journal is kept on disk",
        severity=Severity.MEDIUM,
        rationale="With volatile storage the journal is lost at every reboot, which is exactly "
        "when an intrusion or crash needs to be investigated.",
        fix="Set Storage=persistent for journald.",
        snippet="mkdir -p /etc/systemd/journald.conf.d\n"
        "printf '[Journal]\\nStorage=persistent\\n' > /etc/systemd/journald.conf.d/60-assay.conf\n"
        "systemctl restart systemd-journald",
        verify="`ls /var/log/journal` shows a machine directory and "
        "`systemd-analyze cat-config systemd/journald.conf | grep Storage` shows persistent.",
        references=refs(cis("6.1.1.3"), _LOG),
        tags=("logging",),
    )
    sections = ("journald",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        gated = _journald_gate(h)
        if gated:
            return gated
        storage = h.journald.get("Storage", "auto").lower()
        if storage == "persistent" or (storage == "auto" and h.journal_dir):
            return passed(
                f"Storage={storage}" + (" and /var/log/journal exists" if storage == "auto" else "")
            )
        why = "/var/log/journal does not exist" if storage == "auto" else f"Storage={storage}"
        return failed(f"the journal is not persistent ({why})", storage=storage)


class RetentionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_days: int = Field(default=90, ge=1, description="Days logs must be kept")


_PERIOD_DAYS = {"daily": 1, "weekly": 7, "monthly": 30, "yearly": 365}


class LogRetention(HostCheck):
    meta = meta(
        id="host.log.retention",
        title="Logs are kept for at least 90 days",
        severity=Severity.MEDIUM,
        rationale="Intrusions are often found weeks later; CIS Controls ask for 90 days of "
        "logs and TCVN 3 to 12 months depending on the system's level.",
        fix="Keep enough rotations in /etc/logrotate.conf (e.g. weekly with rotate 13).",
        snippet="sed -i 's/^rotate .*/rotate 13/' /etc/logrotate.conf   # weekly x 13 = 91 days",
        verify="`grep -E '^(weekly|daily|monthly|rotate)' /etc/logrotate.conf` gives at least "
        "90 days.",
        references=refs(bsi("OPS.1.1.5.A8"), iso("A.8.15"), cisv8("8.10")),
        tags=("logging",),
    )
    Params = RetentionParams
    sections = ("logrotate",)

    def judge(self, h: HostConfigFacts, p: RetentionParams) -> Result:
        if not h.logrotate:
            return not_applicable("logrotate is not configured on this host")
        period = next((_PERIOD_DAYS[ln] for ln in h.logrotate if ln in _PERIOD_DAYS), 7)
        rotate = next(
            (int(ln.split()[1]) for ln in h.logrotate if re.fullmatch(r"rotate \d+", ln)), 1
        )
        days = period * (rotate + 1)
        if days < p.min_days:
            return failed(
                f"logrotate keeps about {days} days of logs; expected {p.min_days}", days=days
            )
        return passed(f"logrotate keeps about {days} days of logs", days=days)


class SyslogDaemon(HostCheck):
    meta = meta(
        id="host.log.syslog",
        title="A system logger writes the logs",
        severity=Severity.MEDIUM,
        rationale="Without rsyslog, syslog-ng or a persistent journal, services' messages are "
        "not kept anywhere an investigator can read them later.",
        fix="Install rsyslog (or make the journal persistent).",
        snippet="apt-get install rsyslog && systemctl enable --now rsyslog",
        verify="`systemctl is-active rsyslog` prints active.",
        references=refs(cis("6.1.2.1"), _LOG),
        tags=("logging",),
    )
    sections = ("packages", "processes")

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        daemons = h.installed("rsyslog", "syslog-ng", "syslog-ng-core", "busybox-syslogd")
        loggers = h.running("rsyslogd", "rsyslog", "syslog-ng", "syslogd")
        journald = h.running("systemd-journald")
        storage = h.journald.get("Storage", "auto").lower()
        persistent = storage == "persistent" or (storage == "auto" and h.journal_dir)
        if loggers:
            return passed(f"system logger running: {', '.join(loggers)}", installed=daemons)
        if journald and persistent:
            return passed("systemd-journald keeps a persistent journal")
        if daemons:
            return failed(f"{', '.join(daemons)} installed but not running", installed=daemons)
        return failed("no system logger runs and the journal is not persistent")


class RemoteLogging(HostCheck):
    meta = meta(
        id="host.log.remote",
        title="Logs are forwarded to a central log server",
        severity=Severity.LOW,
        rationale="An intruder with root can wipe local logs; a copy on a central server "
        "survives and lets the unit correlate events across hosts.",
        fix="Forward the logs with rsyslog (or systemd-journal-upload) to the unit's log server.",
        snippet="echo '*.* @@logs.example.internal:514' > /etc/rsyslog.d/60-assay-forward.conf\n"
        "systemctl restart rsyslog",
        verify="`grep -r '@@\\|omfwd' /etc/rsyslog.conf /etc/rsyslog.d` shows the target.",
        references=refs(
            cis("6.1.3.6"), bsi("OPS.1.1.5.A6", "OPS.1.1.5.A10"), iso("A.8.15"), cisv8("8.9")
        ),
        tags=("logging",),
    )
    sections = ("rsyslog", "packages")

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        fwd = [ln for ln in h.rsyslog if re.search(r"(^|\s)@@?[\w\[\]:.-]+", ln) or "omfwd" in ln]
        if fwd or (
            "systemd-journal-remote" in h.packages and "systemd-journal-upload" in h.running_units
        ):
            return passed("logs are forwarded", rules=fwd[:5])
        return failed("no log forwarding is configured")


_AUD = refs(cis("6.2.1.1", "6.2.1.2"), bsi("SYS.1.1.A10"), iso("A.8.15"), cisv8("8.5"))


class AuditParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    required: bool = Field(
        default=False,
        description="Require auditd (CIS Level 2); otherwise a host without auditd is n/a",
    )


def _audit_gate(h: HostConfigFacts, p: AuditParams) -> Result | None:
    if (
        h.section("audit").state is SectionState.MISSING
        and "auditd" not in h.packages
        and "audit" not in h.packages
    ):
        if p.required:
            return failed("auditd is not installed")
        return not_applicable(
            "auditd is not installed; kernel auditing is opt-in (CIS Level 2): set "
            "required: true in the policy to require it"
        )
    return None


class Auditd(HostCheck):
    meta = meta(
        id="host.audit.auditd",
        title="auditd records security events",
        severity=Severity.MEDIUM,
        rationale="The kernel audit log records who changed identities, sudoers, time and "
        "logins, with the user that did it, which normal logs do not show.",
        fix="Install auditd and enable it.",
        snippet="apt-get install auditd audispd-plugins && systemctl enable --now auditd",
        verify="`auditctl -s` shows enabled 1.",
        references=_AUD,
        tags=("audit",),
    )
    Params = AuditParams

    def judge(self, h: HostConfigFacts, p: AuditParams) -> Result:
        gated = _audit_gate(h, p)
        if gated:
            return gated
        blocked = gate(h, "audit")
        if blocked:
            return blocked
        if h.audit_status.get("enabled") in ("1", "2"):
            return passed(f"auditing is enabled (enabled {h.audit_status['enabled']})")
        state = h.audit_status.get("enabled", "?")
        return failed(f"auditd is installed but auditing is off (enabled {state})")


class AuditRules(HostCheck):
    meta = meta(
        id="host.audit.rules",
        title="Audit rules are loaded",
        severity=Severity.LOW,
        rationale="auditd without rules records almost nothing; rules for identity files, "
        "sudoers, logins and time changes are the minimum.",
        fix="Install a rule set (e.g. identity, sudoers, logins, time-change) under "
        "/etc/audit/rules.d.",
        snippet="cat > /etc/audit/rules.d/50-assay.rules <<'EOF'\n"
        "-w /etc/passwd -p wa -k identity\n-w /etc/shadow -p wa -k identity\n"
        "-w /etc/sudoers -p wa -k scope\n-w /etc/sudoers.d -p wa -k scope\n"
        "-w /var/log/lastlog -p wa -k logins\n"
        "-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change\nEOF\n"
        "augenrules --load",
        verify="`auditctl -l` lists the rules.",
        references=refs(cis("6.2.3.1"), _AUD),
        tags=("audit",),
    )
    Params = AuditParams

    def judge(self, h: HostConfigFacts, p: AuditParams) -> Result:
        gated = _audit_gate(h, p)
        if gated:
            return gated
        blocked = gate(h, "audit")
        if blocked:
            return blocked
        if h.audit_rules:
            return passed(f"{len(h.audit_rules)} audit rules loaded")
        return failed("no audit rules are loaded")


class AuditBoot(HostCheck):
    meta = meta(
        id="host.audit.boot",
        title="Auditing starts with the kernel (audit=1)",
        severity=Severity.LOW,
        rationale="Processes started before auditd are not audited unless the kernel starts "
        "auditing at boot.",
        fix="Add audit=1 and audit_backlog_limit=8192 to the kernel command line.",
        snippet="sed -i 's/^GRUB_CMDLINE_LINUX=\"/&audit=1 audit_backlog_limit=8192 /' "
        "/etc/default/grub\n"
        "update-grub",
        verify="`cat /proc/cmdline` contains audit=1.",
        references=refs(cis("6.2.1.3", "6.2.1.4"), _AUD),
        tags=("audit",),
    )
    Params = AuditParams
    sections = ("cmdline",)

    def judge(self, h: HostConfigFacts, p: AuditParams) -> Result:
        gated = _audit_gate(h, p)
        if gated:
            return gated
        if "audit=1" in h.cmdline.split():
            return passed("audit=1 is on the kernel command line")
        return failed("audit=1 is not on the kernel command line", cmdline=h.cmdline[:300])


# -- time -------------------------------------------------------------------------------------

TIME_DAEMONS = ("chronyd", "ntpd", "systemd-timesyncd", "openntpd", "ntpsec")


class TimeSync(HostCheck):
    meta = meta(
        id="host.time.sync",
        title="The clock is synchronised",
        severity=Severity.MEDIUM,
        rationale="Logs from different hosts can only be correlated when clocks agree; "
        "Kerberos, TLS and TOTP fail with a wrong clock.",
        fix="Run one time-synchronisation daemon against the unit's time servers.",
        snippet="apt-get install chrony && systemctl enable --now chrony\n"
        "# or: timedatectl set-ntp true   (systemd-timesyncd)",
        verify="`timedatectl` shows 'System clock synchronized: yes'.",
        references=refs(cis("2.3.1.1"), bsi("OPS.1.1.5.A4"), iso("A.8.17"), cisv8("8.4")),
        tags=("time",),
    )
    sections = ("processes",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        running = h.running(*TIME_DAEMONS, "chrony", "ntp", "ntpsec")
        if h.timedate.get("NTPSynchronized") == "yes":
            return passed("the clock is synchronised (NTPSynchronized=yes)", daemons=running)
        if running:
            return passed(f"time daemon running: {', '.join(running)}", daemons=running)
        if h.meta.get("container"):
            return not_applicable(
                f"the host is a {h.meta['container']} container: its clock is the host kernel's, "
                "synchronised (or not) there"
            )
        return failed("no time-synchronisation daemon runs")


class TimeSingle(HostCheck):
    meta = meta(
        id="host.time.single_daemon",
        title="Only one time daemon runs",
        severity=Severity.LOW,
        rationale="Two time daemons fight over the clock and make it jump.",
        fix="Keep one of chrony, ntpd or systemd-timesyncd and disable the others.",
        snippet="systemctl disable --now systemd-timesyncd   # when chrony is used",
        verify="`ps -e -o comm | grep -E 'chronyd|ntpd|timesyncd'` shows one.",
        references=refs(cis("2.3.1.1"), iso("A.8.17")),
        tags=("time",),
    )
    sections = ("processes",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        running = h.running(*TIME_DAEMONS)
        if len(running) > 1:
            return failed(f"several time daemons run: {', '.join(running)}", daemons=running)
        if not running:
            return not_applicable("no time daemon runs (see host.time.sync)")
        return passed(f"one time daemon: {running[0]}")


# -- mounts -----------------------------------------------------------------------------------

_MNT = refs(bsi("SYS.1.1.A16", "SYS.1.3.A3"), iso("A.8.9"), cisv8("4.1"))
MOUNT_RULES: tuple[tuple[str, str, tuple[str, ...], bool, tuple[str, ...]], ...] = (
    (
        "tmp",
        "/tmp",
        ("nodev", "nosuid", "noexec"),
        True,
        ("1.1.2.1.1", "1.1.2.1.2", "1.1.2.1.3", "1.1.2.1.4"),
    ),
    (
        "dev_shm",
        "/dev/shm",
        ("nodev", "nosuid", "noexec"),
        True,
        ("1.1.2.2.1", "1.1.2.2.2", "1.1.2.2.3", "1.1.2.2.4"),
    ),
    (
        "var_tmp",
        "/var/tmp",
        ("nodev", "nosuid", "noexec"),
        False,
        ("1.1.2.5.1", "1.1.2.5.2", "1.1.2.5.3", "1.1.2.5.4"),
    ),
    ("home", "/home", ("nodev", "nosuid"), False, ("1.1.2.3.1", "1.1.2.3.2", "1.1.2.3.3")),
    (
        "var_log",
        "/var/log",
        ("nodev", "nosuid", "noexec"),
        False,
        ("1.1.2.6.1", "1.1.2.6.2", "1.1.2.6.3", "1.1.2.6.4"),
    ),
)

MOUNT_WHY = {
    "tmp": "Every user and service can write to /tmp; without nodev, nosuid and noexec a "
    "dropped file there can be a device node, a set-user-ID program or an exploit to run.",
    "dev_shm": "Shared memory is writable by every process; noexec and nosuid stop it from "
    "being a staging area for exploits.",
    "var_tmp": "/var/tmp is world-writable and survives reboots; the same options as for /tmp "
    "keep it from holding devices, SUID programs or executables.",
    "home": "Users own everything under /home; nodev and nosuid stop them from creating "
    "device files or set-user-ID programs there.",
    "var_log": "/var/log holds data only; nodev, nosuid and noexec keep a writable log "
    "directory from becoming a way to run code.",
}


def _mount_judge(path: str, options: tuple[str, ...], must_exist: bool) -> Any:
    def judge(h: HostConfigFacts, p: Any) -> Result:
        mounts = [m for m in h.mounts if m.target == path]
        if not mounts:
            if must_exist:
                return failed(
                    f"{path} is not a separate file system, so {', '.join(options)} cannot apply",
                    missing=list(options),
                )
            return not_applicable(f"{path} is part of its parent file system (no separate mount)")
        m = mounts[-1]  # the last mount on a path is the one in effect
        missing = [o for o in options if o not in m.options]
        if missing:
            return failed(
                f"{path} is mounted without {', '.join(missing)}",
                missing=missing,
                options=list(m.options),
            )
        return passed(f"{path} is mounted {','.join(options)}", options=list(m.options))

    return judge


def _register_mounts() -> None:
    for name, path, options, must_exist, ids in MOUNT_RULES:
        opts = ",".join(options)
        make_check(
            meta(
                id=f"host.mount.{name}",
                title=f"{path} is mounted {opts}",
                severity=Severity.MEDIUM if name in ("tmp", "dev_shm") else Severity.LOW,
                rationale=MOUNT_WHY[name],
                fix=f"Mount {path} as its own file system with {opts}.",
                snippet=(
                    f"# /etc/fstab\ntmpfs {path} tmpfs defaults,{opts},size=2G 0 0\n"
                    if name in ("tmp", "dev_shm")
                    else f"# /etc/fstab: add {opts} to the options of {path}\n"
                )
                + f"mount -o remount,{opts} {path}",
                verify=f"`findmnt -no OPTIONS {path}` contains {opts}.",
                references=refs(cis(*ids), _MNT),
                tags=("mounts",),
            ),
            ("mounts",),
            _mount_judge(path, options, must_exist),
            namespace=globals(),
        )


_register_mounts()


class DiskEncryption(HostCheck):
    meta = meta(
        id="host.disk.encryption",
        title="Disks holding data are encrypted",
        severity=Severity.MEDIUM,
        rationale="An unencrypted disk gives its data to whoever takes it: a stolen server, a "
        "returned leased disk, a copied virtual-machine image. Personal data needs encryption "
        "at rest.",
        fix="Put the data file systems on LUKS (dm-crypt) volumes; for VMs, use the platform's "
        "volume encryption and record it as a waiver.",
        snippet="cryptsetup luksFormat /dev/DEVICE\ncryptsetup open /dev/DEVICE data\nmkfs.ext4 "
        "/dev/mapper/data",
        verify="`lsblk -o NAME,TYPE,FSTYPE` shows crypt devices (crypto_LUKS) under the data "
        "file systems.",
        references=refs(bsi("SYS.1.1.A34"), iso("A.8.24"), cisv8("3.11")),
        tags=("encryption",),
    )
    sections = ("lsblk",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        crypt = [d.name for d in h.block_devices if d.type == "crypt" or d.fstype == "crypto_LUKS"]
        if crypt or h.crypttab:
            return passed(
                f"encrypted volumes: {', '.join(crypt or h.crypttab)}",
                devices=crypt,
                crypttab=h.crypttab,
            )
        disks = [d.name for d in h.block_devices if d.type in ("disk", "part")]
        if not disks:
            return not_applicable("no block devices are visible (container or unusual platform)")
        return failed("no encrypted volume (LUKS/dm-crypt) found", devices=disks)


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
