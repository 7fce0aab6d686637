"""perf: indexes for phone search, the flagged queue and shift results

- PostgreSQL only: a trigram GIN index on participant.phone (extension pg_trgm, trusted on
  PostgreSQL ≥ 13, so the database owner can create it), for `/participants?q=<digits>`, which
  matches formatted phone fragments with a leading wildcard.
- Both databases: a partial index of the flagged photos and photo_count added to ix_report_queue,
  so `/reports?flagged=1` walks the queue index alone and probes the small flagged index.
- Both databases: ix_report_shift_day_status widened with task_id and photo_count, so the results
  counts of a shift are one index-only pass (its prefix still serves the daily job), and
  ix_report_shift_status_member for the results ranking (approved reports per member).

The downgrade drops the indexes and leaves the pg_trgm extension in place (it may serve others).

Revision ID: c0c0d0c0a005
Revises: b0b0d0c0a004
Create Date: 2026-11-27 02:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "c0c0d0c0a005"
down_revision = "b0b0d0c0a004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            "ix_participant_phone_trgm",
            "participant",
            ["phone"],
            postgresql_using="gin",
            postgresql_ops={"phone": "gin_trgm_ops"},
        )
    op.create_index(
        "ix_report_photo_flagged",
        "report_photo",
        ["report_id", "attempt"],
        postgresql_where=sa.text("flag IS NOT NULL"),
        sqlite_where=sa.text("flag IS NOT NULL"),
    )
    op.drop_index("ix_report_queue", table_name="report")
    op.create_index("ix_report_queue", "report", ["status", "submitted_at", "id", "photo_count"])
    op.drop_index("ix_report_shift_day_status", table_name="report")
    op.create_index(
        "ix_report_shift_day_status",
        "report",
        ["shift_id", "day_number", "status", "task_id", "photo_count"],
    )
    op.create_index("ix_report_shift_status_member", "report", ["shift_id", "status", "member_id"])


def downgrade() -> None:
    op.drop_index("ix_report_shift_status_member", table_name="report")
    op.drop_index("ix_report_shift_day_status", table_name="report")
    op.create_index("ix_report_shift_day_status", "report", ["shift_id", "day_number", "status"])
    op.drop_index("ix_report_queue", table_name="report")
    op.create_index("ix_report_queue", "report", ["status", "submitted_at", "id"])
    op.drop_index("ix_report_photo_flagged", table_name="report_photo")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_participant_phone_trgm", table_name="participant")
