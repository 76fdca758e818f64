"""Kernel parameters (sysctl): network stack hardening and exploit mitigations.

The running value is read from /proc/sys, so the checks see what is in force now, whatever
the files under /etc/sysctl.d say. One row of `RULES` is one registered check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from checks.host._base import bsi, cis, cisv8, iso, make_check, meta, refs
from scanner.gather.facts import HostConfigFacts
from scanner.model import Reference, Result, Severity, failed, not_applicable, passed
from scanner.plugins import NoParams


class RouterParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    router: bool = Field(default=False, description="The host routes traffic on purpose")


@dataclass(frozen=True)
class Rule:
    name: str
    key: str
    good: tuple[str, ...]  # accepted values; the first is the one the snippet sets
    title: str
    severity: Severity
    rationale: str
    references: tuple[Reference, ...]
    router_ok: bool = False  # a host tagged as router may differ (forwarding)


_NET = refs(iso("A.8.20", "A.8.9"), cisv8("4.1"), bsi("SYS.1.1.A16"))
_MIT = refs(bsi("SYS.1.3.A4"), iso("A.8.9"), cisv8("10.5"))

R = Rule
RULES: tuple[Rule, ...] = (
    R(
        "ip_forward",
        "net.ipv4.ip_forward",
        ("0",),
        "IPv4 forwarding is off",
        Severity.MEDIUM,
        "A server that forwards packets can be used as a router between networks the firewall "
        "is meant to keep apart.",
        refs(cis("3.3.1"), _NET),
        router_ok=True,
    ),
    R(
        "ipv6_forward",
        "net.ipv6.conf.all.forwarding",
        ("0",),
        "IPv6 forwarding is off",
        Severity.MEDIUM,
        "IPv6 forwarding routes traffic between networks, often past IPv4-only firewall rules.",
        refs(cis("3.3.1"), _NET),
        router_ok=True,
    ),
    R(
        "send_redirects",
        "net.ipv4.conf.all.send_redirects",
        ("0",),
        "The host sends no ICMP redirects",
        Severity.LOW,
        "Only routers need to send redirects; a host that sends them can be abused to steer "
        "other hosts' traffic.",
        refs(cis("3.3.2"), _NET),
    ),
    R(
        "send_redirects_default",
        "net.ipv4.conf.default.send_redirects",
        ("0",),
        "New interfaces send no ICMP redirects",
        Severity.LOW,
        "The default applies to interfaces that appear later (VLANs, VPNs); it should match "
        "the all-interfaces setting.",
        refs(cis("3.3.2"), _NET),
    ),
    R(
        "accept_redirects",
        "net.ipv4.conf.all.accept_redirects",
        ("0",),
        "ICMP redirects are ignored",
        Severity.MEDIUM,
        "Accepted redirects let anyone on the local network rewrite the host's routes and "
        "intercept its traffic.",
        refs(cis("3.3.5"), _NET),
    ),
    R(
        "accept_redirects_default",
        "net.ipv4.conf.default.accept_redirects",
        ("0",),
        "New interfaces ignore ICMP redirects",
        Severity.MEDIUM,
        "Interfaces created later inherit the default; it must refuse redirects too.",
        refs(cis("3.3.5"), _NET),
    ),
    R(
        "ipv6_accept_redirects",
        "net.ipv6.conf.all.accept_redirects",
        ("0",),
        "IPv6 redirects are ignored",
        Severity.MEDIUM,
        "IPv6 redirects allow the same route rewriting as IPv4 ones.",
        refs(cis("3.3.5"), _NET),
    ),
    R(
        "ipv6_accept_redirects_default",
        "net.ipv6.conf.default.accept_redirects",
        ("0",),
        "New interfaces ignore IPv6 redirects",
        Severity.LOW,
        "Interfaces created later inherit the default.",
        refs(cis("3.3.5"), _NET),
    ),
    R(
        "secure_redirects",
        "net.ipv4.conf.all.secure_redirects",
        ("0",),
        "Secure ICMP redirects are ignored",
        Severity.LOW,
        "Secure redirects come from listed gateways, whose addresses are easily spoofed.",
        refs(cis("3.3.6"), _NET),
    ),
    R(
        "secure_redirects_default",
        "net.ipv4.conf.default.secure_redirects",
        ("0",),
        "New interfaces ignore secure ICMP redirects",
        Severity.LOW,
        "Interfaces created later inherit the default.",
        refs(cis("3.3.6"), _NET),
    ),
    R(
        "source_route",
        "net.ipv4.conf.all.accept_source_route",
        ("0",),
        "Source-routed packets are refused",
        Severity.MEDIUM,
        "Source routing lets a sender choose the path of a packet, which defeats address-based "
        "filtering.",
        refs(cis("3.3.8"), _NET),
    ),
    R(
        "source_route_default",
        "net.ipv4.conf.default.accept_source_route",
        ("0",),
        "New interfaces refuse source-routed packets",
        Severity.LOW,
        "Interfaces created later inherit the default.",
        refs(cis("3.3.8"), _NET),
    ),
    R(
        "ipv6_source_route",
        "net.ipv6.conf.all.accept_source_route",
        ("0",),
        "IPv6 source-routed packets are refused",
        Severity.MEDIUM,
        "IPv6 routing headers allow the same filter bypass as IPv4 source routes.",
        refs(cis("3.3.8"), _NET),
    ),
    R(
        "ipv6_source_route_default",
        "net.ipv6.conf.default.accept_source_route",
        ("0",),
        "New interfaces refuse IPv6 source-routed packets",
        Severity.LOW,
        "Interfaces created later inherit the default.",
        refs(cis("3.3.8"), _NET),
    ),
    R(
        "log_martians",
        "net.ipv4.conf.all.log_martians",
        ("1",),
        "Packets with impossible addresses are logged",
        Severity.LOW,
        "Martian packets are a sign of spoofing or misrouting; logging them gives early warning.",
        refs(cis("3.3.9"), _NET, iso("A.8.15")),
    ),
    R(
        "log_martians_default",
        "net.ipv4.conf.default.log_martians",
        ("1",),
        "New interfaces log packets with impossible addresses",
        Severity.LOW,
        "Interfaces created later inherit the default.",
        refs(cis("3.3.9"), _NET),
    ),
    R(
        "rp_filter",
        "net.ipv4.conf.all.rp_filter",
        ("1", "2"),
        "Reverse-path filtering is on",
        Severity.MEDIUM,
        "Reverse-path filtering drops packets whose source address could not have come in on "
        "that interface, the cheapest defence against spoofing.",
        refs(cis("3.3.7"), _NET),
    ),
    R(
        "rp_filter_default",
        "net.ipv4.conf.default.rp_filter",
        ("1", "2"),
        "New interfaces use reverse-path filtering",
        Severity.LOW,
        "Interfaces created later inherit the default.",
        refs(cis("3.3.7"), _NET),
    ),
    R(
        "icmp_broadcasts",
        "net.ipv4.icmp_echo_ignore_broadcasts",
        ("1",),
        "Broadcast pings are ignored",
        Severity.LOW,
        "Answering broadcast pings makes the host an amplifier in smurf attacks.",
        refs(cis("3.3.4"), _NET),
    ),
    R(
        "icmp_bogus",
        "net.ipv4.icmp_ignore_bogus_error_responses",
        ("1",),
        "Bogus ICMP error responses are ignored",
        Severity.INFO,
        "Bogus error responses only fill the log and can hide real events.",
        refs(cis("3.3.3"), _NET),
    ),
    R(
        "syncookies",
        "net.ipv4.tcp_syncookies",
        ("1",),
        "TCP SYN cookies are on",
        Severity.MEDIUM,
        "SYN cookies keep the host reachable during a SYN flood, when the backlog of half-open "
        "connections is full.",
        refs(cis("3.3.10"), _NET),
    ),
    R(
        "ipv6_accept_ra",
        "net.ipv6.conf.all.accept_ra",
        ("0",),
        "IPv6 router advertisements are ignored",
        Severity.LOW,
        "A server with static addressing needs no router advertisements; accepting them lets "
        "any host on the segment become its router.",
        refs(cis("3.3.11"), _NET),
    ),
    R(
        "ipv6_accept_ra_default",
        "net.ipv6.conf.default.accept_ra",
        ("0",),
        "New interfaces ignore IPv6 router advertisements",
        Severity.LOW,
        "Interfaces created later inherit the default.",
        refs(cis("3.3.11"), _NET),
    ),
    R(
        "aslr",
        "kernel.randomize_va_space",
        ("2",),
        "Address space layout randomisation is full",
        Severity.HIGH,
        "ASLR places stack, heap, libraries and mappings at random addresses, so memory "
        "corruption bugs are much harder to exploit; BSI lists it as a basic requirement.",
        refs(cis("1.5.3"), _MIT),
    ),
    R(
        "dmesg_restrict",
        "kernel.dmesg_restrict",
        ("1",),
        "Only root can read the kernel log",
        Severity.LOW,
        "The kernel log leaks addresses and hardware details that help local exploits.",
        refs(_MIT, bsi("SYS.1.3.A14")),
    ),
    R(
        "kptr_restrict",
        "kernel.kptr_restrict",
        ("1", "2"),
        "Kernel pointers are hidden",
        Severity.LOW,
        "Kernel addresses in /proc defeat kernel ASLR for local attackers.",
        refs(_MIT),
    ),
    R(
        "ptrace_scope",
        "kernel.yama.ptrace_scope",
        ("1", "2", "3"),
        "Processes cannot trace unrelated processes",
        Severity.MEDIUM,
        "Unrestricted ptrace lets any compromised process of a user read the memory (keys, "
        "passwords) of that user's other processes.",
        refs(cis("1.5.2"), _MIT),
    ),
    R(
        "unprivileged_bpf",
        "kernel.unprivileged_bpf_disabled",
        ("1", "2"),
        "Unprivileged users cannot load BPF programs",
        Severity.LOW,
        "Unprivileged BPF has been the entry point of several local privilege escalations.",
        refs(_MIT),
    ),
    R(
        "sysrq",
        "kernel.sysrq",
        ("0",),
        "The magic SysRq key is off",
        Severity.INFO,
        "SysRq lets anyone at the console reboot or dump memory without logging in.",
        refs(_MIT),
    ),
    R(
        "perf_event",
        "kernel.perf_event_paranoid",
        ("2", "3", "4"),
        "Unprivileged performance events are restricted",
        Severity.LOW,
        "perf events expose kernel behaviour and have been used for side channels and exploits.",
        refs(_MIT),
    ),
    R(
        "suid_dumpable",
        "fs.suid_dumpable",
        ("0",),
        "Set-user-ID programs leave no core dumps",
        Severity.MEDIUM,
        "A core dump of a privileged program can contain password hashes and keys, readable by "
        "the user who crashed it.",
        refs(cis("1.5.1"), _MIT),
    ),
    R(
        "protected_hardlinks",
        "fs.protected_hardlinks",
        ("1",),
        "Hard links to others' files are restricted",
        Severity.MEDIUM,
        "Without it, users can hard-link privileged files into places where a careless root "
        "script changes them.",
        refs(_MIT),
    ),
    R(
        "protected_symlinks",
        "fs.protected_symlinks",
        ("1",),
        "Symlinks in sticky directories are restricted",
        Severity.MEDIUM,
        "Symlink races in /tmp are a classic way to make root overwrite a file of the "
        "attacker's choosing.",
        refs(_MIT),
    ),
    R(
        "protected_fifos",
        "fs.protected_fifos",
        ("1", "2"),
        "FIFOs in sticky directories are restricted",
        Severity.LOW,
        "Opening attacker-owned FIFOs in world-writable directories enables data spoofing.",
        refs(_MIT),
    ),
    R(
        "protected_regular",
        "fs.protected_regular",
        ("1", "2"),
        "Regular files in sticky directories are restricted",
        Severity.LOW,
        "Opening attacker-owned files with O_CREAT in world-writable directories enables data "
        "spoofing.",
        refs(_MIT),
    ),
    R(
        "bpf_jit_harden",
        "net.core.bpf_jit_harden",
        ("1", "2"),
        "The BPF JIT is hardened",
        Severity.INFO,
        "JIT hardening blinds constants in JIT-compiled BPF, which blocks JIT spraying.",
        refs(_MIT),
    ),
)


def _judge_for(rule: Rule) -> Any:
    def judge(h: HostConfigFacts, p: Any) -> Result:
        value = h.sysctl.get(rule.key)
        if value is None:
            return not_applicable(
                f"the kernel has no {rule.key} (feature not built in or module not loaded)"
            )
        if rule.router_ok and getattr(p, "router", False):
            return not_applicable("the policy declares this host a router (router: true)")
        if value in rule.good:
            return passed(f"{rule.key} = {value}", key=rule.key, value=value)
        return failed(
            f"{rule.key} = {value}; expected {' or '.join(rule.good)}",
            key=rule.key,
            value=value,
            expected=list(rule.good),
        )

    return judge


def _register() -> None:
    for r in RULES:
        make_check(
            meta(
                id=f"host.sysctl.{r.name}",
                title=r.title,
                severity=r.severity,
                rationale=r.rationale,
                fix=f"Set {r.key} = {r.good[0]} now and in a file under /etc/sysctl.d/ so it "
                "survives a reboot.",
                snippet=(
                    f"printf '%s\\n' '{r.key} = {r.good[0]}' > "
                    f"/etc/sysctl.d/60-assay-{r.name}.conf\n"
                    f"sysctl -w {r.key}={r.good[0]}"
                ),
                verify=f"`sysctl {r.key}` prints {r.good[0]}.",
                references=r.references,
                tags=("sysctl",),
            ),
            ("sysctl",),
            _judge_for(r),
            RouterParams if r.router_ok else NoParams,
            namespace=globals(),
        )


_register()
