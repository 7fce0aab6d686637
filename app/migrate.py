"""Run Alembic migrations from code (the CLI, the demo, the tests)."""

from __future__ import annotations

import warnings

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from app.db import get_engine
from app.settings import PROJECT_ROOT


def alembic_config() -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    return config


def _run(engine: Engine | None, action, *args) -> None:
    config = alembic_config()
    with (engine or get_engine()).begin() as connection:
        config.attributes["connection"] = connection
        action(config, *args)


def upgrade(engine: Engine | None = None, revision: str = "head") -> None:
    _run(engine, command.upgrade, revision)


def downgrade(engine: Engine | None = None, revision: str = "-1") -> None:
    _run(engine, command.downgrade, revision)


def check(engine: Engine | None = None) -> None:
    """Raise if the models and the migrations differ (alembic check)."""
    with warnings.catch_warnings():
        # PostgreSQL-only expression indexes (ddl_if) cannot be compared on SQLite, where they
        # do not exist; alembic warns about them there.
        warnings.filterwarnings(
            "ignore", message="autogenerate skipping metadata-specified expression-based index"
        )
        _run(engine, command.check)
