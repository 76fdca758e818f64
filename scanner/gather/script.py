"""Building the one gathering script for a host: the shell body plus this run's variables.

What is gathered is data (the lists below), so a new sysctl key or file is one line here; the
checks in `checks/host/` judge the values. A test keeps the two in step: every key a check
reads is gathered.
"""

from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass, field
from importlib.resources import files

SECTIONS: tuple[str, ...] = (
    "meta",
    "os_release",
    "sshd",
    "passwd",
    "shadow",
    "group",
    "login_defs",
    "pam",
    "sudoers",
    "packages",
    "apt_config",
    "dnf_automatic",
    "reboot",
    "sysctl",
    "files",
    "mounts",
    "fstab",
    "crypttab",
    "lsblk",
    "fw_nft",
    "fw_iptables",
    "fw_ufw",
    "fw_firewalld",
    "listening",
    "units",
    "processes",
    "journald",
    "rsyslog",
    "logrotate",
    "audit",
    "cmdline",
    "time",
    "modules",
    "mac",
    "coredump",
    "nginx",
    "vsftpd",
    "redis",
    "issue",
    # the slow ones last, so a spent budget loses as little as possible
    "updates",
    "find",
)

SYSCTL_KEYS: tuple[str, ...] = (
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.ipv4.conf.all.send_redirects",
    "net.ipv4.conf.default.send_redirects",
    "net.ipv4.conf.all.accept_redirects",
    "net.ipv4.conf.default.accept_redirects",
    "net.ipv6.conf.all.accept_redirects",
    "net.ipv6.conf.default.accept_redirects",
    "net.ipv4.conf.all.secure_redirects",
    "net.ipv4.conf.default.secure_redirects",
    "net.ipv4.conf.all.accept_source_route",
    "net.ipv4.conf.default.accept_source_route",
    "net.ipv6.conf.all.accept_source_route",
    "net.ipv6.conf.default.accept_source_route",
    "net.ipv4.conf.all.log_martians",
    "net.ipv4.conf.default.log_martians",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
    "net.ipv4.icmp_echo_ignore_broadcasts",
    "net.ipv4.icmp_ignore_bogus_error_responses",
    "net.ipv4.tcp_syncookies",
    "net.ipv6.conf.all.accept_ra",
    "net.ipv6.conf.default.accept_ra",
    "kernel.randomize_va_space",
    "kernel.dmesg_restrict",
    "kernel.kptr_restrict",
    "kernel.yama.ptrace_scope",
    "kernel.unprivileged_bpf_disabled",
    "kernel.sysrq",
    "kernel.perf_event_paranoid",
    "fs.suid_dumpable",
    "fs.protected_hardlinks",
    "fs.protected_symlinks",
    "fs.protected_fifos",
    "fs.protected_regular",
    "net.core.bpf_jit_harden",
)

FILES: tuple[str, ...] = (
    "/etc/passwd",
    "/etc/passwd-",
    "/etc/group",
    "/etc/group-",
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/security/opasswd",
    "/etc/ssh/sshd_config",
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_ed25519_key",
    "/etc/crontab",
    "/etc/cron.hourly",
    "/etc/cron.daily",
    "/etc/cron.weekly",
    "/etc/cron.monthly",
    "/etc/cron.d",
    "/etc/cron.allow",
    "/etc/cron.deny",
    "/etc/at.allow",
    "/etc/at.deny",
    "/boot/grub/grub.cfg",
    "/boot/grub2/grub.cfg",
    "/etc/sudoers",
    "/etc/issue",
    "/etc/issue.net",
    "/etc/motd",
    "/etc/redis/redis.conf",
    "/etc/vsftpd.conf",
    "/root",
    "/var/log",
)

MODULES: tuple[str, ...] = (
    "cramfs",
    "freevxfs",
    "hfs",
    "hfsplus",
    "jffs2",
    "squashfs",
    "udf",
    "usb-storage",
    "dccp",
    "sctp",
    "rds",
    "tipc",
)

# System paths walked for world-writable, SUID/SGID and unowned files (one walk, -xdev).
FIND_PATHS: tuple[str, ...] = ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/boot", "/opt")


@dataclass(frozen=True)
class GatherOptions:
    """How to gather. `root` reads files below another root (an image or a test tree);
    `sshd_config` asks `sshd -T -f` about another configuration than the system one."""

    root: str = ""
    sshd_config: str = ""
    cmd_timeout: int = 20
    find_paths: tuple[str, ...] = FIND_PATHS
    find_limit: int = 5000
    sections: tuple[str, ...] = SECTIONS
    extra_env: dict[str, str] = field(default_factory=dict)


def body() -> str:
    return (files("scanner.gather") / "gather.sh").read_text(encoding="utf-8")


def build_script(options: GatherOptions, nonce: str | None = None) -> tuple[str, bytes]:
    """The script to send, and the nonce its section boundaries carry."""
    nonce = nonce or secrets.token_hex(12)
    unknown = [s for s in options.sections if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown gathering sections: {', '.join(unknown)}")
    values = {
        "ASSAY_NONCE": nonce,
        "ASSAY_ROOT": options.root.rstrip("/"),
        "ASSAY_SSHD_CONFIG": options.sshd_config,
        "ASSAY_CMD_TIMEOUT": str(options.cmd_timeout),
        "ASSAY_SYSCTL_KEYS": " ".join(SYSCTL_KEYS),
        "ASSAY_FILES": " ".join(FILES),
        "ASSAY_MODULES": " ".join(MODULES),
        "ASSAY_FIND_PATHS": " ".join(options.find_paths),
        "ASSAY_FIND_LIMIT": str(options.find_limit),
        "ASSAY_SECTIONS": " ".join(options.sections),
        **options.extra_env,
    }
    head = "".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items())
    return nonce, (head + body()).encode()
