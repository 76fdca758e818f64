"""The web checks of one weak and one good site: Assay against nmap's http-* NSE scripts.

Both sides look at the same two sites of a real nginx (tests/servers_web.py) and gather the
same kinds of facts: response headers and security headers, cookie flags, HTTP methods,
a subset of well-known paths (http-enum), an exposed .git (http-git) and the Server header.
nmap runs as a user would:

    nmap -n -Pn -p PORT --script +http-headers,+http-security-headers,+http-cookie-flags,
         +http-methods,+http-enum,+http-git,+http-server-header ADDR

(http-enum runs its full fingerprint list, about 2,000 paths, as a user gets it; Assay asks
for its 15 well-known paths). Assay runs the web.http collector
and every web.* check on the same URL. Each side runs ROUNDS times, alternating; medians and
their ratio are printed and written to bench/results/web.json.

    python bench/bench_web.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scanner.collectors.http import WebCollector  # noqa: E402
from scanner.model import Target, TargetKind  # noqa: E402
from scanner.plugins import CollectContext, FactsView, load_registry  # noqa: E402
from tests.helpers import guard_for, pick_loopback  # noqa: E402
from tests.servers_web import web_sites  # noqa: E402

# "+" runs a script even where its port rule would skip it: the bench ports are not the
# well-known HTTP ports and nmap is not asked to identify them (-sV would add its own time)
SCRIPTS = ",".join(
    "+" + s
    for s in (
        "http-headers", "http-security-headers", "http-cookie-flags", "http-methods",
        "http-enum", "http-git", "http-server-header",
    )
)  # fmt: skip


def assay(url: str, address: str) -> tuple[float, int]:
    registry = load_registry()
    checks = [c for c in registry.checks.values() if c.meta.facts == ("web.http",)]
    target = Target(kind=TargetKind.WEB, unit="bench", url=url)
    ctx = CollectContext(scope=guard_for(address), probe_timeout=5)
    start = time.perf_counter()
    facts = asyncio.run(WebCollector().collect(target, ctx))
    view = FactsView(target, {"web.http": facts})
    findings = 0
    for check in checks:
        out = check.evaluate(view, check.Params())
        results = out if isinstance(out, list) else [out]
        findings += sum(r.status.value == "fail" for r in results)
    return time.perf_counter() - start, findings


def nmap(address: str, port: int) -> float:
    cmd = ["nmap", "-n", "-Pn", "-p", str(port), "--script", SCRIPTS]
    cmd.append(address)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not shutil.which("nmap"):
        sys.exit("nmap is not installed")
    address = pick_loopback()
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp, web_sites(Path(tmp), address) as sites:
        for name, port, url in (
            ("weak", sites.weak, sites.url("weak")),
            ("good", sites.good_tls, sites.url("good_tls")),
        ):
            a_times, n_times, fails = [], [], 0
            for _ in range(args.rounds):
                t, fails = assay(url, address)
                a_times.append(t)
                n_times.append(nmap(address, port))
            a, n = statistics.median(a_times), statistics.median(n_times)
            results[name] = {"assay_s": round(a, 3), "nmap_s": round(n, 3),
                             "ratio": round(a / n, 3), "assay_failed_checks": fails}  # fmt: skip
            print(f"{name}: assay {a:.2f}s ({fails} failed checks), nmap {n:.2f}s, "
                  f"ratio {a / n:.3f}")  # fmt: skip
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "web.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
