"""Waivers: accepted risks, each with a reason, an approver and an expiry date.

A waiver names a check (every control evidenced by it) or one control of one pack
(`pack-id/control-id`), and the targets it covers as a glob pattern matched against the
target's key, label, address or URL. It applies to failures only: a waived failure stays
visible in every report and is counted on its own, never as a pass. A waiver past its expiry
date stops applying (the failure counts again) and is reported as expired; a waiver that
matches no failure is reported as unmatched, so stale entries do not pile up unseen.

File format (validated like packs, with file and line in every error)::

    version: 1
    waivers:
      - id: W-2026-07
        check: net.ftp.banner_version
        target: "service:10.20.0.10:21/tcp"
        reason: legacy scanner firmware; replaced in Q2
        approved_by: Nguyen Van A (CISO)
        expires: 2027-03-31
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml.comments import CommentedMap

from policies._yaml import (
    PolicyError,
    line_of,
    load_tree,
    loc_str,
    plain,
    read_text,
    validation_error,
)
from scanner.model import Outcome, Target

_CHECK_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


class WaiverState(StrEnum):
    ACTIVE = "active"  # in force and matched at least one failure
    EXPIRED = "expired"  # past its expiry date: the failures it names count again
    UNMATCHED = "unmatched"  # in force but no failure matches it
    REFUSED = "refused"  # names a control that may not be waived (a gate)


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default="", max_length=64)
    check: str | None = None
    control: str | None = Field(default=None, description="'pack-id/control-id'")
    target: str = Field(default="*", min_length=1, description="glob on key, label, address, URL")
    unit: str = Field(default="*", min_length=1, description="glob on the unit id")
    reason: str = Field(min_length=10)
    approved_by: str = Field(min_length=2)
    expires: date
    ticket: str = ""

    @field_validator("check")
    @classmethod
    def _check_id(cls, v: str | None) -> str | None:
        if v is not None and not _CHECK_ID.match(v):
            raise ValueError(f"{v!r} is not a check id (dotted lower case)")
        return v

    @field_validator("control")
    @classmethod
    def _control_ref(cls, v: str | None) -> str | None:
        if v is not None and (v.count("/") < 1 or v.startswith("/") or v.endswith("/")):
            raise ValueError(f"{v!r} must be 'pack-id/control-id'")
        return v

    @model_validator(mode="after")
    def _one_subject(self) -> Waiver:
        if (self.check is None) == (self.control is None):
            raise ValueError("give exactly one of 'check' or 'control'")
        return self

    @property
    def subject(self) -> str:
        return self.check or f"control {self.control}"

    def matches_target(self, unit: str, target: Target) -> bool:
        if not fnmatch.fnmatchcase(unit, self.unit):
            return False
        candidates = [target.key, target.label, target.address or "", target.url or ""]
        return any(c and fnmatch.fnmatchcase(c, self.target) for c in candidates)

    def in_force(self, as_of: date) -> bool:
        return as_of <= self.expires


class WaiverFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    waivers: list[Waiver] = Field(default_factory=list)


@dataclass(frozen=True)
class LoadedWaivers:
    waivers: tuple[Waiver, ...]
    file: str = "<waivers>"
    tree: CommentedMap | None = field(default=None, repr=False, compare=False)

    def line(self, index: int) -> int | None:
        return line_of(self.tree, ("waivers", index)) if self.tree is not None else None

    def label(self, index: int) -> str:
        w = self.waivers[index]
        line = self.line(index)
        where = f"{self.file}:{line}" if line else self.file
        return w.id or f"{where} waivers[{index}]"


def parse_waivers(text: str, file: str = "<waivers>") -> LoadedWaivers:
    tree = load_tree(text, file, "a waiver file")
    try:
        wf = WaiverFile.model_validate(plain(tree))
    except ValidationError as exc:
        raise validation_error(exc, tree, file) from None
    seen: dict[str, int] = {}
    for i, w in enumerate(wf.waivers):
        if w.id and w.id in seen:
            loc: tuple[str | int, ...] = ("waivers", i, "id")
            raise PolicyError(file, line_of(tree, loc), loc_str(loc), f"waiver id {w.id!r} repeats")
        if w.id:
            seen[w.id] = i
    return LoadedWaivers(tuple(wf.waivers), file, tree)


def load_waivers(path: str | Path) -> LoadedWaivers:
    return parse_waivers(read_text(path), str(path))


def validate_waivers(
    lw: LoadedWaivers, checks: Iterable[str], controls: Mapping[str, Iterable[str]]
) -> list[PolicyError]:
    """Names that do not exist are typos: refuse them with file and line.

    `checks`: every check id that is installed or that a known pack names;
    `controls`: pack id -> its control ids (resolved, so imported ones count).
    """
    known_checks = set(checks)
    problems = []
    for i, w in enumerate(lw.waivers):
        if w.check is not None and w.check not in known_checks:
            loc: tuple[str | int, ...] = ("waivers", i, "check")
            problems.append(
                PolicyError(
                    lw.file,
                    line_of(lw.tree, loc),
                    loc_str(loc),
                    f"unknown check {w.check!r} (neither installed nor named by a pack)",
                )
            )
        if w.control is not None:
            pack_id, _, control_id = w.control.partition("/")
            loc = ("waivers", i, "control")
            line = line_of(lw.tree, loc)
            if pack_id not in controls:
                problems.append(
                    PolicyError(
                        lw.file,
                        line,
                        loc_str(loc),
                        f"unknown pack {pack_id!r} (known: {', '.join(sorted(controls))})",
                    )
                )
            elif control_id not in set(controls[pack_id]):
                problems.append(
                    PolicyError(
                        lw.file,
                        line,
                        loc_str(loc),
                        f"pack {pack_id!r} has no control {control_id!r}",
                    )
                )
    return problems


def waiver_applies(w: Waiver, pack_id: str, control_id: str, outcome: Outcome) -> bool:
    """Whether `w` names this failure (ignoring expiry, which the scorer decides)."""
    if w.check is not None and w.check != outcome.check_id:
        return False
    if w.control is not None and w.control != f"{pack_id}/{control_id}":
        return False
    return w.matches_target(outcome.unit, outcome.target)


def summary(w: Waiver) -> dict[str, Any]:
    return w.model_dump(mode="json")
