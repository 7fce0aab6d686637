"""bot: a GIN index of pHash bands for the near-duplicate check (PostgreSQL only)

Revision ID: b0b0d0c0a004
Revises: 67ad957c0c08
Create Date: 2026-11-27 02:10:00

"""

import sqlalchemy as sa
from alembic import op

from app.models import phash_bands_sql

revision = "b0b0d0c0a004"
down_revision = "67ad957c0c08"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_report_photo_phash_bands",
            "report_photo",
            [sa.text(phash_bands_sql())],
            postgresql_using="gin",
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_report_photo_phash_bands", table_name="report_photo")
