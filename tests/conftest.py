"""Test-wide guards: the tests talk to loopback only, and never look a name up.

Every socket `connect` in the test process is checked: an address outside 127.0.0.0/8 (or ::1)
fails the test at once, and `getaddrinfo` refuses anything that is not an IP literal, so a
test that would reach the network or DNS cannot pass by accident.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


class NetworkPolicyViolation(AssertionError):
    pass


def _check_host(host: Any) -> None:
    if host is None:
        return
    if isinstance(host, bytes):
        host = host.decode()
    try:
        addr = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        raise NetworkPolicyViolation(f"test tried to resolve the name {host!r}") from None
    if not addr.is_loopback:
        raise NetworkPolicyViolation(f"test tried to reach {addr}, which is not loopback")


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    _check_host(host)
    return _real_getaddrinfo(host, *args, **kwargs)


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_host(address[0])
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_host(address[0])
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.getaddrinfo = _real_getaddrinfo
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]
