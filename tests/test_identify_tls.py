"""Assay's own identification recognises TLS services nmap only guesses from the port number."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from scanner.identify import identify
from tests.servers_tls import HAVE_TLS_SERVERS, openssl_server, tls_sites
from tests.tls_pki import TestCA

pytestmark = pytest.mark.skipif(not HAVE_TLS_SERVERS, reason="nginx and openssl are needed")


def test_https_on_any_port_is_named_https(tmp_path: Path) -> None:
    with tls_sites(tmp_path) as sites:
        for site in (sites.weak, sites.strong):  # TLS 1.0-only suites and TLS 1.2/1.3 AEAD only
            info = asyncio.run(identify(site.address, site.port, 3))
            assert (info.name, info.tunnel) == ("https", "ssl"), info
            assert info.product.startswith("nginx")


def test_tls_that_is_not_http_is_named_ssl(tmp_path: Path) -> None:
    # s_server without -www answers HTTP requests with nothing
    with openssl_server(tmp_path, TestCA().issue(ips=("127.0.0.1",)), ["-tls1_3"]) as (a, p):
        info = asyncio.run(identify(a, p, 2))
    assert info.tunnel == "ssl" and info.name in ("ssl", "https"), info
