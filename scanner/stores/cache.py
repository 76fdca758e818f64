"""Incremental rescans: what each file looked like last time, and what was found in it.

An entry whose size and ETag (or modification time) are unchanged is not read again; one whose
modification time changed but whose bytes hash the same is not extracted again. The cache is
keyed by store and by a digest of the rules and limits, so a new rule set rescans everything.
It holds only masked findings, never content.

The cost of an unchanged file is one look-up here: its document facts are kept as the JSON text
the collector wrote (none at all for a file with nothing to report), handed back untouched and
validated in one batch by the collector. The file is only rewritten when something changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

FORMAT = 2


def default_dir() -> Path:
    env = os.environ.get("ASSAY_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "assay" / "stores"


class ScanCache:
    """One store's entries: path -> [size, mtime, etag, sha256, document facts as JSON or ""]."""

    def __init__(self, directory: Path | None, store_key: str, config_digest: str) -> None:
        self.path: Path | None = None
        self.entries: dict[str, list[Any]] = {}
        self.fresh: dict[str, list[Any]] = {}
        self.digest = config_digest
        self._changed = False
        if directory is None:
            return
        name = hashlib.sha256(store_key.encode()).hexdigest()[:24]
        self.path = directory / f"{name}.json"
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if (
                isinstance(raw, dict)
                and raw.get("format") == FORMAT
                and raw.get("digest") == config_digest
                and isinstance(raw.get("entries"), dict)
            ):
                self.entries = raw["entries"]
        except (OSError, ValueError):
            self.entries = {}

    def _entry(self, path: str) -> list[Any] | None:
        old = self.entries.get(path)
        if isinstance(old, list) and len(old) == 5 and isinstance(old[4], str):
            return old
        return None

    def unchanged(self, path: str, size: int | None, mtime: float | None, etag: str) -> str | None:
        """The cached document facts (JSON; "" = nothing to report) if the listing says the file
        did not change, and the entry is kept for the next scan; None if it must be read."""
        old = self._entry(path)
        if old is None or old[0] != size:
            return None
        if (etag and old[2] == etag) or (not etag and mtime is not None and old[1] == mtime):
            self.fresh[path] = old
            return str(old[4])
        return None

    def same_hash(self, path: str, sha: str) -> str | None:
        old = self._entry(path)
        return str(old[4]) if old is not None and old[3] == sha else None

    def put(
        self, path: str, size: int | None, mtime: float | None, etag: str, sha: str, doc: str
    ) -> None:
        self.fresh[path] = [size, mtime, etag, sha, doc]
        self._changed = True

    def forget(self, path: str) -> None:
        """Drop an entry whose cached facts turned out unusable (the file is scanned again)."""
        self.entries.pop(path, None)
        if self.fresh.pop(path, None) is not None:
            self._changed = True

    def save(self) -> None:
        if self.path is None:
            return
        if not self._changed and self.fresh.keys() == self.entries.keys():
            return  # nothing changed: the file on disk already says all this
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(
            {"format": FORMAT, "digest": self.digest, "entries": self.fresh},
            separators=(",", ":"),
        )
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".cache-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
            os.replace(tmp, self.path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
