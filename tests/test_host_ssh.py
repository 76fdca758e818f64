"""Credentialed gathering over SSH against real OpenSSH servers on loopback, host-key policy,
authentication failures, the runner end to end, and scripted servers for the faults a real
sshd does not produce (noise at login, a connection dropped mid-gathering, non-UTF-8 bytes).

Logging in over loopback reaches this machine, so the facts are this container's; the weak
and hardened test servers differ in their sshd configuration, which `sshd -T -f` reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

from scanner.collectors.hostconfig import HostConfigCollector
from scanner.gather.facts import HostConfigFacts, SectionState
from scanner.gather.local import gather_local
from scanner.gather.script import GatherOptions
from scanner.inventory import CredentialRef, JumpHost, SshAccess, parse_inventory
from scanner.model import Status, Target, TargetKind
from scanner.plugins import CollectContext, FactsView, load_registry
from scanner.remote import ChangedHostKey, SshError, UnknownHostKey, gather_ssh, login_for
from scanner.remote.access import HostAccess, bind
from scanner.remote.session import Login, run_script, sudo_refusal
from scanner.runner import Runner, reevaluate
from scanner.store import Store
from tests.helpers import evaluate, free_port, guard_for, pick_loopback
from tests.servers_sshd import HAVE_SSHD, IS_ROOT, SshdPair, make_key, sshd_pair, stuck_root

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(not (HAVE_SSHD and IS_ROOT), reason="needs sshd and root"),
]

FAST = GatherOptions(sections=("meta", "os_release", "sshd", "passwd", "sysctl", "files"))


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdPair]:
    with sshd_pair(tmp_path_factory.mktemp("host-sshd")) as p:
        yield p


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("known-hosts")


def pub_line(pair: SshdPair, which: str) -> str:
    server = pair.weak if which == "weak" else pair.hardened
    key = "weak_ed25519" if which == "weak" else "hard_ed25519"
    pub = (pair.client_key.parent / f"{key}.pub").read_text().split()
    return f"[{server.addr}]:{server.port} {pub[0]} {pub[1]}\n"


def login(pair: SshdPair, store: Path, which: str = "hardened", **kw: object) -> Login:
    server = pair.weak if which == "weak" else pair.hardened
    args: dict[str, object] = {
        "address": server.addr,
        "port": server.port,
        "user": "root",
        "key_text": pair.client_key.read_text(),
        "store": str(store),
    }
    args.update(kw)
    return Login(**args)  # type: ignore[arg-type]


def gather(lg: Login, options: GatherOptions = FAST) -> HostConfigFacts:
    return asyncio.run(gather_ssh(lg, options, connect_timeout=10, budget=60))


def test_unknown_host_key_is_an_error_naming_the_fingerprint(
    pair: SshdPair, tmp_path: Path
) -> None:
    with pytest.raises(UnknownHostKey, match=r"is not known \(ssh-ed25519 SHA256:") as exc:
        gather(login(pair, tmp_path / "kh"))
    assert "trust_on_first_use" in str(exc.value)
    assert not (tmp_path / "kh").exists()  # nothing was pinned


def test_trust_on_first_use_pins_reports_and_then_verifies(pair: SshdPair, tmp_path: Path) -> None:
    store = tmp_path / "assay" / "known_hosts"
    first = gather(login(pair, store, trust_on_first_use=True))
    assert first.host_key and first.host_key.source == "pinned_now"
    assert store.stat().st_mode & 0o077 == 0
    assert (
        first.host_key.sha256
        in subprocess.run(
            ["ssh-keygen", "-lf", str(store)], capture_output=True, text=True, check=True
        ).stdout
    )
    second = gather(login(pair, store))  # no TOFU now: the pinned key is enough
    assert second.host_key and second.host_key.source == "known_hosts"
    reg = load_registry()
    view = FactsView(Target(kind=TargetKind.SSH, unit="t", address="x"), {"host.config": first})
    (r,) = evaluate(reg.checks["host.ssh.host_key"], view)
    assert r.status is Status.PASS and "pinned" in r.message


def test_a_known_hosts_file_verifies_and_a_changed_key_is_refused(
    pair: SshdPair, tmp_path: Path
) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text(pub_line(pair, "hardened"))
    facts = gather(login(pair, kh))
    assert facts.host_key and facts.host_key.source == "known_hosts"
    # the weak server's key written under the hardened server's name: a changed key
    kh.write_text(
        pub_line(pair, "weak").replace(
            f"[{pair.weak.addr}]:{pair.weak.port}", f"[{pair.hardened.addr}]:{pair.hardened.port}"
        )
    )
    with pytest.raises(ChangedHostKey, match="has CHANGED"):
        gather(login(pair, kh, trust_on_first_use=True))  # TOFU never overrides a change


def test_a_refused_key_and_a_wrong_password_are_clear_errors(
    pair: SshdPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kh = tmp_path / "kh"
    kh.write_text(pub_line(pair, "weak") + pub_line(pair, "hardened"))
    other = make_key(tmp_path / "other", "ed25519").read_text()
    with pytest.raises(SshError, match=r"authentication failed \(key refused\)"):
        gather(login(pair, kh, key_text=other))
    monkeypatch.setenv("ASSAY_TEST_PW", "not-the-password-123")
    access = SshAccess(
        user="root",
        port=pair.weak.port,
        password=CredentialRef(env="ASSAY_TEST_PW"),
        known_hosts=kh,
    )
    with pytest.raises(SshError) as exc:
        gather(login_for(pair.weak.addr, access))
    assert "authentication failed (password refused)" in str(exc.value)
    assert "not-the-password-123" not in str(exc.value)
    with pytest.raises(SshError, match="does not hold a usable private key"):
        gather(login(pair, kh, key_text="-----BEGIN NONSENSE-----\nabc\n"))


def test_gathering_over_ssh_equals_the_local_gathering(pair: SshdPair, tmp_path: Path) -> None:
    kh = tmp_path / "kh"
    kh.write_text(pub_line(pair, "hardened"))
    opts = GatherOptions(
        sshd_config=str(pair.hardened.config_path),
        sections=(
            "os_release",
            "sshd",
            "passwd",
            "shadow",
            "group",
            "login_defs",
            "pam",
            "packages",
            "sysctl",
            "files",
            "mounts",
            "modules",
            "journald",
            "nginx",
            "vsftpd",
            "redis",
        ),
    )
    remote = gather(login(pair, kh), opts)
    local = asyncio.run(gather_local(opts))
    assert remote.complete and local.complete, (remote.errors, local.errors)
    same = (
        "os",
        "sshd",
        "accounts",
        "groups",
        "login_defs",
        "pam",
        "packages",
        "sysctl",
        "files",
        "modules",
        "journald",
        "nginx",
        "vsftpd",
        "redis",
    )
    for facts in (remote, local):  # a sudo test running beside this one adds its own account
        facts.accounts = [a for a in facts.accounts if not a.name.startswith("assay-test-")]
        facts.groups = [g for g in facts.groups if not g.name.startswith("assay-test-")]
    for field in same:
        assert getattr(remote, field) == getattr(local, field), field
    assert remote.via == "ssh" and local.via == "local"


def test_sshd_checks_fail_on_the_weak_server_and_pass_on_the_hardened(
    pair: SshdPair, tmp_path: Path
) -> None:
    kh = tmp_path / "kh"
    kh.write_text(pub_line(pair, "weak") + pub_line(pair, "hardened"))
    reg = load_registry()
    for which, want in (("weak", Status.FAIL), ("hardened", Status.PASS)):
        server = pair.weak if which == "weak" else pair.hardened
        facts = gather(
            login(pair, kh, which),
            GatherOptions(sshd_config=str(server.config_path), sections=("sshd",)),
        )
        view = FactsView(
            Target(kind=TargetKind.SSH, unit="t", address=server.addr), {"host.config": facts}
        )
        for cid in (
            "host.sshd.password_auth",
            "host.sshd.ciphers",
            "host.sshd.macs",
            "host.sshd.kex",
            "host.sshd.kbd_interactive",
            "host.sshd.host_key_algorithms",
        ):
            (r,) = evaluate(reg.checks[cid], view)
            assert r.status is want, (which, cid, r.message)


def test_the_time_budget_bounds_the_session_and_keeps_what_came(
    pair: SshdPair, tmp_path: Path
) -> None:
    """Over SSH as locally: a source that never answers (a pipe nobody writes) ends the
    gathering at the host's budget, with the sections before it kept."""
    kh = tmp_path / "kh"
    kh.write_text(pub_line(pair, "hardened"))
    with stuck_root(tmp_path) as root:
        opts = GatherOptions(root=str(root), sections=("meta", "os_release", "passwd"))
        facts = asyncio.run(gather_ssh(login(pair, kh), opts, connect_timeout=10, budget=5))
    assert not facts.complete
    assert "time budget of 5s spent" in facts.errors[0], facts.errors
    assert facts.meta["uid"] == "0"
    assert facts.section("os_release").state is SectionState.TRUNCATED
    assert facts.section("passwd").state is SectionState.NOT_GATHERED
    # a budget already spent before the login is a clear error, not a hang
    with pytest.raises(SshError, match="time budget was spent before the login"):
        run_script(login(pair, kh), b"", connect_timeout=10, budget=-1)


def test_a_session_does_not_wait_for_the_loops_shared_threads(
    pair: SshdPair, tmp_path: Path
) -> None:
    """Many hosts at once: the loop's default executor (a few workers) may be full; a host's
    session still starts at once in its own thread, so queueing never eats its budget."""
    kh = tmp_path / "kh"
    kh.write_text(pub_line(pair, "hardened"))

    async def scan() -> HostConfigFacts:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
        release = threading.Event()
        busy = loop.run_in_executor(None, release.wait, 60)  # the only worker is taken
        try:
            return await asyncio.wait_for(
                gather_ssh(login(pair, kh), GatherOptions(sections=("meta",)), budget=60), 60
            )
        finally:
            release.set()
            await busy

    facts = asyncio.run(scan())
    assert facts.complete and facts.meta["uid"] == "0"


def test_through_a_jump_host(pair: SshdPair, tmp_path: Path) -> None:
    kh = tmp_path / "kh"
    kh.write_text(pub_line(pair, "weak") + pub_line(pair, "hardened"))
    jump = login(pair, kh, "weak")
    facts = gather(login(pair, kh, jump=jump), GatherOptions(sections=("meta",)))
    assert facts.complete and facts.meta["uid"] == "0"
    sshd_log = pair.hardened.log_path.read_text(errors="replace")
    assert "Accepted publickey for root" in sshd_log


def test_the_collector_refuses_an_out_of_scope_jump_host(pair: SshdPair, tmp_path: Path) -> None:
    target = Target(
        kind=TargetKind.SSH, unit="t", address=pair.hardened.addr, port=pair.hardened.port
    )
    key = tmp_path / "key"
    key.write_text(pair.client_key.read_text())
    access = SshAccess(
        user="root",
        port=pair.hardened.port,
        key=CredentialRef(file=key),
        jump=JumpHost(address=pair.weak.addr, user="root", key=CredentialRef(file=key)),
    )
    bind(target, HostAccess(ssh=access))
    ctx = CollectContext(scope=guard_for(pair.hardened.addr))
    from scanner.scope import OutOfScope

    with pytest.raises(OutOfScope):
        asyncio.run(HostConfigCollector().collect(target, ctx))


def test_runner_scans_an_ssh_host_and_the_local_machine_and_stores_the_facts(
    pair: SshdPair, tmp_path: Path
) -> None:
    key = tmp_path / "audit_key"
    key.write_text(pair.client_key.read_text())
    kh = tmp_path / "kh"
    bad = pick_loopback()
    text = f"""
version: 1
settings: {{probe_timeout: 5}}
units:
  - id: lab
    name: Lab
    local: true
    hosts:
      - address: {pair.hardened.addr}
        ports: "{pair.hardened.port}"
        ssh: {{user: root, port: {pair.hardened.port}, key: {{file: {key}}},
               known_hosts: {kh}, trust_on_first_use: true}}
      - address: {bad}
        ports: "{free_port(bad)}"
        ssh: {{user: root, port: {free_port(bad)}, key: {{file: {key}}}, known_hosts: {kh}}}
"""
    inv = parse_inventory(text, "lab.yaml")
    store = Store(f"sqlite:///{tmp_path / 'assay.db'}")
    reg = load_registry()
    summary = asyncio.run(Runner(reg, store, inv, inventory_text=text).run())
    assert summary.state == "complete"
    outcomes = [o for o in store.outcomes(summary.scan_id) if o.check_id.startswith("host.")]
    by_target: dict[str, dict[str, Status]] = {}
    for o in outcomes:
        by_target.setdefault(o.target.key, {})[o.check_id] = o.status
    ssh_key = f"ssh:{pair.hardened.addr}"
    assert len(by_target[ssh_key]) >= 100 and len(by_target["ssh:local"]) >= 100
    assert by_target[ssh_key]["host.gather.complete"] is Status.PASS
    # the unreachable host: an error for that host with the reason, and the scan went on
    dead = [o for o in outcomes if o.target.key == f"ssh:{bad}"]
    assert dead and all(o.status is Status.ERROR for o in dead)
    assert "cannot connect" in dead[0].message
    # facts are stored with the scan: the checks give the same verdicts without logging in
    rec = next(r for r in store.targets(summary.scan_id) if r.target.key == ssh_key)
    facts = HostConfigFacts.model_validate(rec.facts["host.config"])
    again = reevaluate(reg, [(rec.target, {"host.config": facts})])
    live = Counter(o.status for o in outcomes if o.target.key == ssh_key)
    assert Counter(r.status for r in again) == live


# -- scripted servers for faults a real sshd does not produce ---------------------------------


@dataclass
class Scripted:
    addr: str
    port: int
    host_key: paramiko.PKey
    mode: str


class _Server(paramiko.ServerInterface):
    def __init__(self) -> None:
        self.command = threading.Event()
        self.text = b""

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return (
            paramiko.OPEN_SUCCEEDED
            if kind == "session"
            else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        )

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.text = command
        self.command.set()
        return True


def _serve_one(
    sock: socket.socket, host_key: paramiko.PKey, mode: str, seen: dict[str, bytes]
) -> None:
    conn, _ = sock.accept()
    t = paramiko.Transport(conn)
    t.add_server_key(host_key)
    server = _Server()
    t.start_server(server=server)
    chan = t.accept(10)
    if chan is None:
        t.close()
        return
    server.command.wait(10)
    chan.settimeout(30)
    script = b""
    while True:
        data = chan.recv(65536)
        if not data:
            break
        script += data
    seen["command"] = server.text
    if mode == "sudo":  # what sudo -S would read first: one line with the password
        seen["password"], _, script = script.partition(b"\n")
    if mode == "noise":
        chan.sendall(b"*** Welcome to web01 ***\nYou have new mail.\n")
    proc = subprocess.run(["/bin/sh", "-s"], input=script, capture_output=True, timeout=60)
    output = proc.stdout
    if mode == "binary":
        output = output.replace(b"BEGIN issue\n", b"BEGIN issue\n\xff\xfe\xc3 not utf-8\n", 1)
    if mode == "drop":
        cut = output.index(b" END passwd ")
        chan.sendall(output[:cut])
        t.close()  # the host drops the connection mid-gathering
        return
    chan.sendall(output)
    chan.send_exit_status(proc.returncode)
    chan.close()
    with contextlib.suppress(Exception):
        t.close()


@pytest.fixture(scope="module")
def scripted_key(tmp_path_factory: pytest.TempPathFactory) -> paramiko.PKey:
    path = make_key(tmp_path_factory.mktemp("scripted") / "hk", "ed25519")
    return paramiko.Ed25519Key.from_private_key_file(str(path))


def run_scripted(
    mode: str,
    key: paramiko.PKey,
    tmp_path: Path,
    client_key: str,
    seen: dict[str, bytes] | None = None,
    **login_args: object,
) -> HostConfigFacts:
    addr = pick_loopback()
    sock = socket.socket()
    sock.bind((addr, 0))
    sock.listen(1)
    sock.settimeout(30)
    port = sock.getsockname()[1]
    seen = {} if seen is None else seen
    th = threading.Thread(target=_serve_one, args=(sock, key, mode, seen), daemon=True)
    th.start()
    kh = tmp_path / "kh"
    kh.write_text(f"[{addr}]:{port} {key.get_name()} {key.get_base64()}\n")
    try:
        args: dict[str, object] = {"user": "root", **login_args}
        lg = Login(address=addr, port=port, key_text=client_key, store=str(kh), **args)  # type: ignore[arg-type]
        opts = GatherOptions(sections=("meta", "os_release", "passwd", "sysctl", "issue"))
        return asyncio.run(gather_ssh(lg, opts, connect_timeout=10, budget=60))
    finally:
        th.join(30)
        sock.close()


def test_noise_printed_at_login_is_kept_apart(
    pair: SshdPair, scripted_key: paramiko.PKey, tmp_path: Path
) -> None:
    facts = run_scripted("noise", scripted_key, tmp_path, pair.client_key.read_text())
    assert facts.complete, facts.errors
    assert "Welcome to web01" in facts.noise
    assert facts.accounts and facts.sysctl


def test_a_connection_dropped_mid_gathering_keeps_partial_facts_marked(
    pair: SshdPair, scripted_key: paramiko.PKey, tmp_path: Path
) -> None:
    facts = run_scripted("drop", scripted_key, tmp_path, pair.client_key.read_text())
    assert not facts.complete
    assert facts.meta and facts.os  # what came before the drop is kept
    assert facts.section("passwd").state is SectionState.TRUNCATED
    assert facts.section("sysctl").state is SectionState.NOT_GATHERED
    assert "closed by the host during gathering" in facts.errors[0]
    reg = load_registry()
    view = FactsView(Target(kind=TargetKind.SSH, unit="t", address="x"), {"host.config": facts})
    (g,) = evaluate(reg.checks["host.gather.complete"], view)
    assert g.status is Status.ERROR and "closed by the host" in g.message
    (a,) = evaluate(reg.checks["host.sysctl.aslr"], view)
    assert a.status is Status.ERROR


def test_non_utf8_output_is_marked_and_the_rest_is_read(
    pair: SshdPair, scripted_key: paramiko.PKey, tmp_path: Path
) -> None:
    facts = run_scripted("binary", scripted_key, tmp_path, pair.client_key.read_text())
    assert facts.section("issue").non_utf8
    assert any("issue: output was not UTF-8" in e for e in facts.errors)
    assert facts.accounts and facts.sysctl


def test_sudo_password_goes_on_the_channel_once_and_nowhere_else(
    pair: SshdPair, scripted_key: paramiko.PKey, tmp_path: Path
) -> None:
    seen: dict[str, bytes] = {}
    facts = run_scripted(
        "sudo",
        scripted_key,
        tmp_path,
        pair.client_key.read_text(),
        seen,
        user="audit",
        sudo=True,
        sudo_password="sudo-pw-4711",
    )
    assert seen["password"] == b"sudo-pw-4711"
    command = seen["command"].decode()
    assert "sudo -S" in command and "sudo -n -- /bin/sh -s" in command
    assert "sudo-pw-4711" not in command  # never on a command line
    assert facts.complete and facts.sudo
    assert "sudo-pw-4711" not in facts.model_dump_json()


def test_remote_commands() -> None:
    from scanner.remote.session import sudo_command

    base = {"address": "10.0.0.5", "port": 22, "user": "audit"}
    assert sudo_command(Login(**base)) == "/bin/sh -s"  # type: ignore[arg-type]
    nopw = sudo_command(Login(**base, sudo=True))  # type: ignore[arg-type]
    assert "sudo -n -- /bin/sh -s" in nopw and "sudo -S" not in nopw and "read" not in nopw
    # without root the gatherer still runs, after a line saying why
    assert "exec /bin/sh -s" in nopw and "assay-sudo:" in nopw
    root = {**base, "user": "root"}
    assert sudo_command(Login(**root, sudo=True, sudo_password="x")) == "/bin/sh -s"  # type: ignore[arg-type]


def test_what_sudo_said_is_read_from_the_shells_stderr() -> None:
    said = b"Could not chdir to home\nassay-sudo-said: sudo: 1 incorrect password attempt\n"
    assert sudo_refusal(said + b"assay-sudo: refused the password\n") == (
        "refused the password (sudo: 1 incorrect password attempt)"
    )
    # sudo took the password without a word, yet `sudo -n` had no cached credential
    assert "keeps no cached credential" in sudo_refusal(b"assay-sudo: refused the password\n")
    assert sudo_refusal(b"assay-sudo: is not installed\n") == "is not installed"
    assert sudo_refusal(b"some noise\n\xff\xfe") == ""  # became root: nothing to say


def test_a_login_never_shows_its_secrets() -> None:
    lg = Login(
        address="10.0.0.5",
        port=22,
        user="audit",
        key_text="KEYTEXT",
        password="PW1",
        sudo_password="PW2",
    )
    shown = repr(lg) + str(lg)
    assert "KEYTEXT" not in shown and "PW1" not in shown and "PW2" not in shown
