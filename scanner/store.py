"""The store: scans, targets, facts and outcomes, written per target as results arrive.

SQLAlchemy 2 Core with Alembic migrations. An SQLite file by default; any SQLAlchemy URL
(`postgresql+psycopg://...`) through `--db` or `ASSAY_DB`. Facts are stored with the scan so an
old scan can be re-evaluated under new checks without touching the network again.

Each target is written in one transaction (its facts, outcomes and state together), so a scan
killed at any moment keeps every finished target and `assay scan --resume` skips them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from scanner.model import Outcome, Target

DEFAULT_DB_ENV = "ASSAY_DB"

metadata = MetaData()

scans = Table(
    "scans",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("state", String(16), nullable=False),  # running | complete | interrupted
    Column("inventory_name", String(255), nullable=False, server_default=""),
    Column("inventory_sha256", String(64), nullable=False, server_default=""),
    Column("inventory_text", Text, nullable=False, server_default=""),
    Column("units", JSON, nullable=False),  # unit ids scanned
    Column("options", JSON, nullable=False),  # active, ports, ...
    Column("tool_version", String(32), nullable=False),
    Column("broken_plugins", JSON, nullable=False),
    Column("active_probes", JSON, nullable=False),
)

discoveries = Table(
    "discoveries",
    metadata,
    Column("scan_id", String(40), ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True),
    Column("unit", String(64), primary_key=True),
    Column("doc", JSON, nullable=False),  # DiscoveryDoc
    Column("targets", JSON, nullable=False),  # the targets discovery produced (Target dumps)
)

targets = Table(
    "targets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scan_id", String(40), ForeignKey("scans.id", ondelete="CASCADE"), nullable=False),
    Column("unit", String(64), nullable=False),
    Column("key", String(1024), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("data", JSON, nullable=False),
    Column("state", String(16), nullable=False),  # done | error
    Column("errors", JSON, nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("scan_id", "key", name="uq_targets_scan_key"),
)

facts = Table(
    "facts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("target_id", Integer, ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    Column("collector", String(128), nullable=False),
    Column("data", JSON, nullable=False),
    UniqueConstraint("target_id", "collector", name="uq_facts_target_collector"),
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scan_id", String(40), ForeignKey("scans.id", ondelete="CASCADE"), nullable=False),
    Column("target_id", Integer, ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    Column("check_id", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("fingerprint", String(32), nullable=False),
    Column("data", JSON, nullable=False),
    Index("ix_outcomes_scan", "scan_id"),
    Index("ix_outcomes_fingerprint", "fingerprint"),
)


class StoreError(Exception):
    """The database cannot be opened or written; the message names the URL (without password)."""


def default_url() -> str:
    env = os.environ.get(DEFAULT_DB_ENV)
    if env:
        return env
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "assay"
    return f"sqlite:///{base / 'assay.db'}"


def safe_url(url: str) -> str:
    """The URL with any password replaced, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


@dataclass(frozen=True)
class ScanRecord:
    id: str
    started_at: datetime
    finished_at: datetime | None
    state: str
    inventory_name: str
    inventory_sha256: str
    inventory_text: str
    units: list[str]
    options: dict[str, Any]
    tool_version: str
    broken_plugins: list[dict[str, str]]
    active_probes: list[str]


@dataclass(frozen=True)
class TargetRecord:
    id: int
    unit: str
    target: Target
    state: str
    errors: list[str]
    facts: dict[str, dict[str, Any]]


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite returns naive datetimes
        return value.replace(tzinfo=UTC)
    return value


class Store:
    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        try:
            if self.url.startswith("sqlite:///"):
                path = Path(self.url.removeprefix("sqlite:///"))
                if str(path) not in ("", ":memory:"):
                    path.parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(self.url, future=True)
        except (SQLAlchemyError, OSError, ValueError, ImportError) as exc:
            raise StoreError(f"cannot open database {safe_url(self.url)}: {exc}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.migrate()

    def close(self) -> None:
        """Release pooled connections (a long-lived server keeps one Store open instead)."""
        self.engine.dispose()

    # -- schema ----------------------------------------------------------------------------
    def migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot prepare database {safe_url(self.url)}: {exc}") from None

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"database {safe_url(self.url)}: {exc}") from None

    # -- scans -----------------------------------------------------------------------------
    def create_scan(
        self,
        scan_id: str,
        *,
        inventory_name: str,
        inventory_sha256: str,
        inventory_text: str,
        units: list[str],
        options: dict[str, Any],
        tool_version: str,
        started_at: datetime | None = None,
    ) -> None:
        with self._tx() as c:
            c.execute(
                insert(scans).values(
                    id=scan_id,
                    started_at=started_at or datetime.now(UTC),
                    state="running",
                    inventory_name=inventory_name,
                    inventory_sha256=inventory_sha256,
                    inventory_text=inventory_text,
                    units=units,
                    options=options,
                    tool_version=tool_version,
                    broken_plugins=[],
                    active_probes=[],
                )
            )

    def scan(self, scan_id: str) -> ScanRecord:
        with self._tx() as c:
            row = c.execute(select(scans).where(scans.c.id == scan_id)).mappings().first()
            if row is None:
                # accept a unique prefix, like git does for commits
                rows = (
                    c.execute(select(scans).where(scans.c.id.like(f"{_like(scan_id)}%", "\\")))
                    .mappings()
                    .all()
                )
                if len(rows) != 1:
                    why = "is ambiguous" if rows else "is not in the store"
                    raise KeyError(f"scan {scan_id!r} {why} ({safe_url(self.url)})")
                row = rows[0]
        return ScanRecord(
            id=row["id"],
            started_at=_utc(row["started_at"]) or datetime.now(UTC),
            finished_at=_utc(row["finished_at"]),
            state=row["state"],
            inventory_name=row["inventory_name"],
            inventory_sha256=row["inventory_sha256"],
            inventory_text=row["inventory_text"],
            units=list(row["units"]),
            options=dict(row["options"]),
            tool_version=row["tool_version"],
            broken_plugins=list(row["broken_plugins"]),
            active_probes=list(row["active_probes"]),
        )

    def list_scans(self, limit: int = 50) -> list[ScanRecord]:
        with self._tx() as c:
            ids = c.execute(
                select(scans.c.id).order_by(scans.c.started_at.desc()).limit(limit)
            ).scalars()
            id_list = list(ids)
        return [self.scan(i) for i in id_list]

    def finish_scan(
        self,
        scan_id: str,
        state: str,
        broken_plugins: list[dict[str, str]] | None = None,
        active_probes: Iterable[str] = (),
    ) -> None:
        values: dict[str, Any] = {"state": state, "finished_at": datetime.now(UTC)}
        if broken_plugins is not None:
            values["broken_plugins"] = broken_plugins
        probes = list(active_probes)
        with self._tx() as c:
            if probes:
                old = c.execute(select(scans.c.active_probes).where(scans.c.id == scan_id)).scalar()
                values["active_probes"] = list(old or []) + probes
            c.execute(update(scans).where(scans.c.id == scan_id).values(**values))

    def set_state(self, scan_id: str, state: str) -> None:
        with self._tx() as c:
            c.execute(update(scans).where(scans.c.id == scan_id).values(state=state))

    # -- discovery -------------------------------------------------------------------------
    def save_discovery(
        self, scan_id: str, unit: str, doc: dict[str, Any], found: list[Target]
    ) -> None:
        with self._tx() as c:
            c.execute(
                insert(discoveries).values(
                    scan_id=scan_id,
                    unit=unit,
                    doc=doc,
                    targets=[t.model_dump(mode="json") for t in found],
                )
            )

    def discovery(self, scan_id: str, unit: str) -> tuple[dict[str, Any], list[Target]] | None:
        with self._tx() as c:
            row = (
                c.execute(
                    select(discoveries).where(
                        discoveries.c.scan_id == scan_id, discoveries.c.unit == unit
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return dict(row["doc"]), [Target.model_validate(t) for t in row["targets"]]

    # -- targets ---------------------------------------------------------------------------
    def save_target(
        self,
        scan_id: str,
        target: Target,
        *,
        state: str,
        errors: list[str],
        target_facts: dict[str, dict[str, Any]],
        results: list[Outcome],
    ) -> None:
        """Write one finished target with its facts and outcomes in a single transaction."""
        with self._tx() as c:
            pk = c.execute(
                insert(targets).values(
                    scan_id=scan_id,
                    unit=target.unit,
                    key=target.key,
                    kind=target.kind.value,
                    data=target.model_dump(mode="json"),
                    state=state,
                    errors=errors,
                    finished_at=datetime.now(UTC),
                )
            ).inserted_primary_key
            assert pk is not None
            tid = pk[0]
            if target_facts:
                c.execute(
                    insert(facts),
                    [
                        {"target_id": tid, "collector": k, "data": v}
                        for k, v in sorted(target_facts.items())
                    ],
                )
            if results:
                c.execute(
                    insert(outcomes),
                    [
                        {
                            "scan_id": scan_id,
                            "target_id": tid,
                            "check_id": o.check_id,
                            "status": o.status.value,
                            "severity": o.severity.value,
                            "fingerprint": o.fingerprint,
                            "data": json.loads(o.model_dump_json()),
                        }
                        for o in results
                    ],
                )

    def finished_keys(self, scan_id: str) -> set[str]:
        with self._tx() as c:
            return set(
                c.execute(select(targets.c.key).where(targets.c.scan_id == scan_id)).scalars()
            )

    def targets(self, scan_id: str) -> list[TargetRecord]:
        with self._tx() as c:
            rows = (
                c.execute(
                    select(targets).where(targets.c.scan_id == scan_id).order_by(targets.c.id)
                )
                .mappings()
                .all()
            )
            frows = (
                c.execute(
                    select(facts.c.target_id, facts.c.collector, facts.c.data)
                    .join(targets, facts.c.target_id == targets.c.id)
                    .where(targets.c.scan_id == scan_id)
                )
                .mappings()
                .all()
            )
        by_target: dict[int, dict[str, dict[str, Any]]] = {}
        for f in frows:
            by_target.setdefault(f["target_id"], {})[f["collector"]] = dict(f["data"])
        return [
            TargetRecord(
                id=r["id"],
                unit=r["unit"],
                target=Target.model_validate(r["data"]),
                state=r["state"],
                errors=list(r["errors"]),
                facts=by_target.get(r["id"], {}),
            )
            for r in rows
        ]

    def outcomes(self, scan_id: str) -> list[Outcome]:
        with self._tx() as c:
            rows = c.execute(
                select(outcomes.c.data).where(outcomes.c.scan_id == scan_id).order_by(outcomes.c.id)
            ).scalars()
            return [Outcome.model_validate(r) for r in rows]


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()
