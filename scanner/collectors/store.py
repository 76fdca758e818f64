"""Document stores: list, read, extract and detect, and record who can read the store.

One facts document per store. For each document with something to report it holds the masked
findings (rule, legal category, confidence, where), counts per rule, and every part that could
not be scanned with the reason; values themselves are never stored. The store's exposure facts
(anonymous access, world-readable folders, public ACLs, cleartext transport) sit beside them,
and an exposure x sensitivity score with the documents to fix first.

The connector is synchronous and runs in a worker thread; its own time budget ends the walk
before the runner's collector timeout would, so a large store returns what it scanned and names
what it did not reach instead of losing everything.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import heapq
import json
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from scanner.credentials import CredentialError, resolve
from scanner.detect.engine import get_engine
from scanner.detect.findings import Finding, detect_parts
from scanner.detect.rules import RULES, Category, Sensitivity
from scanner.extract import Limits, extract
from scanner.extract.base import SkipReason
from scanner.inventory import Store
from scanner.model import Facts, Target, TargetKind
from scanner.plugins import CollectContext, Collector
from scanner.stores.base import Connector, Entry, Exposure, StoreError, TooLarge, TooManyEntries
from scanner.stores.cache import DOC, ScanCache, default_dir, gc_paused

KINDS = ("local", "webdav", "s3", "smb")
MAX_FINDINGS_PER_DOC = 50  # masked samples kept per document (counts stay complete)
MAX_LISTED = 500  # documents named in 'unreached'


class StoreScanOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    limits: Limits = Field(default_factory=Limits)
    max_entries: int = Field(default=100_000, ge=1)
    max_depth: int = Field(default=32, ge=0)
    budget_seconds: float = Field(default=50.0, gt=0)  # below the runner's default 60 s
    engine: str = "auto"  # auto | hyperscan | re
    cache: bool = True
    cache_dir: str | None = None  # default: $ASSAY_CACHE_DIR or ~/.cache/assay/stores


class SkipInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    where: str = ""
    reason: SkipReason
    detail: str = ""


class DocumentFacts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    kind: str
    size: int | None = None
    world_readable: bool | None = None
    mode: str = ""
    counts: dict[str, int] = Field(default_factory=dict)
    findings: list[Finding] = Field(default_factory=list)
    skipped: list[SkipInfo] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    pages: int = 0
    from_cache: bool = False
    sensitivity: int = 0  # 0-100, see doc_sensitivity
    risk: int = 0  # sensitivity x exposure of this document, 0-100


class StoreScore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exposure: float  # 0-1: who can read it
    sensitivity: int  # 0-100: how sensitive the most sensitive content is
    risk: int  # 0-100
    unknown: int = 0  # documents not (fully) scanned
    top: list[str] = Field(default_factory=list)  # documents to fix first
    formula: str = (
        "document risk = sensitivity (max over findings: tuyet_mat 100, toi_mat 95, mat 90, "
        "secret 75, foreign marking 70, sensitive PII 65, basic PII 40; +10 x log10(findings)) "
        "x exposure (anonymous/public 1.0, world-readable file 0.8, networked 0.6, local 0.3; "
        "+0.2 for cleartext transport, max 1); store risk = max document risk"
    )


class StoreDocuments(Facts):
    store_id: str
    kind: str
    location: str
    networked: bool = True
    scanned_at: str  # ISO 8601 UTC; checks use its date for allow-list expiry
    engine: str = ""
    exposure: Exposure
    listing_error: str = ""
    complete: bool = True
    files_total: int = 0
    files_scanned: int = 0
    files_from_cache: int = 0
    bytes_read: int = 0
    documents: list[DocumentFacts] = Field(default_factory=list)  # only those worth reporting
    unreached: list[str] = Field(default_factory=list)
    unreached_count: int = 0
    score: StoreScore | None = None


_WEIGHT = {
    Sensitivity.TUYET_MAT: 100, Sensitivity.TOI_MAT: 95, Sensitivity.MAT: 90,
    Sensitivity.SECRET: 75, Sensitivity.FOREIGN: 70, Sensitivity.SENSITIVE: 65,
    Sensitivity.BASIC: 40, Sensitivity.DECLASSIFIED: 10,
}  # fmt: skip


def doc_sensitivity(findings: list[Finding], counts: Mapping[str, int]) -> int:
    if not findings:
        return 0
    top = max(_WEIGHT[f.sensitivity] for f in findings)
    total = sum(counts.values())
    return min(100, int(top + 10 * math.log10(max(total, 1))))


def exposure_factor(exp: Exposure, networked: bool, world_readable: bool | None) -> float:
    if exp.anonymous_read or exp.public_listing or exp.public_acl:
        base = 1.0
    elif world_readable:
        base = 0.8
    elif networked:
        base = 0.6
    else:
        base = 0.3
    return min(1.0, base + (0.2 if exp.cleartext else 0.0))


@functools.cache
def _facts_key() -> str:
    """The rules and the shape of the cached facts: either changing means a full rescan."""
    rules = "|".join(f"{r.id}:{r.pattern}" for r in RULES)
    schema = json.dumps(DocumentFacts.model_json_schema(), sort_keys=True)
    return f"v2|{rules}|{schema}"


def _config_digest(opts: StoreScanOptions) -> str:
    raw = f"{_facts_key()}|{opts.limits.model_dump_json()}".encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def split_location(target: Target) -> tuple[str, str]:
    kind, _, location = (target.path or "").partition(":")
    return kind, location


def redact_location(location: str) -> str:
    parts = urlsplit(location)
    if parts.password:
        return location.replace(f":{parts.password}@", ":****@")
    return location


class StoreDocumentsCollector(Collector):
    id = "store.documents"
    target_kind = TargetKind.STORE
    facts_model = StoreDocuments
    timeout: ClassVar[float] = 3600.0  # the runner caps it; the walk keeps its own budget

    def __init__(
        self,
        stores: Mapping[str, Store] | None = None,
        options: StoreScanOptions | None = None,
    ) -> None:
        self.stores = dict(stores or {})
        self.options = options or StoreScanOptions()

    def applies(self, target: Target) -> bool:
        return target.kind is TargetKind.STORE and split_location(target)[0] in KINDS

    async def collect(self, target: Target, ctx: CollectContext) -> Facts:
        kind, location = split_location(target)
        store_id = target.names[0] if target.names else location
        known: Mapping[str, Store] = getattr(ctx, "stores", None) or self.stores
        store = known.get(store_id) or Store(id=_safe_id(store_id), kind=kind, location=location)  # type: ignore[arg-type]
        connector = await asyncio.to_thread(self._connect, store, ctx)
        try:
            return await asyncio.to_thread(self._scan, store, connector)
        finally:
            await asyncio.to_thread(connector.close)

    # -- connecting ---------------------------------------------------------------------------
    def _secret(self, store: Store) -> tuple[str, str] | None:
        if store.credential is None:
            return None
        try:
            value = resolve(store.credential, f"store {store.id}")
        except CredentialError as exc:
            raise StoreError(str(exc)) from None
        user, sep, secret = value.partition(":")
        if not sep:
            raise StoreError(
                f"store {store.id}: the credential {store.credential.describe()} must be "
                "'user:password' (S3: 'access-key-id:secret-key')"
            )
        return user, secret

    def _connect(self, store: Store, ctx: CollectContext) -> Connector:
        if store.kind == "local":
            from scanner.stores.local import LocalStore

            return LocalStore(store.location)
        creds = self._secret(store)
        if store.kind == "webdav":
            from scanner.stores.webdav import WebDavStore

            address = ctx.scope.resolve_url_host(store.location)
            return WebDavStore(store.location, address, creds, timeout=ctx.probe_timeout)
        if store.kind == "s3":
            from scanner.stores.s3 import S3Store

            address = ctx.scope.resolve_url_host(store.location)
            return S3Store(store.location, address, creds, timeout=ctx.probe_timeout)
        from scanner.stores.smb import SmbStore

        address = ctx.scope.resolve_url_host(store.location)
        try:
            return SmbStore(store.location, address, creds, timeout=ctx.probe_timeout)
        except StoreError as exc:
            raise StoreError(f"store {store.id}: {exc}") from None

    # -- scanning ------------------------------------------------------------------------------
    def _scan(self, store: Store, conn: Connector) -> StoreDocuments:
        opts = self.options
        started = time.monotonic()
        deadline = started + opts.budget_seconds
        engine = get_engine(opts.engine)
        year = datetime.now(UTC).year
        exposure = conn.exposure()
        facts = StoreDocuments(
            store_id=store.id,
            kind=store.kind,
            location=redact_location(store.location),
            networked=store.networked,
            scanned_at=datetime.now(UTC).isoformat(timespec="seconds"),
            engine=engine.name,
            exposure=exposure,
        )
        cache_dir = None
        if opts.cache:
            cache_dir = default_dir() if opts.cache_dir is None else _path(opts.cache_dir)
        cache = ScanCache(cache_dir, f"{store.kind}:{store.location}", _config_digest(opts))
        entries: list[Entry] = []
        conn.previous(cache.entries)
        try:
            for e in conn.walk(opts.max_entries, opts.max_depth):
                entries.append(e)
                if time.monotonic() > deadline:
                    facts.complete = False
                    facts.listing_error = "time budget ended while listing"
                    break
        except TooManyEntries as exc:
            facts.complete, facts.listing_error = False, str(exc)
        except StoreError as exc:
            facts.complete, facts.listing_error = False, str(exc)
        facts.files_total = len(entries)
        slots: list[DocumentFacts | tuple[dict[str, Any], Entry]] = []  # cached ones as dicts
        from_cache = 0  # a local count: a pydantic attribute write costs more than the look-up
        unchanged = cache.unchanged
        for i, entry in enumerate(entries):
            if time.monotonic() > deadline:
                rest = entries[i:]
                facts.complete = False
                facts.unreached_count = len(rest)
                facts.unreached = [e.path for e in rest[:MAX_LISTED]]
                break
            hit = unchanged(entry.path, entry.size, entry.mtime, entry.etag)
            if hit is not None:  # unchanged: one stat, no read, no model built yet
                from_cache += 1
                if hit[DOC]:
                    slots.append((hit[DOC], entry))
                continue
            doc = self._document(entry, conn, cache, engine, year, facts)
            if doc is not None and _worth(doc):
                slots.append(doc)
        facts.files_from_cache += from_cache
        facts.documents = self._restore(slots, conn, cache, engine, year, facts)
        # the exposure may have learnt more while walking (world-readable folders)
        facts.exposure = conn.exposure() if store.kind in ("local", "smb") else exposure
        cache.save()
        facts.score = _score(facts)
        return facts

    def _document(
        self,
        entry: Entry,
        conn: Connector,
        cache: ScanCache,
        engine: Any,
        year: int,
        facts: StoreDocuments,
    ) -> DocumentFacts | None:
        lim = self.options.limits
        base = DocumentFacts(
            path=entry.path,
            kind=_ext(entry.path),
            size=entry.size,
            world_readable=entry.world_readable,
            mode=entry.mode,
        )
        try:
            data = conn.read(entry, lim.max_file_bytes)
        except TooLarge as exc:
            base.skipped.append(SkipInfo(reason=SkipReason.OVERSIZED, detail=str(exc)))
            return base
        except StoreError as exc:
            base.skipped.append(SkipInfo(reason=SkipReason.UNREADABLE, detail=str(exc)))
            return base
        facts.bytes_read += len(data)
        facts.files_scanned += 1
        if entry.size is not None and entry.size != len(data):
            base.notes.append(f"listed as {entry.size} bytes, delivered {len(data)}")
        sha = hashlib.sha256(data).hexdigest()
        same = cache.same_hash(entry.path, sha)
        if same is not None:  # touched, not changed: no extraction
            restored = _rebuild(same[DOC], entry) if same[DOC] else None
            if not same[DOC] or restored is not None:
                cache.put(entry.path, entry.size, entry.mtime, entry.etag, sha, same[DOC])
                return restored
        ex = extract(entry.path, data, lim)
        findings = detect_parts(
            ex.parts, entry.path, year, engine, name=entry.path.rsplit("/", 1)[-1]
        )
        counts: dict[str, int] = {}
        for f in findings:
            counts[f.rule] = counts.get(f.rule, 0) + 1
        base.kind = ex.kind
        base.pages = ex.pages
        base.counts = counts
        base.findings = _sample(findings)
        base.skipped = [
            SkipInfo(where=s.where, reason=s.reason, detail=s.detail) for s in ex.skipped
        ]
        base.notes += ex.notes
        base.sensitivity = doc_sensitivity(findings, counts)
        base.risk = int(
            base.sensitivity
            * exposure_factor(facts.exposure, facts.networked, entry.world_readable)
        )
        stored = None
        if _worth(base):
            stored = base.model_dump(mode="json")
            stored["from_cache"] = True
        if not any(s.reason is SkipReason.TIME_BUDGET for s in ex.skipped):
            cache.put(entry.path, entry.size, entry.mtime, entry.etag, sha, stored)
        return base

    def _restore(
        self,
        slots: list[DocumentFacts | tuple[dict[str, Any], Entry]],
        conn: Connector,
        cache: ScanCache,
        engine: Any,
        year: int,
        facts: StoreDocuments,
    ) -> list[DocumentFacts]:
        """The documents in listing order, cached ones rebuilt from the verified cache. An
        entry that does not rebuild (only a bug could write one) is dropped and its file
        scanned again, so a bad cache costs time, never a finding."""
        out: list[DocumentFacts] = []
        with gc_paused():
            rebuilt = [s if not isinstance(s, tuple) else _rebuild(*s) for s in slots]
        for slot, doc in zip(slots, rebuilt, strict=True):
            if doc is None and isinstance(slot, tuple):
                entry = slot[1]
                cache.forget(entry.path)
                facts.files_from_cache -= 1
                doc = self._document(entry, conn, cache, engine, year, facts)
            if doc is not None and _worth(doc):
                out.append(doc)
        return out


def _worth(doc: DocumentFacts) -> bool:
    """A document is reported (and its facts cached) only with something to say."""
    return bool(doc.findings or doc.skipped or doc.notes)


# Rebuilding cached facts without validating them again. The cache file verified (see
# scanner.stores.cache), so each entry is what model_dump(mode="json") wrote for these models
# (the schema is part of the cache key); what JSON cannot say is restored here: enums, tuples,
# nested models. Every model gets exactly the state validation would give it (all fields set),
# and a test compares the rebuilt facts with validated ones field by field.
_new, _set = object.__new__, object.__setattr__
_DOC_FIELDS = frozenset(DocumentFacts.model_fields)
_FINDING_FIELDS = frozenset(Finding.model_fields)
_SKIP_FIELDS = frozenset(SkipInfo.model_fields)
_CATEGORY = {c.value: c for c in Category}
_SENSITIVITY = {c.value: c for c in Sensitivity}
_REASON = {c.value: c for c in SkipReason}


def _raw(cls: type[BaseModel], values: dict[str, Any], fields: frozenset[str]) -> Any:
    if values.keys() != fields:
        raise KeyError("fields")
    obj = _new(cls)
    _set(obj, "__dict__", values)
    _set(obj, "__pydantic_fields_set__", set(fields))
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


def _finding(cached: dict[str, Any]) -> Finding:
    values = dict(cached)  # the cache's own dict is written again as it is
    values["category"] = _CATEGORY[values["category"]]
    values["sensitivity"] = _SENSITIVITY[values["sensitivity"]]
    values["legal"] = tuple(values["legal"])
    result: Finding = _raw(Finding, values, _FINDING_FIELDS)
    return result


def _skip(cached: dict[str, Any]) -> SkipInfo:
    values = dict(cached)
    values["reason"] = _REASON[values["reason"]]
    result: SkipInfo = _raw(SkipInfo, values, _SKIP_FIELDS)
    return result


def _rebuild(cached: dict[str, Any], entry: Entry) -> DocumentFacts | None:
    """The cached facts of `entry`, with who may read it taken from today's listing (a chmod
    keeps size and mtime); None if the entry is not what Assay writes."""
    try:
        values = dict(cached)
        if values["path"] != entry.path:
            return None
        values["findings"] = [_finding(f) for f in values["findings"]]
        values["skipped"] = [_skip(x) for x in values["skipped"]]
        values["counts"] = dict(values["counts"])
        values["notes"] = list(values["notes"])
        values["from_cache"] = True
        values["mode"], values["world_readable"] = entry.mode, entry.world_readable
        doc: DocumentFacts = _raw(DocumentFacts, values, _DOC_FIELDS)
    except (TypeError, KeyError, ValueError, AttributeError):
        return None
    return doc


def _sample(findings: list[Finding]) -> list[Finding]:
    """Keep every marking and at most MAX_FINDINGS_PER_DOC findings, spread over the rules."""
    marks = [f for f in findings if f.category in (Category.MARKING_VN, Category.MARKING_FOREIGN)]
    rest = [f for f in findings if f not in marks]
    seen: dict[str, int] = {}
    kept = []
    for f in rest:
        n = seen.get(f.rule, 0)
        if n < 10:
            kept.append(f)
            seen[f.rule] = n + 1
    return (marks + kept)[: max(MAX_FINDINGS_PER_DOC, len(marks))]


def _score(facts: StoreDocuments) -> StoreScore:
    docs = facts.documents
    factor = {  # cached documents: the exposure may have changed since
        wr: exposure_factor(facts.exposure, facts.networked, wr) for wr in (None, True, False)
    }
    for d in docs:
        risk = int(d.sensitivity * factor[d.world_readable])
        if d.risk != risk:
            d.risk = risk
    ranked = heapq.nsmallest(10, (d for d in docs if d.risk), key=lambda d: (-d.risk, d.path))
    unknown = sum(1 for d in docs if d.skipped) + facts.unreached_count
    return StoreScore(
        exposure=factor[None],
        sensitivity=max((d.sensitivity for d in docs), default=0),
        risk=max((d.risk for d in docs), default=0),
        unknown=unknown,
        top=[d.path for d in ranked],
    )


def _ext(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def _safe_id(value: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_.-" else "-" for c in value).strip("-.")
    return cleaned or "store"


def _path(value: str) -> Any:
    from pathlib import Path

    return Path(value)
