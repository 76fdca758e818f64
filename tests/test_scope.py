"""Scope guard: nothing outside the inventory's declared networks and hosts is ever touched."""

from __future__ import annotations

import pytest

from scanner.scope import OutOfScope, ScopeGuard


@pytest.fixture
def guard() -> ScopeGuard:
    return ScopeGuard.of(
        networks=[("127.40.0.0/29", ["127.40.0.6/31"], "u1")],
        hosts=[("127.41.0.9", "u2")],
        names={"portal.u2.example": "127.41.0.9", "evil.example": "10.0.0.1"},
    )


def test_declared_addresses_pass(guard: ScopeGuard) -> None:
    assert str(guard.ensure_address("127.40.0.3")) == "127.40.0.3"
    assert str(guard.ensure_address("127.41.0.9")) == "127.41.0.9"
    assert guard.unit_of("127.41.0.9") == "u2"


@pytest.mark.parametrize("addr", ["127.40.0.6", "127.40.0.7", "127.40.0.8", "10.0.0.1", "::1"])
def test_outside_or_excluded_is_refused(guard: ScopeGuard, addr: str) -> None:
    with pytest.raises(OutOfScope):
        guard.ensure_address(addr)


def test_names_are_never_resolved(guard: ScopeGuard) -> None:
    with pytest.raises(OutOfScope, match="never resolved"):
        guard.ensure_address("localhost")
    with pytest.raises(OutOfScope, match="not bound"):
        guard.resolve_url_host("http://intranet.example/")
    assert guard.resolve_url_host("http://PORTAL.u2.example:8080/x") == "127.41.0.9"
    # a name the inventory binds to an address outside scope is still refused
    with pytest.raises(OutOfScope):
        guard.resolve_url_host("http://evil.example/")


def test_networks_must_be_inside(guard: ScopeGuard) -> None:
    assert str(guard.ensure_network("127.40.0.0/30")) == "127.40.0.0/30"
    with pytest.raises(OutOfScope):
        guard.ensure_network("127.40.0.0/24")


def test_names_resolve_only_when_the_inventory_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    # a fake resolver: the tests never make a DNS query
    monkeypatch.setattr(
        "scanner.scope.lookup", lambda name: {"intra.example": "127.40.0.2"}.get(name)
    )
    off = ScopeGuard.of(networks=[("127.40.0.0/29", [], "u1")])
    on = ScopeGuard.of(networks=[("127.40.0.0/29", [], "u1")], resolve=True)
    with pytest.raises(OutOfScope, match="never resolved"):
        off.resolve_url_host("http://intra.example/")
    assert on.resolve_url_host("http://intra.example/") == "127.40.0.2"
    with pytest.raises(OutOfScope):
        on.resolve_url_host("http://unknown.example/")
