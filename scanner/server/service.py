"""The team server's data: users, units, jobs, schedules, findings and scores, scoped per principal.

Every read that returns unit data takes a `Principal` and filters by it; a unit the principal
may not read is reported as absent (`NotFound`), so an officer of one unit cannot even learn
which other units exist. Writes check `can_write` first.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter
from sqlalchemy import and_, delete, func, insert, or_, select, update

from scanner.inventory import InventoryError, parse_inventory
from scanner.model import Outcome, Status
from scanner.server import tables as t
from scanner.server.notify import MailRelay, add_recipient, get_relay, set_relay
from scanner.server.scores import DEFAULT_POLICY, PolicyScore, PolicyUnknown, Scorer
from scanner.server.security import (
    DUMMY_HASH,
    FAILURE_WINDOW,
    MAX_FAILURES_IP,
    MAX_FAILURES_USER,
    SESSION_LIFETIME,
    TOKEN_PREFIX,
    Principal,
    Role,
    hash_password,
    needs_rehash,
    new_secret,
    sha256,
    verify_password,
)
from scanner.store import Store, outcomes, scans, targets

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
FINDING_STATES = ("open", "fixed", "reopened", "accepted", "false_positive")
OPEN_STATES = ("open", "reopened")


class NotFound(Exception):
    """No such object, or not one the principal may see (the message says which)."""


class LoginRefused(Exception):
    """Wrong user name or password, or too many failures (`throttled`)."""

    def __init__(self, message: str, throttled: bool = False) -> None:
        super().__init__(message)
        self.throttled = throttled


def now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@dataclass
class UnitSummary:
    id: str
    name: str
    latest_scan: str | None = None
    latest_at: datetime | None = None
    scores: PolicyScore | None = None  # policy scores of the latest scan
    delta: float | None = None  # pass-rate change since the previous scan, same pack
    trend: list[float] = field(default_factory=list)  # pass rates, oldest first
    open_findings: int = 0
    new_findings: int = 0  # first seen in the latest scan
    fixed_findings: int = 0  # fixed by the latest scan
    overdue: bool = False
    next_run_at: datetime | None = None


class ServerDB:
    def __init__(self, store: Store, default_policy: str = DEFAULT_POLICY) -> None:
        self.store = store
        self.engine = store.engine
        self.scorer = Scorer(store, default_policy)

    # -- users -----------------------------------------------------------------------------
    def create_user(
        self,
        username: str,
        password: str,
        role: Role | str,
        units: Iterable[str] = (),
        all_units: bool = False,
    ) -> int:
        role = Role(role)
        if not _USERNAME.fullmatch(username):
            raise ValueError(
                f"user name {username!r}: letters, digits, '.', '_' or '-', at most 64 characters"
            )
        with self.engine.begin() as c:
            if c.execute(select(t.users.c.id).where(t.users.c.username == username)).first():
                raise ValueError(f"user {username!r} already exists")
            pk = c.execute(
                insert(t.users).values(
                    username=username,
                    password_hash=hash_password(password),
                    role=role.value,
                    all_units=all_units,
                    disabled=False,
                    created_at=now(),
                )
            ).inserted_primary_key
            assert pk is not None
            uid = int(pk[0])
            for unit in sorted(set(units)):
                c.execute(insert(t.user_units).values(user_id=uid, unit=unit))
        return uid

    def principal(self, user_id: int) -> Principal | None:
        with self.engine.begin() as c:
            row = c.execute(select(t.users).where(t.users.c.id == user_id)).mappings().first()
            if row is None or row["disabled"]:
                return None
            units = c.execute(
                select(t.user_units.c.unit).where(t.user_units.c.user_id == user_id)
            ).scalars()
            return Principal(
                user_id=row["id"],
                username=row["username"],
                role=Role(row["role"]),
                units=frozenset(units),
                all_units=bool(row["all_units"]),
            )

    def _failures(self, c: Any, key: str, at: datetime) -> int:
        row = c.execute(select(t.login_failures).where(t.login_failures.c.key == key)).first()
        if row is None or (_utc(row.window_start) or at) + FAILURE_WINDOW < at:
            return 0
        return int(row.count)

    def _fail(self, c: Any, key: str, at: datetime) -> None:
        row = c.execute(select(t.login_failures).where(t.login_failures.c.key == key)).first()
        if row is None:
            c.execute(insert(t.login_failures).values(key=key, count=1, window_start=at))
        elif (_utc(row.window_start) or at) + FAILURE_WINDOW < at:
            c.execute(
                update(t.login_failures)
                .where(t.login_failures.c.key == key)
                .values(count=1, window_start=at)
            )
        else:
            c.execute(
                update(t.login_failures)
                .where(t.login_failures.c.key == key)
                .values(count=row.count + 1)
            )

    def authenticate(self, username: str, password: str, client: str = "") -> Principal:
        at = now()
        user_key, ip_key = f"user:{username[:64]}", f"ip:{client[:64]}"
        with self.engine.begin() as c:
            if (
                self._failures(c, user_key, at) >= MAX_FAILURES_USER
                or self._failures(c, ip_key, at) >= MAX_FAILURES_IP
            ):
                raise LoginRefused("too many failed logins; try again later", throttled=True)
            row = (
                c.execute(select(t.users).where(t.users.c.username == username)).mappings().first()
            )
            ok = verify_password(row["password_hash"] if row else DUMMY_HASH, password)
            if ok and row is not None and not row["disabled"]:
                uid = int(row["id"])
                stored = str(row["password_hash"])
            else:
                uid = 0
        if not uid:
            with self.engine.begin() as c:  # committed before the refusal is raised
                self._fail(c, user_key, at)
                self._fail(c, ip_key, at)
            raise LoginRefused("wrong user name or password")
        with self.engine.begin() as c:
            c.execute(delete(t.login_failures).where(t.login_failures.c.key == user_key))
            if needs_rehash(stored):
                c.execute(
                    update(t.users)
                    .where(t.users.c.id == uid)
                    .values(password_hash=hash_password(password))
                )
        principal = self.principal(uid)
        assert principal is not None
        return principal

    def create_token(self, user_id: int, name: str) -> str:
        plain, digest = new_secret(TOKEN_PREFIX)
        with self.engine.begin() as c:
            c.execute(
                insert(t.api_tokens).values(
                    user_id=user_id, name=name[:64], token_sha256=digest, created_at=now()
                )
            )
        return plain

    def principal_for_token(self, token: str) -> Principal | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self.engine.begin() as c:
            row = c.execute(
                select(t.api_tokens.c.id, t.api_tokens.c.user_id).where(
                    t.api_tokens.c.token_sha256 == sha256(token)
                )
            ).first()
            if row is None:
                return None
            c.execute(
                update(t.api_tokens).where(t.api_tokens.c.id == row.id).values(last_used_at=now())
            )
        return self.principal(int(row.user_id))

    def create_session(self, user_id: int) -> tuple[str, str]:
        """A new browser session: (session id for the cookie, CSRF token for its forms)."""
        sid, digest = new_secret()
        csrf, _ = new_secret()
        with self.engine.begin() as c:
            c.execute(delete(t.sessions).where(t.sessions.c.expires_at < now()))
            c.execute(
                insert(t.sessions).values(
                    id_sha256=digest,
                    user_id=user_id,
                    csrf=csrf,
                    expires_at=now() + SESSION_LIFETIME,
                )
            )
        return sid, csrf

    def session(self, sid: str) -> tuple[Principal, str] | None:
        with self.engine.begin() as c:
            row = c.execute(select(t.sessions).where(t.sessions.c.id_sha256 == sha256(sid))).first()
        if row is None or (_utc(row.expires_at) or now()) < now():
            return None
        principal = self.principal(int(row.user_id))
        return (principal, str(row.csrf)) if principal else None

    def end_session(self, sid: str) -> None:
        with self.engine.begin() as c:
            c.execute(delete(t.sessions).where(t.sessions.c.id_sha256 == sha256(sid)))

    # -- units -----------------------------------------------------------------------------
    def add_unit(
        self,
        inventory_text: str,
        unit_id: str,
        inventory_name: str = "<inventory>",
        queue: str | None = None,
        policy: str | None = None,
    ) -> None:
        inv = parse_inventory(inventory_text, inventory_name)  # raises InventoryError, located
        if policy is not None:
            self.scorer.check_policy(policy)  # PolicyUnknown (a ValueError) names the known packs
        try:
            unit = inv.unit(unit_id)
        except (KeyError, ValueError, InventoryError) as exc:
            raise ValueError(f"{inventory_name}: no unit {unit_id!r} ({exc})") from None
        with self.engine.begin() as c:
            values = {
                "name": unit.name,
                "inventory_text": inventory_text,
                "queue": queue,
                "policy": policy,
            }
            if c.execute(select(t.units.c.id).where(t.units.c.id == unit_id)).first():
                c.execute(update(t.units).where(t.units.c.id == unit_id).values(**values))
            else:
                c.execute(insert(t.units).values(id=unit_id, created_at=now(), **values))

    def unit_row(self, unit_id: str) -> dict[str, Any]:
        """A unit without access checks (for the job runner and the scheduler)."""
        with self.engine.begin() as c:
            row = c.execute(select(t.units).where(t.units.c.id == unit_id)).mappings().first()
        if row is None:
            raise NotFound(f"unit {unit_id!r} not found")
        return dict(row)

    def unit_ids(self) -> list[str]:
        with self.engine.begin() as c:
            return list(c.execute(select(t.units.c.id).order_by(t.units.c.id)).scalars())

    def unit(self, who: Principal, unit_id: str) -> dict[str, Any]:
        if not who.can_read(unit_id):
            raise NotFound(f"unit {unit_id!r} not found")
        with self.engine.begin() as c:
            row = c.execute(select(t.units).where(t.units.c.id == unit_id)).mappings().first()
        if row is None:
            raise NotFound(f"unit {unit_id!r} not found")
        return dict(row)

    def units(self, who: Principal) -> list[dict[str, Any]]:
        with self.engine.begin() as c:
            rows = c.execute(select(t.units).order_by(t.units.c.id)).mappings().all()
        return [dict(r) for r in rows if who.can_read(r["id"])]

    # -- jobs ------------------------------------------------------------------------------
    def create_job(
        self,
        unit_id: str,
        trigger: str = "api",
        options: dict[str, Any] | None = None,
        schedule_id: int | None = None,
    ) -> str:
        """A queued job; its policy (option `policy`: given, else the unit's, else the server's
        default) is fixed now, so the scan is scored under the pack it was started for."""
        options = dict(options or {})
        unit_policy = self.unit_row(unit_id).get("policy")
        options["policy"] = self.scorer.check_policy(options.get("policy") or unit_policy)
        job_id = uuid.uuid4().hex[:16]
        with self.engine.begin() as c:
            c.execute(
                insert(t.jobs).values(
                    id=job_id,
                    unit=unit_id,
                    state="queued",
                    trigger=trigger,
                    schedule_id=schedule_id,
                    options=options,
                    attempts=0,
                    error="",
                    created_at=now(),
                )
            )
        return job_id

    def job(self, job_id: str) -> dict[str, Any]:
        with self.engine.begin() as c:
            row = c.execute(select(t.jobs).where(t.jobs.c.id == job_id)).mappings().first()
        if row is None:
            raise NotFound(f"job {job_id!r} not found")
        return dict(row)

    def job_for(self, who: Principal, job_id: str) -> dict[str, Any]:
        job = self.job(job_id)
        if not who.can_read(job["unit"]):
            raise NotFound(f"job {job_id!r} not found")
        return job

    def jobs(self, who: Principal, unit_id: str | None = None, limit: int = 100) -> list[dict]:
        q = select(t.jobs).order_by(t.jobs.c.created_at.desc()).limit(limit)
        if unit_id is not None:
            q = q.where(t.jobs.c.unit == unit_id)
        with self.engine.begin() as c:
            rows = c.execute(q).mappings().all()
        return [dict(r) for r in rows if who.can_read(r["unit"])]

    def start_job(self, job_id: str, scan_id: str) -> int:
        """Mark a job running with its scan id; returns the attempt number (1 on first run)."""
        with self.engine.begin() as c:
            row = c.execute(select(t.jobs).where(t.jobs.c.id == job_id)).mappings().first()
            if row is None:
                raise NotFound(f"job {job_id!r} not found")
            attempts = int(row["attempts"]) + 1
            c.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job_id)
                .values(
                    state="running",
                    scan_id=row["scan_id"] or scan_id,
                    attempts=attempts,
                    started_at=row["started_at"] or now(),
                )
            )
        return attempts

    def finish_job(self, job_id: str, state: str, error: str = "") -> None:
        with self.engine.begin() as c:
            c.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job_id)
                .values(state=state, error=error[:2000], finished_at=now())
            )

    # -- schedules -------------------------------------------------------------------------
    def add_schedule(self, who: Principal, unit_id: str, cron: str, policy: str | None) -> int:
        self.unit(who, unit_id)  # 404 before 403: no hint that an unreadable unit exists
        who.require_write(unit_id)
        if not croniter.is_valid(cron):
            raise ValueError(
                f"{cron!r} is not a valid cron expression (5 fields, e.g. '0 2 * * 1')"
            )
        if policy is not None:
            self.scorer.check_policy(policy)
        at = now()
        nxt = croniter(cron, at).get_next(datetime)
        with self.engine.begin() as c:
            pk = c.execute(
                insert(t.schedules).values(
                    unit=unit_id,
                    cron=cron,
                    policy=policy,
                    enabled=True,
                    next_run_at=nxt,
                    created_at=at,
                )
            ).inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def schedules(self, who: Principal, unit_id: str | None = None) -> list[dict[str, Any]]:
        q = select(t.schedules).order_by(t.schedules.c.id)
        if unit_id is not None:
            q = q.where(t.schedules.c.unit == unit_id)
        with self.engine.begin() as c:
            rows = c.execute(q).mappings().all()
        return [dict(r) for r in rows if who.can_read(r["unit"])]

    def due_schedules(self, at: datetime | None = None) -> list[dict[str, Any]]:
        at = at or now()
        with self.engine.begin() as c:
            rows = (
                c.execute(
                    select(t.schedules).where(
                        t.schedules.c.enabled.is_(True), t.schedules.c.next_run_at <= at
                    )
                )
                .mappings()
                .all()
            )
        return [dict(r) for r in rows]

    def mark_schedule_ran(self, schedule_id: int, at: datetime | None = None) -> datetime:
        at = at or now()
        with self.engine.begin() as c:
            cron = c.execute(
                select(t.schedules.c.cron).where(t.schedules.c.id == schedule_id)
            ).scalar_one()
            nxt = croniter(cron, at).get_next(datetime)
            c.execute(
                update(t.schedules)
                .where(t.schedules.c.id == schedule_id)
                .values(last_run_at=at, next_run_at=nxt)
            )
        return nxt

    # -- scans and findings ---------------------------------------------------------------
    def unit_scans(self, unit_id: str, limit: int = 30) -> list[dict[str, Any]]:
        """Completed scans of one unit, newest first (from the store's scans table)."""
        with self.engine.begin() as c:
            rows = (
                c.execute(
                    select(scans.c.id, scans.c.started_at, scans.c.finished_at, scans.c.units)
                    .where(scans.c.state == "complete")
                    .order_by(scans.c.started_at.desc())
                    .limit(limit * 10)
                )
                .mappings()
                .all()
            )
        found = [dict(r) for r in rows if unit_id in (r["units"] or [])]
        return found[:limit]

    def scan_outcomes(self, who: Principal, scan_id: str, unit_id: str) -> list[Outcome]:
        who.require_read(unit_id)
        return [o for o in self.store.outcomes(scan_id) if o.unit == unit_id]

    def scan_for(self, who: Principal, scan_id: str) -> dict[str, Any]:
        rec = self.store.scan(scan_id)
        visible = [u for u in rec.units if who.can_read(u)]
        if not visible:
            raise NotFound(f"scan {scan_id!r} not found")
        return {
            "id": rec.id,
            "state": rec.state,
            "started_at": rec.started_at,
            "finished_at": rec.finished_at,
            "units": visible,
            "tool_version": rec.tool_version,
        }

    def record_findings(self, unit_id: str, scan_id: str) -> dict[str, int]:
        """Update the findings lifecycle of a unit from one completed scan.

        A failed outcome opens a finding (or reopens a fixed one); an open finding whose check
        ran on the same target and did not fail is fixed; accepted risks past their date are
        open again. Re-recording the same scan changes nothing (idempotent).
        """
        at = now()
        with self.engine.begin() as c:
            rows = c.execute(
                select(outcomes.c.data, targets.c.key)
                .join(targets, outcomes.c.target_id == targets.c.id)
                .where(outcomes.c.scan_id == scan_id, targets.c.unit == unit_id)
            ).all()
            failed: dict[str, Outcome] = {}
            assessed: set[tuple[str, str]] = set()
            for data, key in rows:
                o = Outcome.model_validate(data)
                if o.status is Status.FAIL:
                    failed[o.fingerprint] = o
                if o.status in (Status.PASS, Status.FAIL, Status.NOT_APPLICABLE):
                    assessed.add((o.check_id, key))
            existing = {
                r["fingerprint"]: dict(r)
                for r in c.execute(select(t.findings).where(t.findings.c.unit == unit_id))
                .mappings()
                .all()
            }
            counts = {"new": 0, "reopened": 0, "fixed": 0, "still_open": 0}
            for fp, o in failed.items():
                row = existing.get(fp)
                if row is None:
                    c.execute(
                        insert(t.findings).values(
                            unit=unit_id,
                            fingerprint=fp,
                            check_id=o.check_id,
                            target_key=o.target.key,
                            title=o.title[:255],
                            severity=o.severity.value,
                            state="open",
                            reason="",
                            first_scan=scan_id,
                            last_scan=scan_id,
                            first_seen_at=at,
                            last_seen_at=at,
                            updated_by="scan",
                            updated_at=at,
                        )
                    )
                    counts["new"] += 1
                    continue
                if row["last_scan"] == scan_id:
                    continue  # this scan was recorded already
                state = row["state"]
                until = _utc(row["accepted_until"])
                if state == "fixed":
                    state = "reopened"
                    counts["reopened"] += 1
                elif state == "accepted" and until is not None and until < at:
                    state = "open"
                else:
                    counts["still_open"] += 1
                c.execute(
                    update(t.findings)
                    .where(t.findings.c.id == row["id"])
                    .values(
                        state=state,
                        severity=o.severity.value,
                        last_scan=scan_id,
                        last_seen_at=at,
                        updated_at=at if state != row["state"] else row["updated_at"],
                        updated_by="scan" if state != row["state"] else row["updated_by"],
                    )
                )
            for fp, row in existing.items():
                if fp in failed or row["state"] not in (*OPEN_STATES, "accepted"):
                    continue
                if (row["check_id"], row["target_key"]) in assessed:
                    c.execute(
                        update(t.findings)
                        .where(t.findings.c.id == row["id"])
                        .values(state="fixed", updated_at=at, updated_by="scan")
                    )
                    counts["fixed"] += 1
        return counts

    def findings(
        self,
        who: Principal,
        unit_id: str | None = None,
        state: str | None = None,
        severity: str | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        q = select(t.findings).order_by(t.findings.c.unit, t.findings.c.id).limit(limit)
        if unit_id is not None:
            q = q.where(t.findings.c.unit == unit_id)
        if state is not None:
            q = q.where(t.findings.c.state == state)
        if severity is not None:
            q = q.where(t.findings.c.severity == severity)
        with self.engine.begin() as c:
            rows = c.execute(q).mappings().all()
        return [dict(r) for r in rows if who.can_read(r["unit"])]

    def finding(self, who: Principal, finding_id: int) -> dict[str, Any]:
        with self.engine.begin() as c:
            row = (
                c.execute(select(t.findings).where(t.findings.c.id == finding_id))
                .mappings()
                .first()
            )
        if row is None or not who.can_read(row["unit"]):
            raise NotFound(f"finding {finding_id} not found")
        return dict(row)

    def set_finding_state(
        self,
        who: Principal,
        finding_id: int,
        state: str,
        reason: str = "",
        until: datetime | None = None,
    ) -> dict[str, Any]:
        row = self.finding(who, finding_id)
        who.require_write(row["unit"])
        if state not in ("open", "accepted", "false_positive"):
            raise ValueError(
                f"a finding can be set to open, accepted or false_positive, not {state}"
            )
        if state in ("accepted", "false_positive") and not reason.strip():
            raise ValueError(f"{state} needs a reason")
        if state == "accepted":
            if until is None:
                raise ValueError("an accepted risk needs an expiry date")
            until = _utc(until)
            assert until is not None
            if until <= now():
                raise ValueError("the expiry date of an accepted risk must be in the future")
        with self.engine.begin() as c:
            c.execute(
                update(t.findings)
                .where(t.findings.c.id == finding_id)
                .values(
                    state=state,
                    reason=reason.strip()[:2000],
                    accepted_until=until if state == "accepted" else None,
                    updated_by=who.username,
                    updated_at=now(),
                )
            )
        return self.finding(who, finding_id)

    def scan_policy(self, unit: dict[str, Any], scan_id: str | None) -> str:
        """The pack a scan of `unit` is scored under: its job's, else the unit's, else default.

        A pack that is no longer installed falls back to the server's default (the reason is
        visible as the policy id shown beside the numbers).
        """
        chosen = None
        if scan_id is not None:
            with self.engine.begin() as c:
                opts = c.execute(
                    select(t.jobs.c.options).where(t.jobs.c.scan_id == scan_id)
                ).scalar()
            if isinstance(opts, dict):
                chosen = opts.get("policy")
        try:
            return self.scorer.check_policy(chosen or unit.get("policy"))
        except PolicyUnknown:
            return self.scorer.default_policy

    # -- summaries -------------------------------------------------------------------------
    def summary(self, who: Principal, unit_id: str, history: int = 12) -> UnitSummary:
        unit = self.unit(who, unit_id)
        out = UnitSummary(id=unit_id, name=unit["name"])
        recent = self.unit_scans(unit_id, history)
        if recent:
            latest = recent[0]
            out.latest_scan = latest["id"]
            out.latest_at = _utc(latest["finished_at"] or latest["started_at"])
            pid = self.scan_policy(unit, latest["id"])
            scored = [self.scorer.unit_score(r["id"], unit_id, pid) for r in reversed(recent)]
            out.scores = scored[-1]
            out.trend = [s.pass_rate for s in scored if s.pass_rate is not None]
            now_rate = scored[-1].pass_rate
            before = scored[-2].pass_rate if len(scored) >= 2 else None
            if now_rate is not None and before is not None:
                out.delta = round(now_rate - before, 1)
        with self.engine.begin() as c:
            out.open_findings = int(
                c.execute(
                    select(func.count())
                    .select_from(t.findings)
                    .where(t.findings.c.unit == unit_id, t.findings.c.state.in_(OPEN_STATES))
                ).scalar_one()
            )
            if out.latest_scan:
                out.new_findings = int(
                    c.execute(
                        select(func.count())
                        .select_from(t.findings)
                        .where(
                            t.findings.c.unit == unit_id,
                            t.findings.c.first_scan == out.latest_scan,
                        )
                    ).scalar_one()
                )
                out.fixed_findings = int(
                    c.execute(
                        select(func.count())
                        .select_from(t.findings)
                        .where(
                            t.findings.c.unit == unit_id,
                            t.findings.c.state == "fixed",
                            t.findings.c.last_scan != out.latest_scan,
                        )
                    ).scalar_one()
                )
            sched = c.execute(
                select(t.schedules.c.next_run_at)
                .where(t.schedules.c.unit == unit_id, t.schedules.c.enabled.is_(True))
                .order_by(t.schedules.c.next_run_at)
            ).first()
        if sched is not None:
            out.next_run_at = _utc(sched.next_run_at)
            # overdue: the schedule's time passed more than an hour ago and nothing ran since
            out.overdue = bool(out.next_run_at and out.next_run_at < now() - timedelta(hours=1))
        return out

    def expiring_acceptances(self, who: Principal, days: int = 30) -> list[dict[str, Any]]:
        limit = now() + timedelta(days=days)
        with self.engine.begin() as c:
            rows = (
                c.execute(
                    select(t.findings).where(
                        and_(
                            t.findings.c.state == "accepted",
                            or_(
                                t.findings.c.accepted_until.is_(None),
                                t.findings.c.accepted_until <= limit,
                            ),
                        )
                    )
                )
                .mappings()
                .all()
            )
        return [dict(r) for r in rows if who.can_read(r["unit"])]

    # -- webhooks --------------------------------------------------------------------------
    def add_webhook(self, who: Principal, url: str, unit_id: str | None = None) -> int:
        if unit_id is None:
            who.require_admin()
        else:
            who.require_write(unit_id)
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL {url!r} must be http:// or https://")
        with self.engine.begin() as c:
            pk = c.execute(
                insert(t.webhooks).values(unit=unit_id, url=url, created_at=now())
            ).inserted_primary_key
        assert pk is not None
        return int(pk[0])

    # -- e-mail alerts and the notification log ---------------------------------------------
    def set_mail_relay(self, who: Principal, relay: MailRelay | None) -> None:
        who.require_admin()
        set_relay(self.engine, relay)

    def mail_relay(self, who: Principal) -> MailRelay | None:
        who.require_admin()
        return get_relay(self.engine)

    def add_mail_recipient(self, who: Principal, address: str, unit_id: str | None) -> int:
        """Recipients of one unit's alerts (its officers may add them), or of every unit."""
        if unit_id is None:
            who.require_admin()
        else:
            self.unit(who, unit_id)
            who.require_write(unit_id)
        return add_recipient(self.engine, address, unit_id)

    def notifications(
        self, who: Principal, unit_id: str | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        """Delivery attempts of alerts, newest first (sent, or failed with the reason)."""
        q = select(t.notifications).order_by(t.notifications.c.id.desc()).limit(limit)
        if unit_id is not None:
            q = q.where(t.notifications.c.unit == unit_id)
        with self.engine.begin() as c:
            rows = c.execute(q).mappings().all()
        return [dict(r) for r in rows if who.can_read(r["unit"])]
