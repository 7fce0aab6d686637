"""media and consent: the durable media deletion queue, and every consent given

- `media_deletion`: objects to remove from media storage, queued in the transaction that drops
  their rows (app.media); a worker removes them.
- `consent`: one row per consent given in the registration form — who gave it (a parent or the
  participant), when, and which text version. Each participant's existing consent (the time and
  version kept on `participant`) becomes a row with `given_by` unknown (NULL): the old form did not
  ask. `participant.consent_at`/`consent_version` stay as the consent in force.

Revision ID: f0f0d0c0a008
Revises: b1b1d0c0a010
Create Date: 2026-12-01 17:30:00

"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.db

revision = "f0f0d0c0a008"
down_revision = "b1b1d0c0a010"
branch_labels = None
depends_on = None

OLD_VERSION = "2026-1"  # the one-line checkbox text, templates/registration/consent/2026-1.html


def upgrade() -> None:
    op.create_table(
        "media_deletion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column(
            "created_at",
            app.db.UTCDateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_deletion")),
        sa.UniqueConstraint("key", name=op.f("uq_media_deletion_key")),
    )
    op.create_table(
        "consent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column(
            "given_by", sa.Enum("parent", "participant", name="consent_giver"), nullable=True
        ),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("given_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participant.id"],
            name=op.f("fk_consent_participant_id_participant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent")),
    )
    op.create_index(op.f("ix_consent_participant_id"), "consent", ["participant_id"])
    participant = sa.table(
        "participant",
        sa.column("id", sa.Integer()),
        sa.column("consent_at"),
        sa.column("consent_version", sa.String()),
    )
    consent = sa.table(
        "consent",
        sa.column("participant_id", sa.Integer()),
        sa.column("version", sa.String()),
        sa.column("given_at"),
    )
    op.execute(
        consent.insert().from_select(
            ["participant_id", "version", "given_at"],
            sa.select(
                participant.c.id,
                sa.func.coalesce(participant.c.consent_version, OLD_VERSION),
                participant.c.consent_at,
            ).where(participant.c.consent_at.is_not(None)),
        )
    )


def downgrade() -> None:
    # participant.consent_at/consent_version already hold the latest consent of each participant.
    op.drop_index(op.f("ix_consent_participant_id"), table_name="consent")
    op.drop_table("consent")
    sa.Enum(name="consent_giver").drop(op.get_bind(), checkfirst=True)
    op.drop_table("media_deletion")
