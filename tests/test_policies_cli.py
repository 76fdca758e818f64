"""Policies from the command line, end to end on real servers: one scan of a weak and a good
host (real redis-server and nginx on their own loopback addresses), then scores, waivers, gates
and reports computed again from the store only.

weak: Redis without a password, nginx serving a login form over cleartext HTTP.
good: Redis with requirepass, nginx answering every request with `302` to HTTPS, which passes
under the Mozilla profile and fails under BSI (whose profile accepts only permanent redirects),
so the same stored scan shows a parameter override re-evaluated on stored facts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port, pick_loopback
from tests.servers_nginx import NginxServer, content_server
from tests.servers_redis import HAVE_REDIS, WEAK_LINES, RedisServer, auth_lines

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(not HAVE_REDIS, reason="redis-server is not installed"),
]
CLI = [sys.executable, "-c", "from scanner.cli import main; main()"]


def assay(*args: str, db: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ASSAY_DB=f"sqlite:///{db}", COLUMNS="200")
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=timeout)


@dataclass
class Scanned:
    db: Path
    scan_id: str
    out: Path
    weak: str
    good: str
    first: subprocess.CompletedProcess[str]
    tmp: Path


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scanned]:
    base = tmp_path_factory.mktemp("policies-cli")
    weak, good = pick_loopback(), pick_loopback()
    for d in ("rw", "rg", "nw", "ng"):
        (base / d).mkdir()
    http_w, http_g = free_port(weak), free_port(good)
    redirect = (
        f"    server {{\n        listen {good}:{http_g};\n"
        "        location / { return 302 https://$host$request_uri; }\n    }"
    )
    with (
        RedisServer(base / "rw", weak, WEAK_LINES) as rw,
        RedisServer(base / "rg", good, auth_lines()) as rg,
        NginxServer(base / "nw", weak, [content_server(weak, http_w)]) as nw,
        NginxServer(base / "ng", good, [redirect]) as ng,
    ):
        nw.wait(http_w)
        ng.wait(http_g)
        inv = base / "unit.yaml"
        inv.write_text(
            "units:\n  - id: u1\n    name: One\n    hosts:\n"
            f'      - address: {weak}\n        ports: "{rw.port},{http_w}"\n'
            f'      - address: {good}\n        ports: "{rg.port},{http_g}"\n'
        )
        db, out = base / "a.db", base / "out"
        r = assay(
            "scan",
            str(inv),
            "--out",
            str(out),
            "--nmap",
            "/nonexistent/nmap",
            "--format",
            "json,md",
            "--policy",
            "vn-security-levels",
            "--level",
            "2",
            db=db,
        )
        assert r.returncode == 3, r.stdout + r.stderr
        scan_id = json.loads((out / "assessment.json").read_text())["scan_id"]
        yield Scanned(db, scan_id, out, weak, good, r, base)
    # the servers are stopped here: everything below the scan works from the store alone


def run(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    """The same command in this process (the scan and the refusals run as real processes)."""
    from typer.testing import CliRunner

    from scanner.cli import app

    env = {"ASSAY_DB": f"sqlite:///{db}", "COLUMNS": "200"}
    r = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    return subprocess.CompletedProcess(list(args), r.exit_code, r.stdout, r.stderr)


def rescore(s: Scanned, *args: str) -> tuple[int, dict[str, Any], str]:
    r = run("rescore", s.scan_id, "--json", *args, db=s.db)
    data = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}
    return r.returncode, data, r.stderr


def controls(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in data["packs"][0]["units"][0]["controls"]}


def test_scan_writes_scores_into_the_report(scanned: Scanned) -> None:
    doc = json.loads((scanned.out / "assessment.json").read_text())
    ps = doc["policies"]
    assert [p["id"] for p in ps["packs"]] == ["vn-security-levels"]
    assert ps["packs"][0]["level"] == 2
    c = controls(ps)
    assert c["VN-ACC-01"]["status"] == "fail"  # Redis without a password on the weak host
    assert c["VN-ACC-01"]["failing_targets"] == [f"{scanned.weak}:{_redis_port(doc)}/tcp (redis)"]
    assert "VN-LOG-02" not in c  # level 3 only
    assert c["VN-ACC-02"]["status"] == "not_assessed"  # no SSH login in this unit
    reason = c["VN-ACC-02"]["reason"]  # host checks: not installed yet, or no login given
    assert "planned and not installed yet" in reason or "no SSH login" in reason
    md = (scanned.out / "assessment.md").read_text()
    assert "## Policy scores" in md and "pass rate = passed / (passed + failed)" in md
    assert "overall: pass rate" in scanned.first.stdout and "grade" in scanned.first.stdout


def _redis_port(doc: dict[str, Any]) -> int:
    return next(
        o["target"]["port"]
        for o in doc["outcomes"]
        if o["check_id"] == "net.redis.no_auth" and o["status"] == "fail"
    )


def test_rescore_equals_the_scan_and_needs_no_server(scanned: Scanned) -> None:
    doc = json.loads((scanned.out / "assessment.json").read_text())
    code, data, _ = rescore(
        scanned, "--policy", "vn-security-levels", "--as-of", doc["policies"]["as_of"]
    )
    assert code == 3
    assert data == doc["policies"]  # the same numbers, from stored outcomes


def test_profile_override_is_judged_on_stored_facts(scanned: Scanned) -> None:
    _, vn, _ = rescore(scanned, "--policy", "vn-security-levels")
    _, bsi, _ = rescore(scanned, "--policy", "de-bsi-grundschutz")
    good_http = next(
        t
        for t in vn["packs"][0]["units"][0]["targets"]
        if t["label"].startswith(f"{scanned.good}:") and "http" in t["label"]
    )
    key = "crypto-transport/HTTPS-01"
    assert good_http["controls"][key] == "pass"  # 302 to HTTPS is fine for Mozilla
    bsi_good = next(
        t for t in bsi["packs"][0]["units"][0]["targets"] if t["key"] == good_http["key"]
    )
    assert bsi_good["controls"][key] == "fail"  # BSI profile: permanent redirects only
    https = controls(bsi)[key]
    assert https["checks"][0] == {
        "id": "net.http.cleartext",
        "state": "installed",
        "params": {"permanent_only": True},
        "counts": {"fail": 2},
    }


WAIVERS = """\
version: 1
waivers:
  - id: W-REDIS
    check: net.redis.no_auth
    target: "{weak}:*"
    reason: isolated lab cache, replaced next quarter
    approved_by: CISO Nguyen
    expires: 2027-01-31
  - id: W-ACC
    control: vn-security-levels/VN-ACC-01
    target: "{weak}:*"
    reason: every authentication failure of the lab host is accepted
    approved_by: CISO Nguyen
    expires: 2027-01-31
  - id: W-STALE
    check: net.ftp.anonymous_login
    reason: the old FTP server was removed last year
    approved_by: CISO Nguyen
    expires: 2027-01-31
"""


def test_waivers_active_expired_unmatched(scanned: Scanned) -> None:
    wf = scanned.tmp / "waivers.yaml"
    wf.write_text(WAIVERS.format(weak=scanned.weak))
    _, plain, _ = rescore(scanned, "--policy", "vn-security-levels")
    _, waived, _ = rescore(
        scanned, "--policy", "vn-security-levels", "--waivers", str(wf), "--as-of", "2026-12-01"
    )
    n0, n1 = plain["overall"], waived["overall"]
    assert n1["waived"] >= 1 and n1["failed"] == n0["failed"] - n1["waived"]
    redis = [w for c in controls(waived).values() for w in c["waived"] if w["waiver"] == "W-REDIS"]
    assert redis and all(w["check_id"] == "net.redis.no_auth" for w in redis)
    states = {w["label"]: w["state"] for w in waived["waivers"]}
    assert states == {"W-REDIS": "active", "W-ACC": "active", "W-STALE": "unmatched"}
    assert controls(waived)["VN-ACC-01"]["status"] == "waived"
    # a month after expiry the same file waives nothing, and says so
    _, later, _ = rescore(
        scanned, "--policy", "vn-security-levels", "--waivers", str(wf), "--as-of", "2027-03-01"
    )
    assert later["overall"]["waived"] == 0 and later["overall"]["failed"] == n0["failed"]
    w = next(w for w in later["waivers"] if w["label"] == "W-REDIS")
    assert w["state"] == "expired" and w["matched"] == 1
    assert controls(later)["VN-ACC-01"]["status"] == "fail"


def test_gates_drive_the_exit_code(scanned: Scanned) -> None:
    code, _, err = rescore(scanned, "--policy", "vn-security-levels", "--fail-under", "0")
    assert code == 2  # not below 0; some controls could not be assessed
    code, _, err = rescore(scanned, "--policy", "vn-security-levels", "--fail-under", "95")
    assert code == 3 and "below --fail-under 95" in err
    code, _, err = rescore(scanned, "--policy", "vn-security-levels", "--fail-on", "critical")
    assert code == 3 and "severity critical or higher" in err
    # accept every critical failure of this scan: --fail-on critical no longer trips
    outcomes = json.loads((scanned.out / "assessment.json").read_text())["outcomes"]
    critical = sorted(
        {o["check_id"] for o in outcomes if o["status"] == "fail" and o["severity"] == "critical"}
    )
    assert critical
    wf = scanned.tmp / "gate-waivers.yaml"
    wf.write_text(
        "version: 1\nwaivers:\n"
        + "".join(
            f"  - check: {cid}\n    reason: accepted for the test\n    approved_by: CISO\n"
            "    expires: 2027-01-31\n"
            for cid in critical
        )
    )
    code, _, err = rescore(
        scanned,
        "--policy",
        "vn-security-levels",
        "--waivers",
        str(wf),
        "--as-of",
        "2026-12-01",
        "--fail-on",
        "critical",
        "--fail-under",
        "0",
    )
    assert code == 2, err


def test_report_under_another_policy(scanned: Scanned) -> None:
    out = scanned.tmp / "iso"
    r = run(
        "report",
        scanned.scan_id,
        "--format",
        "md,json",
        "--out",
        str(out),
        "--policy",
        "iso27001-2022",
        db=scanned.db,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "assessment.json").read_text())
    assert doc["policies"]["packs"][0]["id"] == "iso27001-2022"
    c = controls(doc["policies"])
    assert c["A.8.13"]["status"] == "not_assessed" and "needs attestation" in c["A.8.13"]["reason"]
    md = (out / "assessment.md").read_text()
    assert "A.8.24" in md and "Waivers (0)" in md


def bad_pack(s: Scanned) -> Path:
    bad = s.tmp / "bad.yaml"
    bad.write_text(
        "schema: assay-policy/1\nid: bad\ntitle: Bad pack\nversion: 1.0.0\n"
        "framework: {name: Ours, edition: '1', verification: unverified}\n"
        "changelog: [{version: 1.0.0, date: 2026-12-01, changes: [x]}]\n"
        "controls:\n  - id: B-1\n    title: Typo\n    checks: [net.redis.no_aut]\n"
    )
    return bad


def test_bad_policy_input_stops_before_scanning(scanned: Scanned) -> None:
    bad = bad_pack(scanned)
    inv = scanned.tmp / "unit.yaml"
    db = scanned.tmp / "empty.db"
    r = assay("scan", str(inv), "--policy", str(bad), "--nmap", "/nonexistent/nmap", db=db)
    assert r.returncode == 1
    assert f"{bad}:10 controls[0].checks[0]: unknown check 'net.redis.no_aut'" in r.stderr
    r = assay("scans", "list", "--json", db=db)
    assert json.loads(r.stdout) == []  # nothing was scanned
    r = assay("scan", str(inv), "--policy", "vn-security-levels", "--level", "4", db=db)
    assert r.returncode == 1 and "has levels 2, 3; --level 4 is not one of them" in r.stderr
    r = assay("scan", str(inv), "--policy", "no-such-pack", db=db)
    assert r.returncode == 1 and "no policy pack 'no-such-pack' (known: cis-baseline" in r.stderr
    w = scanned.tmp / "bad-waivers.yaml"
    w.write_text(
        "version: 1\nwaivers:\n  - check: net.redis.no_aut\n    reason: a typo here\n"
        "    approved_by: me\n    expires: 2027-01-01\n"
    )
    r = run(
        "rescore", scanned.scan_id, "--policy", "cis-baseline", "--waivers", str(w), db=scanned.db
    )
    assert r.returncode == 1
    assert f"{w}:3 waivers[0].check: unknown check 'net.redis.no_aut'" in r.stderr
    r = run(
        "rescore", scanned.scan_id, "--policy", "cis-baseline", "--fail-on", "severe", db=scanned.db
    )
    assert r.returncode == 1 and "is not a severity" in r.stderr


def test_policies_list_show_validate(scanned: Scanned) -> None:
    r = run("policies", "list", "--json", db=scanned.db)
    assert r.returncode == 0
    ids = {p["id"] for p in json.loads(r.stdout)}
    assert ids == {
        "vn-security-levels",
        "vn-data-protection",
        "de-bsi-grundschutz",
        "iso27001-2022",
        "cis-baseline",
        "crypto-transport",
    }
    r = run("policies", "show", "vn-security-levels", "--level", "3", db=scanned.db)
    assert r.returncode == 0 and "VN-LOG-02" in r.stdout and "legacy:" in r.stdout
    r = run("policies", "show", "vn-security-levels", "--level", "2", db=scanned.db)
    assert "VN-LOG-02" not in r.stdout
    r = run("policies", "validate", db=scanned.db)
    assert r.returncode == 0 and r.stdout.count("ok policies/packs/") == 6
    r = run("policies", "validate", str(bad_pack(scanned)), db=scanned.db)
    assert r.returncode == 1 and "unknown check 'net.redis.no_aut'" in r.stderr
