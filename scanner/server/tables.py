"""Tables of the team server, on the store's metadata (migration 0002).

Users and their unit scopes, API tokens and browser sessions (only hashes are stored), the
units the server assesses (each with its inventory), scan jobs, schedules, the findings
lifecycle (one row per finding fingerprint and unit) and webhooks.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from scanner.store import metadata

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),  # admin | officer | reviewer
    Column("all_units", Boolean, nullable=False, server_default="0"),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

user_units = Table(
    "user_units",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("unit", String(64), primary_key=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id_sha256", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(128), primary_key=True),  # "user:<name>" or "ip:<address>"
    Column("count", Integer, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
)

units = Table(
    "units",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("inventory_text", Text, nullable=False),  # a complete inventory holding this unit
    Column("queue", String(64)),  # Celery queue of the unit's scanner node; None: embedded
    Column("policy", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("unit", String(64), ForeignKey("units.id", ondelete="CASCADE"), nullable=False),
    Column("scan_id", String(40)),  # set when the scan starts
    Column("state", String(16), nullable=False),  # queued | running | complete | failed
    Column("trigger", String(16), nullable=False),  # api | schedule
    Column("schedule_id", Integer),
    Column("options", JSON, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("error", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Index("ix_jobs_unit", "unit"),
)

schedules = Table(
    "schedules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("unit", String(64), ForeignKey("units.id", ondelete="CASCADE"), nullable=False),
    Column("cron", String(64), nullable=False),
    Column("policy", String(64)),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("last_run_at", DateTime(timezone=True)),
    Column("next_run_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("unit", String(64), nullable=False),
    Column("fingerprint", String(32), nullable=False),
    Column("check_id", String(128), nullable=False),
    Column("target_key", String(1024), nullable=False),
    Column("title", String(255), nullable=False),
    Column("severity", String(16), nullable=False),
    # open | fixed | reopened | accepted | false_positive
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("accepted_until", DateTime(timezone=True)),
    Column("first_scan", String(40), nullable=False),
    Column("last_scan", String(40), nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(64), nullable=False, server_default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("unit", "fingerprint", name="uq_findings_unit_fingerprint"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("unit", String(64)),  # None: every unit
    Column("url", String(1024), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# -- migration 0003: e-mail alerts, the notification log, policy scores per scan -------------

mail_relay = Table(
    "mail_relay",
    metadata,
    Column("id", Integer, primary_key=True),  # one row (id 1): the server's SMTP relay
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("security", String(16), nullable=False),  # starttls | tls | none
    Column("sender", String(320), nullable=False),
    Column("username", String(255)),
    Column("password_ref", String(1024)),  # "env:VAR", "file:PATH" or "keyring:SVC/USER"
    Column("cafile", String(1024)),  # trust bundle for the relay's certificate; None: system
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

mail_recipients = Table(
    "mail_recipients",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("unit", String(64)),  # None: every unit
    Column("address", String(320), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("unit", String(64), nullable=False),
    Column("scan_id", String(40), nullable=False),
    Column("channel", String(16), nullable=False),  # webhook | mail
    Column("destination", String(1024), nullable=False),  # URL or recipient list, no secrets
    Column("state", String(16), nullable=False),  # sent | failed
    Column("error", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_notifications_unit", "unit"),
)

unit_scores = Table(
    "unit_scores",
    metadata,
    Column("scan_id", String(40), primary_key=True),
    Column("unit", String(64), primary_key=True),
    Column("policy", String(64), primary_key=True),  # pack id
    Column("pack_version", String(32), nullable=False),
    Column("numbers", JSON, nullable=False),  # policies.result.ScoreNumbers
    Column("detail", JSON, nullable=False),  # {"controls": [...], "targets": [...]}
    Column("computed_at", DateTime(timezone=True), nullable=False),
)
