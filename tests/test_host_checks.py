"""Host checks on recorded facts: every check FAILs on the weak host and PASSes on the hardened
one, says why when it does not apply, errors when its source is missing, and carries full
metadata (remediation snippet, how to verify, references)."""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

import checks.host
from scanner.gather.facts import (
    HostConfigFacts,
    NginxFacts,
    NginxServer,
    SectionInfo,
    SectionState,
)
from scanner.model import Result, Status, Target, TargetKind
from scanner.plugins import Check, FactsView, load_registry

FIXTURES = Path(__file__).parent / "host_facts"
REQUIRED = [
    "host.sshd.root_login",
    "host.sshd.password_auth",
    "host.sshd.max_auth_tries",
    "host.sshd.ciphers",
    "host.accounts.empty_password",
    "host.accounts.uid0",
    "host.passwords.max_days",
    "host.pam.pwquality",
    "host.pam.lockout",
    "host.patch.security_updates",
    "host.patch.unattended_upgrades",
    "host.firewall.active",
    "host.perm.shadow",
    "host.perm.world_writable",
    "host.sysctl.ip_forward",
    "host.sysctl.aslr",
    "host.sysctl.syncookies",
    "host.log.journald_persistent",
    "host.audit.auditd",
    "host.time.sync",
    "host.pkg.telnetd",
    "host.mount.tmp",
    "host.disk.encryption",
    "host.svc.nginx_tls",
    "host.svc.nginx_server_tokens",
    "host.svc.vsftpd_anonymous",
    "host.svc.redis_requirepass",
]

# Checks whose negative outcome is not "fail" on the weak fixture, and why.
WEAK_EXCEPTIONS = {
    # meta checks about the gathering: their negative outcome is `error` (tested below)
    "host.gather.complete": Status.PASS,
    "host.ssh.host_key": Status.PASS,
    # the weak host runs no time daemon at all (host.time.sync fails); two daemons: below
    "host.time.single_daemon": Status.NOT_APPLICABLE,
}
# Parameters a unit's policy would set for the hardened host.
HARDENED_PARAMS: dict[str, dict[str, Any]] = {
    "host.listen.expected": {"expected": ["22/tcp", "443/tcp"]}
}


def load(name: str) -> HostConfigFacts:
    return HostConfigFacts.model_validate_json((FIXTURES / name).read_text(encoding="utf-8"))


def view(h: HostConfigFacts) -> FactsView:
    return FactsView(Target(kind=TargetKind.SSH, unit="t", address=h.address), {"host.config": h})


def run(check: Check, h: HostConfigFacts, **params: Any) -> list[Result]:
    out = check.evaluate(view(h), check.Params(**params))
    return [out] if isinstance(out, Result) else list(out)


def status(check: Check, h: HostConfigFacts, **params: Any) -> set[Status]:
    return {r.status for r in run(check, h, **params)}


@pytest.fixture(scope="module")
def registry() -> dict[str, Check]:
    reg = load_registry()
    return {k: v for k, v in reg.checks.items() if k.startswith("host.")}


@pytest.fixture(scope="module")
def weak() -> HostConfigFacts:
    return load("weak_debian11.json")


@pytest.fixture(scope="module")
def hardened() -> HostConfigFacts:
    return load("hardened_debian12.json")


def test_at_least_100_host_checks_and_the_ids_policies_use(registry: dict[str, Check]) -> None:
    assert len(registry) >= 100
    missing = [i for i in REQUIRED if i not in registry]
    assert not missing


def test_every_check_class_is_registered_as_an_entry_point() -> None:
    declared = {ep.value for ep in entry_points(group="assay.checks")}
    found = []
    for mod in pkgutil.iter_modules(checks.host.__path__):
        if mod.name.startswith("_"):
            continue
        m = importlib.import_module(f"checks.host.{mod.name}")
        for name, obj in vars(m).items():
            is_check = isinstance(obj, type) and issubclass(obj, Check) and hasattr(obj, "meta")
            if is_check and obj.__module__ == m.__name__:
                found.append(f"checks.host.{mod.name}:{name}")
    assert found
    assert sorted(set(found) - declared) == []


def test_metadata_of_every_host_check(registry: dict[str, Check]) -> None:
    for cid, check in registry.items():
        m = check.meta
        assert m.id.startswith("host."), cid
        assert m.target_kind is TargetKind.SSH, cid
        assert m.facts == ("host.config",), cid
        assert m.remediation.snippet.strip(), f"{cid}: no remediation snippet"
        assert "Verify:" in m.remediation.text, f"{cid}: remediation does not say how to verify"
        schemes = {r.scheme for r in m.references}
        assert schemes & {"cis-debian12", "bsi", "iso27001:2022"}, f"{cid}: {schemes}"
        assert m.rationale.endswith("."), f"{cid}: rationale is not a sentence"
        check.Params()  # every parameter has a default


def test_every_check_fails_on_the_weak_host(
    registry: dict[str, Check], weak: HostConfigFacts
) -> None:
    wrong = {}
    for cid, check in registry.items():
        want = WEAK_EXCEPTIONS.get(cid, Status.FAIL)
        got = status(check, weak)
        if want not in got:
            wrong[cid] = got
    assert wrong == {}


def test_every_check_passes_on_the_hardened_host(
    registry: dict[str, Check], hardened: HostConfigFacts
) -> None:
    wrong = {}
    for cid, check in registry.items():
        got = status(check, hardened, **HARDENED_PARAMS.get(cid, {}))
        if got != {Status.PASS}:
            wrong[cid] = (got, [r.message for r in run(check, hardened)][:2])
    assert wrong == {}


def test_failures_carry_evidence_and_several_findings_have_distinct_details(
    registry: dict[str, Check], weak: HostConfigFacts
) -> None:
    results = run(registry["host.svc.nginx_tls"], weak)
    assert len(results) == 2  # two TLS server blocks
    assert len({r.detail for r in results}) == 2
    assert all(r.status is Status.FAIL for r in results)
    legacy = next(r for r in results if "8443" in r.detail)
    assert "build default" in legacy.message  # unset ssl_protocols on nginx 1.22 allows TLSv1
    shadow = run(registry["host.perm.shadow"], weak)[0]
    assert shadow.evidence["mode"] == "644"
    ciphers = run(registry["host.sshd.ciphers"], weak)[0]
    assert set(ciphers.evidence["weak"]) == {"aes128-cbc", "aes256-cbc", "3des-cbc"}


def test_time_with_two_daemons_fails(registry: dict[str, Check], weak: HostConfigFacts) -> None:
    two = weak.model_copy(update={"processes": [*weak.processes, "ntpd", "chronyd"]})
    assert status(registry["host.time.single_daemon"], two) == {Status.FAIL}
    assert status(registry["host.time.sync"], two) == {Status.PASS}


def test_parameters_change_the_verdict(
    registry: dict[str, Check], hardened: HostConfigFacts
) -> None:
    assert status(registry["host.passwords.max_days"], hardened, max_days=90) == {Status.FAIL}
    assert status(registry["host.sshd.max_auth_tries"], hardened, maximum=2) == {Status.FAIL}
    assert status(registry["host.listen.expected"], hardened) == {Status.FAIL}
    assert status(registry["host.sysctl.ip_forward"], hardened, router=True) == {
        Status.NOT_APPLICABLE
    }
    root = hardened.model_copy(
        update={"sshd": {**hardened.sshd, "permitrootlogin": ["without-password"]}}
    )
    assert status(registry["host.sshd.root_login"], root) == {Status.FAIL}
    assert status(registry["host.sshd.root_login"], root, allow_key_only=True) == {Status.PASS}


def _without(
    h: HostConfigFacts, section: str, state: SectionState, note: str = ""
) -> HostConfigFacts:
    sections = {**h.sections, section: SectionInfo(state=state, rc=None, note=note)}
    return h.model_copy(update={"sections": sections})


def test_a_component_that_is_absent_is_not_applicable_with_the_reason(
    registry: dict[str, Check], hardened: HostConfigFacts
) -> None:
    no_sshd = _without(hardened, "sshd", SectionState.MISSING, "command not found: sshd")
    for cid in ("host.sshd.root_login", "host.sshd.ciphers"):
        (r,) = run(registry[cid], no_sshd)
        assert r.status is Status.NOT_APPLICABLE and "not installed" in r.message
    bare = hardened.model_copy(
        update={
            "packages": {
                k: v for k, v in hardened.packages.items() if k not in ("vsftpd", "redis-server")
            },
            "vsftpd": {},
            "redis": {},
            "nginx": None,
        }
    )
    for cid in ("host.svc.vsftpd_anonymous", "host.svc.redis_requirepass", "host.svc.nginx_tls"):
        (r,) = run(registry[cid], bare)
        assert r.status is Status.NOT_APPLICABLE and r.message, cid
    plain = hardened.model_copy(
        update={"nginx": NginxFacts(version="1.22.1", servers=(NginxServer(),))}
    )
    (r,) = run(registry["host.svc.nginx_tls"], plain)
    assert r.status is Status.NOT_APPLICABLE and "no TLS server" in r.message
    # auditing is opt-in: without auditd it is n/a, unless the policy requires it
    no_audit = _without(hardened, "audit", SectionState.MISSING).model_copy(
        update={"packages": {k: v for k, v in hardened.packages.items() if k != "auditd"}}
    )
    assert status(registry["host.audit.auditd"], no_audit) == {Status.NOT_APPLICABLE}
    assert status(registry["host.audit.auditd"], no_audit, required=True) == {Status.FAIL}


def test_a_source_that_was_not_gathered_is_an_error_never_a_pass(
    registry: dict[str, Check], hardened: HostConfigFacts
) -> None:
    denied = _without(hardened, "shadow", SectionState.DENIED, "not readable")
    (r,) = run(registry["host.accounts.empty_password"], denied)
    assert r.status is Status.ERROR and "sudo" in r.message
    cut = _without(hardened, "sysctl", SectionState.NOT_GATHERED).model_copy(
        update={
            "complete": False,
            "errors": ["the connection was closed by the host during gathering"],
        }
    )
    (r,) = run(registry["host.sysctl.aslr"], cut)
    assert r.status is Status.ERROR and "connection was closed" in r.message
    (g,) = run(registry["host.gather.complete"], cut)
    assert g.status is Status.ERROR and "sysctl" in g.evidence["missing"]
    failed_sshd = _without(hardened, "sshd", SectionState.FAILED, "sshd: no hostkeys available")
    (r,) = run(registry["host.sshd.root_login"], failed_sshd)
    assert r.status is Status.ERROR and "no hostkeys" in r.message
    nokey = hardened.model_copy(update={"host_key": None})
    assert status(registry["host.ssh.host_key"], nokey) == {Status.ERROR}


def test_firewall_variants(registry: dict[str, Check], weak: HostConfigFacts) -> None:
    ufw = weak.model_copy(
        update={
            "sections": {**weak.sections, "fw_ufw": SectionInfo(state=SectionState.OK, rc=0)},
            "ufw": [
                "Status: active",
                "Default: deny (incoming), allow (outgoing), disabled (routed)",
            ],
        }
    )
    assert status(registry["host.firewall.active"], ufw) == {Status.PASS}
    assert status(registry["host.firewall.default_deny"], ufw) == {Status.PASS}
    allow = ufw.model_copy(update={"ufw": ["Status: active", "Default: allow (incoming)"]})
    assert status(registry["host.firewall.default_deny"], allow) == {Status.FAIL}
    nothing = weak.model_copy(
        update={
            "sections": {
                **weak.sections,
                "fw_iptables": SectionInfo(state=SectionState.MISSING, rc=127),
            }
        }
    )
    (r,) = run(registry["host.firewall.active"], nothing)
    assert r.status is Status.FAIL and "no firewall tool" in r.message


def test_results_are_json_and_hold_no_secret(
    registry: dict[str, Check], weak: HostConfigFacts
) -> None:
    text = weak.model_dump_json()
    assert "$6$" not in text and "$y$" not in text  # hashes never reach the facts
    for check in registry.values():
        for r in run(check, weak):
            r.model_dump_json()


def test_stored_facts_give_the_same_results(
    registry: dict[str, Check], weak: HostConfigFacts, hardened: HostConfigFacts
) -> None:
    """The runner masks secret-looking keys when it stores facts; host facts survive that
    unchanged, so a stored scan is judged exactly like the live one."""
    from scanner.runner import json_facts

    for h in (weak, hardened):
        stored = HostConfigFacts.model_validate(json_facts(h))
        assert stored == h
        for check in registry.values():
            assert [r.model_dump() for r in run(check, stored)] == [
                r.model_dump() for r in run(check, h)
            ]
