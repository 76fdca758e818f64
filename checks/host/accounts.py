"""Accounts (empty passwords, UID/GID 0, duplicates, system shells, the shadow group) and sudo."""

from __future__ import annotations

from collections import Counter
from typing import Any

from checks.host._base import HostCheck, bsi, cis, cisv8, iso, meta, refs
from scanner.gather.facts import HostConfigFacts
from scanner.model import Result, Severity, failed, not_applicable, passed

_ACC = refs(bsi("SYS.1.3.A2", "ORP.4.A2"), iso("A.5.16", "A.8.2"), cisv8("5.4"))
NOLOGIN = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false", "/dev/null", "")


def _uid_min(h: HostConfigFacts) -> int:
    try:
        return int(h.login_defs.get("UID_MIN", "1000"))
    except ValueError:
        return 1000


class EmptyPassword(HostCheck):
    meta = meta(
        id="host.accounts.empty_password",
        title="No account has an empty password",
        severity=Severity.CRITICAL,
        rationale="An account with an empty password can be used by anyone at the console, "
        "through su, or over any service that accepts it.",
        fix="Lock each listed account, or set a password.",
        snippet="passwd -l ACCOUNT",
        verify="`awk -F: '$2 == \"\"' /etc/shadow` prints nothing.",
        references=refs(cis("7.2.2"), _ACC),
        tags=("accounts",),
    )
    sections = ("passwd", "shadow")

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        bad = [a.name for a in h.accounts if a.pw_state == "empty"]
        if bad:
            return failed(f"accounts with an empty password: {', '.join(bad)}", accounts=bad)
        return passed(f"no empty password among {len(h.accounts)} accounts")


class Uid0(HostCheck):
    meta = meta(
        id="host.accounts.uid0",
        title="Only root has UID 0",
        severity=Severity.CRITICAL,
        rationale="Every UID 0 account is root under another name: it bypasses all permission "
        "checks and its logins look like ordinary users in the logs; a second UID 0 account is "
        "a classic backdoor.",
        fix="Remove the account or give it its own UID.",
        snippet="usermod -u NEW_UID ACCOUNT   # or: userdel ACCOUNT",
        verify="`awk -F: '$3 == 0 {print $1}' /etc/passwd` prints only root.",
        references=refs(cis("5.4.2.1"), _ACC),
        tags=("accounts",),
    )
    sections = ("passwd",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        bad = [a.name for a in h.accounts if a.uid == 0 and a.name != "root"]
        if bad:
            return failed(f"UID 0 besides root: {', '.join(bad)}", accounts=bad)
        return passed("only root has UID 0")


class Gid0(HostCheck):
    meta = meta(
        id="host.accounts.gid0",
        title="Only root has GID 0 as its primary group",
        severity=Severity.MEDIUM,
        rationale="Files created by root's group are readable by any account with GID 0; "
        "other accounts should not share it.",
        fix="Give the account its own primary group.",
        snippet="usermod -g GROUP ACCOUNT",
        verify="`awk -F: '$4 == 0 {print $1}' /etc/passwd` prints only root (and sync, "
        "shutdown, halt, operator on RHEL).",
        references=refs(cis("5.4.2.2"), _ACC),
        tags=("accounts",),
    )
    sections = ("passwd",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        allowed = {"root", "sync", "shutdown", "halt", "operator"}
        bad = [a.name for a in h.accounts if a.gid == 0 and a.name not in allowed]
        if bad:
            return failed(f"GID 0 besides root: {', '.join(bad)}", accounts=bad)
        return passed("only root has GID 0 as primary group")


class DuplicateIds(HostCheck):
    meta = meta(
        id="host.accounts.duplicate_ids",
        title="Account names and UIDs are unique",
        severity=Severity.MEDIUM,
        rationale="Two accounts with one UID own the same files and cannot be told apart in "
        "logs; BSI asks for unique logins and IDs.",
        fix="Give every account its own UID and name.",
        snippet="usermod -u NEW_UID ACCOUNT",
        verify="`cut -d: -f3 /etc/passwd | sort | uniq -d` prints nothing.",
        references=refs(cis("7.2.5", "7.2.7"), _ACC),
        tags=("accounts",),
    )
    sections = ("passwd",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        known = [a for a in h.accounts if a.uid >= 0]
        uids = [u for u, n in Counter(a.uid for a in known).items() if n > 1]
        names = [u for u, n in Counter(a.name for a in known).items() if n > 1]
        gids = [g for g, n in Counter(g.gid for g in h.groups).items() if n > 1]
        if uids or names or gids:
            return failed(
                "duplicate "
                + ", ".join(
                    x for x, bad in (("UIDs", uids), ("names", names), ("GIDs", gids)) if bad
                ),
                uids=uids,
                names=names,
                gids=gids,
            )
        return passed("account names, UIDs and GIDs are unique")


class SystemShell(HostCheck):
    meta = meta(
        id="host.accounts.system_shell",
        title="System accounts have no login shell",
        severity=Severity.MEDIUM,
        rationale="Service accounts (daemon, www-data, ...) never log in; a login shell on them "
        "turns a service compromise or a weak service password into an interactive login.",
        fix="Set the shell of each listed system account to nologin.",
        snippet="usermod -s /usr/sbin/nologin ACCOUNT",
        verify="`awk -F: '$3 < 1000 && $1 != \"root\" {print $1, $7}' /etc/passwd` shows "
        "nologin or false for every account.",
        references=refs(cis("5.4.2.7"), _ACC),
        tags=("accounts",),
    )
    sections = ("passwd",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        limit = _uid_min(h)
        exempt = {"root", "sync", "shutdown", "halt"}
        bad = [
            f"{a.name} ({a.shell})"
            for a in h.accounts
            if 0 <= a.uid < limit
            and a.name not in exempt
            and a.shell not in NOLOGIN
            and not a.shell.endswith("nologin")
        ]
        if bad:
            return failed(f"system accounts with a login shell: {', '.join(bad)}", accounts=bad)
        return passed("no system account has a login shell")


class ShadowGroup(HostCheck):
    meta = meta(
        id="host.accounts.shadow_group",
        title="The shadow group has no members",
        severity=Severity.MEDIUM,
        rationale="Members of the shadow group can read every password hash.",
        fix="Remove every member from the shadow group.",
        snippet="gpasswd -M '' shadow",
        verify="`getent group shadow` ends with a colon and no names.",
        references=refs(cis("7.2.4"), _ACC),
        tags=("accounts",),
    )
    sections = ("group",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        g = next((g for g in h.groups if g.name == "shadow"), None)
        if g is None:
            return not_applicable("there is no shadow group on this host (RHEL family)")
        primary = [a.name for a in h.accounts if a.gid == g.gid]
        members = list(g.members) + primary
        if members:
            return failed(f"shadow group members: {', '.join(members)}", members=members)
        return passed("the shadow group has no members")


def _sudo_gate(h: HostConfigFacts) -> Result | None:
    if "sudo" not in h.packages and "sudo-ldap" not in h.packages and not h.sudoers:
        return not_applicable("sudo is not installed on this host")
    if not h.sudoers:
        return not_applicable("no sudoers file on this host")
    return None


class SudoNopasswd(HostCheck):
    meta = meta(
        id="host.accounts.sudo_nopasswd",
        title="sudo asks for a password",
        severity=Severity.MEDIUM,
        rationale="NOPASSWD rules let anything that runs as the user (a browser exploit, a "
        "malicious package) become root silently.",
        fix="Remove NOPASSWD from the sudoers rules, or limit it to specific commands.",
        snippet="visudo   # and: visudo -f /etc/sudoers.d/FILE",
        verify="`grep -r NOPASSWD /etc/sudoers /etc/sudoers.d` prints nothing.",
        references=refs(cis("5.2.4"), bsi("ORP.4.A4"), iso("A.8.2", "A.8.18"), cisv8("5.4")),
        tags=("sudo",),
    )
    sections = ("sudoers", "packages")

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        gated = _sudo_gate(h)
        if gated:
            return gated
        bad = [
            f"{f}: {ln}"
            for f, lines in h.sudoers_map.items()
            for ln in lines
            if "NOPASSWD" in ln and not ln.startswith("Defaults")
        ]
        if bad:
            return failed(f"{len(bad)} sudo rules without password", rules=bad[:20])
        return passed("every sudo rule asks for a password")


class SudoUsePty(HostCheck):
    meta = meta(
        id="host.accounts.sudo_use_pty",
        title="sudo runs commands in a pseudo-terminal",
        severity=Severity.LOW,
        rationale="Without use_pty, a program run through sudo can keep a background process "
        "that injects keystrokes into the administrator's terminal.",
        fix="Add `Defaults use_pty` to the sudoers configuration.",
        snippet="echo 'Defaults use_pty' > /etc/sudoers.d/00-assay-use-pty\nvisudo -c",
        verify="`sudo -V | grep -i 'pty'` or `grep -r use_pty /etc/sudoers*` shows it.",
        references=refs(cis("5.2.2"), iso("A.8.2")),
        tags=("sudo",),
    )
    sections = ("sudoers", "packages")

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        gated = _sudo_gate(h)
        if gated:
            return gated
        if any(
            ln.startswith("Defaults") and "use_pty" in ln and "!use_pty" not in ln
            for ls in h.sudoers_map.values()
            for ln in ls
        ):
            return passed("Defaults use_pty is set")
        return failed("Defaults use_pty is not set")


class SudoLog(HostCheck):
    meta = meta(
        id="host.accounts.sudo_log",
        title="sudo keeps its own log file",
        severity=Severity.LOW,
        rationale="A dedicated sudo log records every privileged command with who ran it, "
        "separate from the general system log.",
        fix='Add `Defaults logfile="/var/log/sudo.log"` to the sudoers configuration.',
        snippet="echo 'Defaults logfile=\"/var/log/sudo.log\"' > /etc/sudoers.d/00-assay-log\n"
        "visudo -c",
        verify="`grep -r 'logfile' /etc/sudoers*` shows the setting.",
        references=refs(cis("5.2.3"), bsi("OPS.1.1.5.A3"), iso("A.8.15")),
        tags=("sudo",),
    )
    sections = ("sudoers", "packages")

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        gated = _sudo_gate(h)
        if gated:
            return gated
        if any(
            ln.startswith("Defaults") and "logfile" in ln
            for ls in h.sudoers_map.values()
            for ln in ls
        ):
            return passed("sudo writes a log file")
        return failed("no sudo log file is configured")
