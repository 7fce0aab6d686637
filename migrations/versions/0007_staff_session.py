"""staff sessions on the server; login throttling that holds under parallel requests

- `staff_session`: one row per login; the cookie carries a random secret whose SHA-256 is the
  row's `token_hash`. Logout, blocking, a new password or role revoke rows, so a copied cookie
  dies too. Replaces `staff.session_version` (dropped): one mechanism, not two.
- `login_throttle`: one row per hashed e-mail and per hashed client address, counted and given
  its next moment by a single INSERT … ON CONFLICT DO UPDATE. Replaces `login_failure` (dropped),
  which was counted before the password check and so let a parallel burst through undelayed.

Not backward compatible with the code before it (that code reads `staff.session_version` and
writes `login_failure`): upgrade with all instances stopped (docs/deploy.md §8). Everybody signs in
again once: old cookies carry no session id. The downgrade restores both old objects, empty
(`session_version` = 1 for everyone).

Revision ID: e0e0d0c0a007
Revises: d0d0d0c0a006
Create Date: 2026-12-03 10:00:00

"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.db

revision = "e0e0d0c0a007"
down_revision = "d0d0d0c0a006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            app.db.UTCDateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("last_seen_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
            name=op.f("fk_staff_session_staff_id_staff"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_session_token_hash")),
    )
    op.create_index(op.f("ix_staff_session_staff_id"), "staff_session", ["staff_id"], unique=False)
    op.create_table(
        "login_throttle",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("slot_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    op.create_index(op.f("ix_login_throttle_slot_us"), "login_throttle", ["slot_us"], unique=False)
    op.drop_index("ix_login_failure_key_at", table_name="login_failure")
    op.drop_table("login_failure")
    # A plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): a batch "move and copy" of `staff` would
    # drop the table that others reference, and with foreign keys on that cascades.
    op.drop_column("staff", "session_version")


def downgrade() -> None:
    op.add_column(
        "staff",
        sa.Column("session_version", sa.Integer(), server_default="1", nullable=False),
    )
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column(
            "at",
            app.db.UTCDateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failure")),
    )
    op.create_index("ix_login_failure_key_at", "login_failure", ["key", "at"], unique=False)
    op.drop_index(op.f("ix_login_throttle_slot_us"), table_name="login_throttle")
    op.drop_table("login_throttle")
    op.drop_index(op.f("ix_staff_session_staff_id"), table_name="staff_session")
    op.drop_table("staff_session")
