"""Initial schema: scans, discoveries, targets, facts, outcomes.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scans",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("inventory_name", sa.String(255), nullable=False, server_default=""),
        sa.Column("inventory_sha256", sa.String(64), nullable=False, server_default=""),
        sa.Column("inventory_text", sa.Text, nullable=False, server_default=""),
        sa.Column("units", sa.JSON, nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("tool_version", sa.String(32), nullable=False),
        sa.Column("broken_plugins", sa.JSON, nullable=False),
        sa.Column("active_probes", sa.JSON, nullable=False),
    )
    op.create_table(
        "discoveries",
        sa.Column(
            "scan_id",
            sa.String(40),
            sa.ForeignKey("scans.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("unit", sa.String(64), primary_key=True),
        sa.Column("doc", sa.JSON, nullable=False),
        sa.Column("targets", sa.JSON, nullable=False),
    )
    op.create_table(
        "targets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "scan_id", sa.String(40), sa.ForeignKey("scans.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("errors", sa.JSON, nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("scan_id", "key", name="uq_targets_scan_key"),
    )
    op.create_table(
        "facts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "target_id",
            sa.Integer,
            sa.ForeignKey("targets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("collector", sa.String(128), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.UniqueConstraint("target_id", "collector", name="uq_facts_target_collector"),
    )
    op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "scan_id", sa.String(40), sa.ForeignKey("scans.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "target_id",
            sa.Integer,
            sa.ForeignKey("targets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("check_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_outcomes_scan", "outcomes", ["scan_id"])
    op.create_index("ix_outcomes_fingerprint", "outcomes", ["fingerprint"])


def downgrade() -> None:
    for table in ("outcomes", "facts", "targets", "discoveries", "scans"):
        op.drop_table(table)
