"""The store on a real PostgreSQL server started by the test on a loopback address.

The same scan pipeline (a real connect-scan discovery, checks, resume bookkeeping) writes to
PostgreSQL through `--db`-style URLs, and the report is built from it.
"""

from __future__ import annotations

import asyncio

from reports.build import build_assessment
from scanner.inventory import parse_inventory
from scanner.plugins import load_registry
from scanner.runner import Runner, ScanOptions
from scanner.store import Store
from tests.helpers import free_port, pick_loopback
from tests.servers_postgres import pg_url

__all__ = ["pg_url"]  # the fixture, imported for pytest


def test_scan_stored_in_postgresql(pg_url: str) -> None:
    addr = pick_loopback()
    port = free_port(addr)
    text = (
        f"units:\n  - id: u1\n    name: One\n    hosts:\n      - address: {addr}\n"
        f'        ports: "{port}"\n'
    )
    store = Store(pg_url)
    runner = Runner(
        load_registry(),
        store,
        parse_inventory(text, "pg.yaml"),
        inventory_text=text,
        inventory_name="pg.yaml",
        options=ScanOptions(nmap_path="/nonexistent/nmap"),
    )
    summary = asyncio.run(runner.run())
    store.close()
    assert summary.state == "complete"
    again = Store(pg_url)  # migrations are idempotent on PostgreSQL too
    rec = again.scan(summary.scan_id[:17])
    assert rec.state == "complete" and rec.units == ["u1"]
    doc = build_assessment(again, rec.id)
    assert doc.units[0].discovery and doc.units[0].discovery.fallback
    assert again.finished_keys(rec.id) == {f"host:{addr}"}
    again.close()
