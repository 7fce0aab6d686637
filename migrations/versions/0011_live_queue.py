"""live queue: cards on a curator's screen are claimed; SQLite's event rows

- `report_claim`: one row per report shown to a curator, with the curator and the end of the lease.
  Other curators' queues skip unexpired claims (app.claims, app.report_queue). Rows are deleted
  when the report is decided, released when the page closes, and reused after they expire.
- `live_event`: SQLite has no LISTEN/NOTIFY, so a change the open queues should hear about is a
  row here, written in the transaction of the change and polled (app.live). PostgreSQL leaves the
  table empty and uses NOTIFY.

Revision ID: b2b2d0c0a011
Revises: a1a1d0c0a009
Create Date: 2026-12-01 20:00:00

"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.db

revision = "b2b2d0c0a011"
down_revision = "a1a1d0c0a009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_claim",
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["report.id"],
            name=op.f("fk_report_claim_report_id_report"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
            name=op.f("fk_report_claim_staff_id_staff"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_report_claim")),
    )
    op.create_index(op.f("ix_report_claim_staff_id"), "report_claim", ["staff_id"], unique=False)
    op.create_table(
        "live_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column(
            "at",
            app.db.UTCDateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_event")),
    )


def downgrade() -> None:
    op.drop_table("live_event")
    op.drop_index(op.f("ix_report_claim_staff_id"), table_name="report_claim")
    op.drop_table("report_claim")
