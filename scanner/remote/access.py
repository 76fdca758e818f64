"""How to reach each SSH target: the inventory's access settings, bound by the runner.

A `Target` carries no credentials (targets are stored and reported), so the runner binds the
access settings of every SSH target here when it builds the targets, and the host collector
looks them up by target key. The values are references and options, never secrets.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from scanner.gather.script import GatherOptions
from scanner.inventory import SshAccess
from scanner.model import Target

LOCAL_ADDRESS = "local"


@dataclass(frozen=True)
class HostAccess:
    ssh: SshAccess | None  # None: the local machine, gathered without SSH
    options: GatherOptions = field(default_factory=GatherOptions)


_bound: dict[str, HostAccess] = {}
_lock = threading.Lock()


def bind(target: Target, access: HostAccess) -> None:
    with _lock:
        _bound[f"{target.unit}/{target.key}"] = access


def lookup(target: Target) -> HostAccess | None:
    with _lock:
        found = _bound.get(f"{target.unit}/{target.key}")
    if found is None and target.address == LOCAL_ADDRESS:
        return HostAccess(ssh=None)
    return found


def unbind(target: Target) -> None:
    with _lock:
        _bound.pop(f"{target.unit}/{target.key}", None)
