"""Alert e-mail and policy scores of the team server, against real servers on loopback.

A real SMTP server (aiosmtpd) with STARTTLS and login, another with implicit TLS, one that
refuses every recipient, and an address where nothing listens; real redis-server targets (one
open, one with a password) scanned through the API; a webhook receiver beside the mail. Each
case shows the mail arriving (subject, body, over TLS, after login) or a clear stored error,
and that the scan and the webhook are never lost to a mail fault.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import date
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from policies.evidence import Evidence
from policies.loader import Catalog
from policies.scoring import Selection, score
from scanner.plugins import load_registry
from scanner.server.app import ServerConfig, create_app
from scanner.server.notify import Alert, MailRelay, message, send_mail
from scanner.server.security import Role
from scanner.server.service import ServerDB
from tests.helpers import free_port, pick_loopback
from tests.servers_redis import HAVE_REDIS, WEAK_LINES, RedisServer, auth_lines
from tests.tls_pki import TestCA

pytestmark = pytest.mark.skipif(not HAVE_REDIS, reason="redis-server is not installed")

PASSWORD = "correct horse battery staple"
SMTP_USER = "assay-alerts"
SMTP_SECRET = "smtp-Secret-4f9c1e"  # must never reach the database or a log
SECRET_ENV = "ASSAY_TEST_SMTP_PASSWORD"
JOB_WAIT = 180.0


# -- the SMTP servers -------------------------------------------------------------------------


class Inbox:
    """aiosmtpd handler that keeps what it receives; `refuse` answers RCPT with a 550."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.messages: list[tuple[list[str], Message, bool, str | None]] = []
        self.arrived = threading.Condition()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refuse:
            return "550 5.7.1 relaying denied for this sender"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        auth = session.auth_data
        login = auth.decode() if isinstance(auth, bytes) else None
        self.messages.append(
            (
                list(envelope.rcpt_tos),
                message_from_bytes(envelope.original_content),
                server.transport.get_extra_info("ssl_object") is not None,
                login,
            )
        )
        with self.arrived:
            self.arrived.notify_all()
        return "250 Message accepted"

    def wait(self, count: int, timeout: float = 10.0) -> bool:
        """True once `count` messages arrived (bounded wait, woken by each arrival)."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.messages) >= count, timeout)


def _login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        SMTP_USER.encode(),
        SMTP_SECRET.encode(),
    )
    if not ok:
        return AuthResult(success=False, handled=False)  # aiosmtpd answers 535
    return AuthResult(success=True, auth_data=data.login)


class Smtp:
    def __init__(self, inbox: Inbox, controller: Controller, addr: str, port: int) -> None:
        self.inbox, self.controller, self.addr, self.port = inbox, controller, addr, port


def _smtp(
    addr: str,
    tls: ssl.SSLContext | None = None,
    implicit: bool = False,
    refuse: bool = False,
) -> Smtp:
    inbox = Inbox(refuse)
    port = free_port(addr)
    kwargs: dict[str, Any] = {"server_hostname": "mail.assay-test.invalid", "ready_timeout": 10}
    if implicit:
        kwargs["ssl_context"] = tls
        # aiosmtpd only counts STARTTLS as TLS for AUTH; this socket is TLS from the start
        kwargs["auth_require_tls"] = False
    elif tls is not None:
        kwargs["tls_context"] = tls
    if tls is not None:
        kwargs["authenticator"] = _login
    ctl = Controller(inbox, hostname=addr, port=port, **kwargs)
    ctl.start()
    return Smtp(inbox, ctl, addr, port)


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        _Hook.received.append(json.loads(self.rfile.read(min(length, 1_000_000))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


# -- the server ------------------------------------------------------------------------------


def inventory(unit: str, addr: str, port: int) -> str:
    return (
        "version: 1\n"
        "settings: {probe_timeout: 2, version_budget: 10}\n"
        f"units:\n  - id: {unit}\n    name: Unit {unit}\n    hosts:\n"
        f'      - address: {addr}\n        ports: "{port}"\n'
    )


class Env:
    def __init__(self, client: Any, sdb: ServerDB, token: str, tmp: Path, **kw: Any) -> None:
        self.client, self.sdb, self.token, self.tmp = client, sdb, token, tmp
        self.weak: RedisServer = kw["weak"]
        self.good: RedisServer = kw["good"]
        self.starttls: Smtp = kw["starttls"]
        self.implicit: Smtp = kw["implicit"]
        self.refusing: Smtp = kw["refusing"]
        self.cafile: Path = kw["cafile"]
        self.db: Path = kw["db"]
        self.hook_url: str = kw["hook_url"]

    def h(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, method: str, path: str, body: Any = None) -> Any:
        return self.client.request(method, path, headers=self.h(), json=body)

    def unit(self, unit: str, redis: RedisServer, policy: str | None = None) -> None:
        body = {"id": unit, "inventory": inventory(unit, redis.address, redis.port)}
        if policy:
            body["policy"] = policy
        r = self.call("POST", "/api/v1/units", body)
        assert r.status_code == 201, r.text

    def scan(self, unit: str, policy: str | None = None) -> dict[str, Any]:
        r = self.call("POST", f"/api/v1/units/{unit}/scans", {"policy": policy})
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + JOB_WAIT
        while time.monotonic() < deadline:
            job = self.call("GET", f"/api/v1/jobs/{r.json()['job']}").json()
            if job["state"] in ("complete", "failed"):
                assert job["state"] == "complete", job
                return dict(job)
            time.sleep(0.2)
        raise AssertionError(f"job for {unit} did not finish within {JOB_WAIT}s")

    def relay(self, **kw: Any) -> Any:
        return self.call("PUT", "/api/v1/mail/relay", kw)

    def notes(self, unit: str) -> list[dict[str, Any]]:
        r = self.call("GET", "/api/v1/notifications", None)
        assert r.status_code == 200, r.text
        return [n for n in r.json() if n["unit"] == unit]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    from fastapi.testclient import TestClient

    tmp = tmp_path_factory.mktemp("mail")
    os.environ[SECRET_ENV] = SMTP_SECRET
    ca = TestCA()
    mail_addr = pick_loopback()
    crt, key = ca.issue(ips=(mail_addr,)).write(tmp, "mail")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(crt, key)
    servers = [
        _smtp(mail_addr, tls),
        _smtp(mail_addr, tls, implicit=True),
        _smtp(mail_addr, refuse=True),
    ]
    hook_addr = pick_loopback()
    hook = HTTPServer((hook_addr, 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    weak = RedisServer(tmp / "weak", pick_loopback(), WEAK_LINES)
    good = RedisServer(tmp / "good", pick_loopback(), auth_lines())
    db = tmp / "server.db"
    app = create_app(ServerConfig(db_url=f"sqlite:///{db}", tick=60, nmap_path="/nonexistent"))
    sdb: ServerDB = app.state.sdb
    uid = sdb.create_user("admin", PASSWORD, Role.ADMIN)
    try:
        with weak, good, TestClient(app, base_url="https://testserver") as client:
            e = Env(
                client,
                sdb,
                sdb.create_token(uid, "test"),
                tmp,
                weak=weak,
                good=good,
                starttls=servers[0],
                implicit=servers[1],
                refusing=servers[2],
                cafile=ca.root_pem(tmp),
                db=db,
                hook_url=f"http://{hook_addr}:{hook.server_port}/",
            )
            assert e.call("POST", "/api/v1/webhooks", {"url": e.hook_url}).status_code == 201
            yield e
    finally:
        hook.shutdown()
        hook.server_close()
        for s in servers:
            s.controller.stop()
        os.environ.pop(SECRET_ENV, None)


def _hooks_for(unit: str) -> list[dict[str, Any]]:
    return [h for h in _Hook.received if h["unit"] == unit]


# -- e-mail ----------------------------------------------------------------------------------


def test_score_drop_mail_over_starttls_with_login(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    s = env.starttls
    r = env.relay(
        host=s.addr,
        port=s.port,
        security="starttls",
        sender="assay@so-tttt.example",
        username=SMTP_USER,
        password_ref=f"env:{SECRET_ENV}",
        cafile=str(env.cafile),
    )
    assert r.status_code == 200, r.text
    env.unit("m-drop", env.good)
    for unit, addr in (("m-drop", "officer@so-tttt.example"), ("m-other", "other@x.example")):
        if unit == "m-other":
            env.unit("m-other", env.good)
        body = {"address": addr, "unit": unit}
        assert env.call("POST", "/api/v1/mail/recipients", body).status_code == 201
    caplog.set_level(logging.DEBUG)
    env.scan("m-drop")  # the Redis with a password: only its exposed port is new and high
    assert s.inbox.wait(1), env.notes("m-drop")
    first = str(s.inbox.messages[0][1]["Subject"])
    assert first == "[Assay] Unit m-drop (m-drop): 1 new high or critical finding(s)"
    env.unit("m-drop", env.weak)  # the unit's host is now the open Redis
    env.scan("m-drop")
    assert s.inbox.wait(2), env.notes("m-drop")
    assert len(s.inbox.messages) == 2
    rcpt, msg, over_tls, login = s.inbox.messages[1]
    assert rcpt == ["officer@so-tttt.example"]  # not the other unit's recipient
    assert over_tls and login == SMTP_USER
    subject = str(msg["Subject"])
    assert subject.startswith("[Assay] Unit m-drop (m-drop): pass rate dropped from 100.0% to 0.0%")
    assert "new high or critical finding(s)" in subject
    text = msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "Policy: cis-baseline" in text and "Before:     pass rate 100.0%" in text
    assert "net.redis.no_auth" in text and f"{env.weak.address}:{env.weak.port}" in text
    assert msg["From"] == "assay@so-tttt.example" and msg["Auto-Submitted"] == "auto-generated"
    states = {(n["channel"], n["state"]) for n in env.notes("m-drop")}
    assert states == {("mail", "sent"), ("webhook", "sent")}
    assert len(env.notes("m-drop")) == 4  # two alerts, each by mail and webhook
    # the password lives only in the environment: not in the database, not in any log line
    assert SMTP_SECRET.encode() not in env.db.read_bytes()
    with sqlite3.connect(env.db) as c:
        assert c.execute("select password_ref from mail_relay").fetchone() == (f"env:{SECRET_ENV}",)
    assert SMTP_SECRET not in caplog.text


def test_mail_over_implicit_tls(env: Env) -> None:
    s = env.implicit
    r = env.relay(
        host=s.addr,
        port=s.port,
        security="tls",
        sender="assay@so-tttt.example",
        username=SMTP_USER,
        password_ref=f"env:{SECRET_ENV}",
        cafile=str(env.cafile),
    )
    assert r.status_code == 200, r.text
    env.unit("m-tls", env.weak)
    env.call("POST", "/api/v1/mail/recipients", {"address": "tls@so-tttt.example", "unit": "m-tls"})
    env.scan("m-tls")
    assert s.inbox.wait(1), env.notes("m-tls")
    rcpt, msg, over_tls, login = s.inbox.messages[-1]
    assert rcpt == ["tls@so-tttt.example"] and over_tls and login == SMTP_USER
    assert "new high or critical finding(s)" in str(msg["Subject"])


def test_unreachable_relay_keeps_the_scan_and_the_webhook(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    addr = pick_loopback()
    port = free_port(addr)  # nothing listens there
    assert env.relay(host=addr, port=port, security="none", sender="a@x.example").status_code == 200
    env.unit("m-down", env.weak)
    env.call("POST", "/api/v1/mail/recipients", {"address": "down@x.example", "unit": "m-down"})
    caplog.set_level(logging.WARNING, logger="scanner.server.notify")
    job = env.scan("m-down")
    assert job["state"] == "complete" and job["error"] == ""
    findings = env.call("GET", "/api/v1/findings", None).json()
    assert any(f["unit"] == "m-down" and f["check_id"] == "net.redis.no_auth" for f in findings)
    assert _hooks_for("m-down"), "the webhook was lost to the mail fault"
    mail = [n for n in env.notes("m-down") if n["channel"] == "mail"]
    assert len(mail) == 1 and mail[0]["state"] == "failed"
    assert mail[0]["error"].startswith(f"SMTP {addr}:{port} (none) is unreachable")
    assert "down@x.example" in mail[0]["destination"]
    assert f"SMTP {addr}:{port} (none) is unreachable" in caplog.text


def test_refusing_relay_is_a_stored_error(env: Env) -> None:
    s = env.refusing
    r = env.relay(host=s.addr, port=s.port, security="none", sender="assay@so-tttt.example")
    assert r.status_code == 200
    env.unit("m-refused", env.weak)
    env.call("POST", "/api/v1/mail/recipients", {"address": "no@x.example", "unit": "m-refused"})
    assert env.scan("m-refused")["state"] == "complete"
    assert _hooks_for("m-refused")
    mail = next(n for n in env.notes("m-refused") if n["channel"] == "mail")
    assert mail["state"] == "failed"
    assert "refused every recipient: no@x.example: 550 5.7.1 relaying denied" in mail["error"]
    assert s.inbox.messages == []


def _alert() -> Alert:
    return Alert("u", "Unit\r\nBcc: evil@x.example", "scan1", ["why"], {}, None, {}, [])


def test_relay_faults_name_what_and_where(env: Env) -> None:
    s = env.starttls
    base = {"host": s.addr, "port": s.port, "sender": "assay@x.example"}
    # the password itself given instead of a reference: refused, and never echoed back
    r = env.relay(**base, username=SMTP_USER, password_ref=SMTP_SECRET)
    assert r.status_code == 422 and "must be a reference" in r.text and SMTP_SECRET not in r.text
    r = env.relay(**base, security="none", username=SMTP_USER, password_ref=f"env:{SECRET_ENV}")
    assert r.status_code == 422 and "in clear" in r.text
    assert env.relay(**{**base, "sender": "not an address"}).status_code == 422
    bad = env.call("POST", "/api/v1/mail/recipients", {"address": "nobody", "unit": None})
    assert bad.status_code == 422 and "not an e-mail address" in bad.text

    def send(**kw: Any) -> str:
        relay = MailRelay.model_validate({**base, **kw})
        return send_mail(relay, ["x@x.example"], message(relay, ["x@x.example"], _alert()), 5)

    where = f"SMTP {s.addr}:{s.port}"
    # a reference that does not resolve
    err = send(username=SMTP_USER, password_ref="env:ASSAY_TEST_NO_SUCH_VAR")
    assert (
        err
        == f"{where} (starttls) password: environment variable ASSAY_TEST_NO_SUCH_VAR is not set"
    )
    # a wrong password
    os.environ["ASSAY_TEST_WRONG"] = "wrong"
    try:
        err = send(username=SMTP_USER, password_ref="env:ASSAY_TEST_WRONG", cafile=str(env.cafile))
    finally:
        del os.environ["ASSAY_TEST_WRONG"]
    assert err.startswith(f"{where} (starttls) refused the message: 535"), err
    # a certificate the trust bundle does not vouch for (the system store has no test CA)
    err = send(username=SMTP_USER, password_ref=f"env:{SECRET_ENV}")
    assert err.startswith(f"{where} (starttls): TLS failed: CERTIFICATE_VERIFY_FAILED"), err
    # STARTTLS asked of a relay that does not offer it: nothing is sent in clear
    plain = env.refusing
    relay = MailRelay(host=plain.addr, port=plain.port, sender="a@x.example")
    err = send_mail(relay, ["x@x.example"], message(relay, ["x@x.example"], _alert()), 5)
    assert err == f"SMTP {plain.addr}:{plain.port} (starttls): the relay does not offer STARTTLS"
    # a unit name with a line break cannot add a header
    msg = message(relay, ["x@x.example"], _alert())
    assert msg["Bcc"] is None and "\n" not in str(msg["Subject"])


# -- policy scores on the API and the dashboard ------------------------------------------------


def test_scores_are_the_policy_packs(env: Env) -> None:
    s = env.call("GET", "/api/v1/units/m-drop/scores").json()
    scores = s["scores"]
    assert scores["policy"] == "cis-baseline" and scores["grade"] in "ABCDF"
    # the very numbers `policies.scoring` gives for that scan (as `assay report --policy`)
    store = env.sdb.store
    rec = store.scan(s["latest_scan"])
    registry = load_registry()
    evidence = Evidence(
        [o for o in store.outcomes(rec.id) if o.unit == "m-drop"],
        [t for t in store.targets(rec.id) if t.unit == "m-drop"],
        registry,
    )
    catalog = Catalog.builtin()
    ref = score(
        [Selection(catalog.resolve("cis-baseline"))], evidence, ["m-drop"], as_of=date.today()
    ).packs[0]
    n = ref.units[0].numbers
    assert scores["pass_rate"] == round(100 * n.pass_rate, 1)
    assert scores["weighted"] == round(n.weighted_score, 1)
    assert scores["coverage"] == round(100 * n.coverage, 1)
    assert scores["controls"]["failed"] == n.failed >= 1
    assert scores["pass_rate"] == 0.0 and s["trend"] == [100.0, 0.0]
    assert s["delta"] is not None and s["delta"] < 0  # good Redis, then the open one
    # a scan started under another pack is scored under it, and its trend too
    job = env.scan("m-drop", policy="iso27001-2022")
    assert job["options"]["policy"] == "iso27001-2022"
    s2 = env.call("GET", "/api/v1/units/m-drop/scores").json()
    assert s2["scores"]["policy"] == "iso27001-2022" and len(s2["trend"]) == 3
    r = env.call("POST", "/api/v1/units/m-drop/scans", {"policy": "no-such-pack"})
    assert r.status_code == 422 and "no policy pack 'no-such-pack'" in r.text


def test_unit_page_shows_the_control_tree(env: Env) -> None:
    env.sdb.create_user("viewer", PASSWORD, Role.REVIEWER, all_units=True)
    env.client.cookies.clear()
    r = env.client.post("/login", data={"username": "viewer", "password": PASSWORD})
    assert r.status_code == 200
    page = env.client.get("/units/m-tls").text
    assert 'id="policy">cis-baseline<' in page and 'id="grade">' in page
    assert 'id="control-tree"' in page and 'id="top-failing"' in page
    failing = next(
        c
        for c in env.sdb.summary(env.sdb.principal(1), "m-tls").scores.top_failing()  # type: ignore[union-attr, arg-type]
    )
    assert f"<code>{failing['id']}</code> {failing['title']}" in page
    home = env.client.get("/").text
    assert "<code>cis-baseline</code>" in home
    env.client.cookies.clear()
