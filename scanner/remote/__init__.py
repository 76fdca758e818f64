"""Credentialed access to a host over SSH (paramiko): login, host-key policy, one exec.

`gather_ssh` runs the gathering script of `scanner.gather` on a remote host and returns the
same `HostConfigFacts` a local run gives.
"""

from scanner.remote.gather import gather_ssh, login_for
from scanner.remote.hostkeys import ChangedHostKey, HostKeyError, UnknownHostKey
from scanner.remote.session import Login, SshError

__all__ = [
    "ChangedHostKey",
    "HostKeyError",
    "Login",
    "SshError",
    "UnknownHostKey",
    "gather_ssh",
    "login_for",
]
