"""From the gatherer's sections to `HostConfigFacts`.

Each reader takes one section's text and fills its part of the facts; a reader that meets a
line it does not understand skips the line (hosts differ), and a reader that fails outright
is recorded in `errors` without losing the other sections. Lists are bounded so a hostile host
cannot make the stored facts huge.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from scanner.gather.facts import (
    Account,
    BlockDevice,
    ConfigFile,
    FileStat,
    FoundFile,
    Group,
    HostConfigFacts,
    KernelModule,
    Listener,
    Mount,
    PendingUpdate,
    SectionInfo,
    SectionState,
)
from scanner.gather.nginx import servers_of
from scanner.gather.sections import Parsed, Section
from scanner.masking import _SECRET_KEYS as SECRET_KEYS

MAX_ITEMS = 5000  # entries kept per list (accounts, packages, found files ...)
MAX_LINE = 400


def _state(sec: Section) -> SectionState:
    if sec.rc is None:
        return SectionState.TRUNCATED
    if sec.rc == 0:
        return SectionState.OK
    if sec.rc == 127:
        return SectionState.MISSING
    if sec.rc == 126:
        return SectionState.DENIED
    return SectionState.FAILED


def _lines(text: str) -> list[str]:
    return [ln[:MAX_LINE] for ln in text.splitlines()[: MAX_ITEMS * 4]]


def _int(v: str) -> int | None:
    try:
        return int(v)
    except ValueError:
        return None


def _kv(text: str, sep: str | None = None) -> dict[str, str]:
    """`key value` or `key=value` lines, comments dropped; the last value wins."""
    out: dict[str, str] = {}
    for ln in _lines(text):
        s = ln.strip()
        if not s or s.startswith(("#", ";", "==", "[")):
            continue
        if sep:
            k, found, v = s.partition(sep)
            if not found:
                continue
        else:
            parts = s.split(None, 1)
            k, v = parts[0], parts[1] if len(parts) > 1 else ""
        out[k.strip()] = v.strip()
    return out


def _files(text: str) -> dict[str, list[str]]:
    """Output of `== NAME` headers followed by lines."""
    out: dict[str, list[str]] = {}
    current = ""
    for ln in _lines(text):
        if ln.startswith("== "):
            current = ln[3:].strip()
            out.setdefault(current, [])
        elif current and ln.strip() and not ln.lstrip().startswith("#"):
            out[current].append(ln.strip())
    return out


def r_meta(f: HostConfigFacts, text: str, root: str) -> None:
    f.meta = _kv(text)


def r_os_release(f: HostConfigFacts, text: str, root: str) -> None:
    f.os = {k: v.strip("\"'") for k, v in _kv(text, "=").items()}


def r_sshd(f: HostConfigFacts, text: str, root: str) -> None:
    out: dict[str, list[str]] = {}
    for ln in _lines(text):
        parts = ln.strip().split(None, 1)
        if len(parts) == 2 and re.fullmatch(r"[a-z0-9]+", parts[0]):
            out.setdefault(parts[0], []).append(parts[1])
    f.sshd = out


def r_passwd(f: HostConfigFacts, text: str, root: str) -> None:
    shadow = {a.name: a for a in f.accounts}
    accounts = []
    for ln in _lines(text)[:MAX_ITEMS]:
        p = ln.split(":")
        if len(p) < 7 or _int(p[2]) is None or _int(p[3]) is None:
            continue
        base: dict[str, Any] = {}
        if p[0] in shadow:
            base = shadow[p[0]].model_dump(exclude={"name", "uid", "gid", "home", "shell"})
        accounts.append(
            Account(
                name=p[0],
                uid=int(p[2]),
                gid=int(p[3]),
                home=p[5],
                shell=p[6],
                **base,
            )
        )
    f.accounts = accounts


def r_shadow(f: HostConfigFacts, text: str, root: str) -> None:
    by_name = {a.name: a for a in f.accounts}
    for ln in _lines(text)[:MAX_ITEMS]:
        p = ln.split(":")
        if len(p) < 8 or p[1] not in ("empty", "locked", "hash"):
            continue
        acc = by_name.get(p[0])
        data: dict[str, Any] = {
            "pw_state": p[1],
            "scheme": p[2],
            "last_change": _int(p[3]),
            "min_days": _int(p[4]),
            "max_days": _int(p[5]),
            "warn_days": _int(p[6]),
            "inactive": _int(p[7]),
        }
        if acc is not None:
            by_name[p[0]] = acc.model_copy(update=data)
        else:
            by_name[p[0]] = Account(name=p[0], uid=-1, gid=-1, **data)
    f.accounts = list(by_name.values())


def r_group(f: HostConfigFacts, text: str, root: str) -> None:
    groups = []
    for ln in _lines(text)[:MAX_ITEMS]:
        p = ln.split(":")
        if len(p) >= 2 and _int(p[1]) is not None:
            members = tuple(m for m in (p[2] if len(p) > 2 else "").split(",") if m)
            groups.append(Group(name=p[0], gid=int(p[1]), members=members))
    f.groups = groups


def r_login_defs(f: HostConfigFacts, text: str, root: str) -> None:
    f.login_defs = _kv(text)


def r_pam(f: HostConfigFacts, text: str, root: str) -> None:
    f.pam = [ConfigFile(name=k, lines=tuple(v)) for k, v in _files(text).items()]


def r_sudoers(f: HostConfigFacts, text: str, root: str) -> None:
    f.sudoers = [ConfigFile(name=k, lines=tuple(v)) for k, v in _files(text).items()]


def r_packages(f: HostConfigFacts, text: str, root: str) -> None:
    pkgs: dict[str, str] = {}
    for ln in _lines(text):
        p = ln.split("\t")
        if len(p) >= 3 and p[2].strip().startswith(("ii", "hi")) and len(pkgs) < MAX_ITEMS * 4:
            pkgs[p[0].split(":")[0]] = p[1]
    f.packages = pkgs


_INST = re.compile(r"^Inst (\S+) (?:\[([^\]]*)\] )?\((\S+) ([^)]*)\)")


def r_updates(f: HostConfigFacts, text: str, root: str) -> None:
    ups: dict[str, PendingUpdate] = {}
    for ln in _lines(text)[:MAX_ITEMS]:
        if ln.startswith("method "):
            f.update_method = ln.split(None, 1)[1].strip()
            continue
        m = _INST.match(ln)
        if m:
            origin = m.group(4)
            security = "-security" in origin.lower() or "debian-security" in origin.lower()
            ups[m.group(1)] = PendingUpdate(
                name=m.group(1),
                current=m.group(2) or "",
                candidate=m.group(3),
                security=security or f.update_method == "security-lists",
            )
        elif ln.strip() and not ln.startswith(("Inst", "Last metadata")):
            # dnf/yum updateinfo: "<advisory> <severity>/Sec. <package-nevra>"
            p = ln.split()
            if len(p) >= 3 and ("sec" in p[1].lower() or "security" in p[1].lower()):
                ups[p[2]] = PendingUpdate(name=p[2], candidate=p[2], security=True)
    f.updates = list(ups.values())


def r_apt_config(f: HostConfigFacts, text: str, root: str) -> None:
    out = {}
    for ln in _lines(text):
        k, _, v = ln.partition(" ")
        out[k.strip()] = v.strip().rstrip(";").strip('"')
    f.apt_config = out


def r_dnf_automatic(f: HostConfigFacts, text: str, root: str) -> None:
    f.dnf_automatic = {k.strip(): v.strip() for k, v in _kv(text, "=").items()}


def r_reboot(f: HostConfigFacts, text: str, root: str) -> None:
    f.reboot_required = "reboot-required" in text


def r_sysctl(f: HostConfigFacts, text: str, root: str) -> None:
    out = {}
    for ln in _lines(text):
        k, found, v = ln.partition(" = ")
        if found:
            out[k.strip()] = " ".join(v.split())
    f.sysctl = out


def r_files(f: HostConfigFacts, text: str, root: str) -> None:
    out: dict[str, FileStat] = {}
    for ln in _lines(text):
        p = ln.split("|", 6)
        if len(p) != 7:
            continue
        path = p[6]
        if p[0] == "missing":
            out[path] = FileStat(path=path, exists=False)
            continue
        try:
            mode = int(p[0], 8)
        except ValueError:
            continue
        out[path] = FileStat(
            path=path,
            exists=True,
            mode=mode,
            uid=_int(p[1]),
            gid=_int(p[2]),
            owner=p[3],
            group=p[4],
            kind=p[5],
        )
    f.files = out


def r_find(f: HostConfigFacts, text: str, root: str) -> None:
    lines = _lines(text)
    ww, dirs, suid = [], [], []
    for ln in lines:
        p = ln.split(" ", 3)
        if len(p) != 4:
            continue
        path = p[3][len(root) :] if root and p[3].startswith(root) else p[3]
        item = FoundFile(path=path, mode=p[1], owner=p[2])
        if p[0] == "W":
            ww.append(item)
        elif p[0] == "D":
            dirs.append(item)
        elif p[0] == "S":
            suid.append(item)
    f.world_writable, f.dirs_without_sticky, f.suid_sgid = ww, dirs, suid
    f.find_clipped = len(lines) >= MAX_ITEMS


def _mounts(text: str) -> list[Mount]:
    out = []
    for ln in _lines(text)[:MAX_ITEMS]:
        p = ln.split()
        if len(p) >= 4:
            out.append(Mount(source=p[0], target=p[1], fstype=p[2], options=tuple(p[3].split(","))))
    return out


def r_mounts(f: HostConfigFacts, text: str, root: str) -> None:
    f.mounts = _mounts(text)


def r_fstab(f: HostConfigFacts, text: str, root: str) -> None:
    f.fstab = _mounts(text)


def r_crypttab(f: HostConfigFacts, text: str, root: str) -> None:
    f.crypttab = [ln.split()[0] for ln in _lines(text) if ln.strip()]


def r_lsblk(f: HostConfigFacts, text: str, root: str) -> None:
    out = []
    for ln in _lines(text)[:MAX_ITEMS]:
        p = ln.split(" ")
        if len(p) >= 2:
            out.append(
                BlockDevice(
                    name=p[0],
                    type=p[1],
                    fstype=p[2] if len(p) > 2 else "",
                    mountpoint=p[3] if len(p) > 3 else "",
                )
            )
    f.block_devices = out


def r_fw_nft(f: HostConfigFacts, text: str, root: str) -> None:
    f.nft = [ln.strip() for ln in _lines(text) if ln.strip()][:MAX_ITEMS]


def r_fw_iptables(f: HostConfigFacts, text: str, root: str) -> None:
    f.iptables = [ln.strip() for ln in _lines(text) if ln.strip()][:MAX_ITEMS]


def r_fw_ufw(f: HostConfigFacts, text: str, root: str) -> None:
    f.ufw = [ln.strip() for ln in _lines(text) if ln.strip()][:MAX_ITEMS]


def r_fw_firewalld(f: HostConfigFacts, text: str, root: str) -> None:
    f.firewalld = [ln.strip() for ln in _lines(text) if ln.strip()][:MAX_ITEMS]


def _split_addr(local: str) -> tuple[str, int] | None:
    addr, _, port = local.rpartition(":")
    if not port.isdigit():
        return None
    addr = addr.strip("[]")
    if "%" in addr:
        addr = addr.split("%", 1)[0]
    return addr, int(port)


def r_listening(f: HostConfigFacts, text: str, root: str) -> None:
    out = []
    for ln in _lines(text)[:MAX_ITEMS]:
        p = ln.split()
        if len(p) < 5:
            continue
        if p[0] in ("tcp", "udp", "tcp6", "udp6") and p[1] in ("LISTEN", "UNCONN"):
            proto, local = p[0].rstrip("6"), p[4]  # ss: proto state recvq sendq local peer
        elif p[0].startswith(("tcp", "udp")) and len(p) >= 4:
            proto, local = p[0].rstrip("6"), p[3]  # netstat: proto recvq sendq local ...
        else:
            continue
        where = _split_addr(local)
        if where is None:
            continue
        m = re.search(r'users:\(\("([^"]+)"', ln) or re.search(r"\d+/(\S+)\s*$", ln)
        out.append(
            Listener(proto=proto, address=where[0], port=where[1], process=m.group(1) if m else "")
        )
    f.listening = out


def r_units(f: HostConfigFacts, text: str, root: str) -> None:
    files: dict[str, str] = {}
    running: list[str] = []
    in_running = False
    for ln in _lines(text):
        if ln.startswith("== running"):
            in_running = True
            continue
        p = ln.split()
        if not p:
            continue
        if p[0] in ("●", "*") and len(p) > 1:
            p = p[1:]
        if in_running:
            running.append(p[0])
        elif len(p) >= 2:
            files[p[0]] = p[1]
    f.unit_files, f.running_units = files, running[:MAX_ITEMS]


def r_processes(f: HostConfigFacts, text: str, root: str) -> None:
    f.processes = sorted({ln.strip() for ln in _lines(text) if ln.strip()})[:MAX_ITEMS]


def r_journald(f: HostConfigFacts, text: str, root: str) -> None:
    conf: dict[str, str] = {}
    for name, lines in _files(text).items():
        if name.startswith("dir "):
            continue
        conf.update(_kv("\n".join(lines), "="))
    f.journald = conf
    f.journal_dir = "== dir /var/log/journal" in text


def r_rsyslog(f: HostConfigFacts, text: str, root: str) -> None:
    f.rsyslog = [ln.strip() for ln in _lines(text) if ln.strip()][:MAX_ITEMS]


def r_logrotate(f: HostConfigFacts, text: str, root: str) -> None:
    f.logrotate = [ln.strip() for ln in _lines(text) if ln.strip() and not ln.startswith("==")]


def r_audit(f: HostConfigFacts, text: str, root: str) -> None:
    head, _, rules = text.partition("== rules")
    f.audit_status = _kv(head)
    f.audit_rules = [ln.strip() for ln in _lines(rules) if ln.strip() and ln.strip() != "No rules"]


def r_cmdline(f: HostConfigFacts, text: str, root: str) -> None:
    f.cmdline = text.strip()[:4096]


def r_time(f: HostConfigFacts, text: str, root: str) -> None:
    head, sep, rest = text.partition("== ")
    f.timedate = _kv(head, "=")
    f.time_conf = [ln.strip() for ln in _lines(sep + rest) if ln.strip()][:MAX_ITEMS]


def r_modules(f: HostConfigFacts, text: str, root: str) -> None:
    out = {}
    for ln in _lines(text):
        p = ln.split("|", 2)
        if len(p) != 3:
            continue
        detail = p[2].strip().strip(";")
        disabled: bool | None
        if detail == "?":
            disabled = None
        else:
            disabled = bool(re.search(r"install\s+/(usr/)?bin/(true|false)", detail)) or (
                "not found" in detail
            )
        out[p[0]] = KernelModule(
            name=p[0], loaded=p[1] == "loaded", disabled=disabled, detail=detail[:200]
        )
    f.modules = out


def r_mac(f: HostConfigFacts, text: str, root: str) -> None:
    f.mac = _kv(text)


def r_coredump(f: HostConfigFacts, text: str, root: str) -> None:
    f.coredump = _kv(text, "=")


def r_nginx(f: HostConfigFacts, text: str, root: str) -> None:
    f.nginx = servers_of(text)


def r_vsftpd(f: HostConfigFacts, text: str, root: str) -> None:
    f.vsftpd = {k.lower(): v for k, v in _kv(text, "=").items()}


def r_redis(f: HostConfigFacts, text: str, root: str) -> None:
    out: dict[str, list[str]] = {}
    for ln in _lines(text):
        if ln.startswith("=="):
            out.setdefault("==", []).append(ln[3:].strip())
            continue
        parts = ln.strip().split(None, 1)
        if parts:
            key = parts[0].lower()
            if key in ("requirepass", "masterauth"):
                key += "_set"  # the value was replaced by <set> on the host
            out.setdefault(key, []).append(parts[1] if len(parts) > 1 else "")
    f.redis = out


def r_issue(f: HostConfigFacts, text: str, root: str) -> None:
    f.issue = text[:4096]


def _drop_secret_keys(facts: HostConfigFacts) -> None:
    """Drop entries whose key looks like a secret's (e.g. sshd's kerberosorlocalpasswd).

    Stored facts mask the values of such keys, so keeping them would make a stored scan differ
    from the gathered one; none of them is judged by a check.
    """
    for name in type(facts).model_fields:
        value = getattr(facts, name)
        if isinstance(value, dict):
            for key in [k for k, v in value.items() if SECRET_KEYS.search(str(k)) and _text(v)]:
                del value[key]


def _text(v: object) -> bool:
    """Only text (or lists of text) is masked; nested models keep their own keys."""
    return isinstance(v, str) or (
        isinstance(v, list | tuple) and any(isinstance(x, str) for x in v)
    )


Reader = Callable[[HostConfigFacts, str, str], None]
READERS: dict[str, Reader] = {
    name.removeprefix("r_"): fn
    for name, fn in dict(globals()).items()
    if name.startswith("r_") and callable(fn)
}
# shadow is read before passwd so passwd can merge the two into one account list
ORDER = ("shadow", "passwd")


def to_facts(
    parsed: Parsed, facts: HostConfigFacts, expected: tuple[str, ...], root: str = ""
) -> HostConfigFacts:
    """Fill `facts` from the parsed sections; sections that never arrived are marked."""
    names = [n for n in ORDER if n in parsed.sections] + [
        n for n in parsed.sections if n not in ORDER
    ]
    for name in names:
        sec = parsed.sections[name]
        state = _state(sec)
        note = ""
        if state is not SectionState.OK:
            note = next((ln.strip() for ln in sec.text.splitlines() if ln.strip()), "")[:200]
        facts.sections[name] = SectionInfo(
            state=state, rc=sec.rc, note=note, clipped=sec.clipped, non_utf8=sec.non_utf8
        )
        reader = READERS.get(name)
        if reader is None:
            continue
        if state in (SectionState.MISSING, SectionState.DENIED):
            continue
        try:
            reader(facts, sec.text, root)
        except Exception as exc:  # one unreadable section must not lose the others
            facts.errors.append(f"section {name}: could not be read ({type(exc).__name__}: {exc})")
        if sec.non_utf8:
            facts.errors.append(
                f"section {name}: output was not UTF-8 (undecodable bytes replaced)"
            )
        if sec.truncated:
            facts.complete = False
    for name in expected:
        if name not in parsed.sections:
            facts.sections[name] = SectionInfo(state=SectionState.NOT_GATHERED)
            facts.complete = False
    if parsed.noise:
        facts.noise = parsed.noise[:2048]
    _drop_secret_keys(facts)
    facts.errors.extend(parsed.problems)
    return facts
