"""File permissions: account databases, SSH and cron configuration, world-writable and
SUID/SGID files in system paths.

Modes are judged as "no more permissive than": a file may be stricter than the table says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from checks.host._base import HostCheck, bsi, cis, cisv8, iso, make_check, meta, refs
from scanner.gather.facts import HostConfigFacts
from scanner.model import Reference, Result, Severity, failed, not_applicable, passed


@dataclass(frozen=True)
class Rule:
    name: str
    paths: tuple[str, ...]  # the first that exists is judged; RHEL and Debian paths differ
    max_mode: int
    owners: tuple[str, ...]
    groups: tuple[str, ...]
    title: str
    severity: Severity
    rationale: str
    references: tuple[Reference, ...]


_P = refs(bsi("SYS.1.1.A16"), iso("A.8.3", "A.8.9"), cisv8("3.3"))
_ACCT = "Anyone who can change it can create accounts or give an account root's UID."
R = Rule
RULES: tuple[Rule, ...] = (
    R(
        "passwd",
        ("/etc/passwd",),
        0o644,
        ("root",),
        ("root",),
        "/etc/passwd is 644 root:root",
        Severity.HIGH,
        "/etc/passwd defines every account. " + _ACCT,
        refs(cis("7.1.1"), _P),
    ),
    R(
        "passwd_backup",
        ("/etc/passwd-",),
        0o644,
        ("root",),
        ("root",),
        "/etc/passwd- is 644 root:root",
        Severity.MEDIUM,
        "The backup copy holds the same account data as /etc/passwd.",
        refs(cis("7.1.2"), _P),
    ),
    R(
        "group",
        ("/etc/group",),
        0o644,
        ("root",),
        ("root",),
        "/etc/group is 644 root:root",
        Severity.HIGH,
        "/etc/group decides who is in sudo, adm or shadow. " + _ACCT,
        refs(cis("7.1.3"), _P),
    ),
    R(
        "group_backup",
        ("/etc/group-",),
        0o644,
        ("root",),
        ("root",),
        "/etc/group- is 644 root:root",
        Severity.MEDIUM,
        "The backup copy holds the same group data as /etc/group.",
        refs(cis("7.1.4"), _P),
    ),
    R(
        "shadow",
        ("/etc/shadow",),
        0o640,
        ("root",),
        ("root", "shadow"),
        "/etc/shadow is 640 root:shadow or stricter",
        Severity.CRITICAL,
        "/etc/shadow holds the password hashes; readable hashes are cracked "
        "offline at billions of guesses per second.",
        refs(cis("7.1.5"), _P),
    ),
    R(
        "shadow_backup",
        ("/etc/shadow-",),
        0o640,
        ("root",),
        ("root", "shadow"),
        "/etc/shadow- is 640 root:shadow or stricter",
        Severity.HIGH,
        "The backup copy holds the same password hashes as /etc/shadow.",
        refs(cis("7.1.6"), _P),
    ),
    R(
        "gshadow",
        ("/etc/gshadow",),
        0o640,
        ("root",),
        ("root", "shadow"),
        "/etc/gshadow is 640 root:shadow or stricter",
        Severity.HIGH,
        "/etc/gshadow holds group passwords and group administrators.",
        refs(cis("7.1.7"), _P),
    ),
    R(
        "gshadow_backup",
        ("/etc/gshadow-",),
        0o640,
        ("root",),
        ("root", "shadow"),
        "/etc/gshadow- is 640 root:shadow or stricter",
        Severity.MEDIUM,
        "The backup copy holds the same data as /etc/gshadow.",
        refs(cis("7.1.8"), _P),
    ),
    R(
        "opasswd",
        ("/etc/security/opasswd",),
        0o600,
        ("root",),
        ("root",),
        "/etc/security/opasswd is 600 root:root",
        Severity.MEDIUM,
        "opasswd keeps old password hashes for the reuse check; they are often "
        "variants of the current password.",
        refs(cis("7.1.10"), _P),
    ),
    R(
        "sshd_config",
        ("/etc/ssh/sshd_config",),
        0o600,
        ("root",),
        ("root",),
        "sshd_config is 600 root:root",
        Severity.MEDIUM,
        "Whoever can change sshd_config decides who may log in and how; reading "
        "it shows which accounts and methods are allowed.",
        refs(cis("5.1.1"), _P),
    ),
    R(
        "ssh_host_rsa_key",
        ("/etc/ssh/ssh_host_rsa_key",),
        0o600,
        ("root",),
        ("root", "ssh_keys"),
        "The SSH RSA host key is readable by root only",
        Severity.HIGH,
        "A stolen host key lets an attacker impersonate the server to every client.",
        refs(cis("5.1.2"), _P),
    ),
    R(
        "ssh_host_ecdsa_key",
        ("/etc/ssh/ssh_host_ecdsa_key",),
        0o600,
        ("root",),
        ("root", "ssh_keys"),
        "The SSH ECDSA host key is readable by root only",
        Severity.HIGH,
        "A stolen host key lets an attacker impersonate the server to every client.",
        refs(cis("5.1.2"), _P),
    ),
    R(
        "ssh_host_ed25519_key",
        ("/etc/ssh/ssh_host_ed25519_key",),
        0o600,
        ("root",),
        ("root", "ssh_keys"),
        "The SSH Ed25519 host key is readable by root only",
        Severity.HIGH,
        "A stolen host key lets an attacker impersonate the server to every client.",
        refs(cis("5.1.2"), _P),
    ),
    R(
        "crontab",
        ("/etc/crontab",),
        0o600,
        ("root",),
        ("root",),
        "/etc/crontab is 600 root:root",
        Severity.MEDIUM,
        "System cron jobs run as root; a writable crontab is a root shell, a "
        "readable one a map of what runs when.",
        refs(cis("2.4.1.2"), _P),
    ),
    R(
        "cron_hourly",
        ("/etc/cron.hourly",),
        0o700,
        ("root",),
        ("root",),
        "/etc/cron.hourly is 700 root:root",
        Severity.MEDIUM,
        "Scripts in cron.hourly run as root every hour.",
        refs(cis("2.4.1.3"), _P),
    ),
    R(
        "cron_daily",
        ("/etc/cron.daily",),
        0o700,
        ("root",),
        ("root",),
        "/etc/cron.daily is 700 root:root",
        Severity.MEDIUM,
        "Scripts in cron.daily run as root every day.",
        refs(cis("2.4.1.4"), _P),
    ),
    R(
        "cron_weekly",
        ("/etc/cron.weekly",),
        0o700,
        ("root",),
        ("root",),
        "/etc/cron.weekly is 700 root:root",
        Severity.MEDIUM,
        "Scripts in cron.weekly run as root every week.",
        refs(cis("2.4.1.5"), _P),
    ),
    R(
        "cron_monthly",
        ("/etc/cron.monthly",),
        0o700,
        ("root",),
        ("root",),
        "/etc/cron.monthly is 700 root:root",
        Severity.MEDIUM,
        "Scripts in cron.monthly run as root every month.",
        refs(cis("2.4.1.6"), _P),
    ),
    R(
        "cron_d",
        ("/etc/cron.d",),
        0o700,
        ("root",),
        ("root",),
        "/etc/cron.d is 700 root:root",
        Severity.MEDIUM,
        "Files in cron.d define root's scheduled jobs.",
        refs(cis("2.4.1.7"), _P),
    ),
    R(
        "grub_cfg",
        ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"),
        0o600,
        ("root",),
        ("root",),
        "The boot loader configuration is 600 root:root",
        Severity.LOW,
        "grub.cfg shows kernel options and, when set, the boot password hash.",
        refs(cis("1.4.2"), _P),
    ),
    R(
        "sudoers",
        ("/etc/sudoers",),
        0o440,
        ("root",),
        ("root",),
        "/etc/sudoers is 440 root:root",
        Severity.HIGH,
        "sudoers decides who becomes root; a writable sudoers is root for anyone.",
        refs(_P),
    ),
    R(
        "root_home",
        ("/root",),
        0o700,
        ("root",),
        ("root",),
        "root's home directory is 700",
        Severity.MEDIUM,
        "root's home holds shell history, keys and scripts that other users must not read.",
        refs(cis("7.2.9"), _P),
    ),
    R(
        "var_log",
        ("/var/log",),
        0o755,
        ("root",),
        ("root", "syslog", "adm"),
        "/var/log is not writable by other users",
        Severity.MEDIUM,
        "Users who can write to /var/log can remove or forge log evidence.",
        refs(iso("A.8.15"), _P),
    ),
)


def _mode(m: int) -> str:
    return f"{m:o}".rjust(3, "0")


def _judge_for(rule: Rule) -> Any:
    def judge(h: HostConfigFacts, p: Any) -> Result:
        stat = next((h.files[x] for x in rule.paths if x in h.files and h.files[x].exists), None)
        if stat is None:
            shown = " nor ".join(rule.paths)
            what = f"neither {shown} exists" if len(rule.paths) > 1 else f"{shown} does not exist"
            return not_applicable(f"{what} on this host")
        problems = []
        mode = stat.mode or 0
        extra = mode & ~rule.max_mode & 0o7777
        if extra:
            problems.append(f"mode {_mode(mode)} allows more than {_mode(rule.max_mode)}")
        if stat.owner not in rule.owners:
            problems.append(f"owner is {stat.owner or stat.uid}")
        if stat.group not in rule.groups:
            problems.append(f"group is {stat.group or stat.gid}")
        shown = _mode(mode)
        if problems:
            return failed(
                f"{stat.path}: " + "; ".join(problems),
                path=stat.path,
                mode=shown,
                owner=stat.owner,
                group=stat.group,
            )
        return passed(
            f"{stat.path} is {shown} {stat.owner}:{stat.group}",
            path=stat.path,
            mode=shown,
            owner=stat.owner,
            group=stat.group,
        )

    return judge


def _register() -> None:
    for r in RULES:
        path = r.paths[0]
        chmod = f"{r.max_mode:o}"
        group = r.groups[-1] if r.name.startswith(("shadow", "gshadow")) else r.groups[0]
        make_check(
            meta(
                id=f"host.perm.{r.name}",
                title=r.title,
                severity=r.severity,
                rationale=r.rationale,
                fix=f"Give {path} the owner {r.owners[0]}:{group} and mode {chmod} or stricter.",
                snippet=f"chown {r.owners[0]}:{group} {path}\nchmod {chmod} {path}",
                verify=f"`stat -c '%a %U:%G' {path}` prints {chmod} {r.owners[0]}:{group}.",
                references=r.references,
                tags=("permissions",),
            ),
            ("files",),
            _judge_for(r),
            namespace=globals(),
        )


_register()

# -- walks of system paths --------------------------------------------------------------------

_WALK = refs(cis("7.1.11", "7.1.13"), bsi("SYS.1.1.A16"), iso("A.8.9"), cisv8("3.3"))


class WorldWritableParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    allowed: list[str] = Field(default_factory=list, description="Paths accepted as world-writable")


class WorldWritable(HostCheck):
    meta = meta(
        id="host.perm.world_writable",
        title="No world-writable files in system paths",
        severity=Severity.HIGH,
        rationale="A world-writable file under /etc, /usr or /boot can be changed by any local "
        "user or compromised service; if root runs or reads it, that is a privilege escalation.",
        fix="Remove the write bit for others from each file listed (or move the file out of the "
        "system paths).",
        snippet="chmod o-w PATH\n# list them again:\nfind /etc /usr /boot /opt -xdev -type f "
        "-perm -0002",
        verify="`find /etc /usr /boot /opt -xdev -type f -perm -0002` prints nothing.",
        references=_WALK,
        tags=("permissions",),
    )
    Params = WorldWritableParams
    sections = ("find",)

    def judge(self, h: HostConfigFacts, p: WorldWritableParams) -> Result:
        bad = [f.path for f in h.world_writable if f.path not in p.allowed]
        note = " (the walk hit its limit; more may exist)" if h.find_clipped else ""
        if bad:
            return failed(f"{len(bad)} world-writable files in system paths{note}", files=bad[:50])
        return passed("no world-writable files in system paths" + note)


class StickyDirs(HostCheck):
    meta = meta(
        id="host.perm.sticky_dirs",
        title="World-writable directories have the sticky bit",
        severity=Severity.MEDIUM,
        rationale="In a world-writable directory without the sticky bit any user can delete or "
        "replace other users' files, including files a root job is about to use.",
        fix="Set the sticky bit on every world-writable directory listed.",
        snippet="chmod +t DIRECTORY",
        verify="`find /etc /usr /boot /opt -xdev -type d -perm -0002 ! -perm -1000` prints "
        "nothing.",
        references=refs(cis("7.1.11"), bsi("SYS.1.1.A16"), iso("A.8.9")),
        tags=("permissions",),
    )
    sections = ("find",)

    def judge(self, h: HostConfigFacts, p: Any) -> Result:
        bad = [f.path for f in h.dirs_without_sticky]
        if bad:
            return failed(
                f"{len(bad)} world-writable directories without the sticky bit", dirs=bad[:50]
            )
        return passed("every world-writable directory in system paths has the sticky bit")


# Set-user-ID and set-group-ID programs a Debian or RHEL system ships; anything else is reported
# so an administrator reviews it.
KNOWN_SUID = (
    "/usr/bin/chfn",
    "/usr/bin/chsh",
    "/usr/bin/chage",
    "/usr/bin/expiry",
    "/usr/bin/gpasswd",
    "/usr/bin/mount",
    "/usr/bin/newgrp",
    "/usr/bin/passwd",
    "/usr/bin/su",
    "/usr/bin/sudo",
    "/usr/bin/umount",
    "/usr/bin/crontab",
    "/usr/bin/ssh-agent",
    "/usr/bin/wall",
    "/usr/bin/write",
    "/usr/bin/pkexec",
    "/usr/bin/fusermount",
    "/usr/bin/fusermount3",
    "/usr/bin/at",
    "/usr/bin/dotlockfile",
    "/usr/bin/bsd-write",
    "/usr/bin/mlocate",
    "/usr/bin/plocate",
    "/usr/bin/staprun",
    "/usr/bin/newgidmap",
    "/usr/bin/newuidmap",
    "/usr/sbin/unix_chkpwd",
    "/usr/sbin/pam_timestamp_check",
    "/usr/sbin/userhelper",
    "/usr/sbin/postdrop",
    "/usr/sbin/postqueue",
    "/usr/sbin/mount.nfs",
    "/usr/sbin/exim4",
    "/usr/lib/openssh/ssh-keysign",
    "/usr/libexec/openssh/ssh-keysign",
    "/usr/lib/dbus-1.0/dbus-daemon-launch-helper",
    "/usr/libexec/dbus-1/dbus-daemon-launch-helper",
    "/usr/lib/polkit-1/polkit-agent-helper-1",
    "/usr/lib/x86_64-linux-gnu/utempter/utempter",
    "/usr/libexec/utempter/utempter",
    "/usr/lib/eject/dmcrypt-get-device",
    "/usr/lib/chromium/chrome-sandbox",
    "/usr/lib/xorg/Xorg.wrap",
)


class SuidParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected: list[str] = Field(
        default_factory=lambda: list(KNOWN_SUID),
        description="SUID/SGID programs accepted on the host",
    )


class SuidInventory(HostCheck):
    meta = meta(
        id="host.perm.suid_sgid",
        title="SUID/SGID programs are only the expected ones",
        severity=Severity.MEDIUM,
        rationale="Every set-user-ID program is a way to run code with another user's (usually "
        "root's) rights; an unexpected one may be a backdoor or a vulnerable extra.",
        fix="Review each unexpected program; remove the bit (or the package) when it is not "
        "needed, or add it to the policy's expected list.",
        snippet="chmod u-s,g-s PATH",
        verify="`find /usr /opt -xdev -type f -perm /6000` lists only expected programs.",
        references=refs(cis("7.1.13"), bsi("SYS.1.1.A16"), iso("A.8.2", "A.8.9"), cisv8("2.3")),
        tags=("permissions",),
    )
    Params = SuidParams
    sections = ("find",)

    def judge(self, h: HostConfigFacts, p: SuidParams) -> Iterable[Result]:
        expected = set(p.expected)

        # /bin -> /usr/bin on merged-/usr systems; accept either spelling
        def norm(path: str) -> str:
            for old in ("/bin/", "/sbin/", "/lib/"):
                if path.startswith(old):
                    return "/usr" + path
            return path

        found = [f for f in h.suid_sgid]
        odd = [f for f in found if norm(f.path) not in expected and f.path not in expected]
        inventory = [f"{f.mode} {f.owner} {f.path}" for f in found][:200]
        if odd:
            return [
                failed(
                    f"{len(odd)} unexpected SUID/SGID programs",
                    unexpected=[f"{f.mode} {f.owner} {f.path}" for f in odd][:100],
                    inventory=inventory,
                )
            ]
        return [passed(f"{len(found)} SUID/SGID programs, all expected", inventory=inventory)]
