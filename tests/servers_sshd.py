"""Real OpenSSH servers for the tests: a weak one and a hardened one, on their own loopback address.

Each server is a real `/usr/sbin/sshd -D -e` with its own configuration, host keys and
authorized_keys file in a temporary directory, listening on a 127.x.y.z address and a free
port picked by the test. The test process is root in CI, so the servers accept a key login as
root (`PermitRootLogin prohibit-password`), which the credentialed host checks use; the audit
tests never log in.

- weak: DSA and 1024-bit RSA host keys, SHA-1 and 1024-bit-group key exchange, CBC and 3DES
  ciphers, MD5, SHA-1 and 64-bit-tag MACs, password and keyboard-interactive login, the
  Debian patch level in the version string and a chatty pre-login banner;
- hardened: Ed25519 and 3072-bit RSA host keys, Curve25519/sntrup key exchange, AEAD ciphers,
  encrypt-then-MAC SHA-2 MACs, public-key login only, no Debian suffix, no banner.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import free_port, pick_loopback, wait_port

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
SSH_KEYGEN = shutil.which("ssh-keygen")
HAVE_SSHD = bool(SSHD and SSH_KEYGEN)
IS_ROOT = os.geteuid() == 0

WEAK_BANNER = (
    "Welcome to web01.so-tttt.example (Debian GNU/Linux 12, kernel 6.1.0-18-amd64)\n"
    "Authorised access only. Contact admin Nguyen Van A, ext. 1234.\n"
)

WEAK_OPTIONS: tuple[str, ...] = (
    "HostKeyAlgorithms ssh-ed25519,rsa-sha2-512,rsa-sha2-256,ssh-rsa,ssh-dss",
    "KexAlgorithms curve25519-sha256,diffie-hellman-group14-sha256,"
    "diffie-hellman-group14-sha1,diffie-hellman-group1-sha1,"
    "diffie-hellman-group-exchange-sha1",
    "Ciphers aes128-ctr,aes256-ctr,chacha20-poly1305@openssh.com,aes128-cbc,aes256-cbc,3des-cbc",
    "MACs hmac-sha2-256,hmac-sha1,hmac-md5,umac-64@openssh.com,hmac-sha2-256-etm@openssh.com",
    "PasswordAuthentication yes",
    "KbdInteractiveAuthentication yes",
    "DebianBanner yes",
)

HARDENED_OPTIONS: tuple[str, ...] = (
    "HostKeyAlgorithms ssh-ed25519,rsa-sha2-512,rsa-sha2-256",
    "KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,"
    "curve25519-sha256@libssh.org",
    "Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com",
    "MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "DebianBanner no",
)


def make_key(path: Path, kind: str, bits: int | None = None) -> Path:
    """Generate an OpenSSH key pair (no passphrase) at `path` and `path.pub`."""
    assert SSH_KEYGEN, "ssh-keygen is not installed"
    cmd = [SSH_KEYGEN, "-q", "-t", kind, "-N", "", "-C", f"assay-test-{kind}", "-f", str(path)]
    if bits:
        cmd[2:2] = ["-b", str(bits)]
    subprocess.run(cmd, check=True, timeout=60, capture_output=True)
    return path


@dataclass
class Sshd:
    """One sshd process. Use as a context manager, or `start()` / `stop()`."""

    workdir: Path
    options: Sequence[str]
    host_keys: Sequence[Path]
    addr: str = field(default_factory=pick_loopback)
    port: int = 0
    banner: str | None = None
    authorized_keys: Sequence[Path] = ()
    proc: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.workdir / "sshd_config"

    @property
    def log_path(self) -> Path:
        return self.workdir / "sshd.log"

    def config(self) -> str:
        lines = [
            f"ListenAddress {self.addr}:{self.port}",
            *(f"HostKey {k}" for k in self.host_keys),
            f"PidFile {self.workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.workdir / 'authorized_keys'}",
            "PermitRootLogin prohibit-password",
            "StrictModes no",
            "UsePAM no",
            "UseDNS no",
            "LogLevel VERBOSE",
            "MaxStartups 100:30:200",
            "LoginGraceTime 30",
            "Subsystem sftp internal-sftp",
            *self.options,
        ]
        if self.banner is not None:
            (self.workdir / "banner.txt").write_text(self.banner, encoding="utf-8")
            lines.append(f"Banner {self.workdir / 'banner.txt'}")
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 15.0) -> Sshd:
        assert SSHD, "sshd is not installed"
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.addr)
        keys = "".join(Path(f"{k}.pub").read_text() for k in self.authorized_keys)
        (self.workdir / "authorized_keys").write_text(keys)
        self.config_path.write_text(self.config())
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege-separation directory
        check = subprocess.run(
            [SSHD, "-t", "-f", str(self.config_path)], capture_output=True, timeout=30
        )
        if check.returncode != 0:
            raise RuntimeError(f"sshd refused its test configuration: {check.stderr.decode()}")
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            wait_port(self.addr, self.port, timeout)
        except TimeoutError:
            self.stop()
            raise RuntimeError(
                f"sshd on {self.addr}:{self.port} did not start: {self.log_path.read_text()}"
            ) from None
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> Sshd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class SshdPair:
    weak: Sshd
    hardened: Sshd
    client_key: Path  # ed25519 private key accepted for root on both servers


@contextlib.contextmanager
def sshd_pair(workdir: Path) -> Iterator[SshdPair]:
    """Start the weak and the hardened sshd (each on its own loopback address)."""
    keys = workdir / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    client = make_key(keys / "client_ed25519", "ed25519")
    weak = Sshd(
        workdir / "weak",
        WEAK_OPTIONS,
        host_keys=(
            make_key(keys / "weak_rsa1024", "rsa", 1024),
            make_key(keys / "weak_dsa", "dsa", 1024),
            make_key(keys / "weak_ed25519", "ed25519"),
        ),
        banner=WEAK_BANNER,
        authorized_keys=(client,),
    )
    hardened = Sshd(
        workdir / "hardened",
        HARDENED_OPTIONS,
        host_keys=(
            make_key(keys / "hard_ed25519", "ed25519"),
            make_key(keys / "hard_rsa3072", "rsa", 3072),
        ),
        authorized_keys=(client,),
    )
    with weak, hardened:
        yield SshdPair(weak, hardened, client)


def wait_log(server: Sshd, needle: str, timeout: float = 5.0) -> bool:
    """Bounded wait until the server's log contains `needle`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in server.log_path.read_text(errors="replace"):
            return True
        time.sleep(0.05)
    return False


# -- a non-root account with sudo, for the credentialed audit through sudo ---------------------

SUDO = shutil.which("sudo")
VISUDO = shutil.which("visudo")
USERADD = shutil.which("useradd")
USERDEL = shutil.which("userdel")
CHPASSWD = shutil.which("chpasswd")
SUDOERS_D = Path("/etc/sudoers.d")
SUDO_TS = Path("/run/sudo/ts")


def sudo_account_unavailable() -> str:
    """Why the sudo account cannot be made here ("" when it can): the skip reason."""
    if not IS_ROOT:
        return "creating the assay-test sudo account needs root"
    missing = [
        n
        for n, p in (
            ("sudo", SUDO),
            ("visudo", VISUDO),
            ("useradd", USERADD),
            ("userdel", USERDEL),
            ("chpasswd", CHPASSWD),
        )
        if p is None
    ]
    if missing:
        return f"not installed: {', '.join(missing)} (apt-get install sudo passwd)"
    if not Path("/etc/sudoers").exists() or "includedir /etc/sudoers.d" not in Path(
        "/etc/sudoers"
    ).read_text(errors="replace"):
        return "/etc/sudoers does not include /etc/sudoers.d"
    return ""


@dataclass(frozen=True)
class SudoAccount:
    name: str  # assay-test-<random>, made for this session only
    password: str = field(repr=False)
    home: Path = Path("/")


def _run(*cmd: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)


@contextlib.contextmanager
def sudo_account(home: Path) -> Iterator[SudoAccount]:
    """A dedicated account that may run anything as root through sudo WITH its password.

    Safe on a shared CI machine: the name is new and random (`assay-test-<hex>`, refused if it
    exists), the password is random, the sudoers drop-in names only that account and is
    checked with `visudo -c` before it is moved into place (a broken drop-in would break sudo
    for everyone), and the account, its group, the drop-in and sudo's timestamp are removed
    afterwards, even when the tests fail. `home` must be traversable by the account.
    """
    assert USERADD and USERDEL and CHPASSWD and VISUDO
    name = f"assay-test-{os.urandom(4).hex()}"
    password = f"Sudo-{os.urandom(12).hex()}"
    made = _run(USERADD, "-M", "-U", "-d", str(home), "-s", "/bin/sh", "-c", "Assay test", name)
    if made.returncode != 0:
        raise RuntimeError(f"useradd {name} failed: {made.stderr.strip()}")
    try:
        # sshd (UsePAM no) refuses a locked account even for key login: the password unlocks it
        pw = _run(CHPASSWD, stdin=f"{name}:{password}\n")
        if pw.returncode != 0:
            raise RuntimeError(f"chpasswd for {name} failed: {pw.stderr.strip()}")
        with sudoers_dropin(name, f"Defaults:{name} !mail_badpass\n{name} ALL=(root) ALL\n"):
            yield SudoAccount(name, password, home)
    finally:
        with contextlib.suppress(FileNotFoundError):
            (SUDO_TS / name).unlink()
        _remove_account(name)


@contextlib.contextmanager
def sudoers_dropin(name: str, text: str) -> Iterator[Path]:
    """/etc/sudoers.d/<name> with `text` while the block runs: staged under a dotted name
    (never read by @includedir), checked with `visudo -c`, then moved into place; removed
    afterwards. Files sort by name, and a later Defaults line wins."""
    assert VISUDO
    SUDOERS_D.mkdir(mode=0o750, exist_ok=True)
    dropin = SUDOERS_D / name
    staged = SUDOERS_D / f".{name}.tmp"
    try:
        staged.write_text(text, encoding="ascii")
        staged.chmod(0o440)
        checked = _run(VISUDO, "-c", "-f", str(staged))
        if checked.returncode != 0:
            raise RuntimeError(f"visudo refused the test drop-in: {checked.stdout}{checked.stderr}")
        staged.rename(dropin)
        yield dropin
    finally:
        for path in (staged, dropin):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _remove_account(name: str, timeout: float = 15.0) -> None:
    """userdel, retried while the account's last SSH session is still closing; then forced."""
    assert USERDEL
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _run(USERDEL, name).returncode in (0, 6):  # 6: no such user
            return
        time.sleep(0.2)
    _run(USERDEL, "-f", name)


# -- a fact source that never answers, for the time budget ------------------------------------


@contextlib.contextmanager
def stuck_root(base: Path) -> Iterator[Path]:
    """A test root whose `etc/os-release` is a named pipe nobody writes: the gatherer's
    `os_release` section blocks there (like a file on a hung network mount) until the time
    budget stops it, after `meta` has come. Deterministic, no sleeps. On exit any reader still
    blocked (a remote shell outlives a closed SSH channel) is released with an EOF."""
    root = base / "stuck-root"
    (root / "etc").mkdir(parents=True)
    fifo = root / "etc" / "os-release"
    os.mkfifo(fifo, 0o644)
    try:
        yield root
    finally:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:  # succeeds only while a reader waits on the pipe; closing gives it EOF
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                break  # ENXIO: no reader left
            time.sleep(0.05)
