"""pauses: the member_pause table and the report status `paused`

A member may be paused for a range of days (illness, holidays): the daily job gives those days a
`paused` report instead of a waiting one (no task message, no reminder) and they never count toward
exclusion. Downgrade turns paused reports into skipped ones (the old model has no other word for a
day without a photo) and drops the value from the PostgreSQL enum type.

Revision ID: b1b1d0c0a010
Revises: e0e0d0c0a007
Create Date: 2026-12-02 10:00:00

"""

import sqlalchemy as sa
import sqlmodel  # AutoString below
from alembic import op

import app.db

revision = "b1b1d0c0a010"
down_revision = "e0e0d0c0a007"
branch_labels = None
depends_on = None

OLD_VALUES = ("waiting", "reviewing", "approved", "declined", "skipped")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # Allowed inside a transaction since PostgreSQL 12; the value is not used in this one.
        op.execute("ALTER TYPE report_status ADD VALUE IF NOT EXISTS 'paused'")
    op.create_table(
        "member_pause",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            app.db.UTCDateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("ended_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_by_id", sa.Integer(), nullable=True),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.CheckConstraint("first_day <= last_day", name=op.f("ck_member_pause_days")),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["staff.id"],
            name=op.f("fk_member_pause_created_by_id_staff"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["ended_by_id"],
            ["staff.id"],
            name=op.f("fk_member_pause_ended_by_id_staff"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
            name=op.f("fk_member_pause_member_id_member"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_pause")),
    )
    op.create_index(
        "ix_member_pause_member_days",
        "member_pause",
        ["member_id", "first_day", "last_day"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_member_pause_member_days", table_name="member_pause")
    op.drop_table("member_pause")
    report = sa.table("report", sa.column("status", sa.String()))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("UPDATE report SET status = 'skipped' WHERE status = 'paused'")
        op.execute("ALTER TYPE report_status RENAME TO report_status_old")
        sa.Enum(*OLD_VALUES, name="report_status").create(bind)
        op.execute(
            "ALTER TABLE report ALTER COLUMN status TYPE report_status "
            "USING status::text::report_status"
        )
        op.execute("DROP TYPE report_status_old")
    else:
        op.execute(report.update().where(report.c.status == "paused").values(status="skipped"))
