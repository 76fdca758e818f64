"""`assay serve`: the team server's HTTP API (OpenAPI at /api/docs) and reviewer dashboard.

Authentication: an API token (`Authorization: Bearer assay_...`) for automation, or a browser
session cookie (`assay_session`: Secure, HttpOnly, SameSite=Strict) after logging in on /login.
Every state-changing request made with a session cookie must carry the session's CSRF token
(form field `csrf` or header `X-CSRF-Token`); token-authenticated requests need none, since a
browser never adds a bearer token by itself.

Access: see `scanner.server.security`. A unit the caller may not read answers 404 exactly like
a unit that does not exist; a unit they may read but not change answers 403.

Schedules: while the server runs, a background task looks every `tick` seconds for schedules
whose time has come and starts their jobs (embedded threads, or the unit's Celery queue when a
broker is configured).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Header, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field

from scanner.inventory import InventoryError
from scanner.server.jobs import CeleryExecutor, DispatchError, EmbeddedExecutor, Executor
from scanner.server.notify import MailConfigError, MailRelay
from scanner.server.scores import DEFAULT_POLICY, PolicyUnknown
from scanner.server.security import AccessDenied, Principal, Role
from scanner.server.service import (
    FINDING_STATES,
    LoginRefused,
    NotFound,
    ServerDB,
    UnitSummary,
)
from scanner.store import Store, StoreError

LOG = logging.getLogger(__name__)
SESSION_COOKIE = "assay_session"
TEMPLATES = Path(__file__).parent / "templates"

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class ServerConfig:
    db_url: str
    broker_url: str | None = None  # Celery broker; None: jobs run in the server (embedded)
    tick: float = 30.0  # seconds between schedule checks
    secure_cookies: bool = True
    job_workers: int = 2
    nmap_path: str | None = None  # None: nmap from PATH (a path that does not exist: no nmap)
    default_policy: str = DEFAULT_POLICY  # pack for units, schedules and scans that name none


class _Who:
    """What a request authenticated as: the principal, and the CSRF token of its session."""

    def __init__(self, principal: Principal, csrf: str | None) -> None:
        self.principal = principal
        self.csrf = csrf  # None for bearer-token requests


# -- request and response models --------------------------------------------------------------


class UnitIn(BaseModel):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    inventory: str = Field(min_length=1, max_length=1_000_000)
    queue: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    policy: str | None = None


class ScanIn(BaseModel):
    active: bool = False
    policy: str | None = None  # pack to score this scan under (default: the unit's)


class ScheduleIn(BaseModel):
    cron: str = Field(min_length=9, max_length=64)
    policy: str | None = None


class FindingStateIn(BaseModel):
    state: str
    reason: str = ""
    until: datetime | None = None


class UserIn(BaseModel):
    username: str
    password: str = Field(min_length=12)
    role: Role
    units: list[str] = []
    all_units: bool = False


class WebhookIn(BaseModel):
    url: str
    unit: str | None = None


class MailRelayIn(BaseModel):
    host: str
    port: int = 587
    security: str = "starttls"
    sender: str
    username: str | None = None
    password_ref: str | None = None  # env:VAR, file:PATH or keyring:SERVICE/USER
    cafile: str | None = None


class MailRecipientIn(BaseModel):
    address: str
    unit: str | None = None


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)


def _summary_json(s: UnitSummary) -> dict[str, Any]:
    return {
        "unit": s.id,
        "name": s.name,
        "latest_scan": s.latest_scan,
        "latest_at": _iso(s.latest_at) if s.latest_at else None,
        "scores": s.scores.as_dict() if s.scores else None,  # the policy pack's numbers
        "delta": s.delta,
        "trend": s.trend,
        "open_findings": s.open_findings,
        "new_findings": s.new_findings,
        "fixed_findings": s.fixed_findings,
        "overdue": s.overdue,
        "next_run_at": _iso(s.next_run_at) if s.next_run_at else None,
    }


def _iso(value: datetime) -> str:
    """ISO 8601 in UTC (SQLite hands datetimes back without their zone)."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in row.items()}


def sparkline(values: list[float], width: int = 120, height: int = 28) -> str:
    """An inline SVG polyline of pass rates (0-100), oldest left; empty string for no data."""
    if not values:
        return ""
    n = len(values)
    step = width / max(n - 1, 1)
    pts = " ".join(
        f"{i * step:.1f},{height - 2 - (v / 100.0) * (height - 4):.1f}"
        for i, v in enumerate(values)
    )
    last = values[-1]
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="pass rate trend, latest {last:.0f}%">'
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{pts}"/></svg>'
    )


# -- authentication (module level: FastAPI resolves these annotations by name) ---------------


def _who(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
) -> _Who:
    sdb: ServerDB = request.app.state.sdb
    if authorization:
        scheme, _, token = authorization.partition(" ")
        principal = sdb.principal_for_token(token.strip()) if scheme == "Bearer" else None
        if principal is None:
            raise HTTPException(401, "invalid API token", {"WWW-Authenticate": "Bearer"})
        return _Who(principal, None)
    sid = request.cookies.get(SESSION_COOKIE)
    found = sdb.session(sid) if sid else None
    if found is None:
        raise HTTPException(401, "log in first", {"WWW-Authenticate": "Bearer"})
    return _Who(found[0], found[1])


def _check_csrf(w: _Who, supplied: str | None) -> None:
    if w.csrf is not None and not (supplied and hmac.compare_digest(supplied, w.csrf)):
        raise HTTPException(403, "missing or wrong CSRF token")


def _changing(
    w: Annotated[_Who, Depends(_who)],
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> Principal:
    _check_csrf(w, x_csrf_token)
    return w.principal


def _reading(w: Annotated[_Who, Depends(_who)]) -> Principal:
    return w.principal


Reader = Annotated[Principal, Depends(_reading)]
Changer = Annotated[Principal, Depends(_changing)]


def create_app(config: ServerConfig) -> FastAPI:
    store = Store(config.db_url)
    sdb = ServerDB(store, config.default_policy)
    executor: Executor = (
        CeleryExecutor(config.broker_url, config.db_url)
        if config.broker_url
        else EmbeddedExecutor(config.db_url, config.job_workers, config.nmap_path)
    )
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["sparkline"] = sparkline
    css = (TEMPLATES / "dashboard.css").read_text(encoding="utf-8")

    def dispatch(job_id: str, unit: dict[str, Any]) -> None:
        try:
            executor.submit(job_id, unit)
        except DispatchError as exc:
            sdb.finish_job(job_id, "failed", str(exc))
            raise HTTPException(503, str(exc)) from None

    async def scheduler() -> None:
        while True:
            try:
                for sched in sdb.due_schedules():
                    unit = sdb.unit_row(sched["unit"])
                    job_id = sdb.create_job(
                        unit["id"],
                        trigger="schedule",
                        options={"policy": sched["policy"]},
                        schedule_id=sched["id"],
                    )
                    sdb.mark_schedule_ran(sched["id"])
                    with contextlib.suppress(HTTPException):  # recorded as a failed job
                        dispatch(job_id, unit)
                    LOG.info("schedule %s started job %s for %s", sched["id"], job_id, unit["id"])
            except (StoreError, NotFound, PolicyUnknown) as exc:
                LOG.warning("scheduler: %s", exc)
            except Exception:  # the scheduler must outlive one bad tick
                LOG.exception("scheduler tick failed")
            await asyncio.sleep(config.tick)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(scheduler())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            executor.shutdown()
            store.close()

    app = FastAPI(
        title="Assay team server",
        version="1",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.sdb = sdb
    app.state.executor = executor
    app.state.dispatch = dispatch

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            if k == "Content-Security-Policy" and request.url.path.startswith("/api/docs"):
                continue  # the OpenAPI explorer loads its own script
            response.headers.setdefault(k, v)
        return response

    @app.exception_handler(AccessDenied)
    async def _denied(_r: Request, exc: AccessDenied) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    @app.exception_handler(NotFound)
    async def _missing(_r: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    # -- API -------------------------------------------------------------------------------

    @app.get("/api/v1/me", tags=["auth"])
    def me(p: Reader) -> dict[str, Any]:
        return {
            "username": p.username,
            "role": p.role.value,
            "units": sorted(p.units),
            "all_units": p.all_units,
        }

    @app.post("/api/v1/tokens", tags=["auth"], status_code=201)
    def new_token(body: TokenIn, p: Changer) -> dict[str, str]:
        return {"token": sdb.create_token(p.user_id, body.name)}

    @app.post("/api/v1/users", tags=["admin"], status_code=201)
    def add_user(body: UserIn, p: Changer) -> dict[str, Any]:
        p.require_admin()
        try:
            uid = sdb.create_user(
                body.username, body.password, body.role, body.units, body.all_units
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"id": uid, "username": body.username}

    @app.get("/api/v1/units", tags=["units"])
    def list_units(p: Reader) -> list[dict[str, Any]]:
        return [
            {"id": u["id"], "name": u["name"], "queue": u["queue"], "policy": u["policy"]}
            for u in sdb.units(p)
        ]

    @app.post("/api/v1/units", tags=["units"], status_code=201)
    def add_unit(body: UnitIn, p: Changer) -> dict[str, Any]:
        p.require_admin()
        try:
            sdb.add_unit(body.inventory, body.id, f"unit {body.id}", body.queue, body.policy)
        except (InventoryError, ValueError) as exc:
            raise HTTPException(422, str(exc)) from None
        return {"id": body.id}

    @app.get("/api/v1/units/{unit_id}", tags=["units"])
    def get_unit(unit_id: str, p: Reader) -> dict[str, Any]:
        u = sdb.unit(p, unit_id)
        return {"id": u["id"], "name": u["name"], "queue": u["queue"], "policy": u["policy"]}

    @app.get("/api/v1/units/{unit_id}/scores", tags=["scores"])
    def unit_scores(unit_id: str, p: Reader) -> dict[str, Any]:
        return _summary_json(sdb.summary(p, unit_id))

    @app.get("/api/v1/scores", tags=["scores"])
    def all_scores(p: Reader) -> list[dict[str, Any]]:
        return [_summary_json(sdb.summary(p, u["id"])) for u in sdb.units(p)]

    @app.post("/api/v1/units/{unit_id}/scans", tags=["scans"], status_code=202)
    def start_scan(unit_id: str, body: ScanIn, p: Changer) -> dict[str, Any]:
        unit = sdb.unit(p, unit_id)
        p.require_write(unit_id)
        try:
            job_id = sdb.create_job(unit_id, "api", {"active": body.active, "policy": body.policy})
        except PolicyUnknown as exc:
            raise HTTPException(422, str(exc)) from None
        dispatch(job_id, unit)
        return {"job": job_id, "state": "queued"}

    @app.get("/api/v1/units/{unit_id}/jobs", tags=["scans"])
    def unit_jobs(unit_id: str, p: Reader) -> list[dict[str, Any]]:
        sdb.unit(p, unit_id)
        return [_jsonable(j) for j in sdb.jobs(p, unit_id)]

    @app.get("/api/v1/jobs/{job_id}", tags=["scans"])
    def get_job(job_id: str, p: Reader) -> dict[str, Any]:
        return _jsonable(sdb.job_for(p, job_id))

    @app.get("/api/v1/units/{unit_id}/scans", tags=["scans"])
    def unit_scans(unit_id: str, p: Reader) -> list[dict[str, Any]]:
        sdb.unit(p, unit_id)
        return [
            {"id": s["id"], "started_at": _iso(s["started_at"])} for s in sdb.unit_scans(unit_id)
        ]

    @app.get("/api/v1/scans/{scan_id}", tags=["scans"])
    def get_scan(scan_id: str, p: Reader) -> dict[str, Any]:
        try:
            return _jsonable(sdb.scan_for(p, scan_id))
        except KeyError:
            raise NotFound(f"scan {scan_id!r} not found") from None

    @app.get("/api/v1/scans/{scan_id}/results", tags=["scans"])
    def scan_results(scan_id: str, unit: str, p: Reader) -> list[dict[str, Any]]:
        try:
            rec = sdb.scan_for(p, scan_id)
        except KeyError:
            raise NotFound(f"scan {scan_id!r} not found") from None
        if unit not in rec["units"]:
            raise NotFound(f"unit {unit!r} is not in scan {scan_id!r}")
        return [o.model_dump(mode="json") for o in sdb.scan_outcomes(p, rec["id"], unit)]

    @app.get("/api/v1/findings", tags=["findings"])
    def list_findings(
        p: Reader,
        unit: str | None = None,
        state: str | None = None,
        severity: str | None = None,
    ) -> list[dict[str, Any]]:
        if unit is not None:
            sdb.unit(p, unit)
        return [_jsonable(f) for f in sdb.findings(p, unit, state, severity)]

    @app.post("/api/v1/findings/{finding_id}/state", tags=["findings"])
    def finding_state(finding_id: int, body: FindingStateIn, p: Changer) -> dict[str, Any]:
        try:
            return _jsonable(
                sdb.set_finding_state(p, finding_id, body.state, body.reason, body.until)
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @app.get("/api/v1/units/{unit_id}/schedules", tags=["schedules"])
    def list_schedules(unit_id: str, p: Reader) -> list[dict[str, Any]]:
        sdb.unit(p, unit_id)
        return [_jsonable(s) for s in sdb.schedules(p, unit_id)]

    @app.post("/api/v1/units/{unit_id}/schedules", tags=["schedules"], status_code=201)
    def add_schedule(unit_id: str, body: ScheduleIn, p: Changer) -> dict[str, Any]:
        try:
            sid = sdb.add_schedule(p, unit_id, body.cron, body.policy)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"id": sid}

    @app.get("/api/v1/waivers", tags=["findings"])
    def waivers(p: Reader, days: int = 30) -> list[dict[str, Any]]:
        """Accepted risks that expire within `days` days (or have no date)."""
        return [_jsonable(f) for f in sdb.expiring_acceptances(p, days)]

    @app.post("/api/v1/webhooks", tags=["admin"], status_code=201)
    def add_webhook(body: WebhookIn, p: Changer) -> dict[str, Any]:
        if body.unit is not None:
            sdb.unit(p, body.unit)
        try:
            return {"id": sdb.add_webhook(p, body.url, body.unit)}
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @app.put("/api/v1/mail/relay", tags=["admin"])
    def set_mail_relay(body: MailRelayIn, p: Changer) -> dict[str, Any]:
        """The server's SMTP relay for alert e-mail (the password only as a reference)."""
        p.require_admin()
        try:
            relay = MailRelay.model_validate(body.model_dump())
        except ValueError as exc:
            raise HTTPException(422, _first_error(exc)) from None
        sdb.set_mail_relay(p, relay)
        return relay.model_dump()

    @app.get("/api/v1/mail/relay", tags=["admin"])
    def get_mail_relay(p: Reader) -> dict[str, Any] | None:
        relay = sdb.mail_relay(p)
        return relay.model_dump() if relay else None

    @app.post("/api/v1/mail/recipients", tags=["admin"], status_code=201)
    def add_mail_recipient(body: MailRecipientIn, p: Changer) -> dict[str, Any]:
        try:
            return {"id": sdb.add_mail_recipient(p, body.address, body.unit)}
        except MailConfigError as exc:
            raise HTTPException(422, str(exc)) from None

    @app.get("/api/v1/notifications", tags=["admin"])
    def list_notifications(p: Reader, unit: str | None = None) -> list[dict[str, Any]]:
        """Alert deliveries (webhook and e-mail), newest first, with the reason of failures."""
        if unit is not None:
            sdb.unit(p, unit)
        return [_jsonable(n) for n in sdb.notifications(p, unit)]

    # -- dashboard -------------------------------------------------------------------------

    def page(
        name: str, request: Request, w: _Who | None, status: int = 200, **ctx: Any
    ) -> HTMLResponse:
        html = env.get_template(name).render(
            user=w.principal if w else None,
            csrf=w.csrf if w else "",
            now=datetime.now(UTC),
            **ctx,
        )
        return HTMLResponse(html, status_code=status)

    def browser(request: Request) -> _Who | None:
        sid = request.cookies.get(SESSION_COOKIE)
        found = sdb.session(sid) if sid else None
        return _Who(found[0], found[1]) if found else None

    @app.get("/static/dashboard.css", include_in_schema=False)
    def stylesheet() -> Response:
        return Response(css, media_type="text/css")

    @app.get("/login", include_in_schema=False)
    def login_form(request: Request) -> HTMLResponse:
        return page("login.html.j2", request, None, error="")

    @app.post("/login", include_in_schema=False)
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=1024)],
    ) -> Response:
        client = request.client.host if request.client else ""
        try:
            principal = sdb.authenticate(username, password, client)
        except LoginRefused as exc:
            return page(
                "login.html.j2", request, None, 429 if exc.throttled else 401, error=str(exc)
            )
        sid, _csrf = sdb.create_session(principal.user_id)
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(
            SESSION_COOKIE,
            sid,
            httponly=True,
            secure=config.secure_cookies,
            samesite="strict",
            path="/",
        )
        return resp

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        w = browser(request)
        if w is not None:
            _check_csrf(w, csrf)
            sid = request.cookies.get(SESSION_COOKIE, "")
            sdb.end_session(sid)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    @app.get("/", include_in_schema=False)
    def overview(request: Request) -> Response:
        w = browser(request)
        if w is None:
            return RedirectResponse("/login", status_code=303)
        summaries = [sdb.summary(w.principal, u["id"]) for u in sdb.units(w.principal)]
        return page(
            "overview.html.j2",
            request,
            w,
            summaries=summaries,
            expiring=sdb.expiring_acceptances(w.principal, 30),
            overdue=[s for s in summaries if s.overdue],
        )

    @app.get("/units/{unit_id}", include_in_schema=False)
    def unit_page(unit_id: str, request: Request) -> Response:
        w = browser(request)
        if w is None:
            return RedirectResponse("/login", status_code=303)
        try:
            summary = sdb.summary(w.principal, unit_id)
        except NotFound:
            return page("error.html.j2", request, w, 404, message=f"unit {unit_id} not found")
        return page(
            "unit.html.j2",
            request,
            w,
            s=summary,
            top=summary.scores.top_failing(10) if summary.scores else [],
            tree=summary.scores.sections() if summary.scores else [],
            assets=summary.scores.targets if summary.scores else [],
            jobs=sdb.jobs(w.principal, unit_id, 10),
            schedules=sdb.schedules(w.principal, unit_id),
            can_write=w.principal.can_write(unit_id),
        )

    @app.post("/units/{unit_id}/scan", include_in_schema=False)
    def unit_scan_form(
        unit_id: str, request: Request, csrf: Annotated[str, Form()] = ""
    ) -> Response:
        w = browser(request)
        if w is None:
            return RedirectResponse("/login", status_code=303)
        _check_csrf(w, csrf)
        unit = sdb.unit(w.principal, unit_id)
        w.principal.require_write(unit_id)
        dispatch(sdb.create_job(unit_id, "api"), unit)
        return RedirectResponse(f"/units/{unit_id}", status_code=303)

    @app.get("/findings", include_in_schema=False)
    def findings_page(
        request: Request,
        unit: str | None = None,
        state: str | None = None,
        severity: str | None = None,
    ) -> Response:
        w = browser(request)
        if w is None:
            return RedirectResponse("/login", status_code=303)
        rows = sdb.findings(w.principal, unit or None, state or None, severity or None)
        return page(
            "findings.html.j2",
            request,
            w,
            findings=rows,
            units=sdb.units(w.principal),
            states=FINDING_STATES,
            severities=("critical", "high", "medium", "low", "info"),
            f={"unit": unit or "", "state": state or "", "severity": severity or ""},
        )

    @app.post("/findings/{finding_id}", include_in_schema=False)
    def finding_form(
        finding_id: int,
        request: Request,
        state: Annotated[str, Form()],
        csrf: Annotated[str, Form()] = "",
        reason: Annotated[str, Form(max_length=2000)] = "",
        until: Annotated[str, Form()] = "",
    ) -> Response:
        w = browser(request)
        if w is None:
            return RedirectResponse("/login", status_code=303)
        _check_csrf(w, csrf)
        try:
            when = datetime.fromisoformat(until).replace(tzinfo=UTC) if until else None
            sdb.set_finding_state(w.principal, finding_id, state, reason, when)
        except ValueError as exc:
            return page("error.html.j2", request, w, 422, message=str(exc))
        except NotFound:
            return page("error.html.j2", request, w, 404, message="finding not found")
        except AccessDenied as exc:
            return page("error.html.j2", request, w, 403, message=str(exc))
        return RedirectResponse("/findings", status_code=303)

    return app


def _first_error(exc: ValueError) -> str:
    """The first message of a pydantic validation error, without its input echoed back."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors(include_url=False, include_input=False)[0]
        where = ".".join(str(x) for x in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return str(exc)
