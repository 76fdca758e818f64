"""The dashboard end to end in headless Chromium (Debian's chromium + chromium-driver, Selenium).

A real `uvicorn` serves the team server over HTTPS on a loopback address; two units were
scanned for real (an open and a password-protected Redis). An officer logs in, reads the unit
overview, opens a unit, filters findings and accepts a risk through the lifecycle form; a
reviewer sees both units but no forms. Screenshots of each page are written next to the test
output (`ASSAY_TEST_ARTIFACTS`, default: the test's tmp directory) and every request the
browser made is checked to have stayed on the server's own origin.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from scanner.server.app import ServerConfig, create_app
from scanner.server.security import Role
from tests.helpers import free_port, pick_loopback, wait_port
from tests.servers_redis import HAVE_REDIS, WEAK_LINES, RedisServer, auth_lines
from tests.tls_pki import TestCA

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="chromium + chromium-driver needed"),
    pytest.mark.skipif(not HAVE_REDIS, reason="redis-server is not installed"),
]

PASSWORD = "dashboard password 1"


def _inventory(unit: str, addr: str, port: int) -> str:
    return (
        "version: 1\nsettings: {probe_timeout: 2}\nunits:\n"
        f"  - id: {unit}\n    name: Sở {unit.upper()}\n    hosts:\n"
        f'      - address: {addr}\n        ports: "{port}"\n'
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import uvicorn

    from scanner.server.jobs import run_job

    tmp = tmp_path_factory.mktemp("dash")
    db = f"sqlite:///{tmp / 'server.db'}"
    app = create_app(ServerConfig(db_url=db, tick=60, nmap_path="/nonexistent/nmap"))
    sdb = app.state.sdb
    sdb.create_user("officer", PASSWORD, Role.OFFICER, ["unit-a"])
    sdb.create_user("reviewer", PASSWORD, Role.REVIEWER, all_units=True)
    redis = [
        RedisServer(tmp / "ra", pick_loopback(), WEAK_LINES),
        RedisServer(tmp / "rb", pick_loopback(), auth_lines()),
    ]
    for r in redis:
        r.__enter__()
    for unit, r in zip(("unit-a", "unit-b"), redis, strict=True):
        sdb.add_unit(_inventory(unit, r.address, r.port), unit)
        run_job(db, sdb.create_job(unit), "/nonexistent/nmap")
    addr = pick_loopback()
    port = free_port(addr)
    ca = TestCA()
    crt, key = ca.issue(ips=(addr,)).write(tmp, "server")
    config = uvicorn.Config(
        app, host=addr, port=port, ssl_certfile=str(crt), ssl_keyfile=str(key), log_level="warning"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_port(addr, port, 20)
    try:
        yield {"origin": f"https://{addr}:{port}", "tmp": tmp}
    finally:
        srv.should_exit = True
        thread.join(10)
        for r in redis:
            r.__exit__(None, None, None)


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common import utils

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM or ""
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--ignore-certificate-errors",
        "--window-size=1400,1000",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})

    class _Loopback(Service):
        """Talk to chromedriver on 127.0.0.1: the tests never resolve 'localhost'."""

        @property
        def service_url(self) -> str:
            return f"http://127.0.0.1:{self.port}"

        def is_connectable(self) -> bool:
            return utils.is_connectable(self.port, "127.0.0.1")

    driver = webdriver.Chrome(service=_Loopback(DRIVER or ""), options=opts)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver: Any, name: str) -> Path:
    profile = Path(driver.capabilities["chrome"]["userDataDir"])
    out = Path(os.environ.get("ASSAY_TEST_ARTIFACTS") or profile.parent)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"dashboard-{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")  # shown with -s / in the captured output of a failure
    return path


def _login(driver: Any, origin: str, user: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{origin}/login")
    driver.find_element(By.NAME, "username").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and driver.current_url.endswith("/login"):
        time.sleep(0.1)


def _requests(driver: Any) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def test_officer_works_through_the_dashboard(server: dict[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    origin = server["origin"]
    _login(browser, origin, "officer")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.units tbody tr")
    assert [r.get_attribute("data-unit") for r in rows] == ["unit-a"]  # only the officer's unit
    cells = rows[0].find_elements(By.TAG_NAME, "td")
    assert cells[1].text == "cis-baseline" and cells[2].text in "ABCDF"  # the policy, its grade
    assert cells[3].text.endswith("%") and cells[5].text.endswith("%")  # pass rate, coverage
    assert rows[0].find_elements(By.CSS_SELECTOR, "svg.spark")
    _shot(browser, "overview")
    rows[0].find_element(By.TAG_NAME, "a").click()
    assert "Sở UNIT-A" in browser.find_element(By.TAG_NAME, "h1").text
    top = browser.find_element(By.ID, "top-failing").text  # failing controls of the pack
    assert "CIS-4.7" in top, top
    assert browser.find_element(By.ID, "policy").text == "cis-baseline"
    assert browser.find_elements(By.CSS_SELECTOR, "#control-tree details")
    _shot(browser, "unit")
    browser.get(f"{origin}/findings?unit=unit-a&state=open")
    finding_rows = browser.find_elements(By.CSS_SELECTOR, "table.findings tbody tr")
    assert finding_rows
    row = next(r for r in finding_rows if "net.redis.no_auth" in r.text)
    form = row.find_element(By.CSS_SELECTOR, "form.lifecycle")
    Select(form.find_element(By.NAME, "state")).select_by_value("accepted")
    form.find_element(By.NAME, "reason").send_keys("isolated lab network until migration")
    until = (date.today() + timedelta(days=20)).strftime("%m%d%Y")
    form.find_element(By.NAME, "until").send_keys(until)
    form.find_element(By.TAG_NAME, "button").click()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and "/findings" not in browser.current_url:
        time.sleep(0.1)
    browser.get(f"{origin}/findings?unit=unit-a&state=accepted")
    accepted = browser.find_elements(By.CSS_SELECTOR, "table.findings tbody tr")
    assert any("isolated lab network" in r.text for r in accepted), browser.page_source[-2000:]
    _shot(browser, "findings")
    browser.get(f"{origin}/")
    assert "isolated lab network" in browser.page_source  # listed as expiring within 30 days
    browser.get(f"{origin}/units/unit-b")
    assert "not found" in browser.page_source
    # network requests only (the chrome:// pages of the empty first tab are the browser's own)
    network = [u for u in _requests(browser) if u.startswith(("http:", "https:", "ws"))]
    assert any(u.startswith(f"{origin}/static/") for u in network)
    foreign = [u for u in network if not u.startswith(origin)]
    assert foreign == [], foreign


def test_reviewer_sees_all_units_read_only(server: dict[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    origin = server["origin"]
    _login(browser, origin, "reviewer")
    units = [
        r.get_attribute("data-unit")
        for r in browser.find_elements(By.CSS_SELECTOR, "table.units tbody tr")
    ]
    assert units == ["unit-a", "unit-b"]
    browser.get(f"{origin}/findings")
    assert not browser.find_elements(By.CSS_SELECTOR, "form.lifecycle")
    assert "read only" in browser.page_source
    browser.get(f"{origin}/units/unit-a")
    assert "Scan now" not in browser.page_source
    _shot(browser, "reviewer")


def test_wrong_password_is_refused_in_the_browser(server: dict[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    origin = server["origin"]
    browser.get(f"{origin}/login")
    browser.find_element(By.NAME, "username").send_keys("officer")
    browser.find_element(By.NAME, "password").send_keys("not the password")
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    assert "wrong user name or password" in browser.find_element(By.CSS_SELECTOR, ".error").text
    browser.get(f"{origin}/")
    assert browser.current_url.endswith("/login")
