"""Port sets for discovery and the registered name of a port.

"default" is nmap's 1000 most frequent TCP ports (read from nmap's own frequency table when nmap
is installed) plus the ports below, which that list misses or which matter most to a unit's
assessment: an exposed database or admin interface is the classic way data leaves a network.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

NMAP_SERVICES = Path("/usr/share/nmap/nmap-services")

# port -> why it is always in the default set
EXTRA_PORTS: dict[int, str] = {
    7: "echo", 9: "discard", 13: "daytime", 19: "chargen", 37: "time",
    21: "ftp", 23: "telnet", 69: "tftp (tcp side)", 111: "rpcbind",
    139: "netbios-ssn", 445: "smb", 389: "ldap", 636: "ldaps",
    873: "rsync", 1433: "mssql", 1521: "oracle", 2049: "nfs",
    2375: "docker api (cleartext)", 2376: "docker api (tls)", 2379: "etcd", 2380: "etcd peer",
    3000: "grafana", 3306: "mysql", 3389: "rdp", 5432: "postgresql", 5601: "kibana",
    5672: "amqp", 5900: "vnc", 5901: "vnc", 5902: "vnc", 5903: "vnc", 5984: "couchdb",
    6379: "redis", 6443: "kubernetes api", 8080: "http-alt / jenkins", 8443: "https-alt",
    9000: "php-fpm / minio", 9090: "prometheus", 9200: "elasticsearch", 9300: "elasticsearch",
    10000: "webmin", 10250: "kubelet", 11211: "memcached", 15672: "rabbitmq management",
    27017: "mongodb", 27018: "mongodb", 27019: "mongodb",
}  # fmt: skip

# names of the most common ports when nmap's table is not installed
_BUILTIN_NAMES = {
    7: "echo", 9: "discard", 13: "daytime", 19: "chargen", 21: "ftp", 22: "ssh", 23: "telnet",
    25: "smtp", 37: "time", 53: "domain", 80: "http", 110: "pop3", 111: "rpcbind", 139:
    "netbios-ssn", 143: "imap", 389: "ldap", 443: "https", 445: "microsoft-ds", 465: "smtps",
    587: "submission", 636: "ldapssl", 873: "rsync", 993: "imaps", 995: "pop3s", 1433: "ms-sql-s",
    1521: "oracle", 2049: "nfs", 2375: "docker", 2376: "docker", 2379: "etcd-client", 3000: "ppp",
    3306: "mysql", 3389: "ms-wbt-server", 5432: "postgresql", 5601: "esmagent", 5672: "amqp",
    5900: "vnc", 5984: "couchdb", 6379: "redis", 6443: "sun-sr-https", 8000: "http-alt",
    8080: "http-proxy", 8443: "https-alt", 9200: "wap-wsp", 10000: "snet-sensor-mgmt",
    10250: "unknown", 11211: "memcache", 15672: "unknown", 27017: "mongod",
}  # fmt: skip


@lru_cache(maxsize=1)
def _nmap_table() -> tuple[dict[int, str], list[int]]:
    names: dict[int, str] = {}
    freq: list[tuple[float, int]] = []
    try:
        text = NMAP_SERVICES.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}, []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 3 or not parts[1].endswith("/tcp"):
            continue
        try:
            port, ratio = int(parts[1].split("/")[0]), float(parts[2])
        except ValueError:
            continue
        names.setdefault(port, parts[0])
        freq.append((ratio, port))
    freq.sort(reverse=True)
    return names, [p for _, p in freq]


def top_ports(n: int = 1000) -> list[int]:
    _, ordered = _nmap_table()
    if ordered:
        return ordered[:n]
    return sorted(_BUILTIN_NAMES)  # without nmap's table: the well-known ports we name


def default_ports() -> list[int]:
    return sorted(set(top_ports(1000)) | set(EXTRA_PORTS))


def expand_ports(spec: str) -> str:
    """'default' / 'all' / an explicit list -> an nmap -p argument."""
    if spec == "all":
        return "1-65535"
    if spec == "default":
        return ",".join(map(str, default_ports()))
    return spec


def port_name(port: int) -> str:
    names, _ = _nmap_table()
    return names.get(port) or _BUILTIN_NAMES.get(port, "")
