"""Small helpers shared by the tests: loopback addresses, free ports, running one target."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Iterable

from scanner.model import Result, Status, Target
from scanner.plugins import Check, CollectContext, Collector, FactsView
from scanner.scope import ScopeGuard


def pick_loopback() -> str:
    """A 127.x.y.z address (never 127.0.0.1) where nothing of ours listens yet."""
    rng = random.SystemRandom()
    for _ in range(200):
        addr = f"127.{rng.randint(64, 250)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
        with socket.socket() as s:
            try:
                s.bind((addr, 0))
            except OSError:
                continue
        return addr
    raise RuntimeError("no free loopback address found")


def free_port(addr: str) -> int:
    """A TCP port that is free on `addr` (also on the wildcard address, where possible)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind((addr, 0))
            port = s.getsockname()[1]
        if port < 1024:
            continue
        return port
    raise RuntimeError(f"no free port on {addr}")


def wait_port(addr: str, port: int, timeout: float = 15.0) -> None:
    """Bounded wait until something accepts connections on addr:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((addr, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{addr}:{port} did not start listening within {timeout}s")


def guard_for(*addresses: str) -> ScopeGuard:
    return ScopeGuard.of(hosts=[(a, "test") for a in addresses])


def collect(
    collectors: Iterable[Collector], target: Target, active: bool = False, timeout: float = 5.0
) -> FactsView:
    """Run collectors against one target the way the runner does, without a store."""
    assert target.address
    ctx = CollectContext(scope=guard_for(target.address), active=active, probe_timeout=timeout)

    async def go() -> FactsView:
        facts = {}
        for col in collectors:
            if col.applies(target):
                facts[col.id] = await asyncio.wait_for(col.collect(target, ctx), col.timeout)
        return FactsView(target, facts)

    return asyncio.run(go())


def evaluate(check: Check, facts: FactsView) -> list[Result]:
    out = check.evaluate(facts, check.Params())
    return [out] if isinstance(out, Result) else list(out)


def statuses(check: Check, facts: FactsView) -> set[Status]:
    return {r.status for r in evaluate(check, facts)}
