"""What extraction returns, its limits, and the reasons a file is not scanned.

A file that cannot be read completely is never reported as clean: it carries a `Skipped` entry
with the reason (encrypted, image only, corrupt, oversized, bomb-like, too deep, time budget,
unsupported), and what could be read before the limit is still scanned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from scanner.detect.findings import TextPart


class SkipReason(StrEnum):
    ENCRYPTED = "encrypted"
    IMAGE_ONLY = "image_only"
    CORRUPT = "corrupt"
    OVERSIZED = "oversized"
    BOMB = "bomb"
    TOO_DEEP = "too_deep"
    TIME_BUDGET = "time_budget"
    UNSUPPORTED = "unsupported"
    UNREADABLE = "unreadable"  # the store refused or failed to deliver the bytes


class Limits(BaseModel):
    """Bounds on what one document may cost. Every field can be set in the store options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_file_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    max_text_chars: int = Field(default=32 * 1024 * 1024, ge=1)
    max_depth: int = Field(default=3, ge=0, le=10)  # archives / attachments inside each other
    max_ratio: float = Field(default=100.0, gt=1)  # uncompressed / compressed, per member
    max_members: int = Field(default=2000, ge=1)
    max_unpacked_bytes: int = Field(default=256 * 1024 * 1024, ge=1)  # per top-level file
    max_pdf_pages: int = Field(default=2000, ge=1)
    seconds_per_file: float = Field(default=20.0, gt=0)


@dataclass(frozen=True)
class Skipped:
    where: str  # "" for the whole file, else a member / page / attachment
    reason: SkipReason
    detail: str = ""


@dataclass
class Budget:
    """Running totals shared by a file and everything nested inside it."""

    limits: Limits
    deadline: float = 0.0
    unpacked: int = 0

    def __post_init__(self) -> None:
        if not self.deadline:
            self.deadline = time.monotonic() + self.limits.seconds_per_file

    def expired(self) -> bool:
        return time.monotonic() > self.deadline


@dataclass
class Extracted:
    kind: str
    parts: list[TextPart] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pages: int = 0

    @property
    def chars(self) -> int:
        return sum(len(p.text) for p in self.parts)

    def skip(self, reason: SkipReason, detail: str = "", where: str = "") -> Extracted:
        self.skipped.append(Skipped(where, reason, detail))
        return self

    def absorb(self, other: Extracted, prefix: str) -> None:
        """Take a nested document's parts and skips under `prefix` (member or attachment)."""
        for p in other.parts:
            self.parts.append(TextPart(f"{prefix} {p.where}".strip(), p.text))
        for s in other.skipped:
            self.skipped.append(Skipped(f"{prefix} {s.where}".strip(), s.reason, s.detail))
        self.notes += [f"{prefix}: {n}" for n in other.notes]
