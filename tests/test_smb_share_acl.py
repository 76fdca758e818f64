"""SMB share permissions read over DCE/RPC (srvsvc NetrShareGetInfo level 502) from a real
Samba: a share whose share ACL and file DACL both let Everyone read FAILS data.store.share_acl,
one restricted with `sharesec --replace` PASSES and its file DACL's Everyone grant no longer
counts as public; a refused or malformed srvsvc answer (scripted: Samba gives level 502 to
anyone) is a reason in the notes, never "restricted", and costs nothing else of the scan."""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.collectors.store import StoreDocuments
from scanner.inventory import CredentialRef, Store
from scanner.model import Result, Severity, Status
from scanner.plugins import FactsView, Registry, load_registry
from scanner.stores import dcerpc
from scanner.stores.smb import read_grants
from tests.helpers import evaluate
from tests.servers_smb import (
    SMB_PASSWORD,
    SMB_USER,
    Samba,
    replace_rpc_response,
    rewriting_relay,
    samba,
    samba_unavailable,
)
from tests.test_store_smb import scan, target_of

pytestmark = pytest.mark.skipif(bool(samba_unavailable()), reason=samba_unavailable() or "ok")

CRED_ENV = "ASSAY_TEST_SMB_ACL"
RESTRICTED_ACL = "S-1-5-32-544:ALLOWED/0x0/FULL,S-1-22-1-0:ALLOWED/0x0/FULL"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(scope="module")
def server() -> Iterator[Samba]:
    """Three shares on one smbd: 'open' (default share ACL Everyone:F, files 0644), 'locked'
    (the same files, share ACL restricted to root and Administrators by sharesec) and
    'filesonly' (default share ACL, files 0700)."""
    tmp = Path(tempfile.mkdtemp(prefix="assay-smb-acl-"))
    os.chmod(tmp, 0o755)
    shares: dict[str, dict[str, str]] = {}
    for name, mode in (("open", 0o644), ("locked", 0o644), ("filesonly", 0o600)):
        d = tmp / name
        d.mkdir()
        (d / "ds.csv").write_text("Họ tên,Số CCCD\nNguyễn Văn A,079203012345\n", encoding="utf-8")
        os.chmod(d / "ds.csv", mode)
        os.chmod(d, 0o755 if mode == 0o644 else 0o700)
        shares[name] = {"path": str(d), "guest ok": "yes", "read only": "yes"}
    try:
        with samba(tmp / "srv", shares, "map to guest = Bad User") as s:
            subprocess.run(
                ["sharesec", f"--configfile={tmp / 'srv' / 'smb.conf'}", "locked",
                 f"--replace={RESTRICTED_ACL}"],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
            yield s
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def cred(monkeypatch: pytest.MonkeyPatch) -> CredentialRef:
    monkeypatch.setenv(CRED_ENV, f"{SMB_USER}:{SMB_PASSWORD}")
    return CredentialRef(env=CRED_ENV)


def _check(reg: Registry, store: Store, facts: StoreDocuments, **params: object) -> list[Result]:
    check = reg.checks["data.store.share_acl"]
    view = FactsView(target_of(store), {"store.documents": facts})
    if not params:
        return evaluate(check, view)
    out = check.evaluate(view, check.Params(**params))
    return [out] if isinstance(out, Result) else list(out)


def test_share_acl_and_file_dacl_open_to_everyone_fails(
    registry: Registry, server: Samba, cred: CredentialRef
) -> None:
    store = Store(id="open", kind="smb", location=server.url("open"), credential=cred)
    _, facts = scan(store, server.address)
    notes = facts.exposure.notes
    assert "share ACL: Everyone:R" in notes, notes
    assert any(n.startswith("effective access: open: the share ACL") for n in notes), notes
    assert facts.exposure.public_acl == ["share root: Everyone read"]
    [r] = _check(registry, store, facts)
    assert r.status is Status.FAIL and r.severity is Severity.CRITICAL  # holds a CCCD list
    assert "Everyone" in r.message and r.evidence["share_acl"] == "Everyone:R"


def test_share_acl_restricted_by_sharesec_passes(
    registry: Registry, server: Samba, cred: CredentialRef
) -> None:
    store = Store(id="locked", kind="smb", location=server.url("locked"), credential=cred)
    _, facts = scan(store, server.address)
    notes = facts.exposure.notes
    assert "share ACL: restricted" in notes, notes
    restricts = "effective access: the share ACL restricts (the root's file DACL grants Everyone:R)"
    assert restricts in notes
    assert facts.exposure.public_acl == []  # the DACL's Everyone is not reachable through it
    [r] = _check(registry, store, facts)
    assert r.status is Status.PASS, r.message
    assert "the share ACL restricts" in r.message


def test_open_share_acl_behind_closed_files_names_the_file_dacl(
    registry: Registry, server: Samba, cred: CredentialRef
) -> None:
    store = Store(id="filesonly", kind="smb", location=server.url("filesonly"), credential=cred)
    _, facts = scan(store, server.address)
    assert "effective access: the file DACL restricts (the share ACL grants Everyone:R)" in (
        facts.exposure.notes
    )
    [r] = _check(registry, store, facts)
    assert r.status is Status.FAIL and r.severity is Severity.LOW
    [r] = _check(registry, store, facts, fail_when_files_restrict=False)
    assert r.status is Status.PASS


# -- refused and hostile srvsvc answers (scripted: Samba answers level 502 to anyone) ------------
def _denied_stub() -> bytes:
    return struct.pack("<III", 502, 0, 5)  # level, NULL info, ERROR_ACCESS_DENIED


@pytest.mark.parametrize(
    ("stub", "raw", "why"),
    [
        (_denied_stub(), None, "share ACL not readable: ERROR_ACCESS_DENIED (0x5)"),
        (
            struct.pack("<II", 502, 0x20000) + b"\x00" * 30,
            None,
            "share ACL not readable: malformed srvsvc answer (NDR answer ends inside a number)",
        ),
        (None, b"\x05\x00\x02\x03\x10\x00\x00\x00\xff\xff", "share ACL not readable: malformed"),
        (None, b"", "share ACL not readable: the server stopped answering while asking srvsvc"),
    ],
    ids=["access-denied", "truncated-ndr", "broken-pdu", "silent-pipe"],
)
def test_refused_or_malformed_srvsvc_answer_is_a_reason_and_costs_nothing_else(
    registry: Registry, server: Samba, stub: bytes | None, raw: bytes | None, why: str
) -> None:
    with rewriting_relay(server, lambda d: replace_rpc_response(d, stub, raw)) as (addr, port):
        store = Store(id="open", kind="smb", location=f"smb://{addr}:{port}/open")
        _, facts = scan(store, addr)
    notes = facts.exposure.notes
    assert any(n.startswith(why) for n in notes), notes
    assert not any(n.startswith("share ACL: ") for n in notes)
    assert facts.files_total == 1 and facts.files_scanned == 1 and facts.complete
    assert facts.documents[0].counts  # the CCCD was still found
    assert facts.exposure.anonymous_read is True
    # unknown share ACL: the root DACL's Everyone still counts as public, never "restricted"
    assert facts.exposure.public_acl == ["share root: Everyone read"]
    [r] = _check(registry, store, facts)
    assert r.status is Status.NOT_ASSESSED and why.split(" (")[0] in r.message


# -- the pure encoders and parsers ----------------------------------------------------------------
def _info_502(sd: bytes, status: int = 0) -> bytes:
    """A NetrShareGetInfo level-502 answer as a server would encode it."""

    def s(text: str) -> bytes:
        return dcerpc._ndr_string(text)

    out = struct.pack("<II", 502, 0x20000)
    out += struct.pack("<10I", 0x20004, 0, 0x20008, 0, 0xFFFFFFFF, 1, 0x2000C, 0, len(sd), 0x20010)
    out += s("docs") + s("") + s("C:\\srv\\docs")
    out += struct.pack("<I", len(sd)) + sd
    out += b"\0" * (-len(out) % 4)
    return out + struct.pack("<I", status)


def _everyone_sd(mask: int = 0x001200A9) -> bytes:
    head = bytearray(20)
    head[0] = 1
    struct.pack_into("<HI", head, 2, 0x8004, 0)
    struct.pack_into("<I", head, 16, 20)
    ace = struct.pack("<BBHI", 0, 0, 20, mask) + bytes([1, 1, 0, 0, 0, 0, 0, 1]) + b"\0" * 4
    return bytes(head) + struct.pack("<BBHHH", 2, 0, 8 + len(ace), 1, 0) + ace


def test_bind_and_request_pdus_follow_the_wire_format() -> None:
    bind = dcerpc.bind_pdu(call_id=1)
    assert bind[:4] == b"\x05\x00\x0b\x03" and bind[4:8] == b"\x10\x00\x00\x00"
    assert struct.unpack_from("<H", bind, 8)[0] == len(bind) == 72
    assert bind[32:48] == dcerpc.SRVSVC.bytes_le and bind[48:52] == b"\x03\x00\x00\x00"
    assert bind[52:68] == dcerpc.NDR.bytes_le
    stub = dcerpc.share_get_info_stub("docs")
    # NULL server name, then the conformant varying "docs\0" (5 units), then level 502
    assert stub == struct.pack("<IIII", 0, 5, 0, 5) + "docs\0".encode("utf-16-le") + b"\0\0" + (
        struct.pack("<I", 502)
    )
    req = dcerpc.request_pdu(16, stub)
    assert req[2] == 0 and struct.unpack_from("<IHH", req, 16) == (len(stub), 0, 16)


def test_share_info_502_round_trip_and_refusals() -> None:
    info = dcerpc.parse_share_info_502(_info_502(_everyone_sd()))
    assert (info.netname, info.path) == ("docs", "C:\\srv\\docs")
    assert read_grants(info.security_descriptor).anyone == ("Everyone",)
    with pytest.raises(dcerpc.RpcRefused, match="ERROR_ACCESS_DENIED"):
        dcerpc.parse_share_info_502(_denied_stub())
    with pytest.raises(dcerpc.RpcRefused, match="NERR_NetNameNotFound"):
        dcerpc.parse_share_info_502(_info_502(_everyone_sd(), status=2310))
    fault = (
        struct.pack("<BBBB4sHHI", 5, 0, 3, 3, b"\x10\0\0\0", 32, 0, 2)
        + struct.pack("<IHBBI", 0, 0, 0, 0, 5)
        + b"\0" * 4
    )
    with pytest.raises(dcerpc.RpcRefused, match="fault ERROR_ACCESS_DENIED"):
        dcerpc.response_stub([fault])
    nak = struct.pack("<BBBB4sHHI", 5, 0, 13, 3, b"\x10\0\0\0", 18, 0, 1) + b"\x02\x00"
    with pytest.raises(dcerpc.RpcRefused, match="bind refused"):
        dcerpc.check_bind_ack(nak)


def test_fragmented_response_is_reassembled_and_bounded() -> None:
    stub = _info_502(_everyone_sd())

    def frag(part: bytes, flags: int) -> bytes:
        head = struct.pack("<BBBB4sHHI", 5, 0, 2, flags, b"\x10\0\0\0", 24 + len(part), 0, 2)
        return head + struct.pack("<IHBB", len(stub), 0, 0, 0) + part

    parts = [frag(stub[:40], 0x01), frag(stub[40:80], 0x00), frag(stub[80:], 0x02)]
    assert dcerpc.response_stub(parts) == stub
    with pytest.raises(ValueError, match="without its last fragment"):
        dcerpc.response_stub(parts[:2])
    with pytest.raises(ValueError, match="call 2, expected 3"):
        dcerpc.response_stub(parts, call_id=3)
    big = [frag(b"\0" * 4000, 0x01)] + [frag(b"\0" * 4000, 0x00)] * 70
    with pytest.raises(ValueError, match="larger than"):
        dcerpc.response_stub(big)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.integers(0, 399), st.binary(min_size=1, max_size=8))
def test_fuzzed_answers_raise_only_clear_errors(junk: bytes, cut: int, patch: bytes) -> None:
    """Random bytes, truncations and overwrites of a valid answer: a parsed answer, a
    ValueError or RpcRefused; never another exception, never a hang."""
    good = _info_502(_everyone_sd())
    mutated = bytearray(good)
    at = cut % len(good)
    mutated[at : at + len(patch)] = patch
    for data in (junk, good[:cut], bytes(mutated)):
        try:
            info = dcerpc.parse_share_info_502(data)
            read_grants(info.security_descriptor) if info.security_descriptor else None
        except (ValueError, dcerpc.RpcRefused):
            pass
        for fn in (dcerpc.check_bind_ack, lambda d: dcerpc.response_stub([d])):
            with contextlib.suppress(ValueError, dcerpc.RpcRefused):
                fn(data)
