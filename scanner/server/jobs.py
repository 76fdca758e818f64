"""Running a unit's scan job: in the server's own threads (embedded) or on a Celery worker.

A job is one scan of one unit. `run_job` is the whole of it and is the same in both modes:
it loads the unit's inventory from the database, starts (or, on a retry, resumes) the scan,
records the findings lifecycle and sends the notifications. Because the store writes each
finished target once (unique per scan and target) and a retried job resumes the scan it
started, a worker killed mid-scan loses nothing and counts nothing twice.

Celery (`make_celery`): JSON serialisation only, late acknowledgement with redelivery when a
worker dies, a hard and a soft time limit per job, bounded retries. One queue per unit
(`unit-<id>` by default, or the unit's configured queue), so a scanner node placed inside a
unit's network consumes only that unit's jobs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import select

from scanner.inventory import parse_inventory
from scanner.model import Severity
from scanner.plugins import load_registry
from scanner.runner import Runner, ScanOptions, new_scan_id
from scanner.server import tables as t
from scanner.server.notify import alert_for, deliver
from scanner.server.service import ServerDB
from scanner.store import Store, safe_url

LOG = logging.getLogger(__name__)

JOB_SOFT_LIMIT = 3300  # seconds
JOB_HARD_LIMIT = 3600
JOB_RETRIES = 3


def queue_for(unit: dict[str, Any]) -> str:
    return unit.get("queue") or f"unit-{unit['id']}"


def run_job(db_url: str, job_id: str, nmap_path: str | None = None) -> dict[str, Any]:
    """Run (or resume) one job to its end; returns the job row. Never raises for scan faults."""
    store = Store(db_url)
    try:
        sdb = ServerDB(store)
        job = sdb.job(job_id)
        if job["state"] in ("complete", "failed"):
            return job
        unit = sdb.unit_row(job["unit"])
        try:
            inv = parse_inventory(unit["inventory_text"], f"unit {unit['id']} inventory")
        except Exception as exc:  # a stored inventory that no longer parses: the job fails
            sdb.finish_job(job_id, "failed", str(exc))
            return sdb.job(job_id)
        previous = sdb.unit_scans(unit["id"], 1)
        registry = load_registry()
        options = ScanOptions(
            active=bool(job["options"].get("active")),
            units=[unit["id"]],
            nmap_path=nmap_path,
        )
        runner = Runner(
            registry,
            store,
            inv,
            inventory_text=unit["inventory_text"],
            inventory_name=f"unit {unit['id']}",
            options=options,
        )
        scan_id = job["scan_id"] or new_scan_id()
        resuming = job["scan_id"] is not None
        sdb.start_job(job_id, scan_id)
        try:
            if resuming:
                summary = asyncio.run(runner.resume(scan_id))
            else:
                summary = asyncio.run(runner.run(scan_id))
        except Exception as exc:
            LOG.exception("job %s: scan of unit %s failed", job_id, unit["id"])
            sdb.finish_job(job_id, "failed", f"{type(exc).__name__}: {exc}")
            return sdb.job(job_id)
        if summary.state != "complete":
            sdb.finish_job(job_id, "failed", f"scan {scan_id} ended {summary.state}")
            return sdb.job(job_id)
        counts = sdb.record_findings(unit["id"], scan_id)
        # alerts before the job is marked complete, so "complete" means delivered (or the
        # delivery's failure logged); a retried job may alert twice, never lose one
        try:
            _alert(sdb, unit, job, scan_id, previous[0]["id"] if previous else None, counts)
        except Exception:  # the scan is complete and stored; an alert fault must not undo it
            LOG.exception("job %s: alerts for unit %s failed", job_id, unit["id"])
        sdb.finish_job(job_id, "complete")
        return sdb.job(job_id)
    finally:
        store.close()


def _alert(
    sdb: ServerDB,
    unit: dict[str, Any],
    job: dict[str, Any],
    scan_id: str,
    previous: str | None,
    counts: dict[str, int],
) -> None:
    """Webhooks and e-mail when the unit's score dropped or a new high/critical finding opened.

    Both scans are scored under this job's pack, so a drop is never an artefact of a change
    of pack.
    """
    pid = sdb.scorer.check_policy(job["options"].get("policy") or unit.get("policy"))
    after = sdb.scorer.unit_score(scan_id, unit["id"], pid)
    before = sdb.scorer.unit_score(previous, unit["id"], pid) if previous else None
    with sdb.engine.begin() as c:
        severe = [
            dict(r)
            for r in c.execute(
                select(t.findings.c.check_id, t.findings.c.target_key, t.findings.c.severity)
                .where(
                    t.findings.c.unit == unit["id"],
                    t.findings.c.first_scan == scan_id,
                    t.findings.c.severity.in_([Severity.HIGH.value, Severity.CRITICAL.value]),
                )
                .order_by(t.findings.c.id)
            ).mappings()
        ]
    alert = alert_for(unit["id"], unit["name"], scan_id, before, after, counts, severe)
    if alert is not None:
        deliver(sdb.engine, alert)


class EmbeddedExecutor:
    """Runs jobs in the server process, a bounded number at a time."""

    def __init__(self, db_url: str, workers: int = 2, nmap_path: str | None = None) -> None:
        self.db_url = db_url
        self.nmap_path = nmap_path
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="assay-job")
        self.futures: dict[str, Future[dict[str, Any]]] = {}

    def submit(self, job_id: str, unit: dict[str, Any]) -> None:
        self.futures[job_id] = self._pool.submit(run_job, self.db_url, job_id, self.nmap_path)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class DispatchError(Exception):
    """A job could not be handed to its queue (the message names the broker, without secrets)."""


class CeleryExecutor:
    """Sends jobs to the unit's Celery queue."""

    def __init__(self, broker_url: str, db_url: str) -> None:
        self.app = make_celery(broker_url, db_url)
        self.broker = safe_url(broker_url)

    def submit(self, job_id: str, unit: dict[str, Any]) -> None:
        try:
            self.app.send_task(
                "assay.scan_unit",
                args=[job_id],
                queue=queue_for(unit),
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
            )
        except Exception as exc:  # kombu raises OperationalError and friends
            raise DispatchError(
                f"broker {self.broker} did not take the job for unit {unit['id']}: "
                f"{type(exc).__name__}: {exc}"
            ) from None

    def shutdown(self) -> None:
        pass


Executor = EmbeddedExecutor | CeleryExecutor
Dispatch = Callable[[str, dict[str, Any]], None]


def make_celery(broker_url: str, db_url: str, visibility_timeout: int = 3900) -> Any:
    """The Celery application of the server and of `assay worker` (same configuration)."""
    from celery import Celery

    app = Celery("assay", broker=broker_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=JOB_HARD_LIMIT,
        task_soft_time_limit=JOB_SOFT_LIMIT,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        # must exceed the longest job, or Redis hands a running job to a second worker
        broker_transport_options={"visibility_timeout": visibility_timeout},
        worker_hijack_root_logger=False,
    )

    @app.task(name="assay.scan_unit", bind=True, max_retries=JOB_RETRIES)  # type: ignore[untyped-decorator]
    def scan_unit(self: Any, job_id: str) -> str:
        try:
            job = run_job(db_url, job_id)
        except Exception as exc:  # the database was unreachable: try again later
            raise self.retry(exc=exc, countdown=5) from exc
        return str(job["state"])

    return app
