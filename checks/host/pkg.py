"""Unnecessary packages and services: legacy cleartext servers and services a server rarely
needs. Package names cover Debian/Ubuntu and the RHEL family.

Kernel modules that a server does not need (rare file systems, rare network protocols,
USB storage) are judged here too: each must be disabled for modprobe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from checks.host._base import bsi, cis, cisv8, iso, make_check, meta, refs
from scanner.gather.facts import HostConfigFacts
from scanner.model import Reference, Result, Severity, failed, not_assessed, passed


@dataclass(frozen=True)
class Rule:
    name: str
    packages: tuple[str, ...]
    title: str
    severity: Severity
    rationale: str
    references: tuple[Reference, ...]


_SVC = refs(bsi("SYS.1.1.A6", "SYS.1.3.A8"), iso("A.8.9", "A.8.19"), cisv8("4.8"))
_CLEAR = "It sends passwords and data in cleartext, readable by anyone on the path."
R = Rule
RULES: tuple[Rule, ...] = (
    R(
        "telnetd",
        ("telnetd", "inetutils-telnetd", "telnetd-ssl", "telnet-server", "busybox-telnetd"),
        "No telnet server is installed",
        Severity.HIGH,
        "Telnet gives a remote shell without encryption. " + _CLEAR,
        refs(cis("2.2.4"), _SVC),
    ),
    R(
        "rsh_server",
        ("rsh-server", "rsh-redone-server"),
        "No rsh/rlogin server is installed",
        Severity.HIGH,
        "rsh and rlogin trust host names and send everything in cleartext.",
        refs(cis("2.2.2"), _SVC),
    ),
    R(
        "rsh_client",
        ("rsh-client", "rsh-redone-client", "rsh"),
        "No rsh client is installed",
        Severity.LOW,
        "rsh clients invite cleartext logins to other hosts. " + _CLEAR,
        refs(cis("2.3.3"), _SVC),
    ),
    R(
        "telnet_client",
        ("telnet", "inetutils-telnet"),
        "No telnet client is installed",
        Severity.INFO,
        "The telnet client is used for cleartext logins. " + _CLEAR,
        refs(cis("2.3.4"), _SVC),
    ),
    R(
        "tftpd",
        ("tftpd", "tftpd-hpa", "atftpd", "tftp-server"),
        "No TFTP server is installed",
        Severity.HIGH,
        "TFTP has no authentication at all: anyone who reaches it reads (and often "
        "writes) its files.",
        refs(cis("2.1.19"), _SVC),
    ),
    R(
        "tftp_client",
        ("tftp", "tftp-hpa", "atftp"),
        "No TFTP client is installed",
        Severity.INFO,
        "TFTP clients are used to move files without authentication.",
        refs(cis("2.3.5"), _SVC),
    ),
    R(
        "xinetd",
        ("xinetd",),
        "xinetd is not installed",
        Severity.MEDIUM,
        "xinetd starts legacy services on demand; they are easy to overlook in reviews.",
        refs(cis("2.1.20"), _SVC),
    ),
    R(
        "inetd",
        ("openbsd-inetd", "inetutils-inetd", "rlinetd"),
        "No inetd super-server is installed",
        Severity.MEDIUM,
        "inetd starts legacy services (telnet, echo, chargen) on demand.",
        refs(_SVC),
    ),
    R(
        "nis",
        ("nis", "ypserv", "ypbind"),
        "NIS is not installed",
        Severity.MEDIUM,
        "NIS distributes account data, including password hashes, without encryption or real "
        "authentication.",
        refs(cis("2.1.10", "2.3.1"), _SVC),
    ),
    R(
        "talk",
        ("talk", "talkd", "inetutils-talk", "inetutils-talkd"),
        "talk is not installed",
        Severity.LOW,
        "talk is a cleartext chat service nobody needs on a server.",
        refs(cis("2.3.2"), _SVC),
    ),
    R(
        "ldap_client_tools",
        ("ldap-utils", "openldap-clients"),
        "LDAP client tools are not installed",
        Severity.INFO,
        "LDAP client tools are only needed on hosts that administer a directory.",
        refs(cis("2.3.6"), _SVC),
    ),
    R(
        "avahi",
        ("avahi-daemon",),
        "Avahi (mDNS/zeroconf) is not installed",
        Severity.LOW,
        "mDNS announces the host and its services to the local network and listens on UDP 5353.",
        refs(cis("2.1.3"), _SVC),
    ),
    R(
        "cups",
        ("cups", "cups-daemon"),
        "The CUPS print server is not installed",
        Severity.LOW,
        "A print server on a server is unneeded attack surface (CUPS listens on 631).",
        refs(cis("2.1.12"), _SVC),
    ),
    R(
        "snmpd",
        ("snmpd", "net-snmp"),
        "The SNMP daemon is not installed",
        Severity.MEDIUM,
        "SNMP v1/v2c authenticate with a cleartext community string and leak the host's "
        "configuration.",
        refs(cis("2.1.17"), _SVC),
    ),
    R(
        "rpcbind",
        ("rpcbind",),
        "rpcbind is not installed",
        Severity.LOW,
        "rpcbind exposes RPC services and has been used for DDoS amplification; only NFS needs it.",
        refs(cis("2.1.14"), _SVC),
    ),
    R(
        "autofs",
        ("autofs",),
        "autofs is not installed",
        Severity.LOW,
        "Automounting lets users attach removable or network file systems without an "
        "administrator.",
        refs(cis("2.1.1"), bsi("SYS.1.3.A3"), _SVC),
    ),
    R(
        "prelink",
        ("prelink",),
        "prelink is not installed",
        Severity.LOW,
        "prelink rewrites binaries, which defeats file-integrity checking and weakens ASLR.",
        refs(cis("1.5.4"), bsi("SYS.1.3.A4")),
    ),
)


# The package to remove on the RHEL family, where it differs or exists at all.
RHEL = {
    "telnetd": "telnet-server",
    "rsh_server": "rsh-server",
    "rsh_client": "rsh",
    "telnet_client": "telnet",
    "tftpd": "tftp-server",
    "tftp_client": "tftp",
    "xinetd": "xinetd",
    "nis": "ypserv ypbind",
    "talk": "talk talk-server",
    "ldap_client_tools": "openldap-clients",
    "avahi": "avahi",
    "cups": "cups",
    "snmpd": "net-snmp",
    "rpcbind": "rpcbind",
    "autofs": "autofs",
    "prelink": "prelink",
}


def _judge_for(rule: Rule) -> Any:
    def judge(h: HostConfigFacts, p: Any) -> Result:
        found = h.installed(*rule.packages)
        if found:
            running = h.running(*found)
            msg = f"installed: {', '.join(f'{n} {h.packages[n]}' for n in found)}"
            if running:
                msg += f"; running: {', '.join(running)}"
            return failed(msg, installed=found, running=running)
        return passed(f"none of {', '.join(rule.packages)} is installed")

    return judge


def _register() -> None:
    for r in RULES:
        make_check(
            meta(
                id=f"host.pkg.{r.name}",
                title=r.title,
                severity=r.severity,
                rationale=r.rationale,
                fix="Remove the package (stop and disable its service first if it runs).",
                snippet=f"apt-get purge {' '.join(r.packages[:2])}"
                + (f"\n# RHEL family: dnf remove {RHEL[r.name]}" if RHEL.get(r.name) else ""),
                verify=f"`dpkg -l {r.packages[0]}`"
                + (f" (RHEL: `rpm -q {RHEL[r.name]}`)" if RHEL.get(r.name) else "")
                + " reports it is not installed.",
                references=r.references,
                tags=("packages",),
            ),
            ("packages",),
            _judge_for(r),
            namespace=globals(),
        )


_register()

# -- kernel modules ---------------------------------------------------------------------------

MODULE_RULES: tuple[tuple[str, str, str, tuple[Reference, ...]], ...] = (
    (
        "cramfs",
        "cramfs file system",
        "Rare file-system drivers are kernel code that no server "
        "needs; a crafted image mounted by a user or automounter can exploit bugs in them.",
        cis("1.1.1.1"),
    ),
    (
        "freevxfs",
        "freevxfs file system",
        "Rare file-system drivers are attack surface a server does not need.",
        cis("1.1.1.2"),
    ),
    (
        "hfs",
        "hfs file system",
        "Rare file-system drivers are attack surface a server does not need.",
        cis("1.1.1.3"),
    ),
    (
        "hfsplus",
        "hfsplus file system",
        "Rare file-system drivers are attack surface a server does not need.",
        cis("1.1.1.4"),
    ),
    (
        "jffs2",
        "jffs2 file system",
        "Rare file-system drivers are attack surface a server does not need.",
        cis("1.1.1.5"),
    ),
    (
        "squashfs",
        "squashfs file system",
        "squashfs is needed only for snaps and live images; "
        "elsewhere it is unneeded kernel attack surface.",
        cis("1.1.1.6"),
    ),
    (
        "udf",
        "udf file system",
        "UDF is for optical media, which a server does not read.",
        cis("1.1.1.7"),
    ),
    (
        "usb-storage",
        "USB storage",
        "USB storage lets anyone with physical access copy data off "
        "the server or bring malware in; BSI asks that removable media are not mounted "
        "automatically.",
        refs(cis("1.1.1.8"), bsi("SYS.1.3.A3")),
    ),
    (
        "dccp",
        "DCCP protocol",
        "Rarely used network protocols have had remotely reachable kernel "
        "bugs; a server should not load them.",
        cis("3.2.1"),
    ),
    (
        "sctp",
        "SCTP protocol",
        "Rarely used network protocols have had remotely reachable kernel "
        "bugs; a server should not load them.",
        cis("3.2.4"),
    ),
    (
        "rds",
        "RDS protocol",
        "RDS has had local privilege escalations; a server should not load it.",
        cis("3.2.3"),
    ),
    (
        "tipc",
        "TIPC protocol",
        "TIPC has had remotely reachable kernel bugs; a server should not load it.",
        cis("3.2.2"),
    ),
)


def _module_judge(name: str) -> Any:
    def judge(h: HostConfigFacts, p: Any) -> Result:
        m = h.modules.get(name)
        if m is None:
            return not_assessed(f"the state of module {name} was not gathered")
        if m.loaded:
            return failed(f"module {name} is loaded", loaded=True, modprobe=m.detail)
        if m.disabled is None:
            return not_assessed(
                f"module {name} is not loaded; modprobe is not available to tell whether it is "
                "disabled"
            )
        if m.disabled:
            return passed(f"module {name} is disabled for modprobe", modprobe=m.detail)
        return failed(f"module {name} can be loaded on demand", loaded=False, modprobe=m.detail)

    return judge


def _register_modules() -> None:
    for name, label, why, references in MODULE_RULES:
        conf = f"/etc/modprobe.d/assay-{name}.conf"
        make_check(
            meta(
                id=f"host.kmod.{name.replace('-', '_')}",
                title=f"The {label} module cannot be loaded",
                severity=Severity.MEDIUM if name == "usb-storage" else Severity.LOW,
                rationale=why,
                fix="Disable the module for modprobe and unload it.",
                snippet=f"printf 'install {name} /bin/false\\nblacklist {name}\\n' > {conf}\n"
                f"modprobe -r {name} 2>/dev/null || true",
                verify=f"`modprobe -n -v {name}` prints `install /bin/false` and "
                f"`lsmod | grep {name.replace('-', '_')}` prints nothing.",
                references=refs(references, iso("A.8.9"), cisv8("4.8")),
                tags=("kernel",),
            ),
            ("modules",),
            _module_judge(name),
            namespace=globals(),
        )


_register_modules()
