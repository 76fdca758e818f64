"""CLI of the team server: `assay serve`, `assay worker` and `assay server ...` administration.

This module does not import scanner.cli (which registers it), so that `python -m scanner.cli`
loads one copy of each.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="ASSAY_DB",
        help="SQLAlchemy URL of the store (default: SQLite file in ~/.local/share/assay/assay.db).",
    ),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"assay: error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(code)


server_app = typer.Typer(
    help="Administer the team server's database: users, units, schedules, tokens.",
    no_args_is_help=True,
)

BrokerOpt = Annotated[
    str | None,
    typer.Option(
        "--broker",
        envvar="ASSAY_BROKER",
        help="Celery broker URL (e.g. redis://127.0.0.1:6379/0); without it, jobs run in the "
        "server itself.",
    ),
]


def _db_url(db: str | None) -> str:
    from scanner.store import default_url

    return db or os.environ.get("ASSAY_DB") or default_url()


def _sdb(db: str | None):  # type: ignore[no-untyped-def]
    import scanner.server.tables  # noqa: F401  (registers the server tables before migrating)
    from scanner.server.service import ServerDB
    from scanner.store import Store, StoreError

    try:
        return ServerDB(Store(_db_url(db)))
    except StoreError as exc:
        raise fail(str(exc)) from None


def serve(
    db: DbOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    broker: BrokerOpt = None,
    tick: Annotated[float, typer.Option(help="Seconds between schedule checks.")] = 30.0,
    certfile: Annotated[
        Path | None, typer.Option(help="TLS certificate (PEM) to serve HTTPS.")
    ] = None,
    keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    insecure_cookies: Annotated[
        bool,
        typer.Option(help="Send the session cookie without Secure (plain HTTP on loopback only)."),
    ] = False,
    policy: Annotated[
        str, typer.Option(help="Policy pack for units and schedules that name none.")
    ] = "cis-baseline",
    demo: Annotated[
        bool,
        typer.Option(
            help="Start two demo units on loopback, register them with users and schedules, "
            "and scan each once (a dashboard to look at in one command)."
        ),
    ] = False,
) -> None:
    """Run the team server: API (OpenAPI at /api/docs), dashboard and scheduler."""
    import uvicorn

    import scanner.server.tables  # noqa: F401
    from scanner.server.app import ServerConfig, create_app
    from scanner.store import StoreError

    if (certfile is None) != (keyfile is None):
        raise fail("--certfile and --keyfile go together")
    if certfile is None and not insecure_cookies:
        err.print(
            "assay: note: serving plain HTTP; browsers send the Secure session cookie only to "
            "localhost over HTTP. Use --certfile/--keyfile for anything else.",
            markup=False,
        )
    try:
        application = create_app(
            ServerConfig(
                db_url=_db_url(db),
                broker_url=broker,
                tick=tick,
                secure_cookies=not insecure_cookies,
                default_policy=policy,
            )
        )
        application.state.sdb.scorer.check_policy(policy)
    except StoreError as exc:
        raise fail(str(exc)) from None
    except ValueError as exc:  # an unknown --policy
        raise fail(str(exc)) from None
    with contextlib.ExitStack() as stack:
        if demo:
            _start_demo(stack, application, host, port, certfile is not None)
        uvicorn.run(
            application,
            host=host,
            port=port,
            ssl_certfile=str(certfile) if certfile else None,
            ssl_keyfile=str(keyfile) if keyfile else None,
            log_level="info",
        )


def _start_demo(
    stack: contextlib.ExitStack, application: Any, host: str, port: int, tls: bool
) -> None:
    """Two demo units (weak and good hosts each), three users, a schedule, one scan each."""
    import secrets

    from scanner.demo_services import DemoUnit
    from scanner.server.security import Principal, Role

    sdb = application.state.sdb
    root = Principal(0, "demo", Role.ADMIN, frozenset())
    units = {"demo-a": "Sở Thông tin và Truyền thông (demo)", "demo-b": "Văn phòng UBND (demo)"}
    for unit_id, name in units.items():
        running = stack.enter_context(DemoUnit())
        sdb.add_unit(running.inventory_yaml(unit_id, name), unit_id, f"{unit_id} inventory")
        if not sdb.schedules(root, unit_id):
            sdb.add_schedule(root, unit_id, "*/30 * * * *", None)
        application.state.dispatch(sdb.create_job(unit_id, "api"), sdb.unit_row(unit_id))
    known = set()
    with sdb.engine.begin() as c:
        from sqlalchemy import select

        from scanner.server import tables as t

        known = set(c.execute(select(t.users.c.username)).scalars())
    scheme = "https" if tls else "http"
    out.print(f"demo: dashboard at {scheme}://{host}:{port}/ (units demo-a and demo-b)")
    for user, role, scope in (
        ("admin", Role.ADMIN, ([], False)),
        ("officer-a", Role.OFFICER, (["demo-a"], False)),
        ("reviewer", Role.REVIEWER, ([], True)),
    ):
        if user in known:
            out.print(f"demo: user {user} exists already (password unchanged)")
            continue
        password = secrets.token_urlsafe(12)
        sdb.create_user(user, password, role, scope[0], scope[1])
        out.print(f"demo: user {user} ({role.value}) password {password}")


def worker(
    queue: Annotated[
        list[str], typer.Option("--queue", "-Q", help="Queue(s) to consume, e.g. unit-so-tttt.")
    ],
    broker: BrokerOpt = None,
    db: DbOpt = None,
    concurrency: Annotated[int, typer.Option(help="Jobs run at once by this worker.")] = 1,
    visibility_timeout: Annotated[
        int, typer.Option(help="Seconds before an unacknowledged job is handed to another worker.")
    ] = 3900,
) -> None:
    """Run scan jobs from the server's queue(s) as a Celery worker (a unit's scanner node)."""
    import scanner.server.tables  # noqa: F401
    from scanner.server.jobs import make_celery

    if not broker:
        raise fail("a worker needs --broker (or ASSAY_BROKER)")
    app = make_celery(broker, _db_url(db), visibility_timeout=visibility_timeout)
    argv = [
        "worker",
        "--queues",
        ",".join(queue),
        "--concurrency",
        str(concurrency),
        "--pool",
        "prefork" if concurrency > 1 else "solo",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    app.worker_main(argv)


@server_app.command("user-add")
def user_add(
    username: str,
    role: Annotated[str, typer.Option(help="admin, officer or reviewer")],
    unit: Annotated[list[str] | None, typer.Option(help="Unit this user may see (repeat).")] = None,
    all_units: Annotated[bool, typer.Option(help="A reviewer of every unit.")] = False,
    password_env: Annotated[
        str, typer.Option(help="Environment variable holding the password (never an argument).")
    ] = "ASSAY_PASSWORD",
    db: DbOpt = None,
) -> None:
    """Create a user; the password is read from an environment variable or stdin."""
    password = os.environ.get(password_env)
    if password is None:
        password = (
            sys.stdin.readline().rstrip("\n")
            if not sys.stdin.isatty()
            else typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        )
    try:
        uid = _sdb(db).create_user(username, password, role, unit or [], all_units)
    except ValueError as exc:
        raise fail(str(exc)) from None
    out.print(f"user {username} ({role}) created with id {uid}")


@server_app.command("token")
def token(username: str, name: str = "cli", db: DbOpt = None) -> None:
    """Create an API token for a user and print it once."""
    from sqlalchemy import select

    from scanner.server import tables as t

    sdb = _sdb(db)
    with sdb.engine.begin() as c:
        uid = c.execute(select(t.users.c.id).where(t.users.c.username == username)).scalar()
    if uid is None:
        raise fail(f"no user {username!r}")
    out.print(sdb.create_token(int(uid), name))


@server_app.command("unit-add")
def unit_add(
    inventory: Path,
    unit: Annotated[str, typer.Option(help="The unit id inside the inventory.")],
    queue: Annotated[
        str | None, typer.Option(help="Celery queue of the unit's scanner node.")
    ] = None,
    policy: Annotated[str | None, typer.Option(help="Policy pack id.")] = None,
    db: DbOpt = None,
) -> None:
    """Register (or update) a unit from an inventory file."""
    from scanner.inventory import InventoryError

    try:
        text = inventory.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"{inventory}: {exc.strerror or exc}") from None
    try:
        _sdb(db).add_unit(text, unit, str(inventory), queue, policy)
    except (InventoryError, ValueError) as exc:
        raise fail(str(exc)) from None
    out.print(f"unit {unit} registered{f' on queue {queue}' if queue else ''}")


@server_app.command("schedule-add")
def schedule_add(
    unit: str,
    cron: Annotated[
        str, typer.Option(help="Cron expression, e.g. '0 2 * * 1' (Mondays 02:00 UTC).")
    ],
    policy: Annotated[str | None, typer.Option(help="Policy pack id.")] = None,
    db: DbOpt = None,
) -> None:
    """Add a schedule for a unit (times are UTC)."""
    from scanner.server.security import Principal, Role

    root = Principal(0, "cli", Role.ADMIN, frozenset())
    sdb = _sdb(db)
    try:
        sid = sdb.add_schedule(root, unit, cron, policy)
    except ValueError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:
        raise fail(str(exc)) from None
    out.print(f"schedule {sid} for {unit}: {cron}")


@server_app.command("mail-relay")
def mail_relay(
    host: Annotated[str, typer.Option(help="SMTP relay address or name.")],
    sender: Annotated[str, typer.Option("--from", help="From address of alert e-mail.")],
    port: Annotated[int, typer.Option(help="SMTP port (587 STARTTLS, 465 TLS).")] = 587,
    security: Annotated[
        str, typer.Option(help="starttls, tls (implicit, port 465) or none (no login then).")
    ] = "starttls",
    username: Annotated[str | None, typer.Option(help="Relay login.")] = None,
    password_ref: Annotated[
        str | None,
        typer.Option(
            help="Where the relay password lives: env:VAR, file:PATH or keyring:SVC/USER."
        ),
    ] = None,
    cafile: Annotated[
        Path | None, typer.Option(help="CA bundle for the relay's certificate (default: system).")
    ] = None,
    db: DbOpt = None,
) -> None:
    """Set the SMTP relay for alert e-mail (score drops, new high/critical findings)."""
    from pydantic import ValidationError

    from scanner.server.notify import MailRelay, set_relay

    try:
        relay = MailRelay(
            host=host,
            port=port,
            security=security,  # type: ignore[arg-type]
            sender=sender,
            username=username,
            password_ref=password_ref,
            cafile=str(cafile) if cafile else None,
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(x) for x in first["loc"])
        raise fail(f"{where + ': ' if where else ''}{first['msg']}") from None
    set_relay(_sdb(db).engine, relay)
    out.print(f"mail relay {relay.describe()} from {sender}")


@server_app.command("mail-to")
def mail_to(
    address: str,
    unit: Annotated[
        str | None, typer.Option(help="Only this unit's alerts (default: every unit).")
    ] = None,
    db: DbOpt = None,
) -> None:
    """Add a recipient of alert e-mail."""
    from scanner.server.notify import MailConfigError, add_recipient

    sdb = _sdb(db)
    if unit is not None and unit not in sdb.unit_ids():
        raise fail(f"no unit {unit!r} (known: {', '.join(sdb.unit_ids()) or 'none'})")
    try:
        add_recipient(sdb.engine, address, unit)
    except MailConfigError as exc:
        raise fail(str(exc)) from None
    out.print(f"alerts {'of ' + unit if unit else 'of every unit'} go to {address}")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(worker)
    app.add_typer(server_app, name="server")
