"""Host-key verification: a known_hosts file or Assay's pinned store, and trust on first use.

An unknown key is refused unless the inventory allows trust-on-first-use for that host; then
the key is written to the store and reported with the facts. A changed key is always refused:
that is exactly the case host-key checking exists for.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import paramiko

DEFAULT_STORE = "~/.local/share/assay/known_hosts"
ENV_STORE = "ASSAY_KNOWN_HOSTS"

_lock = threading.Lock()  # one writer at a time when several hosts pin keys in one scan


class HostKeyError(Exception):
    """The host's key could not be verified; the message says which key and what to do."""


class UnknownHostKey(HostKeyError):
    pass


class ChangedHostKey(HostKeyError):
    pass


def default_store() -> Path:
    return Path(os.environ.get(ENV_STORE) or DEFAULT_STORE).expanduser()


def fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_entry(address: str, port: int) -> str:
    """The name of the host in known_hosts format (`[addr]:port` for other ports than 22)."""
    return address if port == 22 else f"[{address}]:{port}"


@dataclass
class Verdict:
    key_type: str
    sha256: str
    pinned_now: bool
    store: str


class HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """paramiko calls this for a key it does not know; a key that differs raises before."""

    def __init__(self, store: Path, trust_on_first_use: bool) -> None:
        self.store = store
        self.tofu = trust_on_first_use
        self.pinned: Verdict | None = None

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        fp = fingerprint(key)
        if not self.tofu:
            raise UnknownHostKey(
                f"host key of {hostname} is not known ({key.get_name()} {fp}); add it to "
                f"{self.store} (e.g. ssh-keyscan, checked out of band) or set "
                "trust_on_first_use: true for this host"
            )
        pin(self.store, hostname, key)
        self.pinned = Verdict(key.get_name(), fp, True, str(self.store))


def load(store: Path) -> paramiko.HostKeys:
    keys = paramiko.HostKeys()
    if store.exists():
        try:
            keys.load(str(store))
        except (OSError, paramiko.SSHException) as exc:
            raise HostKeyError(f"cannot read the host-key store {store}: {exc}") from None
    return keys


def pin(store: Path, hostname: str, key: paramiko.PKey) -> None:
    """Append one key to the store (created 0600 in a 0700 directory)."""
    with _lock:
        store.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(store, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="ascii") as fh:
            fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
