"""The policy-pack format: a pydantic model, published as `policies/schema/policy.schema.json`.

A pack maps the requirements of one framework (a decree, a standard, a benchmark) onto Assay's
checks. It holds data only: which checks evidence which control, with which parameters, from
which level, how much it weighs and whether it is a gate. Scoring lives in `policies.scoring`.

Requirement texts in packs are paraphrased and carry their identifier and how well the
identifier was verified (`verified`, `secondary`, `unverified`), so nothing unverified is shown
as if it had been checked against the primary text.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scanner.model import Severity

PACK_SCHEMA: Literal["assay-policy/1"] = "assay-policy/1"
_PACK_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_CONTROL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CHECK_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Verification(StrEnum):
    """How far an identifier or threshold was checked (see the pack's framework notes)."""

    VERIFIED = "verified"  # against a stored copy of the primary text
    SECONDARY = "secondary"  # only through consistent secondary material
    UNVERIFIED = "unverified"  # not found in stored material; re-check before relying on it


class Obligation(StrEnum):
    MANDATORY = "mandatory"  # a gate: a failure caps the grade
    RECOMMENDED = "recommended"


class Requirement(_Strict):
    """One requirement identifier of a framework, with how well it was verified."""

    source: str = Field(min_length=1, description="e.g. 'TCVN 14423:2026', 'BSI SYS.1.3'")
    id: str = Field(min_length=1, description="the identifier as the source numbers it")
    verified: Verification = Verification.UNVERIFIED

    def __str__(self) -> str:
        return f"{self.source} {self.id}"


class CheckRef(_Strict):
    """A check that evidences a control, with parameter overrides for this control."""

    id: str
    params: dict[str, Any] = Field(default_factory=dict)
    planned: bool = Field(
        default=False,
        description="the check is not released yet: until it is installed, the control is "
        "not_assessed (never passed)",
    )

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        return {"id": data} if isinstance(data, str) else data

    @field_validator("id")
    @classmethod
    def _dotted(cls, v: str) -> str:
        if not _CHECK_ID.match(v):
            raise ValueError(
                f"{v!r} is not a check id (dotted lower case, e.g. net.telnet.present)"
            )
        return v


class Control(_Strict):
    """One requirement of the pack, evidenced by zero or more checks."""

    id: str
    title: str = Field(min_length=3, max_length=160)
    description: str = ""
    section: str = ""
    checks: list[CheckRef] = Field(default_factory=list)
    manual: str = Field(
        default="",
        description="what a person must attest where no check can evidence the control "
        "(required when `checks` is empty)",
    )
    weight: float = Field(default=1.0, gt=0, le=100)
    obligation: Obligation = Obligation.RECOMMENDED
    severity: Severity | None = Field(
        default=None, description="default: the highest severity of its installed checks"
    )
    level: int | None = Field(default=None, ge=1, le=9, description="applies from this level")
    until_level: int | None = Field(default=None, ge=1, le=9, description="applies up to it")
    waivable: bool = Field(default=True, description="false: no waiver may accept a failure")
    requirements: list[Requirement] = Field(default_factory=list)
    mapping: dict[str, list[str]] = Field(
        default_factory=dict, description="column id (declared under `mappings`) -> identifiers"
    )

    @field_validator("id")
    @classmethod
    def _control_id(cls, v: str) -> str:
        if not _CONTROL_ID.match(v):
            raise ValueError(f"{v!r} is not a control id (letters, digits, '.', '_', '-')")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Control:
        if not self.checks and not self.manual:
            raise ValueError("a control without checks must say what to attest under 'manual'")
        if self.level and self.until_level and self.until_level < self.level:
            raise ValueError(f"until_level {self.until_level} is below level {self.level}")
        seen: set[str] = set()
        for ref in self.checks:
            if ref.id in seen:
                raise ValueError(f"check {ref.id!r} is named twice in this control")
            seen.add(ref.id)
        return self


class Level(_Strict):
    level: int = Field(ge=1, le=9)
    title: str = Field(min_length=3)
    description: str = ""


class MappingColumn(_Strict):
    """A second column of identifiers, e.g. the legacy clauses a control replaces."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    title: str = Field(min_length=3)
    verified: Verification = Verification.UNVERIFIED


class Framework(_Strict):
    name: str = Field(min_length=3)
    edition: str = Field(min_length=1)
    verification: Verification = Field(
        description="the weakest verification of any identifier the pack uses"
    )
    notes: str = ""


class ChangelogEntry(_Strict):
    version: str
    date: date
    changes: list[str] = Field(min_length=1)


class Profile(_Strict):
    """A named set of parameter overrides other packs can import (e.g. a TLS profile)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: str = Field(min_length=3)
    source: str = ""
    verified: Verification = Verification.UNVERIFIED
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="check id -> parameter overrides"
    )


class Import(_Strict):
    """Take another pack's controls into this one (with one of its profiles)."""

    pack: str
    profile: str | None = None
    section: str = ""
    level: int | None = Field(default=None, ge=1, le=9)
    obligation: Obligation | None = None
    controls: list[str] | None = Field(default=None, description="default: all of them")
    prefix: str = Field(default="", description="default: '<pack id>/'")


class Bands(_Strict):
    """Lowest weighted score (0-100) of each grade; below D is F."""

    A: float = Field(default=90.0, ge=0, le=100)
    B: float = Field(default=80.0, ge=0, le=100)
    C: float = Field(default=65.0, ge=0, le=100)
    D: float = Field(default=50.0, ge=0, le=100)

    @model_validator(mode="after")
    def _descending(self) -> Bands:
        if not self.A >= self.B >= self.C >= self.D:
            raise ValueError("bands must descend: A >= B >= C >= D")
        return self


class Grading(_Strict):
    """Grade bands on the weighted score and the caps that honesty requires."""

    bands: Bands = Field(default_factory=Bands)
    mandatory_fail_cap: Literal["B", "C", "D", "F"] = "D"
    critical_gate_cap: Literal["D", "F"] = "F"
    unassessed_mandatory_cap: Literal["A", "B", "C", "D"] = "B"
    min_coverage: float = Field(default=0.8, ge=0, le=1)
    low_coverage_cap: Literal["A", "B", "C", "D"] = "C"


class Pack(_Strict):
    """A policy pack: one framework's requirements mapped onto checks."""

    schema_: Literal["assay-policy/1"] = Field(default=PACK_SCHEMA, alias="schema")
    id: str
    title: str = Field(min_length=3)
    version: str = Field(pattern=r"^\d+\.\d+(\.\d+)?$")
    description: str = ""
    framework: Framework
    changelog: list[ChangelogEntry] = Field(min_length=1)
    levels: list[Level] = Field(default_factory=list)
    default_level: int | None = None
    mappings: list[MappingColumn] = Field(default_factory=list)
    profiles: list[Profile] = Field(default_factory=list)
    default_profile: str | None = None
    imports: list[Import] = Field(default_factory=list)
    grading: Grading = Field(default_factory=Grading)
    controls: list[Control] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("id")
    @classmethod
    def _pack_id(cls, v: str) -> str:
        if not _PACK_ID.match(v):
            raise ValueError(f"{v!r} is not a pack id (lower case words joined by '-')")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Pack:
        numbers = [lv.level for lv in self.levels]
        if len(set(numbers)) != len(numbers):
            raise ValueError("a level is declared twice")
        if self.default_level is not None and self.default_level not in numbers:
            raise ValueError(f"default_level {self.default_level} is not among the levels")
        if self.levels and self.default_level is None:
            raise ValueError("a pack with levels must name its default_level")
        if self.changelog[0].version != self.version:
            raise ValueError(
                f"the first changelog entry ({self.changelog[0].version}) must be the pack "
                f"version ({self.version})"
            )
        profiles = [p.id for p in self.profiles]
        if self.default_profile is not None and self.default_profile not in profiles:
            raise ValueError(f"default_profile {self.default_profile!r} is not a profile")
        if not self.controls and not self.imports:
            raise ValueError("a pack needs controls or imports")
        return self

    def profile(self, profile_id: str | None) -> Profile | None:
        wanted = profile_id or self.default_profile
        return next((p for p in self.profiles if p.id == wanted), None)


def json_schema() -> dict[str, Any]:
    schema = Pack.model_json_schema(by_alias=True)
    # a check may be named by its id alone (`- net.telnet.present`): publish both forms
    ref = schema["$defs"]["CheckRef"]
    ref["properties"]["id"]["pattern"] = _CHECK_ID.pattern
    schema["$defs"]["CheckRef"] = {
        "anyOf": [
            {"type": "string", "pattern": _CHECK_ID.pattern, "description": "the check id"},
            ref,
        ],
        "title": "CheckRef",
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://assay.invalid/schema/policy-1.json"
    schema["title"] = "Assay policy pack"
    return schema


if __name__ == "__main__":  # pragma: no cover - regeneration helper
    import json

    print(json.dumps(json_schema(), indent=2, sort_keys=True))
