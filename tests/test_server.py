"""The team server end to end: real scans of real Redis servers through the API, access control,
findings lifecycle, schedules and webhooks — on SQLite and on a real PostgreSQL.

Two units, each a loopback host with a real redis-server: unit A's Redis is open (weak), unit
B's demands a password. Jobs run in the server's embedded executor with real nmap.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

import scanner.server.tables as t
from scanner.server.app import SESSION_COOKIE, ServerConfig, create_app
from scanner.server.security import MAX_FAILURES_USER, Role
from scanner.server.service import ServerDB
from tests.helpers import pick_loopback
from tests.servers_postgres import pg_url
from tests.servers_redis import HAVE_REDIS, WEAK_LINES, RedisServer, auth_lines

__all__ = ["pg_url"]

pytestmark = pytest.mark.skipif(not HAVE_REDIS, reason="redis-server is not installed")

PASSWORD = "correct horse battery staple"
JOB_WAIT = 180.0


def inventory(unit: str, addr: str, port: int) -> str:
    return (
        "version: 1\n"
        "settings: {probe_timeout: 2, version_budget: 10}\n"
        "units:\n"
        f"  - id: {unit}\n"
        f"    name: Unit {unit[-1].upper()}\n"
        "    hosts:\n"
        f"      - address: {addr}\n"
        f'        ports: "{port}"\n'
    )


class Env:
    """A running server with its users (tokens) and the two units' Redis servers."""

    def __init__(self, client: TestClient, sdb: ServerDB, tokens: dict[str, str], tmp: Path):
        self.client = client
        self.sdb = sdb
        self.tokens = tokens
        self.tmp = tmp
        self.redis: dict[str, RedisServer] = {}

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, who: str, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self.h(who), **kw)

    def post(self, who: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(path, headers=self.h(who), json=body or {})

    def scan(self, who: str, unit: str) -> dict[str, Any]:
        r = self.post(who, f"/api/v1/units/{unit}/scans")
        assert r.status_code == 202, r.text
        return self.wait_job(r.json()["job"])

    def wait_job(self, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + JOB_WAIT
        while time.monotonic() < deadline:
            job = self.get("admin", f"/api/v1/jobs/{job_id}").json()
            if job["state"] in ("complete", "failed"):
                assert job["state"] == "complete", job
                return dict(job)
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} did not finish within {JOB_WAIT}s")

    def restart_redis(self, unit: str, lines: tuple[str, ...]) -> None:
        old = self.redis.pop(unit)
        old.__exit__(None, None, None)
        new = RedisServer(self.tmp / f"{unit}-{time.monotonic_ns()}", old.address, lines, old.port)
        new.__enter__()
        self.redis[unit] = new


def _start(db_url: str, tmp: Path) -> Iterator[Env]:
    # Discovery with nmap is tested on its own; here the built-in connect scan keeps jobs short.
    app = create_app(ServerConfig(db_url=db_url, tick=0.2, nmap_path="/nonexistent/nmap"))
    sdb: ServerDB = app.state.sdb
    users = {
        "admin": (Role.ADMIN, [], False),
        "officer_a": (Role.OFFICER, ["unit-a"], False),
        "officer_b": (Role.OFFICER, ["unit-b"], False),
        "reviewer": (Role.REVIEWER, [], True),
        "reviewer_b": (Role.REVIEWER, ["unit-b"], False),
    }
    tokens = {}
    for name, (role, units, all_units) in users.items():
        uid = sdb.create_user(name, PASSWORD, role, units, all_units)
        tokens[name] = sdb.create_token(uid, "test")
    with TestClient(app, base_url="https://testserver") as client:
        env = Env(client, sdb, tokens, tmp)
        for unit, lines in (("unit-a", WEAK_LINES), ("unit-b", auth_lines())):
            addr = pick_loopback()
            server = RedisServer(tmp / unit, addr, lines)
            server.__enter__()
            env.redis[unit] = server
            r = env.post(
                "admin",
                "/api/v1/units",
                {"id": unit, "inventory": inventory(unit, addr, server.port)},
            )
            assert r.status_code == 201, r.text
        try:
            yield env
        finally:
            for server in env.redis.values():
                server.__exit__(None, None, None)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("server")
    yield from _start(f"sqlite:///{tmp / 'server.db'}", tmp)


@pytest.fixture(scope="module")
def scanned(env: Env) -> dict[str, dict[str, Any]]:
    return {"unit-a": env.scan("officer_a", "unit-a"), "unit-b": env.scan("officer_b", "unit-b")}


def _open_finding(env: Env, check: str) -> dict[str, Any]:
    rows = env.get("officer_a", "/api/v1/findings", params={"unit": "unit-a"}).json()
    return next(r for r in rows if r["check_id"] == check)


# -- scans, scores, findings ------------------------------------------------------------------


def test_scan_through_the_api_finds_the_open_redis(env: Env, scanned: dict[str, Any]) -> None:
    a = env.get("officer_a", "/api/v1/findings", params={"unit": "unit-a"}).json()
    assert {"net.redis.no_auth", "net.redis.dangerous_commands"} <= {f["check_id"] for f in a}
    assert all(f["state"] == "open" for f in a)
    b = env.get("officer_b", "/api/v1/findings", params={"unit": "unit-b"}).json()
    assert "net.redis.no_auth" not in {f["check_id"] for f in b}
    results = env.get(
        "officer_a",
        f"/api/v1/scans/{scanned['unit-a']['scan_id']}/results",
        params={"unit": "unit-a"},
    ).json()
    by_check = {r["check_id"]: r["status"] for r in results}
    assert by_check["net.redis.no_auth"] == "fail"


def test_scores_have_three_numbers(env: Env, scanned: dict[str, Any]) -> None:
    a = env.get("reviewer", "/api/v1/units/unit-a/scores").json()
    b = env.get("reviewer", "/api/v1/units/unit-b/scores").json()
    for s in (a, b):
        assert set(s["scores"]) >= {"pass_rate", "weighted", "coverage", "grade"}
        assert s["scores"]["policy"] == "cis-baseline"  # the server's default pack
        assert s["latest_scan"]
    assert a["scores"]["pass_rate"] < b["scores"]["pass_rate"]
    assert a["open_findings"] >= 2 and a["new_findings"] >= 2
    every = env.get("reviewer", "/api/v1/scores").json()
    assert {s["unit"] for s in every} == {"unit-a", "unit-b"}


def test_lifecycle_fixed_and_reopened_by_rescans(env: Env, scanned: dict[str, Any]) -> None:
    env.restart_redis("unit-a", auth_lines())
    env.scan("officer_a", "unit-a")
    assert _open_finding(env, "net.redis.no_auth")["state"] == "fixed"
    s = env.get("officer_a", "/api/v1/units/unit-a/scores").json()
    assert s["delta"] is not None and s["delta"] > 0  # the fix raised the pass rate
    env.restart_redis("unit-a", WEAK_LINES)
    env.scan("officer_a", "unit-a")
    finding = _open_finding(env, "net.redis.no_auth")
    assert finding["state"] == "reopened"
    # the same scan recorded twice changes nothing
    before = env.get("admin", "/api/v1/findings", params={"unit": "unit-a"}).json()
    env.sdb.record_findings("unit-a", finding["last_scan"])
    assert env.get("admin", "/api/v1/findings", params={"unit": "unit-a"}).json() == before


def test_accepting_a_risk_needs_reason_and_future_date(env: Env, scanned: dict[str, Any]) -> None:
    f = _open_finding(env, "net.redis.dangerous_commands")
    path = f"/api/v1/findings/{f['id']}/state"
    assert env.post("officer_a", path, {"state": "accepted", "reason": ""}).status_code == 422
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    r = env.post("officer_a", path, {"state": "accepted", "reason": "legacy app", "until": past})
    assert r.status_code == 422
    until = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    r = env.post("officer_a", path, {"state": "accepted", "reason": "legacy app", "until": until})
    assert r.status_code == 200 and r.json()["state"] == "accepted"
    expiring = env.get("reviewer", "/api/v1/waivers").json()
    assert [x["id"] for x in expiring] == [f["id"]]
    assert env.get("officer_b", "/api/v1/waivers").json() == []
    r = env.post("officer_a", path, {"state": "false_positive", "reason": "lab only"})
    assert r.json()["state"] == "false_positive"
    assert env.post("officer_a", path, {"state": "open"}).json()["state"] == "open"


# -- access control ---------------------------------------------------------------------------


def _routes(env: Env, scanned: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every unit-scoped endpoint, aimed at unit A."""
    job = scanned["unit-a"]
    finding = _open_finding(env, "net.redis.no_auth")
    return [
        ("GET", "/api/v1/units/unit-a", None),
        ("GET", "/api/v1/units/unit-a/scores", None),
        ("GET", "/api/v1/units/unit-a/jobs", None),
        ("GET", "/api/v1/units/unit-a/scans", None),
        ("GET", "/api/v1/units/unit-a/schedules", None),
        ("GET", f"/api/v1/jobs/{job['id']}", None),
        ("GET", f"/api/v1/scans/{job['scan_id']}", None),
        ("GET", f"/api/v1/scans/{job['scan_id']}/results?unit=unit-a", None),
        ("GET", "/api/v1/findings?unit=unit-a", None),
        ("POST", "/api/v1/units/unit-a/scans", {}),
        ("POST", "/api/v1/units/unit-a/schedules", {"cron": "0 2 * * 1"}),
        ("POST", f"/api/v1/findings/{finding['id']}/state", {"state": "open"}),
        ("POST", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/x", "unit": "unit-a"}),
        ("GET", "/api/v1/notifications?unit=unit-a", None),
        ("POST", "/api/v1/mail/recipients", {"address": "it@unit-a.example", "unit": "unit-a"}),
    ]


def test_officer_of_b_can_read_and_change_nothing_of_a(env: Env, scanned: dict[str, Any]) -> None:
    for method, path, body in _routes(env, scanned):
        for who in ("officer_b", "reviewer_b"):
            r = env.get(who, path) if method == "GET" else env.post(who, path, body)
            assert r.status_code == 404, (who, method, path, r.status_code, r.text)
    # listings hide unit A entirely
    for who in ("officer_b", "reviewer_b"):
        assert [u["id"] for u in env.get(who, "/api/v1/units").json()] == ["unit-b"]
        assert {f["unit"] for f in env.get(who, "/api/v1/findings").json()} <= {"unit-b"}
        assert [s["unit"] for s in env.get(who, "/api/v1/scores").json()] == ["unit-b"]


def test_reviewer_reads_everything_and_changes_nothing(env: Env, scanned: dict[str, Any]) -> None:
    for method, path, body in _routes(env, scanned):
        if method == "GET":
            assert env.get("reviewer", path).status_code == 200, path
        else:
            r = env.post("reviewer", path, body)
            assert r.status_code == 403, (path, r.status_code, r.text)
    assert env.post("reviewer", "/api/v1/units", {"id": "x", "inventory": "x"}).status_code == 403


def test_only_admin_manages_users_and_units(env: Env) -> None:
    body = {"username": "newbie", "password": PASSWORD, "role": "officer", "units": ["unit-a"]}
    assert env.post("officer_a", "/api/v1/users", body).status_code == 403
    assert env.post("admin", "/api/v1/users", body).status_code == 201
    bad = {"id": "unit-c", "inventory": "version: 1\nunits: [{id: unit-c, nmae: C}]\n"}
    r = env.post("admin", "/api/v1/units", bad)
    assert r.status_code == 422 and "unit-c:2 units[0].name" in r.text  # located


def test_invalid_token_and_no_credentials(env: Env) -> None:
    r = env.client.get("/api/v1/units", headers={"Authorization": "Bearer assay_nope"})
    assert r.status_code == 401
    assert env.client.get("/api/v1/units").status_code == 401


# -- browser sessions ---------------------------------------------------------------------------


def _login(env: Env, user: str, password: str = PASSWORD) -> Any:
    env.client.cookies.clear()
    return env.client.post(
        "/login", data={"username": user, "password": password}, follow_redirects=False
    )


def test_login_cookie_flags_and_csrf(env: Env, scanned: dict[str, Any]) -> None:
    r = _login(env, "officer_a")
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
    page = env.client.get("/units/unit-a")
    assert page.status_code == 200 and "Unit A" in page.text
    assert "Content-Security-Policy" in page.headers
    # a session-cookie POST without the CSRF token is refused, with it accepted
    no_csrf = env.client.post("/api/v1/units/unit-a/scans", json={})
    assert no_csrf.status_code == 403
    import re

    m = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert m
    ok = env.client.post(
        "/api/v1/units/unit-a/scans", json={}, headers={"X-CSRF-Token": m.group(1)}
    )
    assert ok.status_code == 202
    env.wait_job(ok.json()["job"])
    form = env.client.post("/units/unit-a/scan", data={"csrf": "wrong"}, follow_redirects=False)
    assert form.status_code == 403
    # the officer's dashboard never shows unit B
    assert "unit-b" not in env.client.get("/").text
    assert env.client.get("/units/unit-b").status_code == 404
    env.client.cookies.clear()


def test_login_rate_limit(env: Env) -> None:
    for _ in range(MAX_FAILURES_USER):
        assert _login(env, "reviewer_b", "wrong password!!").status_code == 401
    refused = _login(env, "reviewer_b")  # even the right password, for the window
    assert refused.status_code == 429 and "too many" in refused.text
    assert _login(env, "nobody-here", "whatever whatever").status_code == 401
    env.client.cookies.clear()


# -- schedules and webhooks ---------------------------------------------------------------------


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        _Hook.received.append(json.loads(self.rfile.read(min(length, 1_000_000))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_due_schedule_runs_by_itself_and_webhook_fires(env: Env, scanned: dict[str, Any]) -> None:
    addr = pick_loopback()
    hook = HTTPServer((addr, 0), _Hook)
    thread = threading.Thread(target=hook.serve_forever, daemon=True)
    thread.start()
    try:
        r = env.post("admin", "/api/v1/webhooks", {"url": f"http://{addr}:{hook.server_port}/"})
        assert r.status_code == 201
        r = env.post("officer_b", "/api/v1/units/unit-b/schedules", {"cron": "0 3 * * *"})
        assert r.status_code == 201
        sched_id = r.json()["id"]
        assert (
            env.post(
                "officer_b", "/api/v1/units/unit-b/schedules", {"cron": "61 * * * *"}
            ).status_code
            == 422
        )
        # make unit B weak, then let the schedule come due
        env.restart_redis("unit-b", WEAK_LINES)
        with env.sdb.engine.begin() as c:
            c.execute(
                update(t.schedules)
                .where(t.schedules.c.id == sched_id)
                .values(next_run_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        deadline = time.monotonic() + JOB_WAIT
        job = None
        while time.monotonic() < deadline and job is None:
            jobs = env.get("officer_b", "/api/v1/units/unit-b/jobs").json()
            job = next((j for j in jobs if j["trigger"] == "schedule"), None)
            time.sleep(0.2)
        assert job is not None, "the due schedule did not start a job"
        env.wait_job(job["id"])
        sched = env.get("officer_b", "/api/v1/units/unit-b/schedules").json()[0]
        assert sched["last_run_at"] is not None
        assert datetime.fromisoformat(sched["next_run_at"]) > datetime.now(UTC)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _Hook.received:
            time.sleep(0.1)
        assert _Hook.received, "no webhook call for the new critical finding"
        call = _Hook.received[-1]
        assert call["unit"] == "unit-b"
        assert any(f["check_id"] == "net.redis.no_auth" for f in call["new_severe"])
    finally:
        hook.shutdown()
        hook.server_close()


def test_dashboard_pages_render(env: Env, scanned: dict[str, Any]) -> None:
    assert _login(env, "reviewer").status_code == 303
    home = env.client.get("/")
    assert home.status_code == 200
    assert "unit-a" in home.text and "unit-b" in home.text
    assert "<svg" in home.text  # sparkline
    findings = env.client.get("/findings", params={"unit": "unit-a", "state": "open"})
    assert findings.status_code == 200 and "read only" in findings.text
    assert "http://" not in home.text.replace("http://www.w3.org", "")  # nothing external
    env.client.cookies.clear()


def test_openapi_lists_the_endpoints(env: Env) -> None:
    spec = env.client.get("/api/openapi.json").json()
    for path in ("/api/v1/units", "/api/v1/findings", "/api/v1/units/{unit_id}/schedules"):
        assert path in spec["paths"]


# -- PostgreSQL -------------------------------------------------------------------------------


def test_server_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    gen = _start(pg_url, tmp_path)
    env = next(gen)
    try:
        env.scan("officer_a", "unit-a")
        rows = env.get("officer_a", "/api/v1/findings", params={"unit": "unit-a"}).json()
        assert "net.redis.no_auth" in {r["check_id"] for r in rows}
        assert env.get("officer_b", "/api/v1/units/unit-a").status_code == 404
    finally:
        gen.close()
