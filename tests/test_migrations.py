"""Migrations: upgrade → downgrade → upgrade works, and the models match them (no drift)."""

import sqlalchemy as sa

from app import migrate
from app.db import make_engine


def _fresh_engine(database_url, tmp_path):
    if database_url.startswith("sqlite"):
        return make_engine(f"sqlite:///{tmp_path / 'migrations.sqlite3'}")
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    name = url.database + "_mig"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_engine(url.set(database=name).render_as_string(hide_password=False))


def test_upgrade_downgrade_upgrade_and_no_drift(database_url, tmp_path, settings):
    engine = _fresh_engine(database_url, tmp_path)
    migrate.upgrade(engine)
    migrate.check(engine)  # raises if models and migrations differ
    migrate.downgrade(engine, "base")
    inspector = sa.inspect(engine)
    assert [t for t in inspector.get_table_names() if t != "alembic_version"] == []
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            enums = conn.execute(
                sa.text("SELECT count(*) FROM pg_type WHERE typtype = 'e'")
            ).scalar()
        assert enums == 0, "enum types must be dropped on downgrade"
    migrate.upgrade(engine)
    assert "report" in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_existing_consents_become_consent_records(database_url, tmp_path, settings):
    """0008: each participant's stored consent (time, version) becomes a consent row whose giver is
    unknown (the old form did not ask); participants without one get none."""
    engine = _fresh_engine(database_url, tmp_path)
    migrate.upgrade(engine, "d0d0d0c0a006")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO participant (id, telegram_id, name, surname, city, is_bot_blocked, "
                "is_test, consent_at, consent_version, created_at, updated_at) VALUES "
                "(1, 11, 'Маша', 'Иванова', 'Уфа', false, false, '2026-11-01 10:00:00', "
                "'2026-1', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP), "
                "(2, 12, 'Петя', 'Петров', 'Уфа', false, false, NULL, NULL, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    migrate.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT participant_id, given_by, version FROM consent")).all()
    assert [tuple(r) for r in rows] == [(1, None, "2026-1")]
    migrate.downgrade(engine, "d0d0d0c0a006")
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT consent_version FROM participant WHERE id = 1"))
        assert kept.scalar() == "2026-1"
    engine.dispose()
