"""SMB shares against a real Samba (smbd) started by the tests: a weak server (guest, SMB1,
no encryption, world-readable files with a TỐI MẬT document and a CCCD list) FAILS the data.*
checks, a good one (authenticated, signing and encryption required, private files, nothing
sensitive) PASSES; wrong password, a missing share and a server that stops answering are clear
errors naming the store while other stores are still scanned."""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.collectors.store import StoreDocuments, StoreDocumentsCollector, StoreScanOptions
from scanner.inventory import CredentialRef, Store
from scanner.model import Result, Severity, Status, Target, TargetKind
from scanner.plugins import CollectContext, FactsView, Registry, load_registry
from scanner.stores.base import StoreError
from scanner.stores.smb import parse_smb_url, read_grants
from tests import docs_fixtures as fx
from tests.helpers import evaluate, guard_for
from tests.servers_smb import SMB_PASSWORD, SMB_USER, Samba, samba, samba_unavailable

pytestmark = pytest.mark.skipif(bool(samba_unavailable()), reason=samba_unavailable() or "ok")

CRED_ENV = "ASSAY_TEST_SMB"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(scope="module")
def weak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Samba]:
    # the guest works as 'nobody', who cannot pass pytest's private 0700 temp root
    tmp = Path(tempfile.mkdtemp(prefix="assay-smb-weak-"))
    share = tmp / "share"
    (share / "cong-van").mkdir(parents=True)
    (share / "cong-van" / "ke_hoach.docx").write_bytes(
        fx.docx(["Kế hoạch công tác"], header="TỐI MẬT")
    )
    (share / "ds-cong-dan.csv").write_text(
        "Họ tên,Số CCCD\nNguyễn Văn A,079203012345\n", encoding="utf-8"
    )
    for p in [share, *share.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    os.chmod(tmp, 0o755)
    (share / "rieng").mkdir(mode=0o700)  # the guest may not list it
    (share / "rieng" / "luong.txt").write_text("Bảng lương\n", encoding="utf-8")
    closed = tmp / "closed"
    closed.mkdir(mode=0o700)  # guest may connect to the share but not list its root
    shares = {
        "public": {"path": str(share), "guest ok": "yes", "read only": "yes"},
        "closed": {"path": str(closed), "guest ok": "yes", "read only": "yes"},
    }
    glob = "map to guest = Bad User\nserver min protocol = NT1\nserver signing = auto"
    try:
        with samba(tmp / "srv", shares, glob) as s:
            yield s
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Samba]:
    tmp = tmp_path_factory.mktemp("smb-good")
    share = tmp / "share"
    share.mkdir()
    (share / "thong-bao.docx").write_bytes(fx.docx(["Thông báo lịch họp", "Đổi mật khẩu"]))
    (share / "mat-do.txt").write_text("Mật độ dân số\n", encoding="utf-8")
    for p in [share, *share.rglob("*")]:
        os.chmod(p, 0o700 if p.is_dir() else 0o600)
    shares = {"private": {"path": str(share), "valid users": SMB_USER, "read only": "yes"}}
    glob = (
        "map to guest = Never\nrestrict anonymous = 2\nserver smb encrypt = required\n"
        "server signing = mandatory"
    )
    with samba(tmp / "srv", shares, glob) as s:
        subprocess.run(  # the share's own ACL: root and Administrators only
            ["sharesec", f"--configfile={tmp / 'srv' / 'smb.conf'}", "private",
             "--replace=S-1-5-32-544:ALLOWED/0x0/FULL,S-1-22-1-0:ALLOWED/0x0/FULL"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        yield s


@pytest.fixture
def cred(monkeypatch: pytest.MonkeyPatch) -> CredentialRef:
    monkeypatch.setenv(CRED_ENV, f"{SMB_USER}:{SMB_PASSWORD}")
    return CredentialRef(env=CRED_ENV)


def target_of(store: Store) -> Target:
    return Target(
        kind=TargetKind.STORE, unit="u", path=f"{store.kind}:{store.location}", names=(store.id,)
    )


def scan(store: Store, address: str) -> tuple[Target, StoreDocuments]:
    col = StoreDocumentsCollector({store.id: store}, StoreScanOptions(cache=False))
    ctx = CollectContext(scope=guard_for(address), probe_timeout=2.0)
    facts = asyncio.run(asyncio.wait_for(col.collect(target_of(store), ctx), 60))
    assert isinstance(facts, StoreDocuments)
    return target_of(store), facts


def results(reg: Registry, target: Target, facts: StoreDocuments, check: str) -> list[Result]:
    return evaluate(reg.checks[check], FactsView(target, {"store.documents": facts}))


def statuses(reg: Registry, target: Target, facts: StoreDocuments, check: str) -> set[Status]:
    return {r.status for r in results(reg, target, facts, check)}


# -- the weak share ------------------------------------------------------------------------------
def test_weak_guest_share_fails_the_data_checks(registry: Registry, weak: Samba) -> None:
    store = Store(id="public", kind="smb", location=weak.url("public"))
    target, facts = scan(store, weak.address)
    exp = facts.exposure
    assert exp.anonymous_read is True and exp.transport == "smb" and exp.cleartext
    assert "SMB1 (NT LM 0.12) offered" in exp.notes
    assert any(n.startswith("signing not required") for n in exp.notes)
    assert exp.public_acl == ["share root: Everyone read"]
    assert exp.world_readable_dirs == ["/ (Everyone:R)", "/cong-van (Everyone:R)"]
    assert facts.files_total == 3 and facts.complete  # two files and the unlisted folder
    docs = {d.path: d for d in facts.documents}
    assert "could not be listed" in docs["rieng/"].skipped[0].detail
    assert docs["cong-van/ke_hoach.docx"].world_readable is True
    assert docs["cong-van/ke_hoach.docx"].mode == "Everyone:R"
    for check in (
        "data.marking.state_secret",
        "data.pii.exposed",
        "data.store.anonymous",
        "data.store.cleartext",
        "data.store.world_readable",
        "data.store.not_scanned",
    ):
        assert Status.FAIL in statuses(registry, target, facts, check), check
    # Samba gives a guest NetrShareGetInfo 502 without the descriptor: unknown, not clean
    assert (
        "share ACL not readable: the server returned no security descriptor for this "
        "account" in exp.notes
    )
    assert statuses(registry, target, facts, "data.store.share_acl") == {Status.NOT_ASSESSED}
    assert "rieng/ [not_scanned]" in {
        r.detail for r in results(registry, target, facts, "data.store.not_scanned")
    }
    secret = results(registry, target, facts, "data.marking.state_secret")
    assert [r.detail for r in secret] == ["cong-van/ke_hoach.docx"]
    assert secret[0].severity is Severity.CRITICAL
    anon = results(registry, target, facts, "data.store.anonymous")[0]
    assert anon.severity is Severity.CRITICAL  # guest-readable and holds marked documents
    assert "079203012345" not in facts.model_dump_json()  # masked only


def test_weak_share_with_credentials_still_reports_guest_access(
    registry: Registry, weak: Samba, cred: CredentialRef
) -> None:
    store = Store(id="public", kind="smb", location=weak.url("public"), credential=cred)
    target, facts = scan(store, weak.address)
    assert facts.exposure.anonymous_read is True
    assert "guest" in facts.exposure.anonymous_detail
    assert facts.exposure.cleartext  # accepted an unencrypted session
    assert statuses(registry, target, facts, "data.store.anonymous") == {Status.FAIL}
    assert "share ACL: Everyone:R" in facts.exposure.notes  # Samba's default: Everyone: Full
    assert statuses(registry, target, facts, "data.store.share_acl") == {Status.FAIL}


# -- the good share ------------------------------------------------------------------------------
def test_good_share_passes(registry: Registry, good: Samba, cred: CredentialRef) -> None:
    store = Store(id="private", kind="smb", location=good.url("private"), credential=cred)
    target, facts = scan(store, good.address)
    exp = facts.exposure
    assert exp.anonymous_read is False and "guest refused" in exp.anonymous_detail
    assert exp.transport == "smb-encrypted" and not exp.cleartext
    assert exp.public_acl == [] and exp.world_readable_dirs == []
    assert not any("SMB1" in n or "signing" in n for n in exp.notes), exp.notes
    assert facts.files_total == 2 and facts.files_scanned == 2 and facts.complete
    for check in (
        "data.marking.state_secret",
        "data.pii.exposed",
        "data.secrets.exposed",
        "data.store.anonymous",
        "data.store.cleartext",
        "data.store.not_scanned",
        "data.store.world_readable",  # judged on the share's access lists: none is open
        "data.store.share_acl",  # read over srvsvc on the encrypted session: restricted
    ):
        assert statuses(registry, target, facts, check) == {Status.PASS}, check
    assert "effective access: the share ACL and the file DACL both restrict" in exp.notes


def test_sub_folder_of_a_share_is_the_store_root(weak: Samba) -> None:
    store = Store(id="cv", kind="smb", location=weak.url("public") + "/cong-van")
    _, facts = scan(store, weak.address)
    assert facts.files_total == 1
    assert [d.path for d in facts.documents] == ["ke_hoach.docx"]


# -- bad input -------------------------------------------------------------------------------
def _error(store: Store, address: str) -> str:
    with pytest.raises(StoreError) as info:
        scan(store, address)
    return str(info.value)


def test_wrong_password_missing_share_and_guest_refused_are_clear_errors(
    good: Samba, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CRED_ENV, f"{SMB_USER}:not-the-password")
    bad = Store(
        id="wrongpw", kind="smb", location=good.url("private"),
        credential=CredentialRef(env=CRED_ENV),
    )  # fmt: skip
    msg = _error(bad, good.address)
    assert msg.startswith("store wrongpw: ") and "logon refused for user 'root'" in msg
    assert "not-the-password" not in msg
    monkeypatch.setenv(CRED_ENV, f"{SMB_USER}:{SMB_PASSWORD}")
    missing = Store(
        id="nosuch", kind="smb", location=good.url("no-such-share"),
        credential=CredentialRef(env=CRED_ENV),
    )  # fmt: skip
    msg = _error(missing, good.address)
    assert msg.startswith("store nosuch: ") and "share 'no-such-share' does not exist" in msg
    guest = Store(id="anon", kind="smb", location=good.url("private"))
    assert "logon refused for an unknown user (guest)" in _error(guest, good.address)


def test_server_that_stops_answering_is_an_error_and_other_stores_are_scanned(
    weak: Samba, good: Samba, cred: CredentialRef
) -> None:
    from tests.servers_smb import silent_after_negotiate

    with silent_after_negotiate(good) as (addr, port):
        stores = [
            Store(id="mute", kind="smb", location=f"smb://{addr}:{port}/private", credential=cred),
            Store(id="public", kind="smb", location=weak.url("public")),
        ]
        col = StoreDocumentsCollector({s.id: s for s in stores}, StoreScanOptions(cache=False))
        ctx = CollectContext(scope=guard_for(addr, weak.address), probe_timeout=1.0)

        async def both() -> list[object]:
            return list(
                await asyncio.gather(
                    *(asyncio.wait_for(col.collect(target_of(s), ctx), 30) for s in stores),
                    return_exceptions=True,
                )
            )

        mute, public = asyncio.run(both())
    assert isinstance(mute, StoreError), mute
    assert str(mute).startswith("store mute: ") and "stopped answering while logging on" in str(
        mute
    )
    assert isinstance(public, StoreDocuments) and public.files_total == 3


def test_out_of_scope_share_is_refused(weak: Samba) -> None:
    from scanner.scope import OutOfScope

    store = Store(id="public", kind="smb", location=weak.url("public"))
    col = StoreDocumentsCollector({store.id: store}, StoreScanOptions(cache=False))
    ctx = CollectContext(scope=guard_for("127.9.9.9"), probe_timeout=1.0)
    with pytest.raises(OutOfScope):
        asyncio.run(col.collect(target_of(store), ctx))


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("//10.0.0.1/share", "is not an smb://"),
        ("smb://u:pw@10.0.0.1/share", "must not embed a user or password"),
        ("smb://10.0.0.1/", "names no share"),
        ("smb://10.0.0.1/share/../etc", "'.' and '..'"),
        ("smb://10.0.0.1:70000/share", "invalid port"),
        ("smb://10.0.0.1/sh|are", "forbids"),
    ],
)
def test_inventory_rejects_bad_smb_locations(location: str, why: str) -> None:
    with pytest.raises(ValueError, match=why.replace(".", r"\.").replace("|", r"\|")):
        Store(id="s", kind="smb", location=location)
    assert parse_smb_url("smb://10.0.0.1:1445/docs/a%20b") == ("10.0.0.1", 1445, "docs", "a b")


def test_hostile_security_descriptors_raise_not_crash() -> None:
    good_sd = bytearray(20)
    good_sd[0] = 1
    struct.pack_into("<HI", good_sd, 2, 0x8004, 0)
    struct.pack_into("<I", good_sd, 16, 20)
    acl = struct.pack("<BBHHH", 2, 0, 8 + 20, 1, 0)
    ace = struct.pack("<BBHI", 0, 0, 20, 0x001200A9) + bytes([1, 1, 0, 0, 0, 0, 0, 1]) + b"\0" * 4
    sd = bytes(good_sd) + acl + ace
    assert read_grants(sd).anyone == ("Everyone",)
    for broken in (sd[:30], sd[:20] + acl[:4] + b"\xff\xff" + acl[6:] + ace, b"\x02" + sd[1:]):
        with pytest.raises(ValueError):
            read_grants(broken)
    no_dacl = bytearray(sd[:20])
    struct.pack_into("<H", no_dacl, 2, 0x8000)
    assert read_grants(bytes(no_dacl)).anyone == ("Everyone (no DACL)",)


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",  # not SMB at all
        struct.pack(">I", 80) + b"\xfeSMB" + b"\xff" * 76,  # an SMB2 header full of garbage
        struct.pack(">I", 0xFFFFFF) + b"\xfeSMB",  # announces 16 MiB, then closes
    ],
)
def test_hostile_or_foreign_server_is_a_clear_error(reply: bytes) -> None:
    from scanner.stores.smb import smb1_offered
    from tests.servers_smb import garbage_server

    with garbage_server(reply) as (addr, port):
        store = Store(id="odd", kind="smb", location=f"smb://{addr}:{port}/docs")
        col = StoreDocumentsCollector({store.id: store}, StoreScanOptions(cache=False))
        ctx = CollectContext(scope=guard_for(addr), probe_timeout=1.0)
        with pytest.raises(StoreError) as info:
            asyncio.run(asyncio.wait_for(col.collect(target_of(store), ctx), 30))
        assert smb1_offered(addr, port, 1.0) in (None, False)
    msg = str(info.value)
    assert msg.startswith(f"store odd: smb://{addr}:{port}/docs: "), msg
    assert "negotiate" in msg or "stopped answering" in msg, msg


def test_nothing_listening_is_a_clear_error() -> None:
    from tests.helpers import free_port, pick_loopback

    addr = pick_loopback()
    store = Store(id="gone", kind="smb", location=f"smb://{addr}:{free_port(addr)}/docs")
    col = StoreDocumentsCollector({store.id: store}, StoreScanOptions(cache=False))
    ctx = CollectContext(scope=guard_for(addr), probe_timeout=1.0)
    with pytest.raises(StoreError, match=r"^store gone: smb://.*: cannot connect"):
        asyncio.run(asyncio.wait_for(col.collect(target_of(store), ctx), 30))


def test_scan_pipeline_records_the_bad_share_as_error_and_scans_the_weak_one(
    weak: Samba, good: Samba, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the runner: a share with a wrong password is an `error` naming the store; the
    weak share beside it is still scanned and fails."""
    from scanner.inventory import parse_inventory
    from scanner.runner import Runner, ScanOptions
    from scanner.store import Store as ScanStore

    monkeypatch.setenv(CRED_ENV, f"{SMB_USER}:wrong-password")
    text = (
        "units:\n  - id: u1\n    name: One\n    hosts:\n"
        f'      - {{address: {weak.address}, ports: "{weak.port}"}}\n'
        f'      - {{address: {good.address}, ports: "{good.port}"}}\n'
        "    stores:\n"
        f"      - {{id: public, kind: smb, location: '{weak.url('public')}'}}\n"
        f"      - {{id: private, kind: smb, location: '{good.url('private')}',"
        f" credential: {{env: {CRED_ENV}}}}}\n"
    )
    db = ScanStore(f"sqlite:///{tmp_path / 'scan.db'}")
    runner = Runner(
        load_registry(),
        db,
        parse_inventory(text, "smb.yaml"),
        inventory_text=text,
        inventory_name="smb.yaml",
        options=ScanOptions(nmap_path="/nonexistent/nmap"),
    )
    summary = asyncio.run(runner.run())
    outcomes = db.outcomes(summary.scan_id)
    db.close()
    by_store: dict[str, dict[str, Status]] = {}
    messages: dict[str, str] = {}
    for o in outcomes:
        if o.target.kind is TargetKind.STORE and o.check_id.startswith("data."):
            name = o.target.names[0]
            by_store.setdefault(name, {})[o.check_id] = o.status
            messages[name] = o.message
    assert set(by_store["private"].values()) == {Status.ERROR}, by_store["private"]
    assert "logon refused for user 'root'" in messages["private"]
    assert "wrong-password" not in " ".join(o.message for o in outcomes)
    assert by_store["public"]["data.marking.state_secret"] is Status.FAIL


def test_share_whose_listing_is_denied_is_not_reported_clean(
    registry: Registry, weak: Samba
) -> None:
    store = Store(id="closed", kind="smb", location=weak.url("closed"))
    target, facts = scan(store, weak.address)  # the guest connects; listing '/' is refused
    assert facts.listing_error.endswith("/closed: /: access denied") and not facts.complete
    assert statuses(registry, target, facts, "data.store.not_scanned") == {Status.FAIL}


def test_server_that_stalls_mid_scan_keeps_what_was_gathered(
    registry: Registry, weak: Samba
) -> None:
    from tests.servers_smb import stalls_on_read

    with stalls_on_read(weak) as (addr, port):
        store = Store(id="stall", kind="smb", location=f"smb://{addr}:{port}/public")
        target, facts = scan(store, addr)
    assert facts.exposure.anonymous_read is True and facts.files_total == 3  # listed before
    docs = {d.path: d for d in facts.documents}
    # both files are read with their permissions in one round trip, which the server stalls
    first = docs["ds-cong-dan.csv"].skipped[0]
    assert first.reason.value == "unreadable" and "stopped answering while reading" in first.detail
    later = docs["cong-van/ke_hoach.docx"].skipped[0].detail
    assert "not tried, the server stopped answering while reading 2 files" in later
    assert all(d.skipped for d in facts.documents)  # nothing reported clean
    assert Status.FAIL in statuses(registry, target, facts, "data.store.not_scanned")
