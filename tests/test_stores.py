"""Document stores end to end: a real local tree, a real WebDAV server (WsgiDAV), an S3 server
(moto), hostile WebDAV faults, incremental rescans and the allow-list; every data.* check is
shown to FAIL on a weak store and PASS on a good one."""

from __future__ import annotations

import asyncio
import os
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from scanner.collectors.store import StoreDocuments, StoreDocumentsCollector, StoreScanOptions
from scanner.inventory import CredentialRef, Store
from scanner.model import Result, Severity, Status, Target, TargetKind
from scanner.plugins import CollectContext, FactsView, Registry, load_registry
from tests import docs_fixtures as fx
from tests.helpers import evaluate, guard_for
from tests.servers_docstores import hostile_webdav, moto_s3, wsgidav

DATA_CHECKS = (
    "data.marking.state_secret", "data.marking.foreign", "data.pii.exposed", "data.pii.sensitive",
    "data.secrets.exposed", "data.store.anonymous", "data.store.world_readable",
    "data.store.cleartext", "data.store.not_scanned",
)  # fmt: skip


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg = load_registry()
    assert set(DATA_CHECKS) <= set(reg.checks), reg.broken
    return reg


def scan(store: Store, *addresses: str, **opts: object) -> tuple[Target, StoreDocuments]:
    target = Target(
        kind=TargetKind.STORE, unit="u", path=f"{store.kind}:{store.location}", names=(store.id,)
    )
    options = StoreScanOptions(**({"cache": False} | opts))  # type: ignore[arg-type]
    col = StoreDocumentsCollector({store.id: store}, options)
    ctx = CollectContext(scope=guard_for(*(addresses or ("127.0.0.1",))), probe_timeout=2.0)
    facts = asyncio.run(asyncio.wait_for(col.collect(target, ctx), 60))
    assert isinstance(facts, StoreDocuments)
    return target, facts


def results(
    reg: Registry, target: Target, facts: StoreDocuments, check: str, **params: object
) -> list[Result]:
    c = reg.checks[check]
    view = FactsView(target, {"store.documents": facts})
    return list(c.evaluate(view, c.Params(**params))) if params else evaluate(c, view)


def statuses(reg: Registry, target: Target, facts: StoreDocuments) -> dict[str, set[Status]]:
    return {c: {r.status for r in results(reg, target, facts, c)} for c in DATA_CHECKS}


def weak_tree(root: Path) -> Path:
    (root / "cong-van").mkdir(parents=True)
    (root / "cong-van" / "ke_hoach.docx").write_bytes(
        fx.docx(["Kế hoạch công tác"], header="TỐI MẬT")
    )
    (root / "cong-van" / "Bao_cao_MAT.txt").write_text("Báo cáo quý\n", encoding="utf-8")
    (root / "ds-cong-dan.xlsx").write_bytes(
        fx.xlsx([["Họ tên", "Số CCCD", "SĐT"], ["Nguyễn Văn A", "079203012345", "0912345678"]])
    )
    (root / "partner.pdf").write_bytes(fx.pdf(["VS-NUR FÜR DEN DIENSTGEBRAUCH\nProject"]))
    (root / "thanh-toan.csv").write_text("ten,the\nA,4111 1111 1111 1111\n", encoding="utf-8")
    (root / "app.env").write_text("DB_PASSWORD=Sup3r-Secret-9\n", encoding="utf-8")
    (root / "scan.pdf").write_bytes(fx.image_pdf())
    (root / "hop-dong.docx").write_bytes(fx.encrypted_docx())
    for p in root.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    os.chmod(root, 0o755)
    return root


def good_tree(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "thong-bao.docx").write_bytes(fx.docx(["Thông báo lịch họp", "Đổi mật khẩu định kỳ"]))
    (root / "mat-do.txt").write_text("Mật độ dân số; bí mật kinh doanh\n", encoding="utf-8")
    for p in [root, *root.rglob("*")]:
        os.chmod(p, 0o700 if p.is_dir() else 0o600)
    return root


# -- local tree --------------------------------------------------------------------------------
def test_weak_local_store_fails_every_content_check(registry: Registry, tmp_path: Path) -> None:
    store = Store(id="share", kind="local", location=str(weak_tree(tmp_path / "w")))
    target, facts = scan(store)
    st = statuses(registry, target, facts)
    for check in (
        "data.marking.state_secret",
        "data.marking.foreign",
        "data.pii.exposed",
        "data.pii.sensitive",
        "data.secrets.exposed",
        "data.store.world_readable",
        "data.store.not_scanned",
    ):
        assert Status.FAIL in st[check], (check, st[check])
    assert st["data.store.anonymous"] == {Status.NOT_APPLICABLE}
    secret = results(registry, target, facts, "data.marking.state_secret")
    by_detail = {r.detail: r for r in secret}
    assert {"cong-van/ke_hoach.docx", "cong-van/Bao_cao_MAT.txt"} <= set(by_detail)
    assert by_detail["cong-van/ke_hoach.docx"].severity is Severity.CRITICAL  # networked
    not_scanned = {r.detail for r in results(registry, target, facts, "data.store.not_scanned")}
    assert {"scan.pdf [not_scanned]", "hop-dong.docx [not_scanned]"} <= not_scanned
    # values never reach the facts: only masked samples
    blob = facts.model_dump_json()
    for raw in ("079203012345", "0912345678", "4111 1111 1111 1111", "Sup3r-Secret-9"):
        assert raw not in blob
    assert facts.score is not None and facts.score.risk == 76  # TỐI MẬT 95 x world-readable 0.8
    assert facts.score.top[0] == "cong-van/ke_hoach.docx"


def test_marking_on_a_store_that_is_not_networked_is_high(
    registry: Registry, tmp_path: Path
) -> None:
    store = Store(
        id="isolated", kind="local", location=str(weak_tree(tmp_path / "w")), networked=False
    )
    target, facts = scan(store)
    sev = {r.severity for r in results(registry, target, facts, "data.marking.state_secret")}
    assert sev == {Severity.HIGH}


def test_good_local_store_passes(registry: Registry, tmp_path: Path) -> None:
    store = Store(id="clean", kind="local", location=str(good_tree(tmp_path / "g")))
    target, facts = scan(store)
    st = statuses(registry, target, facts)
    for check in (
        "data.marking.state_secret",
        "data.marking.foreign",
        "data.pii.exposed",
        "data.pii.sensitive",
        "data.secrets.exposed",
        "data.store.world_readable",
        "data.store.not_scanned",
    ):
        assert st[check] == {Status.PASS}, (check, st[check])
    assert st["data.store.cleartext"] == {Status.NOT_APPLICABLE}


def test_missing_local_store_is_reported_not_clean(registry: Registry, tmp_path: Path) -> None:
    store = Store(id="gone", kind="local", location=str(tmp_path / "nope"))
    target, facts = scan(store)
    assert "nope" in facts.listing_error and not facts.complete
    assert Status.FAIL in {
        r.status for r in results(registry, target, facts, "data.store.not_scanned")
    }


def test_incremental_rescan_reads_only_changed_files(tmp_path: Path) -> None:
    root = weak_tree(tmp_path / "w")
    store = Store(id="inc", kind="local", location=str(root))
    cache = str(tmp_path / "cache")
    _, first = scan(store, cache=True, cache_dir=cache)
    assert first.files_scanned == first.files_total and first.files_from_cache == 0
    _, second = scan(store, cache=True, cache_dir=cache)
    assert second.files_scanned == 0 and second.files_from_cache == second.files_total
    assert [d.findings for d in second.documents] == [d.findings for d in first.documents]
    (root / "thanh-toan.csv").write_text("ten,the\nB,5555 5555 5555 4444\n", encoding="utf-8")
    _, third = scan(store, cache=True, cache_dir=cache)
    assert third.files_scanned == 1
    csv = next(d for d in third.documents if d.path == "thanh-toan.csv")
    assert csv.findings[0].masked.endswith("4444")


def test_allow_list_by_fingerprint_with_expiry(registry: Registry, tmp_path: Path) -> None:
    root = tmp_path / "a"
    root.mkdir()
    (root / "lien-he.txt").write_text("Hotline SĐT 0912345678\n", encoding="utf-8")
    store = Store(id="allow", kind="local", location=str(root))
    target, facts = scan(store)
    [r] = results(registry, target, facts, "data.pii.exposed")
    assert r.status is Status.FAIL
    fp = r.evidence["samples"][0]["fingerprint"]
    today = date.fromisoformat(facts.scanned_at[:10])
    entry = {"fingerprint": fp, "owner": "phong-hc", "reason": "public hotline"}
    ok = results(
        registry,
        target,
        facts,
        "data.pii.exposed",
        allow=[entry | {"expires": today + timedelta(days=30)}],
    )
    assert {x.status for x in ok} == {Status.PASS}
    old = results(
        registry,
        target,
        facts,
        "data.pii.exposed",
        allow=[entry | {"expires": today - timedelta(days=1)}],
    )
    assert old[0].status is Status.FAIL and old[0].evidence["expired_allow"]


def test_time_budget_names_what_was_not_reached(registry: Registry, tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for i in range(5):
        (root / f"f{i:02d}.txt").write_text("SĐT 0912345678\n", encoding="utf-8")
    store = Store(id="slow", kind="local", location=str(root))
    # a budget that ends before the first document: the walk stops and names what is left
    target, facts = scan(store, budget_seconds=1e-9)
    assert not facts.complete and "time budget" in facts.listing_error
    assert facts.unreached_count == facts.files_total >= 1
    assert facts.unreached == [f"f{i:02d}.txt" for i in range(facts.files_total)]
    r = results(registry, target, facts, "data.store.not_scanned")[0]
    assert r.status is Status.FAIL and r.evidence["unreached_count"] == facts.unreached_count


# -- WebDAV (WsgiDAV) --------------------------------------------------------------------------
def test_webdav_anonymous_cleartext_fails(registry: Registry, tmp_path: Path) -> None:
    root = weak_tree(tmp_path / "w")
    with wsgidav(root, users=None) as url:
        store = Store(id="dav", kind="webdav", location=url)
        target, facts = scan(store, urlsplit(url).hostname or "")
    st = statuses(registry, target, facts)
    assert facts.exposure.anonymous_read is True and facts.exposure.cleartext
    for check in (
        "data.store.anonymous",
        "data.store.cleartext",
        "data.marking.state_secret",
        "data.pii.exposed",
        "data.secrets.exposed",
        "data.store.not_scanned",
    ):
        assert Status.FAIL in st[check], (check, st[check])
    assert {d.path for d in facts.documents} >= {"cong-van/ke_hoach.docx", "app.env"}
    anon = results(registry, target, facts, "data.store.anonymous")[0]
    assert anon.severity is Severity.CRITICAL  # anonymous and holds sensitive documents


def test_webdav_with_authentication_passes(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = good_tree(tmp_path / "g")
    monkeypatch.setenv("ASSAY_TEST_DAV", "officer:Dav-pass-2026")
    with wsgidav(root, users={"officer": "Dav-pass-2026"}) as url:
        store = Store(
            id="dav", kind="webdav", location=url, credential=CredentialRef(env="ASSAY_TEST_DAV")
        )
        target, facts = scan(store, urlsplit(url).hostname or "")
    assert facts.exposure.anonymous_read is False and facts.files_total == 2
    st = statuses(registry, target, facts)
    assert st["data.store.anonymous"] == {Status.PASS}
    for check in (
        "data.marking.state_secret",
        "data.pii.exposed",
        "data.secrets.exposed",
        "data.store.not_scanned",
    ):
        assert st[check] == {Status.PASS}, (check, st[check])
    assert st["data.store.cleartext"] == {Status.FAIL}  # still http://


def test_webdav_wrong_password_is_a_clear_error(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = good_tree(tmp_path / "g")
    monkeypatch.setenv("ASSAY_TEST_DAV", "officer:wrong")
    with wsgidav(root, users={"officer": "right-one"}) as url:
        store = Store(
            id="dav", kind="webdav", location=url, credential=CredentialRef(env="ASSAY_TEST_DAV")
        )
        _, facts = scan(store, urlsplit(url).hostname or "")
    assert "refused (401)" in facts.listing_error and not facts.complete


def test_webdav_out_of_scope_is_refused(tmp_path: Path) -> None:
    from scanner.scope import OutOfScope

    with pytest.raises(OutOfScope):
        scan(Store(id="x", kind="webdav", location="http://127.9.9.9:1/dav/"), "127.8.8.8")


def test_hostile_webdav_stall_and_lying_sizes(registry: Registry) -> None:
    files = {
        "stall.txt": (100, b"SDT 0912345678 " * 20, True),
        "liar.txt": (10, b"Do mat: Toi mat\n" + b"x" * 5000, False),
        "ok.txt": (14, b"TOI MAT\nhello\n", False),
    }
    with hostile_webdav(files) as url:
        store = Store(id="bad", kind="webdav", location=url)
        target, facts = scan(store, urlsplit(url).hostname or "", limits={"max_file_bytes": 1000})
    docs = {d.path: d for d in facts.documents}
    assert docs["stall.txt"].skipped[0].reason.value == "unreadable"
    assert "stalled" in docs["stall.txt"].skipped[0].detail
    assert docs["liar.txt"].skipped[0].reason.value == "oversized"
    assert docs["ok.txt"].counts == {"marking.vn.toi_mat": 1}  # nothing else lost
    assert Status.FAIL in {
        r.status for r in results(registry, target, facts, "data.store.not_scanned")
    }


# -- S3 (moto server) --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3() -> object:
    import boto3

    with moto_s3() as endpoint:
        c = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="AKIDTESTING",
            aws_secret_access_key="testing-secret",
            region_name="us-east-1",
        )
        c.create_bucket(Bucket="public-docs")
        c.put_bucket_acl(Bucket="public-docs", ACL="public-read")
        c.put_object(
            Bucket="public-docs",
            Key="2025/ke-hoach.docx",
            Body=fx.docx(["Nội dung"], header="TUYỆT MẬT"),
        )
        c.put_object(Bucket="public-docs", Key="2025/ds.csv", Body=b"ho ten,CCCD\nA,079203012345\n")
        c.create_bucket(Bucket="private-docs")
        c.put_object(Bucket="private-docs", Key="thong-bao.txt", Body=b"Thong bao lich hop")
        yield endpoint


def test_s3_public_bucket_fails(
    registry: Registry, s3: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_TEST_S3", "AKIDTESTING:testing-secret")
    store = Store(
        id="b",
        kind="s3",
        location=f"{s3}/public-docs",
        credential=CredentialRef(env="ASSAY_TEST_S3"),
    )
    target, facts = scan(store, urlsplit(s3).hostname or "")
    assert facts.exposure.public_acl == ["AllUsers:READ"]
    st = statuses(registry, target, facts)
    for check in (
        "data.store.anonymous",
        "data.store.cleartext",
        "data.marking.state_secret",
        "data.pii.exposed",
    ):
        assert Status.FAIL in st[check], (check, st[check])
    top = results(registry, target, facts, "data.marking.state_secret")[0]
    assert top.detail == "2025/ke-hoach.docx" and top.evidence["level"] == "tuyet_mat"


def test_s3_private_bucket_content_passes(
    registry: Registry, s3: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_TEST_S3", "AKIDTESTING:testing-secret")
    store = Store(
        id="p",
        kind="s3",
        location=f"{s3}/private-docs",
        credential=CredentialRef(env="ASSAY_TEST_S3"),
    )
    target, facts = scan(store, urlsplit(s3).hostname or "")
    assert facts.exposure.public_acl == [] and facts.files_total == 1
    st = statuses(registry, target, facts)
    for check in ("data.marking.state_secret", "data.pii.exposed", "data.store.not_scanned"):
        assert st[check] == {Status.PASS}, (check, st[check])


def test_s3_missing_bucket_is_listed_as_an_error(s3: str) -> None:
    store = Store(id="m", kind="s3", location=f"{s3}/no-such-bucket")
    _, facts = scan(store, urlsplit(s3).hostname or "")
    assert "no-such-bucket" in facts.listing_error and not facts.complete
