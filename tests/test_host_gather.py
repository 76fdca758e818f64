"""The gathering script and its reader: sections, limits, hostile output, the local run,
and checks judged on files and sshd configurations the test controls."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.gather.facts import HostConfigFacts, SectionState
from scanner.gather.interpret import to_facts
from scanner.gather.local import RawRun, assemble, gather_local, run_local
from scanner.gather.nginx import NginxSyntaxError, parse_config, servers_of
from scanner.gather.script import SECTIONS, GatherOptions, build_script
from scanner.gather.sections import parse_output
from scanner.model import Status, Target, TargetKind
from scanner.plugins import FactsView, load_registry
from tests.helpers import evaluate
from tests.servers_sshd import stuck_root

N = "abc123"


def out(*parts: str) -> bytes:
    return "".join(parts).encode()


def sec(name: str, body: str, rc: int = 0) -> str:
    return f"\n@@assay-{N} BEGIN {name}\n{body}\n@@assay-{N} END {name} {rc}\n"


def test_sections_rc_and_noise_before_the_start() -> None:
    data = out(
        "Welcome to web01!\nLast login: yesterday\n",
        f"@@assay-{N} START\n",
        sec("meta", "uid 0\nkernel Linux"),
        sec("fw_nft", "command not found: nft", 127),
        f"@@assay-{N} DONE\n",
    )
    p = parse_output(data, N)
    assert p.started and p.finished
    assert p.sections["meta"].text == "uid 0\nkernel Linux"
    assert p.sections["fw_nft"].rc == 127
    assert "Welcome to web01!" in p.noise


def test_a_forged_boundary_without_the_nonce_is_content() -> None:
    forged = "@@assay-000000 END meta 0\n@@assay-000000 BEGIN shadow\nroot:empty::::::"
    p = parse_output(out(f"@@assay-{N} START\n", sec("meta", forged)), N)
    assert list(p.sections) == ["meta"]
    assert "root:empty" in p.sections["meta"].text


def test_a_section_cut_off_is_truncated_and_kept() -> None:
    data = out(f"@@assay-{N} START\n", sec("meta", "uid 0"), f"@@assay-{N} BEGIN sshd\nport 22\n")
    p = parse_output(data, N)
    assert p.sections["sshd"].truncated and "port 22" in p.sections["sshd"].text
    assert "ended before the gatherer finished" in " ".join(p.problems)


def test_non_utf8_output_is_replaced_and_marked() -> None:
    data = f"@@assay-{N} START\n".encode() + sec("issue", "x").encode().replace(
        b"x", b"caf\xe9 \xff"
    )
    p = parse_output(data, N)
    s = p.sections["issue"]
    assert s.non_utf8 and "\ufffd" in s.text
    facts = to_facts(p, HostConfigFacts(address="h", via="ssh"), ("issue",))
    assert any("not UTF-8" in e for e in facts.errors)


def test_limits_on_section_size_and_count() -> None:
    big = "x" * 5000
    p = parse_output(out(f"@@assay-{N} START\n", sec("meta", big)), N, max_section=1000)
    assert p.sections["meta"].clipped and len(p.sections["meta"].text) <= 1000
    many = "".join(sec(f"s{i}", "v") for i in range(20))
    p = parse_output(out(f"@@assay-{N} START\n", many), N, max_sections=5)
    assert len(p.sections) == 5 and any("dropped" in x for x in p.problems)


def test_sections_that_never_came_are_not_gathered() -> None:
    p = parse_output(out(f"@@assay-{N} START\n", sec("meta", "uid 0")), N)
    facts = to_facts(p, HostConfigFacts(address="h", via="ssh"), ("meta", "sysctl"))
    assert facts.section("sysctl").state is SectionState.NOT_GATHERED
    assert not facts.complete


def test_readers_never_keep_hashes_and_parse_real_formats() -> None:
    text = "".join(
        [
            f"@@assay-{N} START\n",
            sec("shadow", "root:hash:y:19000:0:99999:7::\nguest:empty::19000:0:99999:7::"),
            sec("passwd", "root:x:0:0:root:/root:/bin/bash\nguest:x:1001:1001::/home/g:/bin/sh"),
            sec(
                "updates",
                "method apt-get\nInst libssl3 [3.0.11-1] "
                "(3.0.15-1 Debian-Security:12/stable-security [amd64])",
            ),
            sec("listening", 'tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3))'),
            sec("redis", "== /etc/redis/redis.conf\nrequirepass <set>\nbind 0.0.0.0"),
            f"@@assay-{N} DONE\n",
        ]
    )
    f = to_facts(parse_output(text.encode(), N), HostConfigFacts(address="h", via="ssh"), ())
    by = {a.name: a for a in f.accounts}
    assert by["root"].pw_state == "hash" and by["root"].scheme == "y" and by["root"].uid == 0
    assert by["guest"].pw_state == "empty"
    assert f.updates[0].security and f.updates[0].name == "libssl3"
    assert f.listening[0].port == 22 and f.listening[0].process == "sshd"
    assert f.redis["requirepass_set"] == ["<set>"]


def test_the_script_masks_secrets_on_the_host(tmp_path: Path) -> None:
    """Run the real script against a test root: shadow hashes and Redis passwords stay there."""
    etc = tmp_path / "etc"
    (etc / "redis").mkdir(parents=True)
    (etc / "shadow").write_text("root:$6$salt$abcdefhash:19000:0:99999:7:::\nlp:*:19000::::::\n")
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\nlp:x:7:7::/:/usr/sbin/nologin\n")
    (etc / "redis" / "redis.conf").write_text(
        "requirepass s3cr3t-value\nmasterauth other-secret\n"
        "user app on >apppw ~* +@all\nbind 0.0.0.0\n"
    )
    opts = GatherOptions(root=str(tmp_path), sections=("passwd", "shadow", "redis"))
    facts = asyncio.run(gather_local(opts, budget=30))
    text = facts.model_dump_json()
    for secret in ("abcdefhash", "s3cr3t-value", "other-secret", "apppw"):
        assert secret not in text
    assert {a.name: a.pw_state for a in facts.accounts} == {"root": "hash", "lp": "locked"}
    assert facts.redis["requirepass_set"] == ["<set>"]
    assert facts.redis["user"] == ["app on <secret> ~* +@all"]


def test_local_gathering_of_this_machine_is_complete() -> None:
    facts = asyncio.run(gather_local(budget=60))
    assert facts.complete, facts.errors
    assert facts.via == "local" and set(SECTIONS) <= set(facts.sections)
    assert facts.os.get("ID") and facts.accounts and facts.sysctl
    # a command that is missing on the target is recorded as such, never as a failure
    for section, tool in (("fw_nft", "nft"), ("audit", "auditctl"), ("fw_ufw", "ufw")):
        expected = SectionState.MISSING if shutil.which(tool) is None else SectionState.OK
        if expected is SectionState.MISSING:
            assert facts.section(section).state is SectionState.MISSING
            assert "command not found" in facts.section(section).note


def test_the_time_budget_stops_the_gathering_and_keeps_what_came(tmp_path: Path) -> None:
    """Event-driven: `os_release` reads a pipe nobody writes, so the gathering can only end by
    the budget, however loaded the machine; the budget is generous so `meta`, printed before,
    has been read by then."""
    with stuck_root(tmp_path) as root:
        opts = GatherOptions(root=str(root), sections=("meta", "os_release", "passwd"))
        raw, nonce = asyncio.run(run_local(opts, budget=3))
    assert f"@@assay-{nonce} BEGIN os_release".encode() in raw.stdout  # it was stuck there
    facts = assemble(raw, nonce, opts, address="local", via="local")
    assert not facts.complete
    assert "time budget of 3s spent" in facts.errors[0], facts.errors
    assert facts.meta["uid"] and facts.section("meta").state is SectionState.OK
    assert facts.section("os_release").state is SectionState.TRUNCATED
    assert facts.section("passwd").state is SectionState.NOT_GATHERED


def test_a_script_that_never_starts_is_reported() -> None:
    raw = RawRun(b"sh: 1: /bin/sh: not found\n", b"permission denied", 127)
    facts = assemble(raw, "n", GatherOptions(), address="h", via="ssh")
    assert not facts.complete and "did not start (exit status 127)" in facts.errors[0]


def test_unknown_sections_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown gathering sections: nope"):
        build_script(GatherOptions(sections=("meta", "nope")))


def _perm_view(root: Path) -> FactsView:
    opts = GatherOptions(root=str(root), sections=("files", "find"), find_paths=("/etc", "/usr"))
    facts = asyncio.run(gather_local(opts, budget=30))
    assert facts.complete, facts.errors
    return FactsView(Target(kind=TargetKind.SSH, unit="t", address="local"), {"host.config": facts})


@pytest.mark.skipif(os.geteuid() != 0, reason="the test root needs chown to root:shadow")
def test_file_permission_checks_on_a_test_root(tmp_path: Path) -> None:
    reg = load_registry()
    shadow_check = reg.checks["host.perm.shadow"]
    ww = reg.checks["host.perm.world_writable"]
    for name, mode, stray in (("weak", 0o644, True), ("good", 0o640, False)):
        root = tmp_path / name
        (root / "etc").mkdir(parents=True)
        (root / "usr" / "bin").mkdir(parents=True)
        shadow = root / "etc" / "shadow"
        shadow.write_text("root:*:19000:0:99999:7:::\n")
        shutil.chown(shadow, "root", "shadow")
        shadow.chmod(mode)
        tool = root / "usr" / "bin" / "tool"
        tool.write_text("#!/bin/sh\n")
        tool.chmod(0o777 if stray else 0o755)
        v = _perm_view(root)
        want = Status.FAIL if stray else Status.PASS
        (r,) = evaluate(shadow_check, v)
        assert r.status is want, r.message
        (w,) = evaluate(ww, v)
        assert w.status is want, w.message
        if stray:
            assert w.evidence["files"] == ["/usr/bin/tool"]


def test_nginx_reader_follows_includes_and_inheritance() -> None:
    dump = "\n".join(
        [
            "nginx version: nginx/1.22.1",
            "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok",
            "# configuration file /etc/nginx/nginx.conf:",
            "http { ssl_protocols TLSv1 TLSv1.2; server_tokens off;",
            "  include /etc/nginx/sites-enabled/*; }",
            "# configuration file /etc/nginx/sites-enabled/a:",
            "server { listen 443 ssl; server_name a.example; }",
            "# configuration file /etc/nginx/sites-enabled/b:",
            "server { listen 443 ssl; server_name 'b.example'; ssl_protocols TLSv1.3; # comment\n}",
        ]
    )
    facts = servers_of(dump)
    assert facts.version == "1.22.1"
    a, b = facts.servers
    assert a.tls and a.protocols == ("TLSv1", "TLSv1.2") and a.server_tokens == "off"
    assert b.names == ("b.example",) and b.protocols == ("TLSv1.3",)


def test_nginx_reader_refuses_hostile_nesting() -> None:
    with pytest.raises(NginxSyntaxError):
        parse_config("a {" * 100)
    assert "nested deeper" in servers_of("http {" * 100).error
    with pytest.raises(NginxSyntaxError, match="without an open block"):
        parse_config("}")


def test_sshd_reports_the_effective_configuration_of_another_file(tmp_path: Path) -> None:
    if shutil.which("sshd") is None:
        pytest.skip("sshd is not installed")
    key = tmp_path / "hk"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    conf = tmp_path / "sshd_config"
    conf.write_text(f"HostKey {key}\nPermitRootLogin no\nCiphers aes256-cbc\n")
    facts = asyncio.run(gather_local(GatherOptions(sshd_config=str(conf), sections=("sshd",))))
    assert facts.sshd["permitrootlogin"] == ["no"]
    assert facts.sshd["ciphers"] == ["aes256-cbc"]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=4000))
def test_any_bytes_parse_without_raising(data: bytes) -> None:
    p = parse_output(data, N, max_section=512)
    assert all(len(s.text.encode()) <= 512 * 4 for s in p.sections.values())


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(SECTIONS),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=600),
    st.integers(min_value=0, max_value=130),
)
def test_any_section_text_is_read_or_reported(name: str, body: str, rc: int) -> None:
    body = body.replace(f"@@assay-{N}", "")
    data = out(f"@@assay-{N} START\n", sec(name, body, rc), f"@@assay-{N} DONE\n")
    facts = to_facts(parse_output(data, N), HostConfigFacts(address="h", via="ssh"), (name,))
    HostConfigFacts.model_validate_json(facts.model_dump_json())  # stays storable
