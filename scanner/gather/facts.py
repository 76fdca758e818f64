"""The facts of one host's configuration, as gathered by the one gathering script.

Everything a host check reads is here, already parsed, so checks stay pure and a stored scan
can be judged again without logging in. Secrets never reach this model: the gatherer reduces
/etc/shadow to "empty / locked / hash + scheme" and replaces Redis passwords by `<set>` on the
host itself.

`sections` says, per fact source, whether it was gathered; a check whose source is missing
says why (`not_applicable` when the component is absent, `error` when gathering failed).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from scanner.model import Facts


class SectionState(StrEnum):
    OK = "ok"
    MISSING = "missing"  # the command is not installed on the host (rc 127)
    DENIED = "denied"  # not permitted (rc 126), e.g. /etc/shadow without root
    FAILED = "failed"  # the command ran and failed
    TRUNCATED = "truncated"  # the section began but the output ended inside it
    NOT_GATHERED = "not_gathered"  # never reached (connection lost, time budget spent)


class SectionInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    state: SectionState
    rc: int | None = None
    note: str = ""  # first line of the output when the source failed
    clipped: bool = False
    non_utf8: bool = False


class FileStat(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    exists: bool
    mode: int | None = None  # permission bits, e.g. 0o640
    uid: int | None = None
    gid: int | None = None
    owner: str = ""
    group: str = ""
    kind: str = ""  # "regular file", "directory", "symbolic link" ...


class Account(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    uid: int
    gid: int
    home: str = ""
    shell: str = ""
    # "empty" / "locked" / "hash": the hash itself never leaves the host. (Not called
    # "password": stored facts mask values under secret-looking keys.)
    pw_state: Literal["empty", "locked", "hash", "unknown"] = "unknown"
    scheme: str = ""  # "y" yescrypt, "6" sha512, "5" sha256, "1" md5, "des" ...
    last_change: int | None = None  # days since 1970
    min_days: int | None = None
    max_days: int | None = None
    warn_days: int | None = None
    inactive: int | None = None


class ConfigFile(BaseModel):
    """A configuration file's meaningful lines (comments and blank lines dropped)."""

    model_config = ConfigDict(frozen=True)

    name: str
    lines: tuple[str, ...] = ()


class Group(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    gid: int
    members: tuple[str, ...] = ()


class PendingUpdate(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    current: str = ""
    candidate: str = ""
    security: bool = False


class FoundFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    mode: str = ""
    owner: str = ""


class Mount(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    target: str
    fstype: str
    options: tuple[str, ...] = ()


class BlockDevice(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    fstype: str = ""
    mountpoint: str = ""


class Listener(BaseModel):
    model_config = ConfigDict(frozen=True)

    proto: str
    address: str
    port: int
    process: str = ""


class KernelModule(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    loaded: bool
    disabled: bool | None = None  # None: modprobe is not available to tell
    detail: str = ""


class NginxServer(BaseModel):
    """One server block with the TLS settings in effect (inherited from http when unset)."""

    model_config = ConfigDict(frozen=True)

    listen: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    tls: bool = False
    protocols: tuple[str, ...] | None = None  # None: not set anywhere (the build default)
    ciphers: str = ""
    server_tokens: str = ""  # "", "on", "off", "build"
    hsts: bool = False


class NginxFacts(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: str = ""
    servers: tuple[NginxServer, ...] = ()
    error: str = ""


class HostKeyInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: str
    sha256: str
    source: Literal["known_hosts", "pinned_now"]
    store: str


class HostConfigFacts(Facts):
    address: str
    via: Literal["ssh", "local"]
    user: str = ""
    sudo: bool = False
    complete: bool = True
    errors: list[str] = Field(default_factory=list)
    noise: str = ""
    seconds: float = 0.0
    host_key: HostKeyInfo | None = None
    sections: dict[str, SectionInfo] = Field(default_factory=dict)

    meta: dict[str, str] = Field(default_factory=dict)
    os: dict[str, str] = Field(default_factory=dict)
    sshd: dict[str, list[str]] = Field(default_factory=dict)
    accounts: list[Account] = Field(default_factory=list)
    groups: list[Group] = Field(default_factory=list)
    login_defs: dict[str, str] = Field(default_factory=dict)
    pam: list[ConfigFile] = Field(default_factory=list)  # pam.d files, pwquality, limits
    sudoers: list[ConfigFile] = Field(default_factory=list)
    packages: dict[str, str] = Field(default_factory=dict)
    updates: list[PendingUpdate] = Field(default_factory=list)
    update_method: str = ""  # "security-lists", "apt-get", "dnf", "yum"
    apt_config: dict[str, str] = Field(default_factory=dict)
    dnf_automatic: dict[str, str] = Field(default_factory=dict)
    reboot_required: bool = False
    sysctl: dict[str, str] = Field(default_factory=dict)
    files: dict[str, FileStat] = Field(default_factory=dict)
    world_writable: list[FoundFile] = Field(default_factory=list)
    dirs_without_sticky: list[FoundFile] = Field(default_factory=list)
    suid_sgid: list[FoundFile] = Field(default_factory=list)
    unowned: list[FoundFile] = Field(default_factory=list)
    find_clipped: bool = False
    mounts: list[Mount] = Field(default_factory=list)
    fstab: list[Mount] = Field(default_factory=list)
    crypttab: list[str] = Field(default_factory=list)
    block_devices: list[BlockDevice] = Field(default_factory=list)
    nft: list[str] = Field(default_factory=list)
    iptables: list[str] = Field(default_factory=list)
    ufw: list[str] = Field(default_factory=list)
    firewalld: list[str] = Field(default_factory=list)
    listening: list[Listener] = Field(default_factory=list)
    unit_files: dict[str, str] = Field(default_factory=dict)
    running_units: list[str] = Field(default_factory=list)
    processes: list[str] = Field(default_factory=list)
    journald: dict[str, str] = Field(default_factory=dict)
    journal_dir: bool = False
    rsyslog: list[str] = Field(default_factory=list)
    logrotate: list[str] = Field(default_factory=list)
    audit_status: dict[str, str] = Field(default_factory=dict)
    audit_rules: list[str] = Field(default_factory=list)
    cmdline: str = ""
    timedate: dict[str, str] = Field(default_factory=dict)
    time_conf: list[str] = Field(default_factory=list)
    modules: dict[str, KernelModule] = Field(default_factory=dict)
    mac: dict[str, str] = Field(default_factory=dict)
    coredump: dict[str, str] = Field(default_factory=dict)
    nginx: NginxFacts | None = None
    vsftpd: dict[str, str] = Field(default_factory=dict)
    redis: dict[str, list[str]] = Field(default_factory=dict)
    issue: str = ""

    def section(self, name: str) -> SectionInfo:
        return self.sections.get(name, SectionInfo(state=SectionState.NOT_GATHERED))

    @property
    def pam_map(self) -> dict[str, list[str]]:
        return {c.name: list(c.lines) for c in self.pam}

    @property
    def sudoers_map(self) -> dict[str, list[str]]:
        return {c.name: list(c.lines) for c in self.sudoers}

    def installed(self, *names: str) -> list[str]:
        return [n for n in names if n in self.packages]

    def running(self, *names: str) -> list[str]:
        """Which of these services run, from systemd units or, without systemd, processes."""
        found = []
        units = {u.removesuffix(".service").removesuffix(".socket") for u in self.running_units}
        procs = set(self.processes)
        for n in names:
            if n in units or n in procs:
                found.append(n)
        return found
