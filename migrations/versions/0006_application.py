"""one name: the `request` table becomes `application` (model, module, URL and templates agree)

Renames the table, its enum type, constraints, index and sequence, and the names the app stored in
rows: audit actions and object types ("request.approve" → "application.approve"), outbox kinds and
dedupe keys of application decisions. Data is kept as it is.

Revision ID: d0d0d0c0a006
Revises: c0c0d0c0a005
Create Date: 2026-12-01 17:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "d0d0d0c0a006"
down_revision = "c0c0d0c0a005"
branch_labels = None
depends_on = None

FOREIGN_KEYS = (
    # (name suffix, local column, referred table, on delete)
    ("decided_by_id_staff", "decided_by_id", "staff", "SET NULL"),
    ("participant_id_participant", "participant_id", "participant", "CASCADE"),
    ("shift_id_shift", "shift_id", "shift", "CASCADE"),
)


def _rename(old: str, new: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.rename_table(old, new)
        op.execute(f"ALTER TYPE {old}_status RENAME TO {new}_status")
        op.execute(f"ALTER SEQUENCE {old}_id_seq RENAME TO {new}_id_seq")
        op.execute(f"ALTER TABLE {new} RENAME CONSTRAINT pk_{old} TO pk_{new}")
        op.execute(
            f"ALTER TABLE {new} RENAME CONSTRAINT uq_{old}_participant_shift "
            f"TO uq_{new}_participant_shift"
        )
        for suffix, *_ in FOREIGN_KEYS:
            op.execute(
                f"ALTER TABLE {new} RENAME CONSTRAINT fk_{old}_{suffix} TO fk_{new}_{suffix}"
            )
        op.execute(f"ALTER INDEX ix_{old}_shift_id RENAME TO ix_{new}_shift_id")
    else:
        op.drop_index(f"ix_{old}_shift_id", table_name=old)
        op.rename_table(old, new)
        # SQLite cannot rename constraints: recreate the table with the new names.
        with op.batch_alter_table(new, recreate="always") as batch:
            batch.drop_constraint(f"uq_{old}_participant_shift", type_="unique")
            batch.create_unique_constraint(
                f"uq_{new}_participant_shift", ["participant_id", "shift_id"]
            )
            for suffix, column, referred, ondelete in FOREIGN_KEYS:
                batch.drop_constraint(f"fk_{old}_{suffix}", type_="foreignkey")
                batch.create_foreign_key(
                    f"fk_{new}_{suffix}", referred, [column], ["id"], ondelete=ondelete
                )
        op.create_index(f"ix_{new}_shift_id", new, ["shift_id"])
    audit = sa.table("audit_event", sa.column("action"), sa.column("object_type"))
    op.execute(audit.update().where(audit.c.object_type == old).values(object_type=new))
    prefix = f"{old}."
    op.execute(
        audit.update()
        .where(audit.c.action.like(prefix + "%"))
        .values(action=sa.literal(f"{new}.") + sa.func.substr(audit.c.action, len(prefix) + 1))
    )
    outbox = sa.table("outgoing_message", sa.column("kind"), sa.column("dedupe_key"))
    for outcome in ("approved", "declined"):
        op.execute(
            outbox.update()
            .where(outbox.c.kind == f"{old}_{outcome}")
            .values(kind=f"{new}_{outcome}")
        )
    key_prefix = f"{old}:"
    op.execute(
        outbox.update()
        .where(outbox.c.dedupe_key.like(key_prefix + "%"))
        .values(
            dedupe_key=sa.literal(f"{new}:")
            + sa.func.substr(outbox.c.dedupe_key, len(key_prefix) + 1)
        )
    )


def upgrade() -> None:
    _rename("request", "application")


def downgrade() -> None:
    _rename("application", "request")
