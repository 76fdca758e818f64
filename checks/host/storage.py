"""Mount options of world-writable and data file systems, and disk encryption."""

from __future__ import annotations

from typing import Any

from checks.host._base import HostCheck, bsi, cis, cisv8, iso, make_check, meta, refs
from scanner.gather.facts import HostConfigFacts
from scanner.model import Result, Severity, failed, not_applicable, passed

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
