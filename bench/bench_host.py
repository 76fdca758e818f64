"""Credentialed host audit: Assay over SSH (and locally) against `lynis audit system`, same run.

Assay logs in to a real sshd that this script starts on its own loopback address (key login as
root, host key pinned on first use in a temporary store), runs its one gathering script and
evaluates every host check; the same gathering also runs locally without SSH. Lynis runs as a
user would run it on the host (`lynis audit system --quick`). Both audit this machine. The
medians, the number of checks each tool ran and the ratio are printed and written to
bench/results/host.json.

    python bench/bench_host.py [--rounds 5] [--lynis-rounds 1] [--sudo]

Needs root, sshd and lynis (`apt-get install -y lynis openssh-server`). `--sudo` also measures
the login as an ordinary account that becomes root through sudo with its password (a
throwaway `assay-test-*` account and sudoers drop-in, removed afterwards; needs `sudo`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scanner.gather.local import gather_local  # noqa: E402
from scanner.model import Result, Target, TargetKind  # noqa: E402
from scanner.plugins import FactsView, load_registry  # noqa: E402
from scanner.remote import gather_ssh  # noqa: E402
from scanner.remote.session import Login  # noqa: E402
from tests.servers_sshd import (  # noqa: E402
    HARDENED_OPTIONS,
    Sshd,
    make_key,
    sudo_account,
    sudo_account_unavailable,
)


def evaluate_all(registry: dict, facts: object, address: str) -> Counter[str]:  # type: ignore[type-arg]
    view = FactsView(
        Target(kind=TargetKind.SSH, unit="bench", address=address), {"host.config": facts}
    )
    statuses: Counter[str] = Counter()
    for check in registry.values():
        out = check.evaluate(view, check.Params())
        for r in [out] if isinstance(out, Result) else list(out):
            statuses[r.status.value] += 1
    return statuses


def assay_round(registry: dict, login: Login | None) -> tuple[float, float, Counter[str], bool]:  # type: ignore[type-arg]
    start = time.perf_counter()
    if login is None:
        facts = asyncio.run(gather_local(budget=60))
        address = "local"
    else:
        facts = asyncio.run(gather_ssh(login, connect_timeout=10, budget=60))
        address = login.address
    gathered = time.perf_counter()
    statuses = evaluate_all(registry, facts, address)
    done = time.perf_counter()
    return done - start, done - gathered, statuses, facts.complete


def lynis_round(workdir: Path) -> tuple[float, int, str]:
    lynis = shutil.which("lynis")
    assert lynis, "lynis is not installed (apt-get install -y lynis)"
    report = workdir / "lynis-report.dat"
    log = workdir / "lynis.log"
    start = time.perf_counter()
    subprocess.run(
        [
            lynis,
            "audit",
            "system",
            "--quick",
            "--no-colors",
            "--logfile",
            str(log),
            "--report-file",
            str(report),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=900,
        check=False,
    )
    wall = time.perf_counter() - start
    text = report.read_text(errors="replace") if report.exists() else ""
    executed = re.search(r"^tests_executed=(.*)$", text, re.M)
    tests = len([t for t in executed.group(1).split("|") if t]) if executed else 0
    index = re.search(r"^hardening_index=(\d+)", text, re.M)
    return wall, tests, index.group(1) if index else "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="Assay rounds (each: SSH and local)")
    ap.add_argument(
        "--lynis-rounds", type=int, default=1, help="Lynis rounds (about a minute each)"
    )
    ap.add_argument("--sudo", action="store_true", help="also log in as an account that uses sudo")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: both tools read /etc/shadow and sshd -T")
    if args.sudo and sudo_account_unavailable():
        sys.exit(f"--sudo: {sudo_account_unavailable()}")

    t0 = time.perf_counter()
    reg = load_registry()
    host_checks = {k: v for k, v in reg.checks.items() if k.startswith("host.")}
    load_s = time.perf_counter() - t0

    sudo_runs: list[tuple[float, float, Counter[str], bool]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # sshd reads authorized_keys as the sudo account
        key = make_key(work / "hostkey", "ed25519")
        client = make_key(work / "client", "ed25519")
        server = Sshd(work / "sshd", HARDENED_OPTIONS, host_keys=(key,), authorized_keys=(client,))
        with server:
            if args.sudo:
                with sudo_account(work) as account:
                    via_sudo = Login(
                        address=server.addr,
                        port=server.port,
                        user=account.name,
                        key_text=client.read_text(),
                        sudo=True,
                        sudo_password=account.password,
                        store=str(work / "known_hosts"),
                        trust_on_first_use=True,
                    )
                    sudo_runs = [assay_round(host_checks, via_sudo) for _ in range(args.rounds)]
            login = Login(
                address=server.addr,
                port=server.port,
                user="root",
                key_text=client.read_text(),
                store=str(work / "known_hosts"),
                trust_on_first_use=True,
            )
            ssh_runs = []
            local_runs = []
            for _ in range(args.rounds):
                ssh_runs.append(assay_round(host_checks, login))
                local_runs.append(assay_round(host_checks, None))
            lynis_runs = [lynis_round(work) for _ in range(args.lynis_rounds)]

    ssh_wall = statistics.median(r[0] for r in ssh_runs)
    ssh_eval = statistics.median(r[1] for r in ssh_runs)
    local_wall = statistics.median(r[0] for r in local_runs)
    lynis_wall = statistics.median(r[0] for r in lynis_runs)
    statuses = ssh_runs[-1][2]
    results = sum(statuses.values())
    load = os.getloadavg()[0]
    summary = {
        "measured": time.strftime("%Y-%m-%d"),
        "load_average_1m": round(load, 2),
        "assay_host_checks": len(host_checks),
        "assay_results_per_host": results,
        "assay_statuses": dict(statuses),
        "assay_ssh_wall_s": round(ssh_wall, 3),
        "assay_ssh_evaluation_s": round(ssh_eval, 4),
        "assay_local_wall_s": round(local_wall, 3),
        "assay_registry_load_s": round(load_s, 3),
        "assay_complete": all(r[3] for r in ssh_runs + local_runs),
        "lynis_wall_s": round(lynis_wall, 2),
        "lynis_tests_executed": lynis_runs[-1][1],
        "lynis_hardening_index": lynis_runs[-1][2],
        "ratio_assay_ssh_over_lynis": round(ssh_wall / lynis_wall, 4),
        "speedup_lynis_over_assay_ssh": round(lynis_wall / ssh_wall, 1),
        "rounds": {"assay": args.rounds, "lynis": args.lynis_rounds},
    }
    if sudo_runs:
        sudo_wall = statistics.median(r[0] for r in sudo_runs)
        summary["assay_ssh_sudo_wall_s"] = round(sudo_wall, 3)
        summary["assay_ssh_sudo_overhead_s"] = round(sudo_wall - ssh_wall, 3)
        summary["assay_ssh_sudo_complete"] = all(r[3] for r in sudo_runs)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "host.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
