"""The SSH algorithm table (`algorithms.yaml`), validated, and its verdicts per profile.

The knowledge of which algorithm is weak is data, not code, so a reviewer can read it and a
change is one versioned diff. The model below rejects a table with an unknown status, a
duplicate name, a per-profile verdict for an undeclared profile, or an advisory topic turned
into a failure, with the file, the category and the name in the message.
"""

from __future__ import annotations

import hashlib
import json
import sys
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

TABLE_PATH = Path(__file__).with_name("algorithms.yaml")
# The same table as JSON, with the SHA-256 of the YAML it was made from. Loading it skips the
# YAML parser (its import and parse were about a tenth of a one-server audit's start-up); it is
# used only while that digest matches, so an edited YAML is always what is read. Regenerate:
# `python -m checks.ssh.algorithms --compile` (a test fails while it is stale).
COMPILED_PATH = TABLE_PATH.with_suffix(".json")
DEFAULT_PROFILE = "baseline"
Category = Literal["kex", "hostkey", "cipher", "mac", "compression"]
CATEGORIES: tuple[Category, ...] = ("kex", "hostkey", "cipher", "mac", "compression")
ADVISORY_TAGS = frozenset({"nist-curve", "post-quantum", "marker"})


class Verdict(StrEnum):
    FAIL = "fail"
    WARN = "warn"
    INFO = "info"
    OK = "ok"
    UNKNOWN = "unknown"  # not in the table: reported as an advisory, never a failure


class Algorithm(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    status: Literal[Verdict.FAIL, Verdict.WARN, Verdict.INFO, Verdict.OK]
    reason: str = Field(min_length=3)
    profiles: dict[str, Literal[Verdict.FAIL, Verdict.WARN, Verdict.INFO, Verdict.OK]] = {}
    tags: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _tags(self) -> Algorithm:
        unknown = set(self.tags) - ADVISORY_TAGS
        if unknown:
            raise ValueError(f"{self.name}: unknown tags {sorted(unknown)}")
        return self

    def matches(self, name: str) -> bool:
        return name.startswith(self.name[:-1]) if self.name.endswith("*") else name == self.name


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    title: str
    description: str


class ChangelogEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str
    changes: str


class AlgorithmTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_: int = Field(alias="schema")
    version: str = Field(pattern=r"^\d{4}\.\d{1,2}\.\d+$")
    changelog: tuple[ChangelogEntry, ...] = Field(min_length=1)
    profiles: dict[str, Profile]
    algorithms: dict[Category, tuple[Algorithm, ...]]

    @model_validator(mode="after")
    def _consistent(self) -> AlgorithmTable:
        if self.schema_ != 1:
            raise ValueError(f"schema {self.schema_} is not supported (expected 1)")
        if DEFAULT_PROFILE not in self.profiles:
            raise ValueError(f"profile {DEFAULT_PROFILE!r} must be declared")
        if self.changelog[0].version != self.version:
            raise ValueError(
                f"version {self.version} has no changelog entry (first is "
                f"{self.changelog[0].version})"
            )
        missing = [c for c in CATEGORIES if c not in self.algorithms]
        if missing:
            raise ValueError(f"categories {missing} are missing")
        for cat, entries in self.algorithms.items():
            seen: set[str] = set()
            for a in entries:
                if a.name in seen:
                    raise ValueError(f"{cat}: {a.name} is listed twice")
                seen.add(a.name)
                bad = set(a.profiles) - set(self.profiles)
                if bad:
                    raise ValueError(f"{cat}: {a.name} names undeclared profiles {sorted(bad)}")
                advisory = {"nist-curve", "post-quantum"} & set(a.tags)
                judged = {a.status, *a.profiles.values()}
                if advisory and judged & {Verdict.FAIL, Verdict.WARN}:
                    raise ValueError(
                        f"{cat}: {a.name} is tagged {sorted(advisory)}, an advisory topic, "
                        "and may not fail or warn in any profile"
                    )
        return self

    def lookup(self, category: Category, name: str) -> Algorithm | None:
        entries = self.algorithms[category]
        exact = next((a for a in entries if a.name == name), None)
        return exact or next((a for a in entries if a.matches(name)), None)

    def verdict(self, category: Category, name: str, profile: str) -> tuple[Verdict, str]:
        """The verdict and reason for one offered algorithm under a profile."""
        if profile not in self.profiles:
            raise ValueError(
                f"unknown SSH algorithm profile {profile!r} (known: {', '.join(self.profiles)})"
            )
        entry = self.lookup(category, name)
        if entry is None:
            return Verdict.UNKNOWN, f"not in Assay's algorithm table {self.version}"
        return Verdict(entry.profiles.get(profile, entry.status)), entry.reason


class TableError(Exception):
    """The algorithm table file is unreadable or invalid (names the file and the field)."""


def _parse_yaml(path: Path, text: str) -> object:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise TableError(f"{path}: cannot read the SSH algorithm table: {exc}") from None


def _compiled(source: bytes) -> object | None:
    """The compiled table if it was made from exactly these YAML bytes, else None."""
    try:
        doc = json.loads(COMPILED_PATH.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("source_sha256") != hashlib.sha256(source).hexdigest():
        return None
    return doc.get("table")


def compile_table(path: Path = TABLE_PATH, out: Path = COMPILED_PATH) -> None:
    """Write the JSON form of a valid table (validated first, so a broken YAML is refused)."""
    source = path.read_bytes()
    raw = _parse_yaml(path, source.decode("utf-8"))
    _validate(path, raw)
    doc = {"source_sha256": hashlib.sha256(source).hexdigest(), "table": raw}
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def load_table(path: Path = TABLE_PATH) -> AlgorithmTable:
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise TableError(f"{path}: cannot read the SSH algorithm table: {exc}") from None
    raw = _compiled(source) if path == TABLE_PATH else None
    if raw is None:
        try:
            text = source.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TableError(f"{path}: cannot read the SSH algorithm table: {exc}") from None
        raw = _parse_yaml(path, text)
    return _validate(path, raw)


def _validate(path: Path, raw: object) -> AlgorithmTable:
    try:
        return AlgorithmTable.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TableError(f"{path}: {where}: {first['msg']}") from None


@lru_cache(maxsize=1)
def table() -> AlgorithmTable:
    """The built-in table, loaded and validated once per process."""
    return load_table()


if __name__ == "__main__":
    if sys.argv[1:] != ["--compile"]:
        raise SystemExit("usage: python -m checks.ssh.algorithms --compile")
    compile_table()
    print(f"wrote {COMPILED_PATH}")
