"""Certificate analysis only: Assay's `service.tls_cert` against sslyze's `certinfo`, same run.

Both sides examine the same two real nginx sites from the tests (`tests/servers_tls.py`): the
weak one (expired self-signed SHA-1 RSA-1024 certificate without subjectAltName) and the
strong one (ECDSA P-256 for its IP from a test CA with its intermediate; that CA's root is
handed to both tools as the extra trust anchor). Two comparisons, alternating per round:

- in-process: `TlsCertCollector.collect` against sslyze's `Scanner` with the
  `certificate_info` command (sslyze always runs its connectivity test first, as its users
  get it);
- as a user runs it: a fresh process per site, `python -m sslyze --certinfo` against
  `python bench/bench_tls_cert.py --one ADDR:PORT` (imports + one collection + checks).

Medians and ratios are printed and written to bench/results/tls_cert.json, with the findings
each tool reports per site, so that "same findings" is visible next to "how fast".

    python bench/bench_tls_cert.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checks.tls.certificate import (  # noqa: E402
    ChainIncomplete,
    Expired,
    Expiring,
    NameMismatch,
    Sha1Signature,
    Untrusted,
    WeakKey,
)
from scanner.collectors.tls_cert import TlsCertCollector  # noqa: E402
from scanner.model import ServiceInfo, Status, Target, TargetKind  # noqa: E402
from scanner.plugins import CollectContext, FactsView  # noqa: E402
from scanner.scope import ScopeGuard  # noqa: E402

CHECKS = (
    Expired(),
    Expiring(),
    WeakKey(),
    Sha1Signature(),
    NameMismatch(),
    Untrusted(),
    ChainIncomplete(),
)


def assay_once(addr: str, port: int, ca: Path | None) -> list[str]:
    """One collection plus every certificate check; the ids of the failed checks."""
    target = Target(
        kind=TargetKind.SERVICE,
        unit="bench",
        address=addr,
        port=port,
        service=ServiceInfo(name="https"),
    )
    ctx = CollectContext(
        scope=ScopeGuard.of(hosts=[(addr, "bench")]),
        probe_timeout=5.0,
        tls_trust=(ca,) if ca else (),
    )
    facts = asyncio.run(TlsCertCollector().collect(target, ctx))
    view = FactsView(target, {"service.tls_cert": facts})
    failed = []
    for check in CHECKS:
        out = check.evaluate(view, check.Params())
        results = out if isinstance(out, list) else [out]
        if any(r.status is Status.FAIL for r in results):
            failed.append(check.meta.id)
    return failed


def sslyze_once(addr: str, port: int, ca: Path | None) -> list[str]:
    """sslyze's certinfo on one endpoint; the weaknesses it reports, in Assay's words."""
    from sslyze import (
        ScanCommand,
        Scanner,
        ServerNetworkLocation,
        ServerScanRequest,
        ServerScanStatusEnum,
    )
    from sslyze.plugins.certificate_info.implementation import CertificateInfoExtraArgument
    from sslyze.scanner.models import ScanCommandsExtraArguments

    extra = ScanCommandsExtraArguments(
        certificate_info=CertificateInfoExtraArgument(custom_ca_file=ca) if ca else None
    )
    scanner = Scanner()
    scanner.queue_scans(
        [
            ServerScanRequest(
                server_location=ServerNetworkLocation(addr, port, ip_address=addr),
                scan_commands={ScanCommand.CERTIFICATE_INFO},
                scan_commands_extra_arguments=extra,
            )
        ]
    )
    found: list[str] = []
    for result in scanner.get_results():
        if result.scan_status is not ServerScanStatusEnum.COMPLETED or result.scan_result is None:
            return ["(no connection)"]
        attempt = result.scan_result.certificate_info
        if attempt.result is None:
            return [f"(certinfo error: {attempt.error_reason})"]
        dep = attempt.result.certificate_deployments[0]
        leaf = dep.received_certificate_chain[0]
        now = dt.datetime.now(dt.UTC)
        if leaf.not_valid_after_utc < now:
            found.append("tls.cert.expired")
        elif leaf.not_valid_after_utc - now < dt.timedelta(days=30):
            found.append("tls.cert.expiring")
        key = leaf.public_key()
        if getattr(key, "key_size", 4096) < (2048 if "RSA" in type(key).__name__ else 256):
            found.append("tls.cert.weak_key")
        if dep.verified_chain_has_sha1_signature or (
            leaf.signature_hash_algorithm and leaf.signature_hash_algorithm.name == "sha1"
        ):
            found.append("tls.cert.sha1")
        # sslyze 6 folds the name check into path validation (its message says which)
        results = [
            r
            for r in dep.path_validation_results
            if ca is None or "supplied" in r.trust_store.name.lower()
        ]
        errors = " ".join(str(r.validation_error or "") for r in results).lower()
        if "subjectaltname" in errors or "hostname" in errors:
            found.append("tls.cert.name_mismatch")
        if not any(r.validation_error is None for r in results):
            found.append("tls.cert.untrusted")
        if dep.received_chain_has_valid_order is False:
            found.append("chain order")
    return found


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def one_process(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return time.perf_counter() - start


def main() -> None:
    warnings.simplefilter("ignore")  # sslyze's trust store has a negative-serial certificate
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--one", help="ADDR:PORT: run Assay once (used for the process timing)")
    ap.add_argument("--ca", type=Path, default=None)
    args = ap.parse_args()
    if args.one:
        addr, port = args.one.rsplit(":", 1)
        print(json.dumps(assay_once(addr, int(port), args.ca)))
        return
    from tests.servers_tls import HAVE_TLS_SERVERS, tls_sites

    if not HAVE_TLS_SERVERS:
        sys.exit("nginx and openssl are needed (scripts/setup-tests.sh installs them)")
    py = sys.executable
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, tls_sites(Path(tmp)) as sites:
        for label, site in (("weak", sites.weak), ("strong", sites.strong)):
            ca = site.ca_file
            where = f"{site.address}:{site.port}"
            t: dict[str, list[float]] = {"assay": [], "sslyze": [], "assay_p": [], "sslyze_p": []}
            findings: dict[str, Any] = {}
            assay_once(site.address, site.port, ca)  # warm-up: imports, trust store cache
            sslyze_once(site.address, site.port, ca)
            for _ in range(args.rounds):
                dt_a, findings["assay"] = timed(assay_once, site.address, site.port, ca)
                dt_s, findings["sslyze"] = timed(sslyze_once, site.address, site.port, ca)
                t["assay"].append(dt_a)
                t["sslyze"].append(dt_s)
                ca_args = ["--ca", str(ca)] if ca else []
                t["assay_p"].append(
                    one_process([py, str(Path(__file__)), "--one", where, *ca_args])
                )
                sslyze_ca = ["--certinfo_ca_file", str(ca)] if ca else []
                t["sslyze_p"].append(
                    one_process([py, "-m", "sslyze", "--certinfo", *sslyze_ca, where])
                )
            med = {k: statistics.median(v) for k, v in t.items()}
            rows[label] = {
                "median_s": med,
                "ratio_in_process": med["assay"] / med["sslyze"],
                "ratio_process": med["assay_p"] / med["sslyze_p"],
                "findings": findings,
            }
    print(
        f"{'site':8} {'assay':>9} {'sslyze':>9} {'ratio':>6}   {'assay*':>8} {'sslyze*':>8} ratio*"
    )
    for label, r in rows.items():
        m = r["median_s"]
        print(
            f"{label:8} {m['assay'] * 1000:8.1f}ms {m['sslyze'] * 1000:8.1f}ms "
            f"{r['ratio_in_process']:6.2f}   {m['assay_p']:7.2f}s {m['sslyze_p']:7.2f}s "
            f"{r['ratio_process']:.2f}"
        )
        print(f"         assay : {r['findings']['assay']}")
        print(f"         sslyze: {r['findings']['sslyze']}")
    print("(* = one fresh process per site, as a user runs the tool)")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "tls_cert.json").write_text(json.dumps({"rounds": args.rounds, "sites": rows}, indent=2))
    if shutil.which("nproc"):
        cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
        print(f"{cores} cores; other work on the machine affects absolute numbers")


if __name__ == "__main__":
    main()
