"""Incremental rescans of a real local tree: an unchanged file costs a stat and no validation of
its own, a chmod is seen although size and mtime stay, a touched file is hashed but not
extracted, and a damaged, edited or old cache file costs time (a full scan), never a finding."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from scanner.collectors.store import DocumentFacts, StoreDocuments
from scanner.inventory import Store
from scanner.model import Status
from scanner.plugins import load_registry
from scanner.stores.cache import ScanCache
from tests.test_stores import results, scan, weak_tree


def _strip(docs: list[DocumentFacts]) -> list[dict[str, object]]:
    return [d.model_dump(exclude={"from_cache"}) for d in docs]


def _cache_file(cache_dir: Path) -> Path:
    (f,) = cache_dir.glob("*.json")
    return f


def _scan(root: Path, cache_dir: Path) -> StoreDocuments:
    store = Store(id="r", kind="local", location=str(root), networked=True)
    return scan(store, cache=True, cache_dir=str(cache_dir))[1]


def test_unchanged_rescan_reads_nothing_and_leaves_the_cache_file_alone(tmp_path: Path) -> None:
    root, cache = weak_tree(tmp_path / "w"), tmp_path / "cache"
    first = _scan(root, cache)
    stamp = _cache_file(cache).stat().st_mtime_ns
    second = _scan(root, cache)
    assert second.files_scanned == 0 and second.bytes_read == 0
    assert second.files_from_cache == second.files_total == first.files_total
    assert all(d.from_cache for d in second.documents)
    assert _strip(second.documents) == _strip(first.documents)
    assert second.score == first.score
    assert _cache_file(cache).stat().st_mtime_ns == stamp  # not rewritten
    # only documents worth reporting carry cached facts; clean files keep only their key
    entries = json.loads(_cache_file(cache).read_text())["entries"]
    assert len(entries) == first.files_total
    assert {p for p, e in entries.items() if e[4]} == {d.path for d in first.documents}


def test_chmod_keeps_mtime_but_the_rescan_sees_who_can_read(tmp_path: Path) -> None:
    root, cache = tmp_path / "s", tmp_path / "cache"
    root.mkdir()
    doc = root / "bao-cao.txt"
    doc.write_text("TỐI MẬT\nBáo cáo\n", encoding="utf-8")
    os.chmod(doc, 0o600)
    first = _scan(root, cache)
    (before,) = first.documents
    st = doc.stat()
    os.chmod(doc, 0o644)
    os.utime(doc, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = _scan(root, cache)
    (after,) = second.documents
    assert second.files_scanned == 0 and after.from_cache
    assert (before.world_readable, before.mode) == (False, "0600")
    assert (after.world_readable, after.mode) == (True, "0644")
    assert after.risk > before.risk
    reg = load_registry()
    target = scan(Store(id="r", kind="local", location=str(root)), cache=False)[0]
    got = {r.status for r in results(reg, target, second, "data.store.world_readable")}
    assert got == {Status.FAIL}


def test_touched_file_is_hashed_not_extracted(tmp_path: Path) -> None:
    root, cache = weak_tree(tmp_path / "w"), tmp_path / "cache"
    first = _scan(root, cache)
    p = root / "thanh-toan.csv"
    os.utime(p, (p.stat().st_atime + 50, p.stat().st_mtime + 50))
    clean = root / "cong-van" / "Bao_cao_MAT.txt"  # reported by its name only
    os.utime(clean, (clean.stat().st_atime + 50, clean.stat().st_mtime + 50))
    second = _scan(root, cache)
    assert second.files_scanned == 2  # read and hashed, then taken from the cache
    assert second.files_from_cache == second.files_total - 2
    assert _strip(second.documents) == _strip(first.documents)
    assert next(d for d in second.documents if d.path == "thanh-toan.csv").from_cache
    third = _scan(root, cache)
    assert third.files_scanned == 0  # the new mtime was remembered


def _rewrite(f: Path, raw: dict[str, object], *, seal: bool) -> None:
    """Write the cache file in Assay's layout; seal=True recomputes its digest as Assay would
    (a bug, or someone who knows the format), seal=False leaves the old one (damage, an edit)."""
    head, _, _ = f.read_bytes().partition(b'","entries":')
    body = json.dumps(raw["entries"], separators=(",", ":")).encode()
    if seal:
        head = head[:-64] + hashlib.sha256(body).hexdigest().encode()
    f.write_bytes(head + b'","entries":' + body + b"}")


def test_damaged_or_edited_cache_means_a_full_scan(tmp_path: Path) -> None:
    root, cache = weak_tree(tmp_path / "w"), tmp_path / "cache"
    first = _scan(root, cache)
    f = _cache_file(cache)
    raw = json.loads(f.read_text())
    entries = raw["entries"]
    # an edit that still validates: the marked document's facts say nothing to report
    (marked,) = [d.path for d in first.documents if d.sensitivity >= 90][:1]
    entries[marked][4] = None
    _rewrite(f, raw, seal=False)
    second = _scan(root, cache)
    assert second.files_scanned == first.files_total and second.files_from_cache == 0
    assert _strip(second.documents) == _strip(first.documents)
    third = _scan(root, cache)  # rewritten whole
    assert third.files_scanned == 0 and _strip(third.documents) == _strip(first.documents)
    # one flipped byte anywhere in the entries
    data = bytearray(f.read_bytes())
    at = data.index(b'"mode":"06') + 8
    data[at] = ord("7")
    f.write_bytes(bytes(data))
    fourth = _scan(root, cache)
    assert fourth.files_scanned == first.files_total
    assert _strip(fourth.documents) == _strip(first.documents)


def test_entries_that_verify_but_do_not_rebuild_are_scanned_again(tmp_path: Path) -> None:
    root, cache = weak_tree(tmp_path / "w"), tmp_path / "cache"
    first = _scan(root, cache)
    f = _cache_file(cache)
    raw = json.loads(f.read_text())
    entries = raw["entries"]
    entries["thanh-toan.csv"][4] = {"path": "thanh-toan.csv", "kind": 3}  # fields missing
    entries["app.env"][4] = entries["partner.pdf"][4]  # facts of another file
    bad = dict(entries["partner.pdf"][4])
    bad["findings"] = [dict(bad["findings"][0], category="nonsense")]
    entries["partner.pdf"][4] = bad
    entries["ds-cong-dan.xlsx"] = "not a list"
    _rewrite(f, raw, seal=True)
    second = _scan(root, cache)
    assert second.files_scanned == 4
    assert second.files_from_cache == second.files_total - 4
    assert _strip(second.documents) == _strip(first.documents)
    third = _scan(root, cache)  # repaired
    assert third.files_scanned == 0 and _strip(third.documents) == _strip(first.documents)


def test_unreadable_or_old_cache_file_means_a_full_scan(tmp_path: Path) -> None:
    root, cache = weak_tree(tmp_path / "w"), tmp_path / "cache"
    first = _scan(root, cache)
    f = _cache_file(cache)
    raw = json.loads(f.read_text())
    f.write_text(json.dumps(raw | {"format": 1}))
    again = _scan(root, cache)
    assert again.files_scanned == first.files_total
    f.write_bytes(b"\xff{truncated")
    again = _scan(root, cache)
    assert again.files_scanned == first.files_total
    assert _strip(again.documents) == _strip(first.documents)


def test_deleted_and_new_files(tmp_path: Path) -> None:
    root, cache = weak_tree(tmp_path / "w"), tmp_path / "cache"
    first = _scan(root, cache)
    (root / "app.env").unlink()
    (root / "moi.txt").write_text("SĐT 0912345678\n", encoding="utf-8")
    second = _scan(root, cache)
    assert second.files_scanned == 1 and second.files_total == first.files_total
    paths = {d.path for d in second.documents}
    assert "app.env" not in paths and "moi.txt" in paths
    entries = json.loads(_cache_file(cache).read_text())["entries"]
    assert "app.env" not in entries and "moi.txt" in entries


def test_cache_without_a_directory_keeps_nothing(tmp_path: Path) -> None:
    c = ScanCache(None, "local:/x", "d")
    c.put("a", 1, 1.0, "", "s", "")
    c.save()
    assert c.unchanged("a", 1, 1.0, "") is None and list(tmp_path.iterdir()) == []
