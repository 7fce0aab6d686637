"""audit: an index on (action, at) in place of the one on action

The pace of the week (app/pace.py) reads this week's decisions out of the whole audit log; the
index bounds that read by the week instead of the log's size. Its prefix serves what the index on
`action` alone served (the log filtered by action), so that one goes.

Revision ID: c3c3d0c0a012
Revises: b2b2d0c0a011
Create Date: 2026-12-01 21:00:00

"""

from alembic import op

revision = "c3c3d0c0a012"
down_revision = "b2b2d0c0a011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_action_at", "audit_event", ["action", "at"])
    op.drop_index("ix_audit_event_action", table_name="audit_event")


def downgrade() -> None:
    op.create_index("ix_audit_event_action", "audit_event", ["action"])
    op.drop_index("ix_audit_action_at", table_name="audit_event")
