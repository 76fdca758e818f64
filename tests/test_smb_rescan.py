"""SMB rescans and first-scan round trips against a real Samba.

* A file's permissions changed on the server without a content change (chmod of the file under
  the share) are noticed on the rescan. Samba reports ChangeTime = LastWriteTime, so there the
  DACL is asked again on every scan (the connector does not trust a ChangeTime that never
  differs from LastWriteTime).
* On a server that keeps a ChangeTime of its own (NTFS; here a relay in front of the real Samba
  reports each file's POSIX ctime, which a chmod moves, since Samba cannot be configured into
  that) an unchanged rescan asks no known file's DACL, and a chmod is still noticed.
* On any server an unchanged file in which nothing was found is not asked for its DACL.
* On the first scan a small file is opened once: CREATE + QUERY_INFO(security) + READ + CLOSE
  in one related compound.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.collectors.store import StoreDocuments, StoreDocumentsCollector, StoreScanOptions
from scanner.inventory import CredentialRef, Store
from scanner.model import Status
from scanner.plugins import CollectContext, FactsView, Registry, load_registry
from scanner.stores.smb import SmbStore
from tests.helpers import evaluate, guard_for
from tests.servers_smb import (
    SMB_PASSWORD,
    SMB_USER,
    Samba,
    messages,
    rewriting_relay,
    samba,
    samba_unavailable,
)
from tests.test_store_smb import target_of

pytestmark = pytest.mark.skipif(bool(samba_unavailable()), reason=samba_unavailable() or "ok")

CRED_ENV = "ASSAY_TEST_SMB_RESCAN"
CSV = "Họ tên,Số CCCD\nNguyễn Văn A,079203012345\n"
EPOCH_AS_FILETIME = 116444736000000000


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Samba, Path]]:
    tmp = Path(tempfile.mkdtemp(prefix="assay-smb-rescan-"))
    os.chmod(tmp, 0o755)
    share = tmp / "share"
    share.mkdir(mode=0o755)
    os.chmod(share, 0o755)
    shares = {"docs": {"path": str(share), "guest ok": "yes", "read only": "yes"}}
    try:
        with samba(tmp / "srv", shares, "map to guest = Bad User") as s:
            yield s, share
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fill(folder: Path, secret_mode: int, dir_mode: int = 0o755) -> None:
    """A fresh folder in the share: a CCCD list with `secret_mode`, another one 0644 and two
    plain notes."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    os.chmod(folder, dir_mode)
    (folder / "ds.csv").write_text(CSV, encoding="utf-8")
    os.chmod(folder / "ds.csv", secret_mode)
    (folder / "pub.csv").write_text(CSV, encoding="utf-8")
    os.chmod(folder / "pub.csv", 0o644)
    for i in range(2):
        (folder / f"note-{i}.txt").write_text(f"Thông báo {i}\n", encoding="utf-8")
        os.chmod(folder / f"note-{i}.txt", 0o644)
    for p in folder.iterdir():  # copied in with their times kept: ctime (now) > mtime
        os.utime(p, (1_700_000_000, 1_700_000_000))


def _scan(location: str, address: str, cache: Path, cred: CredentialRef | None) -> StoreDocuments:
    store = Store(id="docs", kind="smb", location=location, credential=cred)
    opts = StoreScanOptions(cache=True, cache_dir=str(cache))
    col = StoreDocumentsCollector({store.id: store}, opts)
    ctx = CollectContext(scope=guard_for(address), probe_timeout=2.0)
    facts = asyncio.run(asyncio.wait_for(col.collect(target_of(store), ctx), 60))
    assert isinstance(facts, StoreDocuments)
    return facts


def _world_readable(reg: Registry, location: str, facts: StoreDocuments) -> set[str]:
    """The documents data.store.world_readable fails."""
    store = Store(id="docs", kind="smb", location=location)
    view = FactsView(target_of(store), {"store.documents": facts})
    results = evaluate(reg.checks["data.store.world_readable"], view)
    return {r.detail for r in results if r.status is Status.FAIL}


def test_chmod_without_content_change_is_noticed_on_samba(
    registry: Registry, server: tuple[Samba, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    smb, share = server
    _fill(share / "samba", 0o644, dir_mode=0o700)  # only the files' grants are judged
    monkeypatch.setenv(CRED_ENV, f"{SMB_USER}:{SMB_PASSWORD}")
    cred = CredentialRef(env=CRED_ENV)
    url = smb.url("docs") + "/samba"
    first = _scan(url, smb.address, tmp_path, cred)
    [doc] = [d for d in first.documents if d.path == "ds.csv"]
    assert doc.world_readable is True and doc.mode == "Everyone:R" and doc.counts
    assert _world_readable(registry, url, first) == {"ds.csv", "pub.csv"}
    os.chmod(share / "samba" / "ds.csv", 0o600)  # the same bytes, the same mtime
    second = _scan(url, smb.address, tmp_path, cred)
    [doc] = [d for d in second.documents if d.path == "ds.csv"]
    assert doc.world_readable is False and doc.mode == "", doc
    assert doc.counts  # the finding is kept, from the cache (same bytes)
    assert second.files_scanned <= 1  # only the file whose grants changed is read again
    [pub] = [d for d in second.documents if d.path == "pub.csv"]
    assert pub.world_readable is True  # asked again (it has findings), still open
    assert _world_readable(registry, url, second) == {"pub.csv"}
    # Samba's ChangeTime mirrors LastWriteTime: the connector does not reuse cached grants
    with SmbStore(url, smb.address, (SMB_USER, SMB_PASSWORD), timeout=2.0) as conn:
        assert isinstance(conn, SmbStore)
        etags = {e.path: e.etag for e in conn.walk(100, 4)}
        docs = {"ds.csv": {"path": "ds.csv"}, "pub.csv": {"path": "pub.csv"}}  # with findings
        conn.previous({p: [0, 0.0, etag, "", docs.get(p)] for p, etag in etags.items()})
        again = {e.path: e.etag for e in conn.walk(100, 4)}
        assert conn.grants_reused == 0  # no file with findings keeps last scan's grants
        assert conn.clean_unasked == 2 and again == etags  # the notes: not asked, same ETag


class _WindowsTimes:
    """Rewrites each listed file's ChangeTime to its POSIX ctime on disk (which a chmod or an
    ACL change moves, as NTFS's ChangeTime does), and counts what the client asks."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self.dacl_queries = 0
        self.frames: list[tuple[int, ...]] = []

    def to_client(self, data: bytes) -> bytes:
        msgs = messages(data)
        if len(msgs) != 1 or msgs[0][2] != 0x0E:  # QUERY_DIRECTORY answers only
            return data
        pos = msgs[0][0]
        if struct.unpack_from("<I", data, pos + 8)[0] != 0:
            return data
        off, length = struct.unpack_from("<HI", data, pos + 64 + 2)
        out = bytearray(data)
        at, end = pos + off, pos + off + length
        for _ in range(10_000):
            if at + 104 > end:
                break
            nxt, name_len = (
                struct.unpack_from("<I", out, at)[0],
                struct.unpack_from("<I", out, at + 60)[0],
            )
            name = bytes(out[at + 104 : at + 104 + name_len]).decode("utf-16-le")
            path = self.folder / name
            if name not in (".", "..") and path.exists():
                ctime = path.stat().st_ctime_ns // 100 + EPOCH_AS_FILETIME
                struct.pack_into("<Q", out, at + 32, ctime)
            if not nxt:
                break
            at += nxt
        return bytes(out)

    def to_server(self, data: bytes) -> bytes:
        cmds = tuple(c for _, _, c in messages(data))
        with self.lock:
            self.frames.append(cmds)
            for pos, _, cmd in messages(data):
                if cmd == 0x10 and data[pos + 64 + 2] == 3:  # QUERY_INFO, SMB2_0_INFO_SECURITY
                    self.dacl_queries += 1
        return data

    def reset(self) -> tuple[int, list[tuple[int, ...]]]:
        with self.lock:
            out = (self.dacl_queries, self.frames)
            self.dacl_queries, self.frames = 0, []
            return out


def test_windows_like_change_time_skips_unchanged_dacls_and_notices_a_chmod(
    server: tuple[Samba, Path], tmp_path: Path
) -> None:
    smb, share = server
    folder = share / "win"
    _fill(folder, 0o600)  # the CCCD list starts private: the guest may not read it
    relay = _WindowsTimes(folder)
    with rewriting_relay(smb, relay.to_client, relay.to_server) as (addr, port):
        url = f"smb://{addr}:{port}/docs/win"
        first = _scan(url, addr, tmp_path, None)
        asked_first, frames = relay.reset()
        # first scan: each file is opened once for its DACL and bytes together; only the
        # private one, refused, is asked for its DACL alone and then tried for its bytes
        assert frames.count((0x05, 0x10, 0x08, 0x06)) == 4, frames
        assert frames.count((0x05, 0x08, 0x06)) == 1, frames
        [doc] = [d for d in first.documents if d.path == "ds.csv"]
        assert doc.skipped and not doc.world_readable  # not readable by the guest

        second = _scan(url, addr, tmp_path, None)
        asked_second, _ = relay.reset()
        assert second.files_from_cache == 3 and second.files_scanned == 0
        # not asked again: the clean notes (nothing to report whoever reads them) and pub.csv
        # (its ChangeTime is unchanged); asked: the folders' own, the private file's (unknown)
        assert asked_second == asked_first - 3, (asked_first, asked_second)
        [pub] = [d for d in second.documents if d.path == "pub.csv"]
        assert pub.world_readable is True and pub.mode == "Everyone:R"

        os.chmod(folder / "ds.csv", 0o644)  # the same bytes: only the ChangeTime moves
        third = _scan(url, addr, tmp_path, None)
        [doc] = [d for d in third.documents if d.path == "ds.csv"]
        assert doc.world_readable is True and doc.mode == "Everyone:R"
        assert doc.counts and not doc.skipped  # now readable, and read


def test_entry_cap_keeps_what_was_listed(server: tuple[Samba, Path], tmp_path: Path) -> None:
    smb, share = server
    _fill(share / "cap", 0o644)
    store = Store(id="docs", kind="smb", location=smb.url("docs") + "/cap")
    col = StoreDocumentsCollector({store.id: store}, StoreScanOptions(cache=False, max_entries=2))
    ctx = CollectContext(scope=guard_for(smb.address), probe_timeout=2.0)
    facts = asyncio.run(asyncio.wait_for(col.collect(target_of(store), ctx), 60))
    assert isinstance(facts, StoreDocuments)
    assert (
        not facts.complete and facts.listing_error == "more than 2 files; the rest was not listed"
    )
    assert facts.files_total == 2 and facts.files_scanned == 2
