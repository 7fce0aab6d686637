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
