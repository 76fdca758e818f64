"""ROBOT test: Assay's `tls.robot` probe against `sslyze --robot` and `testssl --robot`.

The endpoint is the tests' weak nginx site (`tests/servers_tls.py`), which accepts static RSA
under TLS 1.0-1.2; its OpenSSL 3 is no oracle, so every tool should say "not vulnerable".
Per round:

- Assay, ROBOT alone: the five variant connections (plus the repeat, were they to differ) on
  the highest TLS version with a static-RSA suite, in process, as the TLS collector runs them;
- Assay, whole `service.tls` collection (every protocol, suite and vulnerability probe,
  ROBOT included), in process, for scale;
- sslyze: `sslyze --robot --json_out FILE ADDR:PORT`, a fresh process (its connectivity test
  included, as a user would run it);
- testssl.sh: `testssl --quiet --warnings off --color 0 --robot --jsonfile FILE ADDR:PORT`,
  a fresh process (its start-up checks included).

Printed and written to bench/results/robot.json: median wall times, ratios and each tool's
verdict.

    python bench/bench_robot.py [--rounds 5] [--skip-testssl]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scanner.collectors.tls import TlsCollector  # noqa: E402
from scanner.model import ServiceInfo, Target, TargetKind  # noqa: E402
from scanner.plugins import CollectContext  # noqa: E402
from scanner.scope import ScopeGuard  # noqa: E402
from scanner.tlsprobe.endpoint import TlsEndpoint  # noqa: E402
from scanner.tlsprobe.hello import HelloSpec  # noqa: E402
from scanner.tlsprobe.robot import RobotAnswer, assess, robot_probe  # noqa: E402
from scanner.tlsprobe.suites import TLS12, candidates, suite  # noqa: E402
from tests.servers_tls import TlsSite, tls_sites  # noqa: E402

TESTSSL = shutil.which("testssl") or shutil.which("testssl.sh")
SSLYZE = shutil.which("sslyze")
TIMEOUT = 5.0


def assay_robot(site: TlsSite) -> tuple[float, str]:
    ep = TlsEndpoint(site.address, site.port, "", None)
    rsa = [c for c in candidates(TLS12) if (s := suite(c)) and s.kex == "RSA"]
    spec = HelloSpec(TLS12, tuple(rsa))

    async def connect(variant: str) -> RobotAnswer:
        return await robot_probe(ep, spec, variant, TIMEOUT, wait=2.0)

    start = time.perf_counter()
    verdict, _answers = asyncio.run(assess(connect))
    return time.perf_counter() - start, str(verdict.verdict)


def assay_collect(site: TlsSite) -> tuple[float, str]:
    tgt = Target(
        kind=TargetKind.SERVICE,
        unit="bench",
        address=site.address,
        port=site.port,
        service=ServiceInfo(name="https"),
    )
    ctx = CollectContext(scope=ScopeGuard.of(hosts=[(site.address, "bench")]), probe_timeout=5)
    start = time.perf_counter()
    facts = asyncio.run(TlsCollector().collect(tgt, ctx))
    return time.perf_counter() - start, str(facts.robot)  # type: ignore[attr-defined]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
    return time.perf_counter() - start


def sslyze_verdict(path: Path) -> str:
    try:
        doc = json.loads(path.read_text())
        result = doc["server_scan_results"][0]["scan_result"]["robot"]["result"]
        return str(result["robot_result"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return "no result"


def testssl_verdict(path: Path) -> str:
    try:
        rows = json.loads(path.read_text() or "[]")
    except (OSError, ValueError):
        return "no result"
    return next((str(r.get("finding")) for r in rows if r.get("id") == "ROBOT"), "no result")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--skip-testssl", action="store_true")
    args = ap.parse_args()
    out: dict[str, object] = {"load": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp, tls_sites(Path(tmp)) as sites:
        site = sites.weak
        addr = f"{site.address}:{site.port}"
        robot, collect = [], []
        verdicts: dict[str, str] = {}
        for _ in range(args.rounds):
            t, verdicts["assay"] = assay_robot(site)
            robot.append(t)
            collect.append(assay_collect(site)[0])
        sslyze_times: list[float] = []
        if SSLYZE:
            for i in range(args.rounds):
                path = Path(tmp) / f"sslyze{i}.json"
                sslyze_times.append(timed([SSLYZE, "--robot", "--json_out", str(path), addr]))
                verdicts["sslyze"] = sslyze_verdict(path)
        testssl_time = None
        if TESTSSL and not args.skip_testssl:
            path = Path(tmp) / "testssl.json"
            cmd = [TESTSSL, "--quiet", "--warnings", "off", "--color", "0", "--robot"]
            testssl_time = timed([*cmd, "--jsonfile", str(path), addr])
            verdicts["testssl"] = testssl_verdict(path)
    a = statistics.median(robot)
    out.update(
        assay_robot_s=a,
        assay_collect_s=statistics.median(collect),
        sslyze_s=statistics.median(sslyze_times) if sslyze_times else None,
        testssl_s=testssl_time,
        verdicts=verdicts,
    )
    print(f"Assay ROBOT alone      {a:8.3f} s  ({verdicts.get('assay')})")
    print(f"Assay whole service.tls {out['assay_collect_s']:7.3f} s")
    if sslyze_times:
        s = statistics.median(sslyze_times)
        print(
            f"sslyze --robot         {s:8.3f} s  ({verdicts.get('sslyze')})  "
            f"sslyze/Assay {s / a:.0f}x"
        )
    if testssl_time is not None:
        print(
            f"testssl --robot        {testssl_time:8.3f} s  ({verdicts.get('testssl')})  "
            f"testssl/Assay {testssl_time / a:.0f}x"
        )
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "robot.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
