"""Team server: SMTP relay and recipients, the notification log, policy scores per scan.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_relay",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("security", sa.String(16), nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("username", sa.String(255)),
        sa.Column("password_ref", sa.String(1024)),
        sa.Column("cafile", sa.String(1024)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "mail_recipients",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("unit", sa.String(64)),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("scan_id", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("destination", sa.String(1024), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_notifications_unit", "notifications", ["unit"])
    op.create_table(
        "unit_scores",
        sa.Column("scan_id", sa.String(40), primary_key=True),
        sa.Column("unit", sa.String(64), primary_key=True),
        sa.Column("policy", sa.String(64), primary_key=True),
        sa.Column("pack_version", sa.String(32), nullable=False),
        sa.Column("numbers", sa.JSON, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_unit", "notifications")
    for table in ("unit_scores", "notifications", "mail_recipients", "mail_relay"):
        op.drop_table(table)
