"""Logging (journald persistence, a running logger, retention, forwarding), kernel audit
(opt-in) and time synchronisation."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from checks.host._base import HostCheck, bsi, cis, cisv8, gate, iso, meta, refs
from scanner.gather.facts import HostConfigFacts, SectionState
from scanner.model import Result, Severity, failed, not_applicable, passed

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
