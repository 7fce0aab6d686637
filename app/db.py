"""Engine, sessions and the SQLite/PostgreSQL differences, in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.settings import Settings, get_settings


class UTCDateTime(sa.types.TypeDecorator):
    """A timezone-aware UTC timestamp on both databases (SQLite returns naive values)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite stores text; keep it naive UTC so comparisons sort correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _hide_values_in_pg_errors(context: Any) -> None:
    """PostgreSQL quotes the offending values in its error messages ("DETAIL:  Key (phone)=(…)
    already exists", "Failing row contains (…)", 'invalid input syntax for type bigint: "…"'):
    keep the primary line, and for data exceptions (SQLSTATE class 22) not even that, so no error
    text — stored, logged or in a traceback — carries a child's name or phone (product.md §7)."""
    orig = context.original_exception
    sqlstate = getattr(orig, "sqlstate", None)
    if not sqlstate:  # not the server's answer (e.g. cannot connect): nothing from our rows in it
        return
    primary = "" if sqlstate.startswith("22") else (orig.diag.message_primary or "")
    text = f"[{sqlstate}] {primary}".strip()
    orig.args = (text,)
    error = context.sqlalchemy_exception
    if error is not None:
        error.args = (f"({type(orig).__module__}.{type(orig).__name__}) {text}",)


def make_engine(url: str, **kwargs: Any) -> Engine:
    # Query parameters hold names and phones: never put them into error messages (or the logs).
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 10}, **kwargs
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    engine = sa.create_engine(url, **kwargs)
    sa.event.listen(engine, "handle_error", _hide_values_in_pg_errors)
    return engine


_engine: Engine | None = None


def get_engine(settings: Settings | None = None) -> Engine:
    """The process's engine; on PostgreSQL its pool holds DB_POOL_SIZE connections (+ DB_MAX_OVERFLOW
    for bursts, closed again when returned)."""
    global _engine
    if _engine is None:
        settings = settings or get_settings()
        pool: dict[str, Any] = {}
        if not settings.is_sqlite:
            pool = {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow}
        _engine = make_engine(settings.database_url, **pool)
    return _engine


def set_engine(engine: Engine | None) -> None:
    global _engine
    if _engine is not None and engine is not _engine:
        _engine.dispose()
    _engine = engine


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """One session, one transaction: commit on success, roll back on any error."""
    session = Session(engine or get_engine(), expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dialect_insert(session: Session, table: sa.Table) -> Any:
    """The dialect's INSERT construct, which has `on_conflict_do_nothing` (PostgreSQL and SQLite)."""
    if is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def seconds_between(session: Session, later: Any, earlier: Any) -> Any:
    """SQL for the seconds from `earlier` to `later` (two timestamp columns), as a number.

    PostgreSQL subtracts timestamps; SQLite keeps them as text, which `julianday` reads (in days,
    with the fraction of a second)."""
    if is_postgres(session):
        return sa.extract("epoch", later - earlier)
    return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0


def is_postgres(session_or_engine: Session | Engine) -> bool:
    bind = (
        session_or_engine.get_bind()
        if isinstance(session_or_engine, Session)
        else session_or_engine
    )
    return bind.dialect.name == "postgresql"


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq (psycopg) takes it, for a connection of its own."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
