"""One interface over every kind of document store, and the exposure facts each one reports.

A connector lists entries (path, size, modification time, ETag, who may read it) and reads one
entry's bytes up to a cap. It is synchronous and bounded: every listing has an entry cap and a
depth cap, every network read a timeout, every body a byte cap. The collector runs it in a
worker thread with an overall time budget.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field


class StoreError(Exception):
    """A store that cannot be listed or read; the message names the store and the operation."""


class TooLarge(StoreError):
    """The entry is larger than the cap (or sends more than it announced)."""


class TooManyEntries(StoreError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} files; the rest was not listed")
        self.limit = limit


class Entry(NamedTuple):
    """One listed file. A named tuple, not a frozen dataclass: a listing builds one per file and
    the dataclass's per-field object.__setattr__ made that a fifth of an unchanged rescan."""

    path: str  # relative to the store root, '/'-separated
    size: int | None
    mtime: float | None = None
    etag: str = ""
    world_readable: bool | None = None  # None: the store does not tell
    mode: str = ""  # POSIX mode ('0644') or an SMB/ACL summary


class Exposure(BaseModel):
    """Who can reach the store and how. Facts, not judgements: the checks judge them."""

    model_config = ConfigDict(extra="forbid")

    transport: str  # file | http | https | smb | smb-encrypted | s3-http | s3-https
    cleartext: bool = False  # content and credentials travel unencrypted
    anonymous_read: bool | None = None  # None: not tested or not applicable
    anonymous_detail: str = ""
    public_listing: bool | None = None
    public_acl: list[str] = Field(default_factory=list)  # grants/ACEs to everyone
    world_readable_dirs: list[str] = Field(default_factory=list)
    world_writable: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class Connector(ABC):
    kind: str

    @abstractmethod
    def exposure(self) -> Exposure: ...

    @abstractmethod
    def walk(self, max_entries: int, max_depth: int) -> Iterator[Entry]: ...

    @abstractmethod
    def read(self, entry: Entry, max_bytes: int) -> bytes: ...

    def previous(self, entries: Mapping[str, Sequence[Any]]) -> None:  # noqa: B027
        """Optional hook, called before walk() with the last scan's cache entries (path ->
        [size, mtime, etag, ...]): a connector may reuse what it asked then (SMB: a file's
        DACL summary while its ChangeTime is unchanged)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
