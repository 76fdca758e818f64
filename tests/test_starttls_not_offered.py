"""A service that does not offer its TLS upgrade has no TLS to audit: the TLS checks say
`not_applicable` with the reason (never an error, never a pass), through the real runner."""

from __future__ import annotations

import asyncio
from pathlib import Path

from scanner.inventory import parse_inventory
from scanner.model import Status
from scanner.plugins import load_registry
from scanner.runner import Runner, ScanOptions
from scanner.store import Store
from tests.helpers import pick_loopback
from tests.servers_ftp import pyftpdlib_server


def test_ftp_without_auth_tls_makes_tls_checks_not_applicable(tmp_path: Path) -> None:
    addr = pick_loopback()
    with pyftpdlib_server(tmp_path, addr) as ftp:  # pyftpdlib without TLS: AUTH TLS refused
        text = (
            "version: 1\nsettings: {probe_timeout: 3}\nunits:\n  - id: u\n    name: U\n"
            f'    hosts:\n      - address: {addr}\n        ports: "{ftp.port}"\n'
        )
        store = Store(f"sqlite:///{tmp_path / 'a.db'}")
        runner = Runner(
            load_registry(),
            store,
            parse_inventory(text, "u.yaml"),
            inventory_text=text,
            options=ScanOptions(nmap_path="/nonexistent/nmap"),
        )
        summary = asyncio.run(runner.run())
        outcomes = store.outcomes(summary.scan_id)
        store.close()
    tls = [o for o in outcomes if o.check_id.startswith("tls.")]
    assert tls, "the TLS checks were not considered for an FTP service"
    assert {o.status for o in tls} == {Status.NOT_APPLICABLE}
    assert all("refused AUTH TLS" in o.message for o in tls)
    assert not [o for o in outcomes if o.check_id == "scan.collector"]
    by_check = {o.check_id: o.status for o in outcomes}
    assert by_check["net.ftp.cleartext_auth"] is Status.FAIL  # the cleartext is judged here
