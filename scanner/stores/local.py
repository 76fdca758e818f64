"""Local folders and mounted shares: POSIX modes tell who else on the host can read a file."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
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
        try:
            st = self.root.stat()
        except OSError as exc:
            raise StoreError(f"local store {self.root}: {exc.strerror or exc}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise StoreError(f"local store {self.root}: not a directory")
        self._note_dir(".", st.st_mode)
        count = 0
        stack: list[tuple[Path, str, int]] = [(self.root, "", 0)]
        while stack:
            folder, rel, depth = stack.pop()
            try:
                with os.scandir(folder) as it:
                    items = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                raise StoreError(f"local store: cannot list {rel or '.'}: {exc.strerror}") from None
            subdirs = []
            for item in items:
                path = f"{rel}/{item.name}" if rel else item.name
                try:
                    s = item.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISLNK(s.st_mode):
                    continue  # never leave the store through a link
                if stat.S_ISDIR(s.st_mode):
                    self._note_dir(path, s.st_mode)
                    if depth + 1 <= max_depth:
                        subdirs.append((Path(item.path), path, depth + 1))
                    continue
                if not stat.S_ISREG(s.st_mode):
                    continue
                if s.st_mode & stat.S_IWOTH:
                    self._world_writable.append(path)
                count += 1
                if count > max_entries:
                    raise TooManyEntries(max_entries)
                yield Entry(
                    path=path,
                    size=s.st_size,
                    mtime=s.st_mtime,
                    world_readable=bool(s.st_mode & stat.S_IROTH),
                    mode=f"{stat.S_IMODE(s.st_mode):04o}",
                )
            stack.extend(reversed(subdirs))

    def _note_dir(self, path: str, mode: int) -> None:
        if mode & stat.S_IROTH and mode & stat.S_IXOTH:
            self._world_dirs.append(path)
        if mode & stat.S_IWOTH:
            self._world_writable.append(path + "/")

    def read(self, entry: Entry, max_bytes: int) -> bytes:
        path = self.root / entry.path
        try:
            with open(path, "rb", buffering=0) as fh:
                data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise StoreError(f"cannot read {entry.path}: {exc.strerror or exc}") from None
        if len(data) > max_bytes:
            raise TooLarge(f"{entry.path} is larger than {max_bytes} bytes")
        return data
