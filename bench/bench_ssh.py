"""SSH audit of a weak and a hardened real sshd: Assay against ssh-audit, same run.

Both tools audit the same two OpenSSH servers (tests/servers_sshd.py: the weak one with legacy
algorithms, DSA and 1024-bit RSA keys, password login and a chatty banner; the hardened one),
each as separate processes, as a user would run them:

    python bench/ssh_assay_process.py A:P A:P      one process, both servers concurrently:
                                                   collector + the ten ssh.* checks, JSON out
    ssh-audit -j --skip-rate-test -T targets.txt   one process, both servers
    ssh-audit -j -p PORT ADDR                      once per server (its default run, with the
                                                   connection-rate test)
    ssh-audit -j --skip-rate-test -p PORT ADDR     once per server, the audit alone

Rounds alternate the order of the tools; the medians of the wall time for both servers and
Assay's ratio to each are printed and written to bench/results/ssh.json, with the audit time
measured inside Assay's process (without interpreter start-up and imports). The algorithms
ssh-audit says to remove (its "critical" list) are compared with Assay's failed findings, to
show that being faster does not come from looking at less. Needs sshd, ssh-keygen and
`pip install ssh-audit`.

Assay's modules are compiled to bytecode before the first round, as `pip install` compiles an
installed package (ssh-audit's included): with PYTHONDONTWRITEBYTECODE set, as on many CI
images, a source checkout would otherwise recompile every module on every start.

    python bench/bench_ssh.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
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


def _compile_bytecode() -> None:
    """Write the bytecode of Assay's packages, which an installed Assay has from pip."""
    import compileall

    for package in ("scanner", "checks", "policies", "reports"):
        compileall.compile_dir(ROOT / package, quiet=1)


def _run(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return time.perf_counter() - t0, p.stdout


def _assay_cmd(servers: list[tuple[str, int]]) -> list[str]:
    spec = [f"{a}:{p}" for a, p in servers]
    return [sys.executable, str(Path(__file__).with_name("ssh_assay_process.py")), *spec]


def _ssh_audit_cmd(tool: str, address: str, port: int, skip_rate: bool) -> list[str]:
    return [tool, "-j", *(["--skip-rate-test"] if skip_rate else []), "-p", str(port), address]


def _ssh_audit_targets_cmd(tool: str, targets: Path) -> list[str]:
    return [tool, "-j", "--skip-rate-test", "-T", str(targets)]


def _critical(report: dict[str, Any]) -> set[str]:
    crit = report.get("recommendations", {}).get("critical", {}).get("del", {})
    return {a["name"] for items in crit.values() for a in items}


def _assay_failed(result: dict[str, Any]) -> set[str]:
    return {
        f"{f['check']} {f['detail']}".strip() for f in result["findings"] if f["status"] == "fail"
    }


def _covered(name: str, result: dict[str, Any]) -> bool:
    """Whether an algorithm ssh-audit says to remove is among Assay's failed findings."""
    failed = [(f["check"], f["detail"]) for f in result["findings"] if f["status"] == "fail"]
    if name == "ssh-rsa":
        return any(c == "ssh.hostkey.rsa_sha1" for c, _ in failed)
    if name == "ssh-dss":
        return any(c == "ssh.hostkey.weak" and d.startswith("dsa ") for c, d in failed)
    return any(d == name for _, d in failed)


def bench(rounds: int, copies: int) -> dict[str, Any]:
    from tests.servers_sshd import sshd_pair

    tool = shutil.which("ssh-audit")
    if not tool:
        raise SystemExit("ssh-audit is not installed: pip install ssh-audit")
    names = (
        "assay (one process, both servers)",
        "ssh-audit -T (one process, both servers)",
        "ssh-audit, one run per server",
        "ssh-audit --skip-rate-test, one run per server",
    )
    times: dict[str, list[float]] = {n: [] for n in names}
    inside: list[float] = []
    coverage: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, sshd_pair(Path(tmp)) as pair:
        servers = [(pair.weak.addr, pair.weak.port), (pair.hardened.addr, pair.hardened.port)]
        labels = dict(zip((f"{a}:{p}" for a, p in servers), ("weak", "hardened"), strict=True))
        targets = Path(tmp) / "targets.txt"
        targets.write_text("".join(f"{a}:{p}\n" for a, p in servers))
        for i in range(rounds):
            for name in names if i % 2 == 0 else tuple(reversed(names)):
                if name.startswith("assay"):
                    elapsed, out = _run(_assay_cmd(servers))
                    doc = json.loads(out)
                    inside.append(doc["audit_seconds"])
                    if i == 0:
                        for key, res in doc["results"].items():
                            coverage.setdefault(labels[key], {})["assay"] = res
                elif "-T" in name:
                    elapsed, _ = _run(_ssh_audit_targets_cmd(tool, targets))
                else:
                    elapsed = 0.0
                    for a, p in servers:
                        took, out = _run(_ssh_audit_cmd(tool, a, p, "skip" in name))
                        elapsed += took
                        if i == 0 and "skip" not in name:
                            coverage.setdefault(labels[f"{a}:{p}"], {})["ssh-audit"] = json.loads(
                                out
                            )
                times[name].append(elapsed)
        # unit scale: every server listed `copies` times, both tools in one process each
        many = servers * copies
        many_file = Path(tmp) / "many.txt"
        many_file.write_text("".join(f"{a}:{p}\n" for a, p in many))
        scale = {f"assay, {len(many)} targets": [], f"ssh-audit -T, {len(many)} targets": []}
        for i in range(rounds):
            for name in sorted(scale, reverse=i % 2 == 1):
                cmd = (
                    _assay_cmd(many)
                    if name.startswith("assay")
                    else _ssh_audit_targets_cmd(tool, many_file)
                )
                scale[name].append(_run(cmd)[0])
    medians = {k: statistics.median(v) for k, v in times.items()}
    scale_medians = {k: statistics.median(v) for k, v in scale.items()}
    a_many, s_many = scale_medians.values()
    assay = medians[names[0]]
    missed = {
        label: sorted(n for n in _critical(o["ssh-audit"]) if not _covered(n, o["assay"]))
        for label, o in coverage.items()
    }
    return {
        "rounds": rounds,
        "median_seconds_both_servers": medians,
        "assay_audit_seconds_inside_process": statistics.median(inside),
        "ratios_assay_to": {k: assay / v for k, v in medians.items() if k != names[0]},
        "scale_median_seconds": scale_medians,
        "scale_ratio_assay_to_ssh_audit": a_many / s_many,
        "ssh_audit_critical_not_failed_by_assay": missed,
        "assay_failed": {k: sorted(_assay_failed(v["assay"])) for k, v in coverage.items()},
        "ssh_audit_critical": {k: sorted(_critical(v["ssh-audit"])) for k, v in coverage.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--copies", type=int, default=10, help="targets per server, scale run")
    args = ap.parse_args()
    _compile_bytecode()
    result = bench(args.rounds, args.copies)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ssh.json").write_text(json.dumps(result, indent=2))
    for name, seconds in result["median_seconds_both_servers"].items():
        print(f"{name:48s} {seconds:6.3f} s")
    print(
        f"{'assay audit inside its process':48s} "
        f"{result['assay_audit_seconds_inside_process']:6.3f} s"
    )
    for name, ratio in result["ratios_assay_to"].items():
        print(f"ratio Assay / {name:40s} {ratio:5.2f}")
    for name, seconds in result["scale_median_seconds"].items():
        print(f"{name:48s} {seconds:6.3f} s")
    print(f"ratio Assay / ssh-audit at unit scale {result['scale_ratio_assay_to_ssh_audit']:5.2f}")
    print(
        "ssh-audit critical findings Assay did not fail:",
        result["ssh_audit_critical_not_failed_by_assay"],
    )


if __name__ == "__main__":
    main()
