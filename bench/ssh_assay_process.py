"""Assay's side of bench_ssh.py: one process that audits the SSH servers given as ADDR:PORT.

    python bench/ssh_assay_process.py ADDR:PORT [ADDR:PORT ...]

It imports only what Assay's SSH audit needs (the SSH collector and the ten ssh.* checks, as
`assay scan` runs them on an SSH service) and nothing of the benchmark harness, so the process
start-up that is measured is Assay's own. Prints JSON: the findings per server, the import time
and the audit time inside the process.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def assay_audit(servers: list[tuple[str, int]]) -> dict[str, Any]:
    """Assay's SSH audit of several servers in this process, concurrently as the runner does.

    Imports only the SSH collector and checks (what `assay scan` runs on an SSH service); the
    time inside the process is reported apart from interpreter start-up and imports.
    """
    t0 = time.perf_counter()
    from checks.ssh.advisory import AlgorithmAdvisory
    from checks.ssh.auth import PasswordAuth
    from checks.ssh.banner import BannerPrelogin, BannerVersion
    from checks.ssh.crypto import CipherWeak, KexWeak, MacWeak
    from checks.ssh.hostkey import HostKeyRsaSha1, HostKeyWeak
    from checks.ssh.terrapin import Terrapin
    from scanner.collectors.ssh import SshCollector
    from scanner.model import ServiceInfo, Target, TargetKind
    from scanner.plugins import Check, CollectContext, FactsView
    from scanner.scope import ScopeGuard

    checks: list[Check] = [
        KexWeak(), CipherWeak(), MacWeak(), HostKeyWeak(), HostKeyRsaSha1(), PasswordAuth(),
        Terrapin(), BannerVersion(), BannerPrelogin(), AlgorithmAdvisory(),
    ]  # fmt: skip
    t_import = time.perf_counter() - t0
    collector = SshCollector()
    targets = [
        Target(
            kind=TargetKind.SERVICE,
            unit="bench",
            address=a,
            port=p,
            service=ServiceInfo(name="ssh"),
        )
        for a, p in servers
    ]
    ctx = CollectContext(
        scope=ScopeGuard.of(hosts=[(a, "bench") for a, _ in servers]), probe_timeout=5
    )

    async def all_targets() -> list[Any]:
        return await asyncio.gather(*(collector.collect(t, ctx) for t in targets))

    t1 = time.perf_counter()
    facts = asyncio.run(all_targets())
    out: dict[str, Any] = {}
    for target, f in zip(targets, facts, strict=True):
        view = FactsView(target, {"service.ssh": f})
        findings = []
        for check in checks:
            res = check.evaluate(view, check.Params())
            for r in [res] if not isinstance(res, list) else res:
                findings.append(
                    {"check": check.meta.id, "status": r.status.value, "detail": r.detail}
                )
        out[f"{target.address}:{target.port}"] = {"findings": findings}
    return {
        "results": out,
        "import_seconds": t_import,
        "audit_seconds": time.perf_counter() - t1,
    }


if __name__ == "__main__":
    spec = [(s.rsplit(":", 1)[0], int(s.rsplit(":", 1)[1])) for s in sys.argv[1:]]
    print(json.dumps(assay_audit(spec)))
