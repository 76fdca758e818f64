"""Database and administration services reachable from the scanner's network position.

A service is recognised by its discovered name (nmap's, or Assay's behaviour guess), by a
product name for services nmap reports as plain "http" (Elasticsearch, CouchDB, Webmin ...),
or by its well-known port when identification was weak: discovery only guessed from the port
table, or nmap saw a generic HTTP server without a product. A port that nmap positively
identified as something else is not reported under that port's usual owner.

From loopback every listening port is "exposed" to the scanner: the check reports what the
scanner can reach, which is why the messages say "reachable from the scanner's network
position" rather than "exposed to the Internet".
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, Field

from scanner.collectors.hostsvc import HostServices, ServiceEntry
from scanner.model import (
    Reference,
    Remediation,
    Result,
    Severity,
    TargetKind,
    failed,
    passed,
)
from scanner.plugins import Check, CheckMeta, FactsView

FACTS = "host.services"

# Names that say "a web server" without saying which application it is.
_GENERIC = frozenset({"", "unknown", "tcpwrapped", "http", "https", "ssl", "http-alt"})


class ExposedService(BaseModel):
    """One row of the table: what to call it, and how to recognise it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    ports: tuple[int, ...] = ()
    protocol: str = "tcp"
    names: tuple[str, ...] = ()  # discovered service names (nmap's or a guess)
    products: tuple[str, ...] = ()  # case-insensitive substrings of the product
    kind: str = "database"  # "database", "admin", "remote-desktop", "orchestration"
    severity: Severity | None = None  # overrides the check's default


DEFAULT_TABLE: tuple[ExposedService, ...] = (
    ExposedService(label="Redis", ports=(6379,), names=("redis",), products=("redis",)),
    ExposedService(
        label="PostgreSQL", ports=(5432,), names=("postgresql",), products=("postgresql",)
    ),
    ExposedService(
        label="MySQL/MariaDB", ports=(3306,), names=("mysql",), products=("mysql", "mariadb")
    ),
    ExposedService(
        label="Microsoft SQL Server",
        ports=(1433,),
        names=("ms-sql-s",),
        products=("microsoft sql server",),
    ),
    ExposedService(
        label="Oracle Database",
        ports=(1521,),
        names=("oracle", "oracle-tns"),
        products=("oracle tns",),
    ),
    ExposedService(
        label="MongoDB",
        ports=(27017, 27018),
        names=("mongodb", "mongod"),
        products=("mongodb",),
    ),
    ExposedService(
        label="Elasticsearch",
        ports=(9200, 9300),
        names=("elasticsearch",),
        products=("elasticsearch",),
    ),
    ExposedService(
        label="memcached", ports=(11211,), names=("memcached", "memcache"), products=("memcache",)
    ),
    ExposedService(label="CouchDB", ports=(5984,), names=("couchdb",), products=("couchdb",)),
    ExposedService(label="Cassandra", ports=(9042,), names=("cassandra",)),
    ExposedService(label="InfluxDB", ports=(8086,), products=("influxdb",)),
    ExposedService(label="Neo4j", ports=(7474, 7687), names=("neo4j",), products=("neo4j",)),
    ExposedService(
        label="Docker API (cleartext)",
        ports=(2375,),
        names=("docker",),
        products=("docker",),
        kind="orchestration",
        severity=Severity.CRITICAL,
    ),
    ExposedService(
        label="Docker API (TLS)", ports=(2376,), names=("docker-s",), kind="orchestration"
    ),
    ExposedService(
        label="Kubernetes kubelet", ports=(10250,), products=("kubelet",), kind="orchestration"
    ),
    ExposedService(
        label="etcd",
        ports=(2379, 2380),
        names=("etcd", "etcd-client", "etcd-server"),
        products=("etcd",),
        kind="orchestration",
    ),
    ExposedService(
        label="RabbitMQ management", ports=(15672,), products=("rabbitmq",), kind="admin"
    ),
    ExposedService(label="VNC", ports=(5900, 5901), names=("vnc",), kind="remote-desktop"),
    ExposedService(label="RDP", ports=(3389,), names=("ms-wbt-server",), kind="remote-desktop"),
    ExposedService(
        label="Webmin", ports=(10000,), names=("webmin",), products=("miniserv",), kind="admin"
    ),
)


class ExposureParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed: list[str] = Field(
        default_factory=list,
        description=(
            "services this unit accepts as reachable: 'port/proto' (e.g. '5432/tcp'), a "
            "discovered service name ('postgresql') or a table label ('PostgreSQL')"
        ),
    )
    table: list[ExposedService] = Field(
        default_factory=lambda: list(DEFAULT_TABLE),
        description="database and administration services to report",
    )


def _match(svc: ServiceEntry, row: ExposedService) -> str:
    """How `svc` was recognised as `row` ('name', 'product', 'port'), or '' if it was not."""
    if svc.protocol != row.protocol:
        return ""
    name, product = svc.name.lower(), svc.product.lower()
    if name and name in row.names:
        return "name"
    if product and any(p in product for p in row.products):
        return "product"
    if svc.port in row.ports:
        weak = svc.method != "probed" or (name in _GENERIC and not product)
        return "port" if weak else ""
    return ""


def _allowed(svc: ServiceEntry, row: ExposedService, allowed: set[str]) -> bool:
    keys = {f"{svc.port}/{svc.protocol}", str(svc.port), svc.name.lower(), row.label.lower()}
    return bool(keys & allowed)


def exposed(
    services: list[ServiceEntry], table: list[ExposedService]
) -> Iterator[tuple[ServiceEntry, ExposedService, str]]:
    """Each service that some row recognises, with the first matching row."""
    for svc in services:
        for row in table:
            how = _match(svc, row)
            if how:
                yield svc, row, how
                break


class DbAdminPorts(Check):
    """One finding per database or administration service the scanner can reach."""

    meta = CheckMeta(
        id="net.exposed.db_admin_ports",
        title="No database or administration ports are reachable",
        target_kind=TargetKind.HOST,
        facts=(FACTS,),
        severity=Severity.HIGH,
        rationale=(
            "Databases, caches, container APIs and remote-desktop or admin consoles are meant "
            "for a few application servers and administrators; reachable from a wider network "
            "they are exposed to password guessing, unauthenticated access and exploits of "
            "their frequent vulnerabilities."
        ),
        remediation=Remediation(
            text=(
                "Bind the service to the addresses its clients use, and allow its port only "
                "from those clients in the host and network firewalls; reach admin consoles "
                "through a VPN or bastion host."
            ),
            snippet=(
                "# nftables: allow PostgreSQL only from the application server\n"
                "nft add rule inet filter input ip saddr 10.0.1.10 tcp dport 5432 accept\n"
                "nft add rule inet filter input tcp dport 5432 drop\n"
            ),
            snippet_lang="shell",
        ),
        references=(
            Reference(scheme="cwe", id="CWE-668"),
            Reference(scheme="iso27001:2022", id="A.8.20"),
            Reference(scheme="iso27001:2022", id="A.8.22"),
            Reference(scheme="cis-v8", id="4.4"),
            Reference(scheme="cis-v8", id="12.2"),
            Reference(scheme="bsi", id="NET.1.1.A8"),
            Reference(scheme="bsi", id="SYS.1.1.A19"),
        ),
        tags=("exposure", "network", "database"),
    )
    Params = ExposureParams

    def evaluate(self, facts: FactsView, params: ExposureParams) -> list[Result]:
        host = facts.get(FACTS, HostServices)
        allowed = {a.strip().lower() for a in params.allowed}
        results: list[Result] = []
        accepted: list[str] = []
        for svc, row, how in exposed(host.services, params.table):
            detail = f"{svc.port}/{svc.protocol}"
            if _allowed(svc, row, allowed):
                accepted.append(f"{detail} ({row.label})")
                continue
            results.append(
                failed(
                    f"{row.label} on {host.address}:{detail} is reachable from the scanner's "
                    "network position",
                    detail=detail,
                    severity=row.severity,
                    port=svc.port,
                    protocol=svc.protocol,
                    service=row.label,
                    kind=row.kind,
                    recognised_by=how,
                    name=svc.name or None,
                    product=svc.product or None,
                    version=svc.version or None,
                )
            )
        if results:
            return results
        if accepted:
            return [
                passed(
                    f"only accepted database/admin services are reachable on {host.address} "
                    "from the scanner's network position",
                    accepted=accepted,
                )
            ]
        return [
            passed(
                f"no database or administration service on {host.address} is reachable from "
                "the scanner's network position",
                open=[f"{s.port}/{s.protocol}" for s in host.services],
            )
        ]
