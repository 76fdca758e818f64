"""The SSH wire parser and the algorithm table, without any server.

Hypothesis feeds the parsers arbitrary bytes: they either return a value or raise
`SshWireError`, never anything else, and what they build they read back unchanged.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checks.ssh import algorithms as alg
from checks.ssh.algorithms import TABLE_PATH, TableError, Verdict, load_table, table
from checks.ssh.banner import TOPICS, scan_banner
from scanner import sshtransport as tr
from scanner import sshwire as w

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

name = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters=","),
    min_size=1,
    max_size=40,
)
name_list = st.lists(name, max_size=12).map(tuple)


# -- identification ---------------------------------------------------------------------------
def test_identification_with_comments_and_pre_lines() -> None:
    found = w.split_identification(b"Hello\r\nworld\nSSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\nX")
    assert found is not None
    ident, rest = found
    assert (ident.proto, ident.software, ident.comments) == (
        "2.0",
        "OpenSSH_9.2p1",
        "Debian-2+deb12u3",
    )
    assert ident.pre_lines == ("Hello", "world") and rest == b"X"


def test_identification_needs_more_input() -> None:
    assert w.split_identification(b"") is None
    assert w.split_identification(b"SS") is None
    assert w.split_identification(b"SSH-2.0-Open") is None
    assert w.split_identification(b"banner line without end") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"SSH-2.0-" + b"x" * 300, "longer than 255 bytes"),
        (b"SSH-2.0-" + b"x" * 300 + b"\r\n", "longer than 255 bytes"),
        (b"line\n" * 60, "within 50 lines"),
        (b"x" * 9000, "within the first 8192 bytes"),
        (b"SSH-2.0\r\n", "malformed identification"),
        (b"SSH-2.0-Open\x01SSH\r\n", "control characters"),
    ],
)
def test_identification_limits(data: bytes, message: str) -> None:
    with pytest.raises(w.SshWireError, match=message):
        w.split_identification(data)


@FUZZ
@given(st.binary(max_size=600))
def test_identification_fuzz(data: bytes) -> None:
    try:
        found = w.split_identification(data)
    except w.SshWireError:
        return
    if found is not None:
        ident, rest = found
        assert len(ident.line) <= 4 * w.MAX_IDENT and len(rest) < len(data)


# -- packets and KEXINIT ----------------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=3000))
def test_packet_round_trip(payload: bytes) -> None:
    packet = w.encode_packet(payload or b"\x02")
    assert len(packet) % 8 == 0
    found = w.split_packet(packet + b"tail")
    assert found == (payload or b"\x02", b"tail")


@FUZZ
@given(st.binary(max_size=200))
def test_packet_fuzz(data: bytes) -> None:
    with contextlib.suppress(w.SshWireError):
        w.split_packet(data)


@FUZZ
@given(
    st.lists(name_list, min_size=10, max_size=10),
    st.booleans(),
)
def test_kexinit_round_trip(lists: list[tuple[str, ...]], follows: bool) -> None:
    k = w.KexInit(os.urandom(16), *lists, first_kex_follows=follows)  # type: ignore[arg-type]
    assert w.parse_kexinit(w.encode_kexinit(k)) == k


@FUZZ
@given(st.binary(max_size=400))
def test_kexinit_fuzz(data: bytes) -> None:
    for payload in (data, bytes([w.MSG_KEXINIT]) + data):
        with contextlib.suppress(w.SshWireError):
            w.parse_kexinit(payload)


def test_kexinit_truncation_names_the_field() -> None:
    with pytest.raises(w.SshWireError, match="KEXINIT: truncated reading cookie"):
        w.parse_kexinit(bytes([w.MSG_KEXINIT]) + b"short")
    with pytest.raises(w.SshWireError, match="expected KEXINIT"):
        w.parse_kexinit(b"\x15")
    with pytest.raises(w.SshWireError, match="empty name"):
        w.parse_kexinit(bytes([w.MSG_KEXINIT]) + bytes(16) + w.encode_string(b"a,,b"))


# -- host keys --------------------------------------------------------------------------------
def _rsa_blob(e: int, n: int) -> bytes:
    return w.encode_string("ssh-rsa") + w.encode_mpint(e) + w.encode_mpint(n)


@FUZZ
@given(st.integers(min_value=3, max_value=2**32), st.integers(min_value=2**511, max_value=2**4096))
def test_rsa_host_key(e: int, n: int) -> None:
    key = w.parse_host_key(_rsa_blob(e, n))
    assert key.family == "rsa" and key.bits == n.bit_length() and key.rsa_exponent == e


def test_fingerprint_matches_openssh_format(tmp_path: Path) -> None:
    blob = w.encode_string("ssh-ed25519") + w.encode_string(bytes(32))
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert w.fingerprint_sha256(blob) == f"SHA256:{digest}"
    key = w.parse_host_key(blob)
    assert key.family == "ed25519" and key.bits == 256


def test_host_key_types() -> None:
    ecdsa = (
        w.encode_string("ecdsa-sha2-nistp384")
        + w.encode_string("nistp384")
        + w.encode_string(b"\x04" + bytes(96))
    )
    assert w.parse_host_key(ecdsa).curve == "nistp384"
    assert w.parse_host_key(ecdsa).bits == 384
    dsa = w.encode_string("ssh-dss") + b"".join(w.encode_mpint(2**1023 + i) for i in range(4))
    assert w.parse_host_key(dsa).family == "dsa" and w.parse_host_key(dsa).bits == 1024
    cert = (
        w.encode_string("ssh-ed25519-cert-v01@openssh.com")
        + w.encode_string(bytes(32))
        + w.encode_string(bytes(32))
    )
    assert w.parse_host_key(cert).certificate
    with pytest.raises(w.SshWireError, match="Ed25519 key of 5 bytes"):
        w.parse_host_key(w.encode_string("ssh-ed25519") + w.encode_string(bytes(5)))
    assert w.parse_host_key(w.encode_string("x-new-key") + b"junk").family == "unknown"


@FUZZ
@given(
    st.binary(max_size=300),
    st.sampled_from(
        ["ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ssh-ed25519", "ssh-rsa-cert-v01@openssh.com"]
    ),
)
def test_host_key_and_reply_fuzz(data: bytes, key_type: str) -> None:
    for blob in (data, w.encode_string(key_type) + data):
        with contextlib.suppress(w.SshWireError):
            w.parse_host_key(blob)
    for payload in (data, bytes([w.MSG_KEX_REPLY]) + data):
        with contextlib.suppress(w.SshWireError):
            w.parse_kex_reply(payload)
        with contextlib.suppress(w.SshWireError):
            w.parse_gex_group(payload)


@given(st.integers(min_value=-(2**600), max_value=2**600))
def test_mpint_round_trip(value: int) -> None:
    assert w.Reader(w.encode_mpint(value), "t").mpint("v") == value


def test_dh_groups_are_safe_primes() -> None:
    for method, p in w.DH_GROUPS.items():
        assert p.bit_length() in (1024, 2048), method
        for a in (2, 3, 5, 7):  # Fermat test on p and on q = (p-1)/2
            assert pow(a, p - 1, p) == 1
            q = (p - 1) // 2
            assert pow(a, q - 1, q) == 1


# -- the pre-login banner detector ------------------------------------------------------------
@FUZZ
@given(st.text(max_size=2000))
def test_banner_scan_fuzz(text: str) -> None:
    found = scan_banner(text)
    assert set(found) == set(TOPICS) and all(len(v) <= 5 for v in found.values())


def test_banner_scan_finds_vietnamese_details() -> None:
    found = scan_banner(
        "Máy chủ srv01 - liên hệ Nguyễn Văn Bình, sđt 0912 345 678, ip 10.0.0.5 "
        "mail a.b@x.gov.vn, Ubuntu 22.04.3 LTS"
    )
    assert found["person"] == ["Nguyễn Văn Bình"]
    assert found["ip_address"] == ["10.0.0.5"] and found["email"] == ["a.b@x.gov.vn"]
    assert found["os"] == ["Ubuntu"] and found["version"] == ["22.04.3"]
    assert "srv01" in found["hostname"] and found["phone"] == ["0912 345 678"]
    neutral = scan_banner("Authorised use only. Activity may be monitored and recorded.\n")
    assert not any(neutral.values())


# -- the algorithm table ----------------------------------------------------------------------
def test_table_is_valid_and_versioned() -> None:
    t = table()
    assert t.version == t.changelog[0].version
    assert set(t.profiles) >= {"baseline", "strict"}
    assert t.verdict("kex", "diffie-hellman-group1-sha1", "baseline")[0] is Verdict.FAIL
    assert t.verdict("kex", "diffie-hellman-group14-sha256", "strict")[0] is Verdict.FAIL
    assert t.verdict("kex", "gss-gex-sha1-toWM5Slw5Ew8Mqkay+al2g==", "baseline")[0] is Verdict.FAIL
    assert t.verdict("cipher", "rot13@example.org", "baseline")[0] is Verdict.UNKNOWN
    for cat in ("kex", "hostkey"):  # advisory topics never fail, in any profile
        for a in t.algorithms[cat]:
            if {"nist-curve", "post-quantum"} & set(a.tags):
                assert a.status is Verdict.OK and set(a.profiles.values()) <= {Verdict.OK}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            (
                "{name: diffie-hellman-group1-sha1, status: fail",
                "{name: diffie-hellman-group1-sha1, status: bad",
            ),
            "algorithms.kex",
        ),
        (("- {name: ssh-dss, status: fail", "- {name: ssh-rsa, status: fail"), "listed twice"),
        (
            (
                'profiles: {strict: fail},\n       reason: "2048',
                'profiles: {bsi: fail},\n       reason: "2048',
            ),
            "undeclared profiles",
        ),
        (
            ("{name: ecdh-sha2-nistp256, status: ok", "{name: ecdh-sha2-nistp256, status: fail"),
            "advisory topic",
        ),
        (('version: "2026.12.1"\nchangelog', 'version: "2027.1.1"\nchangelog'), "no changelog"),
        (("schema: 1", "schema: [1"), "cannot read"),
    ],
)
def test_broken_table_is_refused_with_the_reason(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    text = TABLE_PATH.read_text(encoding="utf-8")
    assert edit[0] in text, edit[0]
    broken = tmp_path / "algorithms.yaml"
    broken.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    with pytest.raises(TableError, match=message) as info:
        load_table(broken)
    assert str(broken) in str(info.value)


def test_compiled_table_is_the_yaml() -> None:
    """The JSON form that start-up reads is current: made from these YAML bytes, same data."""
    from ruamel.yaml import YAML

    doc = json.loads(alg.COMPILED_PATH.read_text(encoding="utf-8"))
    source = TABLE_PATH.read_bytes()
    assert doc["source_sha256"] == hashlib.sha256(source).hexdigest(), (
        "checks/ssh/algorithms.json is stale: python -m checks.ssh.algorithms --compile"
    )
    assert doc["table"] == YAML(typ="safe").load(source.decode("utf-8"))


def test_stale_compiled_table_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = json.loads(alg.COMPILED_PATH.read_text(encoding="utf-8"))
    cipher = next(a for a in doc["table"]["algorithms"]["cipher"] if a["status"] == "fail")
    cipher["status"] = "ok"  # what an out-of-date JSON would say
    stale = tmp_path / "algorithms.json"
    stale.write_text(json.dumps({**doc, "source_sha256": "0" * 64}), encoding="utf-8")
    monkeypatch.setattr(alg, "COMPILED_PATH", stale)
    assert load_table().verdict("cipher", cipher["name"], "baseline")[0] is Verdict.FAIL
    # with a matching digest the JSON is read, and validated like the YAML
    stale.write_text(json.dumps(doc), encoding="utf-8")
    assert load_table().verdict("cipher", cipher["name"], "baseline")[0] is Verdict.OK
    doc["table"]["schema"] = 2
    stale.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(TableError, match="schema 2 is not supported"):
        load_table()


# -- the encrypted transport ------------------------------------------------------------------
PROTECTIONS = (
    [(c, "") for c in sorted(tr.AEAD)]
    + [("aes128-ctr", m) for m in sorted(tr.MACS)]
    + [("aes256-ctr", "hmac-sha2-512-etm@openssh.com")]
)


def _pair(cipher: str, mac: str) -> tuple[tr.Direction, tr.Direction]:
    k, h = w.encode_mpint(123456789), hashlib.sha256(b"exchange").digest()
    out, _ = tr.directions("curve25519-sha256", k, h, cipher, mac, 3, 7)
    peer, _ = tr.directions("curve25519-sha256", k, h, cipher, mac, 3, 7)
    return out, peer


def _open(d: tr.Direction, raw: bytes) -> bytes:
    length, clear_head = d.length(raw[: d.head_size()])
    assert length == len(raw) - 4 - d.tag_size()
    return d.open(raw, clear_head)


@pytest.mark.parametrize(("cipher", "mac"), PROTECTIONS)
def test_transport_round_trip_and_tamper(cipher: str, mac: str) -> None:
    out, peer = _pair(cipher, mac)
    for payload in (b"\x05" + w.encode_string("ssh-userauth"), b"\x02" * 300, b"\x32"):
        assert _open(peer, out.seal(payload)) == payload
    raw = bytearray(out.seal(b"\x05hello"))
    raw[-1] ^= 1
    with pytest.raises(w.SshWireError, match="check"):
        _open(peer, bytes(raw))


def test_key_derivation_extends_past_one_digest() -> None:
    k, h = w.encode_mpint(5), bytes(32)
    long = tr.derive(hashlib.sha256, k, h, "C", 64)
    assert long[:32] == tr.derive(hashlib.sha256, k, h, "C", 32)
    assert long[32:] == hashlib.sha256(k + h + long[:32]).digest()


def test_fetch_plan_fetches_the_rsa_key_once() -> None:
    from scanner.collectors.ssh import fetch_plan

    plan = fetch_plan(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", "ssh-dss", "ssh-ed25519"])
    assert plan == [
        ("ssh-rsa", ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]),
        ("ssh-dss", ["ssh-dss"]),
        ("ssh-ed25519", ["ssh-ed25519"]),
    ]
    assert fetch_plan(["ssh-ed25519", "rsa-sha2-256"]) == [
        ("ssh-ed25519", ["ssh-ed25519"]),
        ("rsa-sha2-256", ["rsa-sha2-256"]),
    ]


def test_audit_start_up_reads_the_compiled_table_without_the_yaml_parser() -> None:
    """A short SSH audit's process loads the table from JSON: the YAML parser is never imported."""
    import subprocess
    import sys

    code = (
        "import sys, checks.ssh.advisory, checks.ssh.crypto, scanner.collectors.ssh\n"
        "from checks.ssh.algorithms import table\n"
        "table()\n"
        "print(sorted(m for m in sys.modules if m.startswith('ruamel')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
