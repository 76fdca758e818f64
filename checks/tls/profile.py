"""Judging an endpoint against a named TLS profile (Mozilla, BSI TR-02102-2, NIST 800-52r2).

Profiles are data (`checks/tls/profiles/*.yaml`), validated when loaded: every suite and group
name must be known to Assay's tables, so a typo in a profile is an error naming the file and
the entry, never a silently ignored rule. Year horizons ("allowed until the end of 2031") are
judged against the year the facts were gathered, so re-judging a stored scan gives the same
answer; `year` overrides it to ask "what will fail in 2030?".
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml import YAML, YAMLError

from checks.tls import (
    FACTS,
    REF_TR02102,
    REFERENCES,
    SNIPPET_LANG,
    accepted,
    no_handshake,
    tls_facts,
    where,
)
from checks.tls.ciphers import CIPHER_SNIPPET
from scanner.model import Reference, Remediation, Result, Severity, TargetKind, failed, passed
from scanner.plugins import Check, CheckMeta, FactsView
from scanner.tlsprobe.suites import GROUP_CODES, PROTOCOLS, suite_by_name


class ProfileError(ValueError):
    """A profile file is missing or malformed."""


class AllowedSuite(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    until: int | None = None  # allowed through 31 December of this year


class ProfileProtocols(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed: tuple[str, ...]
    required: tuple[str, ...] = ()
    until: dict[str, int] = Field(default_factory=dict)

    @field_validator("allowed", "required")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [p for p in v if p not in PROTOCOLS]
        if bad:
            raise ValueError(f"unknown protocol versions {bad} (known: {list(PROTOCOLS)})")
        return v


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str
    version: str
    source: str
    protocols: ProfileProtocols
    suites: tuple[AllowedSuite, ...]
    groups: tuple[str, ...] = ()  # empty: groups are not judged
    dh_min_bits: int | None = None

    @field_validator("suites", mode="before")
    @classmethod
    def _suites(cls, v: Any) -> Any:
        out = [{"name": s} if isinstance(s, str) else s for s in v]
        bad = [s.get("name") for s in out if isinstance(s, dict) and not suite_by_name(s["name"])]
        if bad:
            raise ValueError(f"unknown cipher suites {bad}")
        return out

    @field_validator("groups")
    @classmethod
    def _groups(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [g for g in v if g not in GROUP_CODES]
        if bad:
            raise ValueError(f"unknown groups {bad}")
        return v

    def allowed_suites(self) -> dict[int, int | None]:
        """Suite code -> horizon year (None: no horizon)."""
        out: dict[int, int | None] = {}
        for s in self.suites:
            found = suite_by_name(s.name)
            assert found is not None  # validated above
            out[found.code] = s.until
        return out


def profile_names() -> list[str]:
    folder = files("checks.tls").joinpath("profiles")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def parse_profile(text: str, origin: str) -> Profile:
    try:
        data = YAML(typ="safe").load(text)
        return Profile.model_validate(data)
    except YAMLError as exc:
        raise ProfileError(f"TLS profile {origin}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or 'top level'}: {e['msg']}" for e in exc.errors()
        )
        raise ProfileError(f"TLS profile {origin}: {problems}") from None


@cache
def load_profile(name: str) -> Profile:
    if name not in profile_names():
        raise ProfileError(f"unknown TLS profile {name!r} (known: {', '.join(profile_names())})")
    res = files("checks.tls").joinpath("profiles", f"{name}.yaml")
    prof = parse_profile(res.read_text("utf-8"), f"checks/tls/profiles/{name}.yaml")
    if prof.id != name:
        raise ProfileError(f"TLS profile {name}.yaml declares id {prof.id!r}")
    return prof


class ProfileParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: str = Field(
        default="mozilla-intermediate",
        description="mozilla-intermediate, mozilla-modern, bsi-tr-02102-2 or nist-sp800-52r2",
    )
    year: int | None = Field(default=None, description="judge horizons as of this year")
    lead_years: int = Field(default=0, ge=0, le=10, description="warn this many years early")

    @field_validator("profile")
    @classmethod
    def _exists(cls, v: str) -> str:
        load_profile(v)
        return v


class TlsProfile(Check):
    meta = CheckMeta(
        id="tls.profile",
        title="TLS configuration conforms to the selected profile",
        target_kind=TargetKind.SERVICE,
        facts=(FACTS,),
        severity=Severity.MEDIUM,
        rationale=(
            "Security policies name a TLS profile (Mozilla, BSI TR-02102-2, NIST SP 800-52r2) "
            "rather than single weaknesses; conformance shows that only the profile's "
            "protocols, suites, groups and key sizes are offered, including its sunset dates."
        ),
        remediation=Remediation(
            text="Configure the protocols, suites and groups of the profile; remove the rest.",
            snippet=CIPHER_SNIPPET,
            snippet_lang=SNIPPET_LANG,
        ),
        references=(
            REF_TR02102,
            Reference(scheme="url", id="https://ssl-config.mozilla.org/"),
            Reference(scheme="url", id="https://doi.org/10.6028/NIST.SP.800-52r2"),
            *REFERENCES,
        ),
        tags=("tls", "profile"),
    )
    Params = ProfileParams

    def evaluate(self, facts: FactsView, params: ProfileParams) -> list[Result]:
        f = tls_facts(facts)
        if (err := no_handshake(f)) is not None:
            return [err]
        prof = load_profile(params.profile)
        year = params.year or f.scanned_year
        ctx: dict[str, Any] = {"profile": prof.id, "profile_version": prof.version, "year": year}
        out: list[Result] = []
        head = f"TLS at {where(f)} vs {prof.title}"

        extra = [v for v in f.supported if v not in prof.protocols.allowed]
        missing = [v for v in prof.protocols.required if v not in f.supported]
        if extra:
            out.append(failed(f"{head}: offers {', '.join(extra)}", "protocols", None,
                              protocols=extra, **ctx))  # fmt: skip
        if missing:
            out.append(failed(f"{head}: does not offer {', '.join(missing)}", "required", None,
                              protocols=missing, **ctx))  # fmt: skip

        allowed = prof.allowed_suites()
        pairs = accepted(f)
        off = sorted({s.name for _, s in pairs if s.code not in allowed})
        if off:
            out.append(failed(f"{head}: {len(off)} suite(s) outside the profile", "suites", None,
                              suites=off, **ctx))  # fmt: skip
        horizons = {s.name: allowed[s.code] for _, s in pairs if allowed.get(s.code) is not None}
        horizons |= {v: y for v, y in prof.protocols.until.items() if v in f.supported}
        expired = {n: y for n, y in horizons.items() if y is not None and y < year}
        soon = {
            n: y
            for n, y in horizons.items()
            if y is not None and year <= y < year + params.lead_years
        }
        if expired:
            out.append(failed(f"{head}: past their end date: {', '.join(sorted(expired))}",
                              "expired", None, horizons=expired, **ctx))  # fmt: skip
        if soon:
            out.append(failed(f"{head}: end of use within {params.lead_years} year(s): "
                              f"{', '.join(sorted(soon))}", "expiring", Severity.LOW,
                              horizons=soon, **ctx))  # fmt: skip

        if prof.groups:
            groups = sorted(set(f.groups_tls12) | set(f.groups_tls13))
            bad_groups = [g for g in groups if g not in prof.groups]
            if bad_groups:
                out.append(failed(f"{head}: groups outside the profile: {', '.join(bad_groups)}",
                                  "groups", None, groups=bad_groups, **ctx))  # fmt: skip
        if prof.dh_min_bits and f.dh_bits is not None and f.dh_bits < prof.dh_min_bits:
            out.append(failed(f"{head}: {f.dh_bits}-bit DH (profile: {prof.dh_min_bits})", "dh",
                              None, dh_bits=f.dh_bits, **ctx))  # fmt: skip
        if out:
            return out
        return [passed(f"{head}: conforms", supported=f.supported, horizons=horizons, **ctx)]
