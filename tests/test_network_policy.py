"""The test-wide network guard itself must work, or the rule it enforces means nothing."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import NetworkPolicyViolation
from tests.helpers import pick_loopback


def test_name_lookup_is_refused() -> None:
    with pytest.raises(NetworkPolicyViolation, match="resolve the name"):
        socket.getaddrinfo("example.org", 80)


def test_non_loopback_connect_is_refused() -> None:
    with socket.socket() as s, pytest.raises(NetworkPolicyViolation, match="not loopback"):
        s.connect(("192.0.2.1", 9))


def test_loopback_is_allowed() -> None:
    with socket.socket() as srv:
        srv.bind((pick_loopback(), 0))
        srv.listen()
        with socket.create_connection(srv.getsockname(), timeout=2):
            pass
