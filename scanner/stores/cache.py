"""Incremental rescans: what each file looked like last time, and what was found in it.

An entry whose size and ETag (or modification time) are unchanged is not read again; one whose
modification time changed but whose bytes hash the same is not extracted again. The cache is
keyed by store and by a digest of the rules, limits and the facts' schema, so a new rule set or
a new Assay rescans everything. It holds only masked findings, never content.

An unchanged file costs one look-up here, so the rest of an unchanged rescan is the listing.
That is why the cache file carries a SHA-256 of its own entries: a file that verifies is exactly
what Assay wrote, and the collector may rebuild the cached facts without validating them again
(validation was half the cost of a rescan where every file has a finding). A file that does not
verify (truncated, edited by hand, written by another version) is not trusted at all: a valid
but edited entry could hide a finding, so the store is scanned in full and the cache rewritten.
The digest guards against damage, not against someone who can write the cache directory and
recompute it; that person can also delete the cache or the documents.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:  # optional: loads the cache about twice as fast as the json module
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    orjson = None  # type: ignore[assignment]

FORMAT = 3
DOC = 4  # index of the document facts in an entry (a dict, or None: nothing to report)
_BODY = b'","entries":'


def default_dir() -> Path:
    env = os.environ.get("ASSAY_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "assay" / "stores"


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a block builds many long-lived objects at once.

    Loading the cache and rebuilding its facts make tens of thousands of containers that all
    survive; CPython's collector would traverse them again and again as they are made, which
    measured as half the time of an unchanged rescan. Nothing in these blocks makes cycles, and
    the collector runs normally again afterwards (unless it was off before).
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _dumps(value: Any) -> bytes:
    if orjson is not None:
        return orjson.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _loads(data: bytes) -> Any:
    if orjson is not None:
        return orjson.loads(data)
    return json.loads(data)


class ScanCache:
    """One store's entries: path -> [size, mtime, etag, sha256, document facts or None].

    `trusted` says the entries came from a file whose digest verified (or there was no file);
    only then may the collector rebuild cached facts without validating them.
    """

    def __init__(self, directory: Path | None, store_key: str, config_digest: str) -> None:
        self.path: Path | None = None
        self.entries: dict[str, list[Any]] = {}
        self.fresh: dict[str, list[Any]] = {}
        self.digest = config_digest
        self.rejected = ""  # why an existing cache file was not used
        self._changed = False
        if directory is None:
            return
        name = hashlib.sha256(store_key.encode()).hexdigest()[:24]
        self.path = directory / f"{name}.json"
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            self.rejected = f"cannot read the cache file: {exc.strerror or exc}"
            return
        self.entries, self.rejected = self._verified(data)

    def _head(self) -> bytes:
        return b'{"format":%d,"digest":"%s","check":"' % (FORMAT, self.digest.encode())

    def _verified(self, data: bytes) -> tuple[dict[str, list[Any]], str]:
        head = self._head()
        if not data.startswith(head):
            return {}, "written by another version or for other rules"
        check, body = data[len(head) : len(head) + 64], data[len(head) + 64 :]
        if not body.startswith(_BODY) or not body.endswith(b"}"):
            return {}, "not in the layout Assay writes"
        body = body[len(_BODY) : -1]
        if hashlib.sha256(body).hexdigest().encode() != check:
            return {}, "its digest does not match its entries (damaged or edited)"
        try:
            with gc_paused():
                entries = _loads(body)
        except ValueError:
            return {}, "its entries do not parse"
        if not isinstance(entries, dict):
            return {}, "its entries are not a mapping"
        return entries, ""

    def unchanged(
        self, path: str, size: int | None, mtime: float | None, etag: str
    ) -> list[Any] | None:
        """The cached entry (its facts at index DOC) if the listing says the file did not
        change; the entry is then kept for the next scan. None: the file must be read."""
        old = self.entries.get(path)
        if old is None:
            return None
        try:
            if len(old) != 5 or old[0] != size:
                return None
            if (etag and old[2] == etag) or (not etag and mtime is not None and old[1] == mtime):
                self.fresh[path] = old
                return old
        except (TypeError, KeyError, IndexError):  # only in a file that verified: a bug
            return None
        return None

    def same_hash(self, path: str, sha: str) -> list[Any] | None:
        old = self.entries.get(path)
        if isinstance(old, list) and len(old) == 5 and old[3] == sha:
            return old
        return None

    def put(
        self,
        path: str,
        size: int | None,
        mtime: float | None,
        etag: str,
        sha: str,
        doc: dict[str, Any] | None,
    ) -> None:
        self.fresh[path] = [size, mtime, etag, sha, doc or None]
        self._changed = True

    def forget(self, path: str) -> None:
        """Drop an entry whose cached facts turned out unusable (the file is scanned again)."""
        self.entries.pop(path, None)
        if self.fresh.pop(path, None) is not None:
            self._changed = True

    def save(self) -> None:
        if self.path is None:
            return
        if not self._changed and not self.rejected and self.fresh.keys() == self.entries.keys():
            return  # nothing changed: the file on disk already says all this
        body = _dumps(self.fresh)
        check = hashlib.sha256(body).hexdigest().encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".cache-")
        except OSError:
            return  # a cache that cannot be written costs the next scan time, nothing else
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(self._head() + check + _BODY + body + b"}")
            os.replace(tmp, self.path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
