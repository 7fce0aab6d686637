"""photo intake: no parallel scans of report_photo; an index of failed updates

- `report_photo` gets the storage parameter `parallel_workers = 0` (PostgreSQL): the duplicate check
  is an index lookup, and a parallel plan costs more to start than it takes (measured); this
  replaces a `SET LOCAL max_parallel_workers_per_gather = 0` round trip per photo.
- `ix_telegram_update_failed`: the few failed updates, counted by /health and listed for staff,
  found without scanning every update ever received.

Revision ID: a1a1d0c0a009
Revises: f0f0d0c0a008
Create Date: 2026-12-01 18:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "a1a1d0c0a009"
down_revision = "f0f0d0c0a008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE report_photo SET (parallel_workers = 0)")
    op.create_index(
        "ix_telegram_update_failed",
        "telegram_update",
        ["update_id"],
        postgresql_where=sa.text("status = 'failed'"),
        sqlite_where=sa.text("status = 'failed'"),
    )


def downgrade() -> None:
    op.drop_index("ix_telegram_update_failed", table_name="telegram_update")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE report_photo RESET (parallel_workers)")
