"""TLS audit: Assay against sslyze and testssl.sh on the same two real nginx sites, one run.

The sites are the tests' weak and strong nginx sites (`tests/servers_tls.py`). Per site:

- Assay: the TLS collectors (`service.tls`, and `service.tls_cert` when installed) and every
  `tls.*` check from the registry, in process, as `assay scan` runs them on a TLS service;
- sslyze: `sslyze --json_out FILE ADDR:PORT` (its default full scan), a fresh process;
- testssl.sh: `testssl --quiet --warnings off --color 0 --jsonfile FILE ADDR:PORT` (its
  default run), a fresh process, once per site (it takes minutes).

Printed and written to bench/results/tls.json: median wall times, the ratios, and every
finding testssl.sh rates LOW or worse with the Assay check that covers it and whether that
check failed on the same site.

    python bench/bench_tls.py [--rounds 3] [--skip-testssl]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scanner.model import ServiceInfo, Status, Target, TargetKind  # noqa: E402
from scanner.plugins import CollectContext, FactsView, load_registry  # noqa: E402
from scanner.scope import ScopeGuard  # noqa: E402
from tests.servers_tls import TlsSite, tls_sites  # noqa: E402

TESTSSL = shutil.which("testssl") or shutil.which("testssl.sh")
SSLYZE = shutil.which("sslyze")

# testssl.sh finding id (prefix) -> Assay checks that report the same weakness.
COVERAGE: dict[str, tuple[str, ...]] = {
    "SSLv2": ("tls.protocol.legacy",),
    "SSLv3": ("tls.protocol.legacy",),
    "TLS1": ("tls.protocol.legacy",),
    "TLS1_1": ("tls.protocol.legacy",),
    "TLS1_3": ("tls.protocol.no_tls13",),
    "cipherlist_NULL": ("tls.cipher.null_anon_export",),
    "cipherlist_aNULL": ("tls.cipher.null_anon_export",),
    "cipherlist_EXPORT": ("tls.cipher.null_anon_export",),
    "cipherlist_LOW": ("tls.cipher.rc4_3des",),
    "cipherlist_3DES_IDEA": ("tls.cipher.rc4_3des",),
    "cipherlist_AVERAGE": ("tls.cipher.no_forward_secrecy", "tls.profile"),
    "cipherlist_OBSOLETED": ("tls.profile",),
    "FS": ("tls.cipher.no_forward_secrecy",),
    "DH_groups": ("tls.dh.weak",),
    "LOGJAM": ("tls.dh.weak",),
    "FREAK": ("tls.cipher.null_anon_export",),
    "RC4": ("tls.cipher.rc4_3des",),
    "SWEET32": ("tls.cipher.rc4_3des",),
    "BEAST": ("tls.cipher.cbc_tls10",),
    "BEAST_CBC_TLS1": ("tls.cipher.cbc_tls10",),
    "POODLE_SSL": ("tls.protocol.legacy",),
    "LUCKY13": ("tls.profile",),
    "cipher_order": ("tls.cipher.no_server_order",),
    "cert_signatureAlgorithm": ("tls.cert.sha1",),
    "cert_keySize": ("tls.cert.weak_key",),
    "cert_subjectAltName": ("tls.cert.name_mismatch",),
    "cert_trust": ("tls.cert.name_mismatch",),
    "cert_chain_of_trust": ("tls.cert.untrusted",),
    "cert_expirationStatus": ("tls.cert.expired",),
    "cert_notAfter": ("tls.cert.expired",),
    # on a self-signed certificate no issuer could revoke it: untrusted's finding there
    "cert_revocation": ("tls.cert.no_revocation", "tls.cert.untrusted"),
    "OCSP_stapling": ("tls.ocsp_stapling",),
    "secure_renego": ("tls.renegotiation.insecure",),
    "CRIME_TLS": ("tls.compression",),
    "heartbleed": ("tls.heartbleed",),
    "fallback_SCSV": ("tls.fallback_scsv",),
    "CCS": ("tls.ccs_injection",),
    "ROBOT": ("tls.robot",),
}
# Findings outside a TLS handshake audit, with where Assay covers them (or why not).
ELSEWHERE: dict[str, str] = {
    "HSTS": "HTTP layer: Assay's web checks on the site's URL",
    "security_headers": "HTTP layer: Assay's web checks on the site's URL",
    "DNS_CAArecord": "DNS: not queried (scans never resolve names unless configured)",
    "cipher_negotiated": "testssl.sh meta finding (its default hello matched nothing)",
}
# Findings where Assay's check deliberately passes on the same facts.
BY_DESIGN: dict[str, str] = {
    "cipher_order": "passes by design: every accepted suite is strong, so the client's choice "
    "is harmless (Mozilla recommends client order)",
}
SEVERE = {"LOW", "MEDIUM", "HIGH", "CRITICAL"}


def target(site: TlsSite) -> Target:
    return Target(
        kind=TargetKind.SERVICE,
        unit="bench",
        address=site.address,
        port=site.port,
        service=ServiceInfo(name="https"),
    )


def assay_audit(site: TlsSite) -> tuple[float, dict[str, set[Status]]]:
    reg = load_registry()
    collectors = [
        c for cid, c in reg.collectors.items() if cid in ("service.tls", "service.tls_cert")
    ]
    checks = {cid: c for cid, c in reg.checks.items() if cid.startswith("tls.")}
    tgt = target(site)
    trust = (site.ca_file,) if site.ca_file else ()
    ctx = CollectContext(scope=ScopeGuard.of(hosts=[(site.address, "bench")]), probe_timeout=5)
    if hasattr(ctx, "tls_trust"):
        ctx.tls_trust = trust

    async def gather() -> dict[str, Any]:
        return dict(
            zip(
                [c.id for c in collectors],
                await asyncio.gather(*(c.collect(tgt, ctx) for c in collectors)),
                strict=True,
            )
        )

    start = time.perf_counter()
    facts = asyncio.run(gather())
    view = FactsView(tgt, facts)
    outcome: dict[str, set[Status]] = {}
    for cid, check in checks.items():
        if check.applies(tgt, view):
            res = check.evaluate(view, check.Params())
            results = [res] if hasattr(res, "status") else list(res)
            outcome[cid] = {r.status for r in results}
    return time.perf_counter() - start, outcome


def run_tool(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)
    return time.perf_counter() - start


def testssl_findings(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    rows = json.loads(path.read_text() or "[]")
    return [r for r in rows if r.get("severity") in SEVERE]


def coverage(
    findings: list[dict[str, str]], outcome: dict[str, set[Status]]
) -> list[dict[str, str]]:
    table = []
    for f in findings:
        fid = f["id"]
        checks = COVERAGE.get(fid) or next(
            (v for k, v in COVERAGE.items() if fid.startswith(k + "_")), ()
        )
        if checks:
            failed = [c for c in checks if Status.FAIL in outcome.get(c, set())]
            found = "yes" if failed else "NO"
            by = ", ".join(failed or checks)
            if not failed and fid in BY_DESIGN:
                found, by = "by design", f"{by} {BY_DESIGN[fid]}"
        else:
            found, by = "-", ELSEWHERE.get(fid, "not mapped")
        table.append({"id": fid, "severity": f["severity"], "finding": f["finding"][:70],
                      "assay": by, "found": found})  # fmt: skip
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-testssl", action="store_true")
    args = ap.parse_args()
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"load": os.getloadavg()[0], "sites": {}}
    with tempfile.TemporaryDirectory() as tmp, tls_sites(Path(tmp)) as sites:
        for name, site in (("weak", sites.weak), ("strong", sites.strong)):
            where = f"{site.address}:{site.port}"
            assay_t, sslyze_t = [], []
            outcome: dict[str, set[Status]] = {}
            for _ in range(args.rounds):
                t, outcome = assay_audit(site)
                assay_t.append(t)
                if SSLYZE:
                    js = Path(tmp) / f"{name}.sslyze.json"
                    ca = ["--certinfo_ca_file", str(site.ca_file)] if site.ca_file else []
                    sslyze_t.append(run_tool([SSLYZE, *ca, "--json_out", str(js), where]))
            row: dict[str, Any] = {
                "assay_s": statistics.median(assay_t),
                "sslyze_s": statistics.median(sslyze_t) if sslyze_t else None,
                "failed_checks": sorted(c for c, s in outcome.items() if Status.FAIL in s),
            }
            if TESTSSL and not args.skip_testssl:
                js = Path(tmp) / f"{name}.testssl.json"
                cmd = [TESTSSL, "--quiet", "--warnings", "off", "--color", "0"]
                if site.ca_file:  # the test CA, trusted like the Assay run trusts it
                    cmd += ["--add-ca", str(site.ca_file)]
                cmd.append("--jsonfile")
                row["testssl_s"] = run_tool([*cmd, str(js), where])
                row["coverage"] = coverage(testssl_findings(js), outcome)
            report["sites"][name] = row
            print(f"== {name} site {where}")
            print(f"   Assay   {row['assay_s']:8.3f} s   failed: {', '.join(row['failed_checks'])}")
            if row["sslyze_s"]:
                print(f"   sslyze  {row['sslyze_s']:8.3f} s   ratio Assay/sslyze "
                      f"{row['assay_s'] / row['sslyze_s']:.3f}")  # fmt: skip
            if row.get("testssl_s"):
                print(f"   testssl {row['testssl_s']:8.1f} s   testssl/Assay "
                      f"{row['testssl_s'] / row['assay_s']:.0f}x")  # fmt: skip
                for c in row["coverage"]:
                    print(f"   | {c['id']} | {c['severity']} | {c['finding']} | {c['assay']} "
                          f"| {c['found']} |")  # fmt: skip
    (out_dir / "tls.json").write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
