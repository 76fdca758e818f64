"""Local folders and mounted shares: POSIX modes tell who else on the host can read a file."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from operator import attrgetter
from pathlib import Path

from scanner.stores.base import (
    Connector,
    Entry,
    Exposure,
    StoreError,
    TooLarge,
    TooManyEntries,
)

MAX_LISTED = 200  # world-readable folders named in the facts (the count is always complete)
_NAME = attrgetter("name")
_S_IFMT, _S_IFREG, _S_IFDIR = 0o170000, stat.S_IFREG, stat.S_IFDIR
_S_IWOTH, _S_IROTH = stat.S_IWOTH, stat.S_IROTH


class LocalStore(Connector):
    kind = "local"

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self._world_dirs: list[str] = []
        self._world_writable: list[str] = []

    def exposure(self) -> Exposure:
        return Exposure(
            transport="file",
            world_readable_dirs=self._world_dirs[:MAX_LISTED],
            world_writable=self._world_writable[:MAX_LISTED],
        )

    def walk(self, max_entries: int, max_depth: int) -> Iterator[Entry]:
        """Depth first in name order. An unchanged rescan costs little more than this listing,
        so the per-file work is kept to the stat the rescan needs (size, mtime, mode) and bit
        tests on its mode; mode strings are formatted once per distinct mode."""
        try:
            st = self.root.stat()
        except OSError as exc:
            raise StoreError(f"local store {self.root}: {exc.strerror or exc}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise StoreError(f"local store {self.root}: not a directory")
        self._note_dir(".", st.st_mode)
        count = 0
        modes: dict[int, tuple[str, bool]] = {}
        stack: list[tuple[str, str, int]] = [(str(self.root), "", 0)]
        while stack:
            folder, rel, depth = stack.pop()
            try:
                with os.scandir(folder) as it:
                    items = sorted(it, key=_NAME)
            except OSError as exc:
                raise StoreError(f"local store: cannot list {rel or '.'}: {exc.strerror}") from None
            prefix = f"{rel}/" if rel else ""
            subdirs = []
            for item in items:
                try:
                    s = item.stat(follow_symlinks=False)
                except OSError:
                    continue
                m = s.st_mode
                fmt = m & _S_IFMT
                if fmt != _S_IFREG:  # links are never followed out of the store
                    if fmt == _S_IFDIR:
                        path = prefix + item.name
                        self._note_dir(path, m)
                        if depth < max_depth:
                            subdirs.append((item.path, path, depth + 1))
                    continue
                path = prefix + item.name
                if m & _S_IWOTH:
                    self._world_writable.append(path)
                count += 1
                if count > max_entries:
                    raise TooManyEntries(max_entries)
                perm = modes.get(m)
                if perm is None:
                    perm = modes[m] = (f"{m & 0o7777:04o}", bool(m & _S_IROTH))
                yield Entry(path, s.st_size, s.st_mtime, "", perm[1], perm[0])
            stack.extend(reversed(subdirs))

    def _note_dir(self, path: str, mode: int) -> None:
        if mode & stat.S_IROTH and mode & stat.S_IXOTH:
            self._world_dirs.append(path)
        if mode & stat.S_IWOTH:
            self._world_writable.append(path + "/")

    def read(self, entry: Entry, max_bytes: int) -> bytes:
        if entry.size is not None and entry.size > max_bytes:  # judged from the listing: not read
            raise TooLarge(f"{entry.path}: listed as {entry.size} bytes (limit {max_bytes})")
        path = self.root / entry.path
        try:
            with open(path, "rb", buffering=0) as fh:
                data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise StoreError(f"cannot read {entry.path}: {exc.strerror or exc}") from None
        if len(data) > max_bytes:
            raise TooLarge(f"{entry.path} is larger than {max_bytes} bytes")
        return data
