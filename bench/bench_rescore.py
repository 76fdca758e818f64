"""Re-scoring a stored scan under a policy versus scanning again.

Without stored facts, judging a unit under another policy means scanning it again (what a user
of a scanner without re-scoring does). Assay scores from the store. This bench runs both on the
same loopback unit (real redis-server and nginx, weak and good host) in one run:

    python bench/bench_rescore.py --rounds 3

and, in process, the scorer alone on a synthetic unit of many hosts (every built-in pack):

    python bench/bench_rescore.py --synthetic 200
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CLI = [sys.executable, "-c", "from scanner.cli import main; main()"]
PACKS = (
    "vn-security-levels",
    "vn-data-protection",
    "de-bsi-grundschutz",
    "iso27001-2022",
    "cis-baseline",
    "crypto-transport",
)


def timed(args: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    r = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=600)
    if r.returncode not in (0, 2, 3):
        raise SystemExit(f"{' '.join(args)} failed: {r.stderr[-500:]}")
    return time.perf_counter() - t


def live(rounds: int) -> None:
    from tests.helpers import free_port, pick_loopback
    from tests.servers_nginx import NginxServer, content_server
    from tests.servers_redis import WEAK_LINES, RedisServer, auth_lines

    with tempfile.TemporaryDirectory() as d:
        base = Path(d)
        weak, good = pick_loopback(), pick_loopback()
        for sub in ("rw", "rg", "nw", "ng"):
            (base / sub).mkdir()
        hw, hg = free_port(weak), free_port(good)
        redirect = (
            f"    server {{\n        listen {good}:{hg};\n"
            "        location / { return 301 https://$host$request_uri; }\n    }"
        )
        with (
            RedisServer(base / "rw", weak, WEAK_LINES) as rw,
            RedisServer(base / "rg", good, auth_lines()) as rg,
            NginxServer(base / "nw", weak, [content_server(weak, hw)]) as nw,
            NginxServer(base / "ng", good, [redirect]) as ng,
        ):
            nw.wait(hw)
            ng.wait(hg)
            inv = base / "unit.yaml"
            inv.write_text(
                "units:\n  - id: u1\n    name: One\n    hosts:\n"
                f'      - address: {weak}\n        ports: "{rw.port},{hw}"\n'
                f'      - address: {good}\n        ports: "{rg.port},{hg}"\n'
            )
            env = dict(os.environ, ASSAY_DB=f"sqlite:///{base / 'a.db'}", COLUMNS="200")
            scans, rescores = [], []
            for _ in range(rounds):
                scans.append(
                    timed(
                        [
                            "scan",
                            str(inv),
                            "--out",
                            str(base / "out"),
                            "--format",
                            "json",
                            "--policy",
                            "vn-security-levels",
                        ],
                        env,
                    )
                )
                scan_id = json.loads((base / "out" / "assessment.json").read_text())["scan_id"]
                for pack in PACKS:
                    rescores.append(timed(["rescore", scan_id, "--policy", pack], env))
    s, r = statistics.median(scans), statistics.median(rescores)
    print(f"scan + score (vn-security-levels), median of {rounds}: {s:.2f} s")
    print(f"rescore under one pack, median of {len(rescores)}: {r:.2f} s")
    print(f"ratio rescore / scan again: {r / s:.2f}")


def synthetic(hosts: int) -> None:
    from policies.evidence import Evidence
    from policies.loader import Catalog
    from policies.scoring import Selection, score
    from scanner.model import Outcome, Severity, Status, Target, TargetKind, fingerprint
    from scanner.plugins import load_registry

    reg = load_registry()
    cat = Catalog.builtin()
    checks = sorted(reg.checks)
    outcomes = []
    for h in range(hosts):
        addr = f"10.{h // 250}.{h % 250}.1"
        for port in (21, 22, 80, 443, 6379):
            t = Target(kind=TargetKind.SERVICE, unit="u1", address=addr, port=port)
            for i, cid in enumerate(checks):
                st = Status.FAIL if (h + i + port) % 7 == 0 else Status.PASS
                outcomes.append(
                    Outcome(
                        scan_id="s",
                        unit="u1",
                        check_id=cid,
                        title=cid,
                        status=st,
                        severity=Severity.MEDIUM,
                        target=t,
                        message="",
                        fingerprint=fingerprint(cid, t.key),
                    )
                )
    ev = Evidence(outcomes, [], reg)
    sels = [Selection(cat.resolve(p)) for p in PACKS]
    t = time.perf_counter()
    result = score(sels, ev, ["u1"], as_of=date(2026, 12, 3))
    dt = time.perf_counter() - t
    print(
        f"{hosts} hosts, {len(outcomes)} outcomes, 6 packs "
        f"({sum(len(s.pack.controls) for s in sels)} controls): {dt:.2f} s in process "
        f"(overall grade {result.overall.grade})"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--synthetic", type=int, default=0, help="hosts of the synthetic unit")
    args = ap.parse_args()
    if args.synthetic:
        synthetic(args.synthetic)
    else:
        live(args.rounds)


if __name__ == "__main__":
    main()
