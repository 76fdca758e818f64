"""The plugin contract: collectors gather facts, checks judge them, reporters render them.

All three register through entry points (`assay.collectors`, `assay.checks`,
`assay.reporters`); the built-ins are registered the same way in Assay's own
pyproject.toml. A plugin that fails to import or does not honour the contract is recorded in
`Registry.broken` and skipped; it never stops the others from loading.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from scanner.model import Facts, Reference, Remediation, Result, Severity, Target, TargetKind

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from scanner.scope import ScopeGuard

GROUP_COLLECTORS = "assay.collectors"
GROUP_CHECKS = "assay.checks"
GROUP_REPORTERS = "assay.reporters"

_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")

F = TypeVar("F", bound=Facts)


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckMeta(BaseModel):
    """Metadata every check declares; validated when the check is registered."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str = Field(min_length=5, max_length=120)
    target_kind: TargetKind
    facts: tuple[str, ...] = Field(min_length=1)
    severity: Severity
    rationale: str = Field(min_length=20)
    remediation: Remediation
    references: tuple[Reference, ...] = Field(min_length=1)
    tags: tuple[str, ...] = ()
    active: bool = False  # needs --active (writes, or guesses passwords)

    @field_validator("id")
    @classmethod
    def _dotted(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"check id {v!r} must be dotted lower-case, e.g. 'net.ftp.anonymous'")
        return v


@dataclass
class CollectContext:
    """What a collector may use. Handed in by the runner; tests build their own."""

    scope: ScopeGuard
    active: bool = False
    probe_timeout: float = 5.0  # budget of one network read/connect
    # facts already gathered on the same scan for other targets (e.g. a host's services)
    related: Mapping[str, FactsView] = field(default_factory=dict)
    # an active probe records itself here; the runner stores it with the facts
    active_log: list[str] = field(default_factory=list)
    discovery_engine: str = ""  # "nmap 7.93" or "connect" when nmap was missing
    tls_trust: tuple[Path, ...] = ()  # CA files/directories trusted besides the system store
    # the unit's declared document stores by id (inventory `Store` models: kind, location,
    # credential reference, networked), for the store collectors
    stores: Mapping[str, Any] = field(default_factory=dict)
    # the inventory's `settings.active` (an `ActiveConfig`: classes, attempts, interval,
    # credential file); None: the defaults. Only `active` switches active probes on.
    active_settings: Any = None


class NotApplicable(Exception):
    """Raised by a collector when the target turns out not to offer what it collects (a
    service that refuses STARTTLS has no TLS to audit). The runner records the checks that
    need these facts as `not_applicable` with this reason, never as an error or a pass."""


class Collector(ABC):
    """Gathers typed facts about one target. All I/O of a scan happens in collectors."""

    id: ClassVar[str]
    target_kind: ClassVar[TargetKind]
    facts_model: ClassVar[type[Facts]]
    timeout: ClassVar[float] = 30.0  # whole-collector budget, enforced by the runner

    def applies(self, target: Target) -> bool:
        return target.kind is self.target_kind

    def bound_for(self, target: Target, ctx: CollectContext) -> float | None:
        """The runner's limit for this target in seconds; None means `timeout` (capped by the
        scan's collector_timeout). The host collector returns the host's own ssh budget."""
        return None

    @abstractmethod
    async def collect(self, target: Target, ctx: CollectContext) -> Facts: ...


class FactsView:
    """The facts available to a check for one target (and, for a host, its services)."""

    def __init__(
        self,
        target: Target,
        facts: Mapping[str, Facts] | None = None,
        services: Iterable[tuple[Target, FactsView]] = (),
    ) -> None:
        self.target = target
        self._facts = dict(facts or {})
        self.services = list(services)

    def __contains__(self, collector_id: str) -> bool:
        return collector_id in self._facts

    def get(self, collector_id: str, model: type[F]) -> F:
        value = self._facts[collector_id]
        if not isinstance(value, model):
            raise TypeError(
                f"facts {collector_id!r} are {type(value).__name__}, not {model.__name__}"
            )
        return value

    def maybe(self, collector_id: str, model: type[F]) -> F | None:
        return self.get(collector_id, model) if collector_id in self._facts else None

    def items(self) -> Iterator[tuple[str, Facts]]:
        return iter(self._facts.items())


class Check(ABC):
    """A pure function of facts. No I/O: re-running it on stored facts gives the same result."""

    meta: ClassVar[CheckMeta]
    Params: ClassVar[type[BaseModel]] = NoParams

    def applies(self, target: Target, facts: FactsView) -> bool:
        """Whether the check has anything to say about this target (default: facts present)."""
        return all(f in facts for f in self.meta.facts)

    @abstractmethod
    def evaluate(self, facts: FactsView, params: Any) -> Result | Iterable[Result]: ...


class Reporter(ABC):
    """Renders the canonical assessment document into one output format."""

    format: ClassVar[str]
    extension: ClassVar[str]

    @abstractmethod
    def render(self, assessment: Any) -> str: ...

    def write(self, assessment: Any, out_dir: Path) -> Path:
        path = out_dir / f"assessment.{self.extension}"
        path.write_text(self.render(assessment), encoding="utf-8")
        return path


@dataclass(frozen=True)
class BrokenPlugin:
    group: str
    name: str
    reason: str


@dataclass
class Registry:
    collectors: dict[str, Collector] = field(default_factory=dict)
    checks: dict[str, Check] = field(default_factory=dict)
    reporters: dict[str, Reporter] = field(default_factory=dict)
    broken: list[BrokenPlugin] = field(default_factory=list)

    # -- registration (also used directly by tests) -------------------------------------
    def add_collector(self, obj: object, name: str = "") -> None:
        cls = obj if isinstance(obj, type) else type(obj)
        if not (isinstance(cls, type) and issubclass(cls, Collector)):
            raise TypeError(f"{name or cls!r} is not a Collector subclass")
        for attr in ("id", "target_kind", "facts_model"):
            if not hasattr(cls, attr):
                raise TypeError(f"collector {cls.__name__} does not declare {attr!r}")
        inst = obj if isinstance(obj, Collector) else cls()
        if inst.id in self.collectors:
            raise ValueError(f"collector id {inst.id!r} is registered twice")
        self.collectors[inst.id] = inst

    def add_check(self, obj: object, name: str = "") -> None:
        cls = obj if isinstance(obj, type) else type(obj)
        if not (isinstance(cls, type) and issubclass(cls, Check)):
            raise TypeError(f"{name or cls!r} is not a Check subclass")
        meta = getattr(cls, "meta", None)
        if not isinstance(meta, CheckMeta):
            raise TypeError(f"check {cls.__name__} has no valid CheckMeta 'meta'")
        if not (isinstance(cls.Params, type) and issubclass(cls.Params, BaseModel)):
            raise TypeError(f"check {meta.id}: Params must be a pydantic model")
        try:
            cls.Params()
        except ValidationError as exc:
            raise TypeError(f"check {meta.id}: Params must have defaults for every field") from exc
        if meta.id in self.checks:
            raise ValueError(f"check id {meta.id!r} is registered twice")
        inst = obj if isinstance(obj, Check) else cls()
        self.checks[meta.id] = inst

    def add_reporter(self, obj: object, name: str = "") -> None:
        cls = obj if isinstance(obj, type) else type(obj)
        if not (isinstance(cls, type) and issubclass(cls, Reporter)):
            raise TypeError(f"{name or cls!r} is not a Reporter subclass")
        inst = obj if isinstance(obj, Reporter) else cls()
        self.reporters[inst.format] = inst

    # -- queries -------------------------------------------------------------------------
    def validate(self) -> None:
        """Drop checks whose facts no registered collector provides (reported as broken)."""
        for cid, check in list(self.checks.items()):
            missing = [f for f in check.meta.facts if f not in self.collectors]
            if missing:
                del self.checks[cid]
                self.broken.append(
                    BrokenPlugin(
                        GROUP_CHECKS, cid, f"needs facts {missing} that no collector provides"
                    )
                )

    def facts_model(self, collector_id: str) -> type[Facts] | None:
        col = self.collectors.get(collector_id)
        return col.facts_model if col else None


def _load_group(group: str, adder: Any, registry: Registry, eps: Iterable[EntryPoint]) -> None:
    for ep in sorted(eps, key=lambda e: e.name):
        try:
            adder(ep.load(), ep.name)
        except Exception as exc:  # a broken plugin must never stop the others
            registry.broken.append(BrokenPlugin(group, ep.name, f"{type(exc).__name__}: {exc}"))


def load_registry() -> Registry:
    """Load every collector, check and reporter registered through entry points."""
    from importlib.metadata import entry_points  # only a registry load needs it, not a probe

    reg = Registry()
    _load_group(GROUP_COLLECTORS, reg.add_collector, reg, entry_points(group=GROUP_COLLECTORS))
    _load_group(GROUP_CHECKS, reg.add_check, reg, entry_points(group=GROUP_CHECKS))
    _load_group(GROUP_REPORTERS, reg.add_reporter, reg, entry_points(group=GROUP_REPORTERS))
    reg.validate()
    return reg
