"""The fast path of an unchanged rescan: cached facts are rebuilt without validation, so these
tests pin that the rebuilt facts are the validated ones (values, types, set fields), that every
field the models gain is one the rebuild knows, that a real `chmod o+r` (size and mtime kept,
ctime changed) is reported on a rescan that reads nothing, and that the cheaper local listing
still never leaves the store, honours the depth limit and skips what is not a regular file."""

from __future__ import annotations

import os
import stat
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest

from scanner.collectors.store import DocumentFacts, SkipInfo, _rebuild
from scanner.detect.findings import Finding
from scanner.extract.base import SkipReason
from scanner.inventory import Store
from scanner.model import Status
from scanner.plugins import load_registry
from scanner.stores.base import Entry
from scanner.stores.cache import ScanCache
from scanner.stores.local import LocalStore
from tests.test_stores import results, scan, weak_tree


def _rich(root: Path) -> DocumentFacts:
    """A document with every kind of value the facts can hold."""
    _, facts = scan(Store(id="w", kind="local", location=str(weak_tree(root))))
    by_path = {d.path: d for d in facts.documents}
    doc = by_path["ds-cong-dan.xlsx"].model_copy(
        update={
            "skipped": [SkipInfo(where="sheet 2", reason=SkipReason.CORRUPT, detail="bad cell")],
            "notes": ["listed as 10 bytes, delivered 12"],
            "from_cache": True,
        }
    )
    assert len(doc.findings) >= 2 and doc.counts
    return doc


def test_rebuilt_facts_are_the_validated_facts(tmp_path: Path) -> None:
    doc = _rich(tmp_path / "w")
    stored = doc.model_dump(mode="json")
    entry = Entry(doc.path, doc.size, 1.0, "", doc.world_readable, doc.mode)
    rebuilt = _rebuild(stored, entry)
    validated = DocumentFacts.model_validate(stored)
    assert rebuilt is not None
    assert rebuilt == validated == doc
    assert rebuilt.model_dump_json() == validated.model_dump_json()
    assert rebuilt.model_fields_set == validated.model_fields_set
    for got, want in zip(rebuilt.findings, validated.findings, strict=True):
        assert type(got) is Finding and got.model_fields_set == want.model_fields_set
        assert type(got.category) is type(want.category) and type(got.legal) is tuple
        assert hash(got) == hash(want)
    assert type(rebuilt.skipped[0].reason) is SkipReason
    # the cache's own dicts stay JSON, ready to be written again
    assert stored == doc.model_dump(mode="json")
    # who may read it comes from today's listing
    now = _rebuild(stored, entry._replace(mode="0604", world_readable=True))
    assert now is not None and (now.mode, now.world_readable) == ("0604", True)


def test_rebuild_refuses_what_assay_does_not_write(tmp_path: Path) -> None:
    doc = _rich(tmp_path / "w")
    entry = Entry(doc.path, doc.size)
    good = doc.model_dump(mode="json")
    assert _rebuild(good, entry._replace(path="other.xlsx")) is None
    assert _rebuild(good | {"extra": 1}, entry) is None
    assert _rebuild({k: v for k, v in good.items() if k != "pages"}, entry) is None
    assert _rebuild(good | {"findings": [{"rule": "x"}]}, entry) is None
    assert _rebuild(good | {"skipped": [{"where": "", "reason": "?", "detail": ""}]}, entry) is None
    assert _rebuild(good | {"findings": "not a list"}, entry) is None


_NATIVE = {str, int, float, bool, type(None)}
_HANDLED = {
    DocumentFacts: {"findings", "skipped", "counts", "notes"},
    Finding: {"category", "sensitivity", "legal"},
    SkipInfo: {"reason"},
}


def _native(annotation: Any) -> bool:
    if get_origin(annotation) in (Union, types.UnionType):
        return all(_native(a) for a in get_args(annotation))
    return annotation in _NATIVE


@pytest.mark.parametrize("model", list(_HANDLED), ids=lambda m: m.__name__)
def test_every_field_is_json_native_or_rebuilt(model: Any) -> None:
    """A new field whose value JSON cannot carry as it is (an enum, a tuple, a model) must be
    taught to the rebuild; until then this fails."""
    for name, field in model.model_fields.items():
        assert name in _HANDLED[model] or _native(field.annotation), (model.__name__, name)


def test_real_chmod_o_plus_r_is_seen_on_a_rescan_that_reads_nothing(tmp_path: Path) -> None:
    root, cache = tmp_path / "s", tmp_path / "cache"
    root.mkdir()
    doc = root / "bao-cao.txt"
    doc.write_text("TỐI MẬT\nBáo cáo\n", encoding="utf-8")
    os.chmod(doc, 0o640)
    os.chmod(root, 0o750)  # the folder itself is not open to others
    store = Store(id="r", kind="local", location=str(root), networked=True)
    target, first = scan(store, cache=True, cache_dir=str(cache))
    before = doc.stat()
    os.chmod(doc, before.st_mode | stat.S_IROTH)  # chmod o+r
    after = doc.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert after.st_ctime_ns >= before.st_ctime_ns
    _, second = scan(store, cache=True, cache_dir=str(cache))
    assert second.files_scanned == 0 and second.files_from_cache == 1
    (was,), (now,) = first.documents, second.documents
    assert (was.world_readable, was.mode) == (False, "0640")
    assert (now.world_readable, now.mode, now.from_cache) == (True, "0644", True)
    assert now.risk > was.risk and second.score is not None and second.score.risk == now.risk
    reg = load_registry()
    assert {r.status for r in results(reg, target, first, "data.store.world_readable")} == {
        Status.PASS
    }
    assert {r.status for r in results(reg, target, second, "data.store.world_readable")} == {
        Status.FAIL
    }


def test_listing_stays_inside_and_honours_depth(tmp_path: Path) -> None:
    root = tmp_path / "s"
    (root / "a" / "b").mkdir(parents=True)
    (root / "top.txt").write_text("x")
    (root / "a" / "mid.txt").write_text("xy")
    (root / "a" / "b" / "deep.txt").write_text("xyz")
    os.chmod(root / "a" / "mid.txt", 0o602)
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    (root / "link.txt").symlink_to(outside)
    (root / "a" / "dirlink").symlink_to(tmp_path)
    os.mkfifo(root / "pipe")
    got = list(LocalStore(str(root)).walk(100, 32))
    want = [("top.txt", 1), ("a/mid.txt", 2), ("a/b/deep.txt", 3)]  # a folder's files first
    assert [(e.path, e.size) for e in got] == want
    mid = got[1]
    assert (mid.mode, mid.world_readable, mid.etag) == ("0602", False, "")
    assert isinstance(mid.mtime, float) and mid.mtime == (root / "a" / "mid.txt").stat().st_mtime
    store = LocalStore(str(root))
    assert [e.path for e in store.walk(100, 1)] == ["top.txt", "a/mid.txt"]
    assert store.exposure().world_writable == ["a/mid.txt"]


def test_cache_file_that_cannot_be_written_costs_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    c = ScanCache(blocker / "sub", "local:/x", "d")
    c.put("a", 1, 1.0, "", "s", None)
    c.save()  # no exception: the next scan is a full one, nothing else is lost
    assert blocker.read_text() == "not a directory"


def test_without_orjson_the_json_module_reads_and_writes_the_same_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scanner.stores import cache as cache_mod

    root, cache = weak_tree(tmp_path / "w"), tmp_path / "cache"
    store = Store(id="r", kind="local", location=str(root))
    _, first = scan(store, cache=True, cache_dir=str(cache))  # written with orjson if present
    monkeypatch.setattr(cache_mod, "orjson", None)
    _, second = scan(store, cache=True, cache_dir=str(cache))
    assert second.files_scanned == 0
    (root / "moi.txt").write_text("SĐT 0912345678\n", encoding="utf-8")
    _, third = scan(store, cache=True, cache_dir=str(cache))  # rewritten by the json module
    assert third.files_scanned == 1
    monkeypatch.undo()
    _, fourth = scan(store, cache=True, cache_dir=str(cache))
    assert fourth.files_scanned == 0 and len(fourth.documents) == len(first.documents) + 1
    assert {d.path for d in fourth.documents} == {d.path for d in third.documents}
