"""One SSH session per host with paramiko: log in, run the gathering script once, log out.

Secrets (key text, passwords) live only in `Login` objects in memory; their repr hides them,
and no message built here contains one. paramiko is blocking, so the collector runs this in a
worker thread; every network wait here has its own deadline so the thread always ends.
"""

from __future__ import annotations

import contextlib
import io
import shlex
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from scanner.gather.local import MAX_OUTPUT, MAX_STDERR, RawRun
from scanner.remote.hostkeys import (
    ChangedHostKey,
    HostKeyError,
    HostKeyPolicy,
    Verdict,
    fingerprint,
    load,
)


class SshError(Exception):
    """The host could not be reached or logged into; the message says why (never a secret)."""


@dataclass(frozen=True)
class Login:
    address: str
    port: int
    user: str
    key_text: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    sudo_password: str | None = field(default=None, repr=False)
    sudo: bool = False
    store: str = ""
    trust_on_first_use: bool = False
    jump: Login | None = None

    @property
    def where(self) -> str:
        return f"{self.user}@{self.address}:{self.port}"


def load_private_key(text: str, where: str) -> paramiko.PKey:
    """A private key in OpenSSH or PEM form; the type is found by trying each."""
    key_types: tuple[type[paramiko.PKey], ...] = (
        paramiko.Ed25519Key,
        paramiko.ECDSAKey,
        paramiko.RSAKey,
    )
    for cls in key_types:
        try:
            return cls.from_private_key(io.StringIO(text))
        except paramiko.PasswordRequiredException:
            raise SshError(f"{where}: the private key is encrypted with a passphrase") from None
        except (paramiko.SSHException, ValueError, IndexError):
            continue
    raise SshError(f"{where}: the key reference does not hold a usable private key")


def _connect(
    login: Login, timeout: float, sock: paramiko.Channel | None
) -> tuple[paramiko.SSHClient, Verdict]:
    store = Path(login.store)
    client = paramiko.SSHClient()
    # verified against this store only, never ~/.ssh or the system's known_hosts
    load(store)  # a readable store, or a clear error naming it
    if store.exists():
        client.get_host_keys().load(str(store))
    policy = HostKeyPolicy(store, login.trust_on_first_use)
    client.set_missing_host_key_policy(policy)
    pkey = load_private_key(login.key_text, login.where) if login.key_text else None
    if pkey is None and login.password is None:
        raise SshError(f"{login.where}: no key or password reference is given")
    try:
        client.connect(
            login.address,
            port=login.port,
            username=login.user,
            pkey=pkey,
            password=login.password,
            sock=sock,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
            allow_agent=False,
            look_for_keys=False,
        )
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise ChangedHostKey(
            f"host key of {login.address}:{login.port} has CHANGED: it is now "
            f"{exc.key.get_name()} {fingerprint(exc.key)}, the store {store} has "
            f"{fingerprint(exc.expected_key)}. Someone may be intercepting the connection; "
            "if the host was reinstalled, verify the new key out of band and replace the entry"
        ) from None
    except HostKeyError:
        client.close()
        raise
    except paramiko.AuthenticationException:
        client.close()
        tried = " and ".join(
            w for w, given in (("key", pkey is not None), ("password", login.password)) if given
        )
        raise SshError(f"{login.where}: authentication failed ({tried} refused)") from None
    except TimeoutError:
        client.close()
        raise SshError(f"{login.where}: no answer within {timeout:g}s") from None
    except paramiko.SSHException as exc:
        client.close()
        raise SshError(f"{login.where}: SSH failed: {exc}") from None
    except OSError as exc:
        client.close()
        raise SshError(f"{login.where}: cannot connect: {exc.strerror or exc}") from None
    transport = client.get_transport()
    assert transport is not None
    key = transport.get_remote_server_key()
    verdict = policy.pinned or Verdict(key.get_name(), fingerprint(key), False, str(store))
    return client, verdict


# Lines the remote shell writes to stderr when it cannot become root (the gatherer then runs
# with the login's own rights, and the facts say why root-only sources are missing), and the
# lines in which it passes on what sudo itself said about the password.
SUDO_MARK = "assay-sudo:"
SUDO_SAID = "assay-sudo-said:"
_REFUSED = "refused the password"

# sudo must work without a password (NOPASSWD), or the password is checked once with -S -v;
# the gatherer then runs with `sudo -n` on the cached credential, which sudo keeps per parent
# process when there is no terminal. So every sudo here is a direct child of this one shell:
# no command substitution or subshell around them (a test with the real sudo holds this).
# `sudo -k` drops the cache afterwards: the audit leaves no usable credential on the host.
_SUDO_WITH_PASSWORD = (
    "IFS= read -r p\n"
    "if ! command -v sudo >/dev/null 2>&1; then p=; echo '{mark} is not installed' >&2\n"
    "elif sudo -n true 2>/dev/null; then p=; sudo -n -- /bin/sh -s; exit $?\n"
    "else\n"
    "  printf '%s\\n' \"$p\" | sudo -S -p '' -v 2>&1 >/dev/null | sed 's/^/{said} /' >&2\n"
    "  p=\n"
    "  if sudo -n true 2>/dev/null; then sudo -n -- /bin/sh -s; rc=$?; sudo -k; exit $rc; fi\n"
    "  sudo -k; echo '{mark} " + _REFUSED + "' >&2\n"
    "fi\n"
    "exec /bin/sh -s\n"
)
_SUDO_WITHOUT_PASSWORD = (
    "if ! command -v sudo >/dev/null 2>&1; then echo '{mark} is not installed' >&2\n"
    "elif sudo -n true 2>/dev/null; then sudo -n -- /bin/sh -s; exit $?\n"
    "else sudo -n true 2>&1 | sed 's/^/{said} /' >&2\n"
    "  echo '{mark} asks for a password and no sudo_password is given' >&2\n"
    "fi\n"
    "exec /bin/sh -s\n"
)


def sudo_command(login: Login) -> str:
    """The remote command: the script on stdin, through sudo when asked.

    With a sudo password, a small shell reads the password line first (the `read` builtin
    takes one line, the script stays on stdin) and hands it to `sudo -S` on a pipe from the
    `printf` builtin: the password travels on the channel only, never on a command line or in
    the process list, and never reaches a shell that could execute it. When sudo cannot be
    used (refused password, not installed, no cached credential) the gatherer still runs
    with the login's rights after a `SUDO_MARK` line on stderr, so the unprivileged facts
    are kept and marked partial.
    """
    if not login.sudo or login.user == "root":
        return "/bin/sh -s"
    template = _SUDO_WITHOUT_PASSWORD if login.sudo_password is None else _SUDO_WITH_PASSWORD
    return "/bin/sh -c " + shlex.quote(template.format(mark=SUDO_MARK, said=SUDO_SAID))


def sudo_refusal(stderr: bytes) -> str:
    """What sudo did instead of making the gatherer root ("" if it did), e.g. "refused the
    password (sudo: 1 incorrect password attempt)". A password sudo took without complaint
    that still left no cached credential means the host keeps none (timestamp_timeout 0)."""
    mark = ""
    said: list[str] = []
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.startswith(SUDO_MARK):
            mark = line.removeprefix(SUDO_MARK).strip()
        elif line.startswith(SUDO_SAID) and line.removeprefix(SUDO_SAID).strip():
            said.append(line.removeprefix(SUDO_SAID).strip())
    if not mark:
        return ""
    if mark == _REFUSED and not said:
        return "accepted the password but keeps no cached credential (timestamp_timeout 0?)"
    return (f"{mark} ({said[-1]})" if said else mark)[:300]


def _wait(deadline: float, connect_timeout: float, login: Login) -> float:
    """A login step's wait: the connect timeout, or less when the host's budget ends sooner
    (the budget bounds the whole session, logins included)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise SshError(f"{login.where}: the time budget was spent before the login finished")
    return min(connect_timeout, left)


def run_script(
    login: Login, script: bytes, *, connect_timeout: float, budget: float
) -> tuple[RawRun, Verdict]:
    """Log in (through the jump host if any), send the script in one exec, read its output."""
    deadline = time.monotonic() + budget
    jump_client: paramiko.SSHClient | None = None
    sock: paramiko.Channel | None = None
    if login.jump is not None:
        jump_client, _ = _connect(login.jump, _wait(deadline, connect_timeout, login.jump), None)
        jt = jump_client.get_transport()
        assert jt is not None
        try:
            sock = jt.open_channel(
                "direct-tcpip",
                (login.address, login.port),
                ("127.0.0.1", 0),
                timeout=_wait(deadline, connect_timeout, login),
            )
        except SshError:
            jump_client.close()
            raise
        except (paramiko.SSHException, OSError) as exc:
            jump_client.close()
            raise SshError(
                f"{login.where}: the jump host {login.jump.where} cannot reach it: {exc}"
            ) from None
    try:
        client, verdict = _connect(login, _wait(deadline, connect_timeout, login), sock)
    except BaseException:
        if jump_client:
            jump_client.close()
        raise
    try:
        return _exec(client, login, script, deadline, budget), verdict
    finally:
        client.close()
        if jump_client:
            jump_client.close()


def _exec(
    client: paramiko.SSHClient, login: Login, script: bytes, deadline: float, budget: float
) -> RawRun:
    transport = client.get_transport()
    assert transport is not None
    try:
        chan = transport.open_session(timeout=max(1.0, deadline - time.monotonic()))
        chan.exec_command(sudo_command(login))
        if login.sudo and login.user != "root" and login.sudo_password is not None:
            chan.sendall((login.sudo_password + "\n").encode())
        chan.sendall(script)
        chan.shutdown_write()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        return RawRun(b"", problem=f"{login.where}: could not start the gatherer: {exc}")
    out: list[bytes] = []
    err: list[bytes] = []
    size = err_size = 0
    clipped = False
    problem = ""
    chan.settimeout(0.2)
    while True:
        if time.monotonic() > deadline:
            problem = (
                f"time budget of {budget:g}s spent; the gathering was stopped and partial "
                "facts kept"
            )
            break
        got = False
        with contextlib.suppress(TimeoutError, socket.timeout):
            while chan.recv_stderr_ready():
                data = chan.recv_stderr(32768)
                if err_size < MAX_STDERR:
                    err.append(data)
                    err_size += len(data)
            data = chan.recv(65536)
            got = True
            if not data:
                break
            if size + len(data) > MAX_OUTPUT:
                clipped = True
            else:
                out.append(data)
                size += len(data)
        if not got and not transport.is_active():
            problem = "the connection was closed by the host during gathering"
            break
    status: int | None = None
    if not problem:
        end = min(deadline, time.monotonic() + 5)
        while not chan.exit_status_ready() and time.monotonic() < end and transport.is_active():
            time.sleep(0.02)
        if chan.exit_status_ready():
            status = chan.recv_exit_status()
        # paramiko reports -1 when the channel closed without an exit status
        if status in (None, -1) and (not transport.is_active() or status == -1):
            status = None
            problem = "the connection was closed by the host during gathering"
    with contextlib.suppress(Exception):
        while chan.recv_stderr_ready() and err_size < MAX_STDERR:
            data = chan.recv_stderr(32768)
            err.append(data)
            err_size += len(data)
    chan.close()
    return RawRun(b"".join(out), b"".join(err)[:MAX_STDERR], status, problem, clipped)
