"""Alembic environment: the database comes from the app's settings (or a connection handed in)."""

from alembic import context
from sqlmodel import SQLModel

import app.models  # noqa: F401  (registers the tables)
from app.db import make_engine
from app.settings import get_settings

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(get_settings().database_url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _include_object(connection):
    """Leave out of autogenerate/check the indexes meant for another dialect (Index.ddl_if)."""

    def include(obj, name, type_, reflected, compare_to) -> bool:
        ddl_if = getattr(obj, "_ddl_if", None)
        dialect = getattr(ddl_if, "dialect", None)
        if type_ == "index" and not reflected and dialect:
            dialects = (dialect,) if isinstance(dialect, str) else tuple(dialect)
            return connection.dialect.name in dialects
        return True

    return include


def _run(connection) -> None:
    context.configure(
        include_object=_include_object(connection),
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=False,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Offline migrations are not supported; run against a database.")
run_migrations_online()
