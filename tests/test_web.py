"""Web checks against a real nginx: every check FAILs on the weak site and PASSes on the good one.

One nginx (tests/servers_web.py) serves a weak cleartext site, a bare one without headers, and a
hardened HTTPS site behind a cleartext redirect. The collectors run once per site (module
fixture), with --active, and the checks are judged on those facts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.web.active import DefaultCredentials, Upload
from scanner.collectors.http import WebCollector, WebFacts
from scanner.collectors.web_active import (
    ActiveSettings,
    DefaultCredentialsCollector,
    WebActiveCollector,
)
from scanner.model import Facts, Severity, Status, Target, TargetKind
from scanner.observatory import score
from scanner.plugins import Check, CollectContext, FactsView, load_registry
from tests.helpers import evaluate, guard_for, pick_loopback
from tests.servers_nginx import HAVE_NGINX
from tests.servers_web import SQL_DUMP, WebSites, web_sites

pytestmark = [pytest.mark.real, pytest.mark.skipif(not HAVE_NGINX, reason="nginx missing")]

FAST = ActiveSettings(interval=0)
REGISTRY = load_registry()
WEB_CHECKS = sorted(c for c in REGISTRY.checks if c.startswith(("web.", "active.")))
# checks whose FAIL needs something nginx cannot do (tested elsewhere, see the test names)
FAIL_ELSEWHERE = {
    "web.methods.trace": "test_web_bad_input.py::test_trace_echo_fails",
    "active.default_credentials": "test_basic_auth_default_password_fails (here)",
}


def web_target(url: str) -> Target:
    return Target(kind=TargetKind.WEB, unit="test", url=url)


def run(target: Target, address: str, active: bool = True) -> tuple[FactsView, CollectContext]:
    ctx = CollectContext(scope=guard_for(address), active=active, probe_timeout=3)

    async def go() -> dict[str, Facts]:
        out: dict[str, Facts] = {}
        for col in (WebCollector(), WebActiveCollector(FAST), DefaultCredentialsCollector(FAST)):
            if col.applies(target):
                out[col.id] = await asyncio.wait_for(col.collect(target, ctx), col.timeout)
        return out

    return FactsView(target, asyncio.run(go())), ctx


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebSites]:
    with web_sites(tmp_path_factory.mktemp("web"), pick_loopback()) as s:
        yield s


@pytest.fixture(scope="module")
def views(sites: WebSites) -> dict[str, tuple[FactsView, CollectContext]]:
    return {
        name: run(web_target(sites.url(name)), sites.address)
        for name in ("weak", "bare", "good_http")
    }


def _statuses(check: Check, view: FactsView) -> set[Status]:
    return {r.status for r in evaluate(check, view)}


@pytest.mark.parametrize("check_id", WEB_CHECKS)
def test_check_fails_on_weak_and_passes_on_good(
    check_id: str, views: dict[str, tuple[FactsView, CollectContext]]
) -> None:
    check = REGISTRY.checks[check_id]
    weak = _statuses(check, views["weak"][0])
    good = _statuses(check, views["good_http"][0])
    if check_id not in FAIL_ELSEWHERE:
        assert Status.FAIL in weak, (check_id, evaluate(check, views["weak"][0]))
    assert good == {Status.PASS} or (
        check_id == "active.default_credentials" and good == {Status.NOT_APPLICABLE}
    ), (check_id, evaluate(check, views["good_http"][0]))


def test_bare_site_fails_on_missing_headers(
    views: dict[str, tuple[FactsView, CollectContext]],
) -> None:
    view = views["bare"][0]
    for cid in (
        "web.headers.csp",
        "web.headers.frame",
        "web.headers.nosniff",
        "web.headers.referrer",
        "web.headers.permissions",
        "web.headers.isolation",
    ):
        results = evaluate(REGISTRY.checks[cid], view)
        assert {r.status for r in results} == {Status.FAIL}, cid
        assert all("no " in r.message or "not sent" in r.message for r in results), cid


def test_observatory_grade_and_points(views: dict[str, tuple[FactsView, CollectContext]]) -> None:
    weak = score(views["weak"][0].get("web.http", WebFacts), "https://assay-cors-probe.invalid")
    good = score(
        views["good_http"][0].get("web.http", WebFacts), "https://assay-cors-probe.invalid"
    )
    assert weak is not None and good is not None
    assert weak.grade == "F" and weak.score == 0 and not weak.bonus_counted
    points = {t.name: t.modifier for t in weak.tests}
    assert points["strict-transport-security"] == -20  # hsts-not-implemented-no-https
    assert points["redirection"] == -20  # redirection-missing
    assert points["cookies"] == -40  # session cookie without Secure, over http
    assert points["subresource-integrity"] == -50  # external script over http without SRI
    assert good.grade == "A+" and good.bonus_counted and good.uncurved == 100
    good_points = {t.name: t.result for t in good.tests}
    assert good_points["content-security-policy"] == (
        "csp-implemented-with-no-unsafe-default-src-none"
    )
    assert good_points["redirection"] == "redirection-to-https"
    [res] = evaluate(REGISTRY.checks["web.observatory.grade"], views["good_http"][0])
    assert "grade A+" in res.message and res.evidence["tests"]["cookies"]["points"] == 5


def test_exposed_content_is_classified_and_masked(
    views: dict[str, tuple[FactsView, CollectContext]],
) -> None:
    view = views["weak"][0]
    [env] = evaluate(REGISTRY.checks["web.exposed.env"], view)
    assert env.severity is Severity.CRITICAL
    assert {f["key"] for f in env.evidence["findings"]} == {"DB_PASSWORD", "API_TOKEN"}
    [git] = evaluate(REGISTRY.checks["web.exposed.git"], view)
    assert git.severity is Severity.CRITICAL and git.evidence["remote_credentials"]
    assert git.evidence["remotes"] == ["https://deploy:****@git.example.gov.vn/portal/site.git"]
    backups = evaluate(REGISTRY.checks["web.exposed.backup"], view)
    dump = next(r for r in backups if r.detail == "/backup/site-2024.sql")
    kinds = {f["kind"] for f in dump.evidence["findings"]}
    assert {"phone_number", "citizen_id", "email"} <= kinds and dump.severity is Severity.CRITICAL
    # nothing secret or personal leaves the collector unmasked
    everything = json.dumps(
        [view.get("web.http", WebFacts).model_dump(mode="json")]
        + [
            r.model_dump(mode="json")
            for c in WEB_CHECKS
            for r in evaluate(REGISTRY.checks[c], view)
        ]
    )
    for raw in (
        "Sup3rS3cret",
        "tok_9f8e7d6c5b4a",
        "gh-pat-0123456789abcdef",
        "0912345678",
        "001203012345",
        "a.nguyen@example.vn",
    ):
        assert raw not in everything, raw
    assert "0912345678" in SQL_DUMP  # the value really was in the served file


def test_active_probes_are_logged_and_cleaned_up(
    sites: WebSites, views: dict[str, tuple[FactsView, CollectContext]]
) -> None:
    view, ctx = views["weak"]
    [up] = evaluate(Upload(), view)
    assert up.status is Status.FAIL and "could NOT" not in up.message
    assert list((sites.weak_root / "upload").iterdir()) == []  # the test file was deleted
    assert any(line.startswith("web.active: PUT ") for line in ctx.active_log)
    assert any(line.startswith("web.active: DELETE ") for line in ctx.active_log)
    assert up.evidence["probes_sent"]  # the evidence lists every probe


def test_without_active_nothing_is_sent_and_active_checks_say_so(sites: WebSites) -> None:
    view, ctx = run(web_target(sites.url("weak")), sites.address, active=False)
    assert ctx.active_log == []
    [up] = evaluate(Upload(), view)
    assert up.status is Status.NOT_ASSESSED and "--active" in up.message
    [cred] = evaluate(DefaultCredentials(), view)
    assert cred.status is Status.NOT_APPLICABLE
    # the passive write-method check still answers, and says how to probe further
    [dav] = evaluate(REGISTRY.checks["web.methods.webdav_write"], view)
    assert dav.status is Status.PASS and "--active" in dav.message


def test_basic_auth_default_password_fails(sites: WebSites) -> None:
    view, ctx = run(web_target(sites.url("weak", "/admin/")), sites.address)
    [res] = evaluate(DefaultCredentials(), view)
    assert res.status is Status.FAIL and "admin" in res.message
    assert res.evidence["service"] == "http-basic"
    assert all("admin" not in a.get("password", "") for a in res.evidence["attempts"])
    assert any("Basic user 'admin'" in line for line in ctx.active_log)
    # and the Basic prompt over cleartext is itself a finding
    [clear] = evaluate(REGISTRY.checks["web.auth.cleartext"], view)
    assert clear.status is Status.FAIL and "Basic" in clear.message


def test_attempt_limit_is_respected(sites: WebSites) -> None:
    target = web_target(sites.url("weak", "/admin/"))
    ctx = CollectContext(scope=guard_for(sites.address), active=True, probe_timeout=3)
    settings = ActiveSettings(
        interval=0, max_attempts=1, credentials={"http": [("nobody", "x"), ("admin", "admin")]}
    )
    facts = asyncio.run(DefaultCredentialsCollector(settings).collect(target, ctx))
    assert [a.username for a in facts.attempts] == ["nobody"] and not facts.accepted


def test_configured_paths_are_fetched(sites: WebSites) -> None:
    target = web_target(sites.url("weak"))
    ctx = CollectContext(scope=guard_for(sites.address), probe_timeout=3)
    facts = asyncio.run(WebCollector(paths=("/backup/",), probe_budget=2).collect(target, ctx))
    assert [p.url for p in facts.pages] == [sites.url("weak", "/backup/")]
    assert facts.pages[0].listing and "site-2024.sql" in facts.pages[0].listing_entries
    assert len([p for p in facts.probes if p.status is not None]) <= 3  # budget (+ .git/config)
    assert any("beyond the probe budget" in s for s in facts.probes_skipped)


def test_https_start_url_records_unverified_certificate(sites: WebSites) -> None:
    view, _ = run(web_target(sites.url("good_tls")), sites.address, active=False)
    f = view.get("web.http", WebFacts)
    assert f.final is not None and f.final.tls and "not verified" in f.tls_note
    [red] = evaluate(REGISTRY.checks["web.https.redirect"], view)
    assert red.status is Status.NOT_APPLICABLE


def test_service_target_is_assessed_like_a_url(sites: WebSites) -> None:
    from scanner.model import ServiceInfo

    svc = Target(
        kind=TargetKind.SERVICE,
        unit="test",
        address=sites.address,
        port=sites.good_tls,
        service=ServiceInfo(name="http", tunnel="ssl"),
    )
    col = WebCollector()
    assert col.applies(svc) and col.start_url(svc).startswith("https://")
    view, _ = run(svc, sites.address, active=False)
    [hsts] = evaluate(REGISTRY.checks["web.headers.hsts"], view)
    assert hsts.status is Status.PASS


def test_out_of_scope_redirect_is_refused_and_reported(tmp_path: Path) -> None:
    from tests.servers_nginx import NginxServer, redirect_server
    from tests.servers_redis import ScriptedServer, reply_once

    addr, outside = pick_loopback(), pick_loopback()
    with ScriptedServer(outside, reply_once(b"HTTP/1.0 200 OK\r\n\r\nhi")) as trap:
        from tests.helpers import free_port

        port = free_port(addr)
        block = redirect_server(addr, port, f"https://{outside}:{trap.port}/")
        with NginxServer(tmp_path, addr, [block]) as nginx:
            nginx.wait(port)
            view, _ = run(web_target(f"http://{addr}:{port}/"), addr, active=False)
        assert trap.accepted == 0
    f = view.get("web.http", WebFacts)
    assert f.out_of_scope_redirect == f"https://{outside}:{trap.port}/" and f.final is None
    [hsts] = evaluate(REGISTRY.checks["web.headers.hsts"], view)
    assert hsts.status is Status.NOT_ASSESSED and "outside the scope" in hsts.message
