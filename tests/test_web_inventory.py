"""Inventory web URLs with `paths`, and the inventory's `settings.active`, on the real nginx.

The weak and hardened sites of tests/servers_web.py get one more page each, `/staff/` with a
login form: over cleartext on the weak site, behind the HTTPS redirect on the hardened one. A
configured path is fetched (its redirects followed within scope) and judged like the root
page; a URL with a path is fetched at that path; the runner carries both from the inventory
to the collectors; typos and bad values name the field and the line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.collectors.http import WebCollector, WebFacts
from scanner.collectors.web_active import DefaultCredentialsCollector, WebActiveCollector
from scanner.inventory import ActiveConfig, InventoryError, parse_inventory
from scanner.model import Facts, Status, Target, TargetKind
from scanner.plugins import CollectContext, FactsView, load_registry
from scanner.runner import Runner, ScanOptions
from scanner.store import Store
from tests.helpers import evaluate, free_port, guard_for, pick_loopback
from tests.servers_nginx import HAVE_NGINX, NginxServer, redirect_server
from tests.servers_web import GOOD_PAGE, LOGIN_FORM, WebSites, web_sites

pytestmark = [pytest.mark.real, pytest.mark.skipif(not HAVE_NGINX, reason="nginx missing")]

REGISTRY = load_registry()
CLEARTEXT_AUTH = REGISTRY.checks["web.auth.cleartext"]


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebSites]:
    with web_sites(tmp_path_factory.mktemp("webinv"), pick_loopback()) as s:
        # nginx serves files from disk as they are asked for: these pages join the sites
        (s.weak_root / "staff").mkdir()
        (s.weak_root / "staff" / "index.html").write_text(LOGIN_FORM)
        good_root = s.weak_root.parent / "good"
        (good_root / "staff").mkdir()
        (good_root / "staff" / "index.html").write_text(GOOD_PAGE)
        # the weak root page without a form, so that only the path can fail
        (s.weak_root / "plain.html").write_text("<!doctype html><html><body>hi</body></html>")
        yield s


def web_target(url: str, *paths: str) -> Target:
    return Target(kind=TargetKind.WEB, unit="test", url=url, paths=paths)


def collect(target: Target, address: str) -> FactsView:
    ctx = CollectContext(scope=guard_for(address), probe_timeout=3)
    col = WebCollector(probe_budget=1)  # the sensitive paths are tested in test_web.py
    facts: dict[str, Facts] = {
        col.id: asyncio.run(asyncio.wait_for(col.collect(target, ctx), col.timeout))
    }
    return FactsView(target, facts)


def test_login_path_fails_on_weak_site(sites: WebSites) -> None:
    # /plain.html has no form; /staff answers 301 to /staff/ (nginx adds the slash), whose
    # login form is served over cleartext
    target = web_target(sites.url("weak", "/plain.html"), "/staff", "/staff/")
    view = collect(target, sites.address)
    f = view.get("web.http", WebFacts)
    fetch, again = f.paths
    assert again.already_fetched and len(f.pages) == 2  # /staff/ came by the redirect: once
    assert fetch.redirect_chain == [sites.url("weak", "/staff"), sites.url("weak", "/staff/")]
    assert fetch.status == 200 and fetch.final_url == sites.url("weak", "/staff/")
    results = evaluate(CLEARTEXT_AUTH, view)
    assert [(r.status, r.detail) for r in results] == [
        (Status.FAIL, f"form:{sites.url('weak', '/staff/')}")
    ]
    assert results[0].evidence["url"] == sites.url("weak", "/staff/")
    # without the path the same site passes: the finding comes from the configured page
    [alone] = evaluate(
        CLEARTEXT_AUTH, collect(web_target(sites.url("weak", "/plain.html")), sites.address)
    )
    assert alone.status is Status.PASS


def test_login_path_passes_on_hardened_site(sites: WebSites) -> None:
    view = collect(web_target(sites.url("good_http"), "/staff/"), sites.address)
    f = view.get("web.http", WebFacts)
    [fetch] = f.paths
    assert fetch.redirect_chain == [
        sites.url("good_http", "/staff/"),
        sites.url("good_tls", "/staff/"),
    ]
    assert fetch.status == 200
    tls_page = f.pages[-1]
    assert tls_page.tls and any(form.has_password for form in tls_page.forms)
    assert {r.status for r in evaluate(CLEARTEXT_AUTH, view)} == {Status.PASS}
    # the hardened page's token and cookies pass too
    for cid in ("web.forms.csrf", "web.cookies.flags"):
        assert {r.status for r in evaluate(REGISTRY.checks[cid], view)} == {Status.PASS}, cid


def test_url_with_a_path_is_fetched_at_that_path(sites: WebSites) -> None:
    view = collect(web_target(sites.url("weak", "/staff/")), sites.address)
    f = view.get("web.http", WebFacts)
    assert f.final is not None and f.final.url == sites.url("weak", "/staff/")
    [res] = evaluate(CLEARTEXT_AUTH, view)
    assert res.status is Status.FAIL and res.detail == f"form:{sites.url('weak', '/staff/')}"


def test_path_redirect_out_of_scope_is_refused(tmp_path: Path) -> None:
    addr, outside = pick_loopback(), pick_loopback()
    port = free_port(addr)
    with NginxServer(tmp_path, addr, [redirect_server(addr, port, f"http://{outside}:9/x")]) as n:
        n.wait(port)
        f = collect(web_target(f"http://{addr}:{port}/", "/login"), addr).get("web.http", WebFacts)
    # the root walk stopped at the refused redirect; the configured path was still asked
    assert f.final is None and f.out_of_scope_redirect == f"http://{outside}:9/x"
    [fetch] = f.paths
    assert fetch.out_of_scope_redirect == f"http://{outside}:9/x" and fetch.status is None
    assert "outside the scope" in fetch.not_followed
    assert [p.url for p in f.pages] == [f"http://{addr}:{port}/login"]


def test_active_settings_from_the_inventory_reach_the_collectors(
    sites: WebSites, tmp_path: Path
) -> None:
    target = web_target(sites.url("weak", "/admin/"))

    def ctx(config: ActiveConfig) -> CollectContext:
        return CollectContext(
            scope=guard_for(sites.address), active=True, probe_timeout=3, active_settings=config
        )

    brute_only = ctx(ActiveConfig(classes=["brute"], interval=0, max_attempts=1))
    web = asyncio.run(WebActiveCollector().collect(target, brute_only))
    assert not web.ran and "switched off" in web.reason
    creds = asyncio.run(DefaultCredentialsCollector().collect(target, brute_only))
    assert creds.limit == 1 and [a.username for a in creds.attempts] == ["admin"]
    assert creds.accepted  # the weak site's admin/admin, first of the built-in list
    assert not any(line.startswith("web.active") for line in brute_only.active_log)
    assert sum("Basic user" in line for line in brute_only.active_log) == 1
    # a credential file replaces the built-in list; max_attempts still bounds it
    listed = tmp_path / "creds.txt"
    listed.write_text("# unit appliances\nhttp nobody not-it\nhttp admin admin\n")
    one = ctx(ActiveConfig(interval=0, max_attempts=1, credentials=listed))
    creds = asyncio.run(DefaultCredentialsCollector().collect(target, one))
    assert [a.username for a in creds.attempts] == ["nobody"] and not creds.accepted
    two = ctx(ActiveConfig(interval=0, max_attempts=2, credentials=listed))
    creds = asyncio.run(DefaultCredentialsCollector().collect(target, two))
    assert [a.username for a in creds.attempts] == ["nobody", "admin"] and creds.accepted


# -- through the runner -------------------------------------------------------------------------


def _inventory(sites: WebSites, creds: Path) -> str:
    return f"""version: 1
settings:
  probe_timeout: 3
  active:
    classes: [safe]
    interval: 0
    credentials: {creds}
units:
  - id: u
    name: U
    hosts:
      - address: {sites.address}
        ports: "{sites.weak}"
    web:
      - url: {sites.url("weak", "/plain.html")}
        paths: [/staff]
"""


def test_runner_fetches_inventory_paths_and_reports_a_bad_credential_file(
    sites: WebSites, tmp_path: Path
) -> None:
    creds = tmp_path / "creds.txt"
    creds.write_text("ssh root root\nssh\n")
    text = _inventory(sites, creds)
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    runner = Runner(
        REGISTRY,
        store,
        parse_inventory(text, "u.yaml"),
        inventory_text=text,
        options=ScanOptions(active=True, nmap_path="/nonexistent/nmap", version_detection=False),
    )
    summary = asyncio.run(runner.run())
    outcomes = store.outcomes(summary.scan_id)
    probes = store.scan(summary.scan_id).active_probes
    store.close()
    web_url = sites.url("weak", "/plain.html")
    mine = [o for o in outcomes if o.target.url == web_url]
    assert mine and all(o.target.paths == ("/staff",) for o in mine)
    auth = [o for o in mine if o.check_id == "web.auth.cleartext"]
    assert [(o.status, o.message) for o in auth] == [
        (Status.FAIL, f"{sites.url('weak', '/staff/')} serves a login form over cleartext HTTP")
    ]
    # the bad credential line stops the active checks (named, no probe sent), nothing else
    active = [o for o in mine if o.check_id in ("web.active.upload", "active.default_credentials")]
    assert active and {o.status for o in active} == {Status.ERROR}
    assert all(f"{creds}:2 settings.active.credentials: no user name" in o.message for o in active)
    assert not any("web.active" in line or "active.credentials" in line for line in probes)
    assert any(o.status is Status.FAIL for o in mine if o.check_id.startswith("web.headers."))


# -- inventory errors ----------------------------------------------------------------------------

GOOD = """version: 1
settings:
  active:
    classes: [safe, brute]
    max_attempts: 2
units:
  - id: u
    name: U
    hosts: [{address: 127.0.0.5}]
    web:
      - url: http://127.0.0.5:8080/
        paths: [/login, /portal/]
"""


def test_good_inventory_paths_and_active_block() -> None:
    inv = parse_inventory(GOOD, "unit.yaml")
    assert inv.units[0].web[0].paths == ["/login", "/portal/"]
    assert (
        inv.settings.active.classes == ["safe", "brute"] and inv.settings.active.max_attempts == 2
    )


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        (
            "paths: [/login",
            "path: [/login",
            r"unit\.yaml:12 units\[0\]\.web\[0\]\.path: unknown key",
        ),
        (
            "/portal/]",
            "portal/]",
            r"unit\.yaml:12 units\[0\]\.web\[0\]\.paths\[1\]: 'portal/' is not an absolute path",
        ),
        (
            "/portal/]",
            "http://127.0.0.5/portal/]",
            r"unit\.yaml:12 units\[0\]\.web\[0\]\.paths\[1\]: .* is not an absolute path",
        ),
        (
            "/portal/]",
            "//evil.example/]",
            r"paths\[1\]: '//evil\.example/' would name another host",
        ),
        (
            "/portal/]",
            "/login]",
            r"unit\.yaml:12 units\[0\]\.web\[0\]\.paths: path '/login' is listed twice",
        ),
        ("/portal/]", "/a b]", r"paths\[1\]: '/a b' is not a plain path"),
        (
            "max_attempts: 2",
            "max_atempts: 2",
            r"unit\.yaml:5 settings\.active\.max_atempts: unknown key",
        ),
        (
            "max_attempts: 2",
            "max_attempts: 50",
            r"unit\.yaml:5 settings\.active\.max_attempts: .*less than or equal to 10",
        ),
        (
            "brute]",
            "brutal]",
            r"unit\.yaml:4 settings\.active\.classes\[1\]: .*'safe', 'intrusive' or 'brute'",
        ),
        (
            "brute]",
            "safe]",
            r"unit\.yaml:4 settings\.active\.classes: a safety class is listed twice",
        ),
    ],
)
def test_inventory_typos_name_the_field_and_line(old: str, new: str, where: str) -> None:
    assert old in GOOD
    with pytest.raises(InventoryError, match=where):
        parse_inventory(GOOD.replace(old, new, 1), "unit.yaml")


def test_too_many_paths_are_refused() -> None:
    many = ", ".join(f"/p{i}" for i in range(17))
    with pytest.raises(
        InventoryError, match=r"unit\.yaml:12 units\[0\]\.web\[0\]\.paths: .*at most 16"
    ):
        parse_inventory(GOOD.replace("/login, /portal/", many), "unit.yaml")


def test_a_listed_directory_as_a_path_is_one_finding(sites: WebSites) -> None:
    target = web_target(sites.url("weak", "/plain.html"), "/backup/")
    ctx = CollectContext(scope=guard_for(sites.address), probe_timeout=3)
    facts = asyncio.run(WebCollector().collect(target, ctx))  # /backup/ is also a probe path
    assert [p.url for p in facts.pages] == [sites.url("weak", "/backup/")]
    assert not any(p.path == "/backup/" for p in facts.probes)  # judged as the page only
    view = FactsView(target, {"web.http": facts})
    listed = evaluate(REGISTRY.checks["web.listing"], view)
    assert [(r.status, r.detail) for r in listed] == [(Status.FAIL, sites.url("weak", "/backup/"))]
    # the dump it lists is still fetched and judged
    [dump] = evaluate(REGISTRY.checks["web.exposed.backup"], view)
    assert dump.status is Status.FAIL
