"""The credentialed host audit through sudo, against the real sshd and the real `sudo`.

A dedicated `assay-test-<random>` account (made and removed by the session fixture, with a
sudoers drop-in that lets it run anything as root *with its password*) logs in to a real
OpenSSH server on its own loopback address with a key; Assay then becomes root through sudo
with the password reference. With the right password the root-only facts (`/etc/shadow`,
`sshd -T`) are gathered; with a wrong one the facts the account can read itself are kept,
marked partial, and the first error names sudo. The password never appears in any output.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reports.build import build_assessment
from scanner.gather.facts import HostConfigFacts, SectionState
from scanner.gather.script import GatherOptions
from scanner.inventory import CredentialRef, SshAccess, parse_inventory
from scanner.model import Status, Target, TargetKind
from scanner.plugins import FactsView, load_registry
from scanner.remote import gather_ssh, login_for
from scanner.runner import Runner
from scanner.store import Store
from tests.helpers import evaluate
from tests.servers_sshd import (
    HARDENED_OPTIONS,
    HAVE_SSHD,
    Sshd,
    SudoAccount,
    make_key,
    sudo_account,
    sudo_account_unavailable,
    sudoers_dropin,
)

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(not HAVE_SSHD, reason="needs sshd"),
    pytest.mark.skipif(bool(sudo_account_unavailable()), reason=sudo_account_unavailable()),
]

PW_ENV = "ASSAY_TEST_SUDO_PW"
WRONG = "Wrong-sudo-pw-9f3c2a71"
SECTIONS = ("meta", "passwd", "shadow", "sshd", "sudoers", "files")


@dataclass(frozen=True)
class Lab:
    account: SudoAccount
    server: Sshd
    key: Path  # the account's private key file
    known_hosts: Path
    base: Path


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    # sshd reads authorized_keys as the account, so this tree must be traversable by it
    # (pytest's own temporary directories are 0700 root)
    base = Path(tempfile.mkdtemp(prefix="assay-test-sudo-"))
    try:
        base.chmod(0o755)
        keys = base / "keys"
        keys.mkdir(mode=0o700)
        client = make_key(keys / "client", "ed25519")
        server = Sshd(
            base / "sshd",
            HARDENED_OPTIONS,
            host_keys=(make_key(keys / "host", "ed25519"),),
            authorized_keys=(client,),
        )
        with sudo_account(base) as account, server:
            pub = (keys / "host.pub").read_text().split()
            kh = base / "known_hosts"
            kh.write_text(f"[{server.addr}]:{server.port} {pub[0]} {pub[1]}\n")
            yield Lab(account, server, client, kh, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def access(lab: Lab, *, sudo: bool = True, password: bool = True) -> SshAccess:
    return SshAccess(
        user=lab.account.name,
        port=lab.server.port,
        key=CredentialRef(file=lab.key),
        sudo=sudo,
        sudo_password=CredentialRef(env=PW_ENV) if password else None,
        known_hosts=lab.known_hosts,
    )


def gather(lab: Lab, acc: SshAccess) -> HostConfigFacts:
    opts = GatherOptions(sshd_config=str(lab.server.config_path), sections=SECTIONS)
    return asyncio.run(gather_ssh(login_for(lab.server.addr, acc), opts, budget=60))


def view(facts: HostConfigFacts) -> FactsView:
    return FactsView(Target(kind=TargetKind.SSH, unit="t", address="x"), {"host.config": facts})


def judged(facts: HostConfigFacts, check_id: str) -> tuple[Status, str]:
    (r,) = evaluate(load_registry().checks[check_id], view(facts))
    return r.status, r.message


def test_with_the_right_sudo_password_the_root_only_facts_are_gathered(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PW_ENV, lab.account.password)
    root = gather(lab, access(lab))
    assert root.complete, root.errors
    assert root.sudo and root.user == lab.account.name and root.meta["uid"] == "0"
    assert root.section("shadow").state is SectionState.OK
    mine = next(a for a in root.accounts if a.name == lab.account.name)
    assert mine.pw_state == "hash"  # read from /etc/shadow, which only root may read
    assert root.sshd["passwordauthentication"] == ["no"]  # `sshd -T` needs the host keys
    # the same account without sudo: the root-only sources are refused, the rest is read
    plain = gather(lab, access(lab, sudo=False, password=False))
    assert not plain.sudo and plain.meta["uid"] != "0"
    assert plain.section("shadow").state is SectionState.DENIED
    assert plain.section("sshd").state is not SectionState.OK
    assert plain.accounts and plain.section("passwd").state is SectionState.OK
    # and what the checks make of it: judged with root, refused for lack of rights without
    assert judged(root, "host.accounts.empty_password")[0] is Status.PASS
    assert judged(root, "host.sshd.password_auth")[0] is Status.PASS
    status, message = judged(plain, "host.accounts.empty_password")
    assert status is Status.ERROR and "not readable with the login's rights" in message
    assert judged(plain, "host.sshd.password_auth")[0] is Status.ERROR


def test_a_wrong_sudo_password_is_an_error_naming_sudo_and_keeps_the_unprivileged_facts(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PW_ENV, WRONG)
    facts = gather(lab, access(lab))
    assert not facts.complete and not facts.sudo
    first = facts.errors[0]
    assert first.startswith("sudo refused the password (sudo: "), facts.errors
    assert "incorrect password attempt" in first  # sudo's own words, passed on
    assert f"for {lab.account.name}@{lab.server.addr}:" in first
    assert "gathered without root" in first
    # the account's own facts are kept ...
    assert facts.meta["uid"] != "0" and facts.section("passwd").state is SectionState.OK
    assert any(a.name == lab.account.name for a in facts.accounts)
    # ... and the root-only ones say why they are missing
    assert facts.section("shadow").state is SectionState.DENIED
    assert "sudo refused the password" in facts.section("shadow").note
    status, message = judged(facts, "host.gather.complete")
    assert status is Status.ERROR and "sudo refused the password" in message
    status, message = judged(facts, "host.accounts.empty_password")
    assert status is Status.ERROR and "sudo refused the password" in message
    assert judged(facts, "host.accounts.uid0")[0] is Status.PASS  # /etc/passwd is readable
    assert WRONG not in facts.model_dump_json()


def test_sudo_without_a_password_reference_when_sudo_asks_for_one(lab: Lab) -> None:
    facts = gather(lab, access(lab, password=False))
    assert not facts.complete and facts.meta["uid"] != "0"
    assert "sudo asks for a password and no sudo_password is given" in facts.errors[0]


def test_nopasswd_needs_no_password_and_a_given_one_is_not_used(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = lab.account.name
    with sudoers_dropin(f"{name}-nopw", f"{name} ALL=(root) NOPASSWD: ALL\n"):
        facts = gather(lab, access(lab, password=False))
        assert facts.complete and facts.sudo and facts.meta["uid"] == "0", facts.errors
        monkeypatch.setenv(PW_ENV, WRONG)  # sudo never asks, so even a wrong one does no harm
        facts = gather(lab, access(lab))
        assert facts.complete and facts.sudo and facts.meta["uid"] == "0", facts.errors


def test_a_host_that_keeps_no_sudo_credential_is_named(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sudo takes the password, but with timestamp_timeout 0 the gatherer's `sudo -n` has no
    credential to run on: said as such, not as a wrong password."""
    name = lab.account.name
    monkeypatch.setenv(PW_ENV, lab.account.password)
    with sudoers_dropin(f"{name}-nots", f"Defaults:{name} timestamp_timeout=0\n"):
        facts = gather(lab, access(lab))
    assert not facts.complete and facts.meta["uid"] != "0"
    assert facts.errors[0].startswith(
        "sudo accepted the password but keeps no cached credential (timestamp_timeout 0?)"
    ), facts.errors


def test_the_sudo_password_never_appears_in_logs_evidence_reports_or_the_db(
    lab: Lab,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Two scans through the runner (right and wrong password), everything they leave behind
    searched for both passwords. The scan's collector_timeout is far below one gathering:
    the host's own ssh.budget bounds it, so the runner does not cut it short."""
    caplog.set_level(logging.DEBUG)  # paramiko's and Assay's debug logs included
    db = tmp_path / "assay.db"
    store = Store(f"sqlite:///{db}")
    reg = load_registry()
    outputs: list[str] = []
    by_scan: dict[str, dict[str, tuple[Status, str]]] = {}
    for password in (lab.account.password, WRONG):
        monkeypatch.setenv(PW_ENV, password)
        text = f"""
version: 1
settings: {{probe_timeout: 5, collector_timeout: 0.05}}
units:
  - id: lab
    name: Lab
    hosts:
      - address: {lab.server.addr}
        ssh: {{user: {lab.account.name}, port: {lab.server.port}, key: {{file: {lab.key}}},
               sudo_password: {{env: {PW_ENV}}}, known_hosts: {lab.known_hosts},
               budget: 300}}
"""
        inv = parse_inventory(text, "lab.yaml")
        summary = asyncio.run(Runner(reg, store, inv, inventory_text=text).run())
        outcomes = [o for o in store.outcomes(summary.scan_id) if o.check_id.startswith("host.")]
        by_scan[password] = {o.check_id: (o.status, o.message) for o in outcomes}
        doc = build_assessment(store, summary.scan_id)
        for fmt, reporter in sorted(reg.reporters.items()):
            outputs.append(f"{fmt}: " + reporter.render(doc))
        outputs += [o.model_dump_json() for o in outcomes]
        outputs += [str(r.facts) for r in store.targets(summary.scan_id)]
    right, wrong = by_scan[lab.account.password], by_scan[WRONG]
    assert len(right) >= 100
    assert right["host.gather.complete"][0] is Status.PASS, right["host.gather.complete"]
    assert right["host.accounts.empty_password"][0] is Status.PASS
    assert wrong["host.gather.complete"][0] is Status.ERROR
    assert "sudo refused the password" in wrong["host.gather.complete"][1]
    assert "sudo refused the password" in wrong["host.accounts.empty_password"][1]
    captured = capfd.readouterr()
    sources = {
        "reports, evidence and facts": "\n".join(outputs),
        "logs": caplog.text,
        "stdout/stderr": captured.out + captured.err,
        "sshd log": lab.server.log_path.read_text(errors="replace"),
        "database": b"".join(
            p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("assay.db")
        ).decode("latin-1"),
    }
    empty = [where for where, text in sources.items() if not text and where != "stdout/stderr"]
    assert not empty, f"nothing was written to: {empty}"  # so the search below means something
    for where, text in sources.items():
        for secret in (lab.account.password, WRONG):
            assert secret not in text, f"a sudo password appears in the {where}"
