"""The advisory locks that make one process the sender and one the poller (app.locks)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app import locks


@pytest.fixture
def pg_engine(engine, is_pg):
    if not is_pg:
        pytest.skip("advisory locks are PostgreSQL's (SQLite: one process, always granted)")
    return engine


def test_on_sqlite_the_lock_is_always_granted(engine, is_pg):
    if is_pg:
        pytest.skip("SQLite only")
    one, two = locks.AdvisoryLock(engine, "sender"), locks.AdvisoryLock(engine, "sender")
    assert one.acquire() and two.acquire() and one.held()
    assert locks.holder(engine, "sender") is None


def test_one_holder_and_the_next_after_release(pg_engine):
    first, second = locks.AdvisoryLock(pg_engine, "sender"), locks.AdvisoryLock(pg_engine, "sender")
    poller = locks.AdvisoryLock(pg_engine, "poller")
    try:
        assert first.acquire() and first.acquire()  # taken, and still ours
        assert not second.acquire()
        assert poller.acquire()  # another role, another lock
        assert locks.holder(pg_engine, "sender") == first.name
        assert first.name.startswith("lomaya sender ")
        first.release()
        assert not first.held()
        assert second.acquire() and locks.holder(pg_engine, "sender") == second.name
    finally:
        for lock in (first, second, poller):
            lock.release()
    assert locks.holder(pg_engine, "sender") is None


def test_a_holder_whose_connection_ended_knows_it_and_loses_the_lock(pg_engine):
    first, second = locks.AdvisoryLock(pg_engine, "sender"), locks.AdvisoryLock(pg_engine, "sender")
    try:
        assert first.acquire()
        assert first._conn is not None
        backend = first._conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        with pg_engine.connect() as admin:  # what a restart or an idle timeout does
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
            admin.commit()
        assert not first.held()
        assert second.acquire()
    finally:
        first.release()
        second.release()
