"""Host firewall (nftables, iptables, ufw, firewalld) and the services listening on the
network compared with what the unit expects."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from checks.host._base import HostCheck, bsi, cis, cisv8, gate, iso, meta, refs
from scanner.gather.facts import HostConfigFacts, SectionState
from scanner.model import Result, Severity, failed, passed

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
