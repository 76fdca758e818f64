"""Incremental rescans: what each file looked like last time, and what was found in it.

An entry whose size and ETag (or modification time) are unchanged is not read again; one whose
modification time changed but whose bytes hash the same is not extracted again. The cache is
keyed by store and by a digest of the rules and limits, so a new rule set rescans everything.
It holds only masked findings, never content.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def default_dir() -> Path:
    env = os.environ.get("ASSAY_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "assay" / "stores"


class ScanCache:
    def __init__(self, directory: Path | None, store_key: str, config_digest: str) -> None:
        self.path: Path | None = None
        self.entries: dict[str, dict[str, Any]] = {}
        self.fresh: dict[str, dict[str, Any]] = {}
        self.digest = config_digest
        if directory is None:
            return
        name = hashlib.sha256(store_key.encode()).hexdigest()[:24]
        self.path = directory / f"{name}.json"
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if raw.get("digest") == config_digest and isinstance(raw.get("entries"), dict):
                self.entries = raw["entries"]
        except (OSError, ValueError):
            self.entries = {}

    def unchanged(self, path: str, size: int | None, mtime: float | None, etag: str) -> Any:
        """The cached document facts if the listing says the file did not change."""
        old = self.entries.get(path)
        if not old or old.get("size") != size:
            return None
        if etag and old.get("etag") == etag:
            return old.get("doc")
        if not etag and mtime is not None and old.get("mtime") == mtime:
            return old.get("doc")
        return None

    def same_hash(self, path: str, sha: str) -> Any:
        old = self.entries.get(path)
        return old.get("doc") if old and old.get("sha256") == sha else None

    def put(
        self, path: str, size: int | None, mtime: float | None, etag: str, sha: str, doc: Any
    ) -> None:
        self.fresh[path] = {"size": size, "mtime": mtime, "etag": etag, "sha256": sha, "doc": doc}

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"digest": self.digest, "entries": self.fresh}, separators=(",", ":"))
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".cache-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
            os.replace(tmp, self.path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
