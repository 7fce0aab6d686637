"""One holder at a time across processes: PostgreSQL session-level advisory locks.

For the roles that only one process may play at once, however many run: the outbox sender
(Telegram's limits are per bot, so one process paces every message) and the long poller (Telegram
serves getUpdates to one client at a time). The holder keeps the lock on a connection of its own
for as long as it plays the role; PostgreSQL releases it when that connection ends — a clean
release, the process exiting or being killed (the kernel closes the socket at once), or, for a
machine that vanished, when the server's TCP keepalive on that connection gives up (~30 s, set
below). The others try again every few seconds and take over.

`holder()` tells who plays a role (the holder's connection is named `lomaya <role> host:pid`), for
`/health` and for the operator.

The lock needs a real PostgreSQL session: a pooler in transaction mode (PgBouncer's default) would
hand the lock's connection to someone else. On SQLite (the embedded default: one process) there is
nobody to coordinate with, and the lock is always granted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger("lomaya.locks")

NAMESPACE = 0x4C4F4D41  # "LOMA": the first of the two int4 keys of every lock of this app
ROLES = {"sender": 1, "poller": 2}
STANDBY_SECONDS = 1.0  # how often a process that does not hold a lock tries again

# Server-side keepalive of the holder's connection: a holder whose machine vanished (no FIN, no
# RST) loses the lock after about idle + interval * count seconds instead of the kernel's hours.
_KEEPALIVE = (
    "SET tcp_keepalives_idle = 10",
    "SET tcp_keepalives_interval = 5",
    "SET tcp_keepalives_count = 3",
)


def _keys(role: str) -> str:
    return f"{NAMESPACE}, {ROLES[role]}"  # constants of this module, never user input


def _match(role: str, alias: str = "pg_locks") -> str:
    """The pg_locks row of `role`'s lock (the two-int4 form: objsubid 2)."""
    return (
        f"{alias}.classid = {NAMESPACE} AND {alias}.objid = {ROLES[role]} AND {alias}.objsubid = 2"
    )


class AdvisoryLock:
    """The lock of one role (`ROLES`) for this process. Used by one thread at a time."""

    def __init__(self, engine: Engine, role: str) -> None:
        self.engine = engine
        self.role = role
        self.postgres = engine.dialect.name == "postgresql"
        self._conn: Connection | None = None
        self._standing_by = False

    @property
    def name(self) -> str:
        return f"lomaya {self.role} {socket.gethostname()[:30]}:{os.getpid()}"

    def acquire(self) -> bool:
        """Take the lock if it is free; True while this process holds it (checked, not assumed)."""
        if not self.postgres:
            return True
        if self._conn is not None:
            return self.held()
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = conn.execute(sa.text(f"SELECT pg_try_advisory_lock({_keys(self.role)})")).scalar()
            if not got:
                conn.close()  # back to the pool: it holds nothing
                return False
            conn.execute(
                sa.text("SELECT set_config('application_name', :name, false)"), {"name": self.name}
            )
        except Exception:
            conn.invalidate()  # a half-set-up session must not go back to the pool
            conn.close()
            raise
        for statement in _KEEPALIVE:
            try:
                conn.execute(sa.text(statement))
            except sa.exc.DBAPIError:  # a platform without TCP keepalive settings: still a lock
                log.debug("%s refused", statement)
        self._conn = conn
        return True

    def take_turn(self, stop: threading.Event, standby_note: str) -> bool:
        """One try at the role for a loop that plays it: True when this process holds the lock.
        Otherwise (taken by another process, or the database does not answer) logs `standby_note`
        once per spell of standing by, waits STANDBY_SECONDS or until `stop`, and says False."""
        try:
            leading = self.acquire()
        except Exception as exc:  # the database is down: try again shortly
            log.warning("the %s lock: no answer (%s); retrying", self.role, type(exc).__name__)
            leading = False
        if leading:
            self._standing_by = False
            return True
        if not self._standing_by:
            log.info(standby_note)
            self._standing_by = True
        stop.wait(STANDBY_SECONDS)
        return False

    def held(self) -> bool:
        """Whether this process still holds the lock: its session still answers and still holds
        it (behind a transaction-mode pooler it would not: then this says no, loudly, rather
        than two processes sending)."""
        if not self.postgres:
            return True
        if self._conn is None:
            return False
        try:
            mine = self._conn.execute(
                sa.text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                    f"AND pid = pg_backend_pid() AND granted AND {_match(self.role)})"
                )
            ).scalar()
        except Exception as exc:
            log.warning("the %s lock's connection failed (%s)", self.role, type(exc).__name__)
            self._drop()
            return False
        if not mine:
            log.warning("the %s lock is no longer held by this session", self.role)
            self._drop()
        return bool(mine)

    def release(self) -> None:
        """Give the role up (the others take over at their next try)."""
        if self._conn is None:
            return
        with contextlib.suppress(Exception):  # the connection is gone, and with it the lock
            self._conn.execute(sa.text(f"SELECT pg_advisory_unlock({_keys(self.role)})"))
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Closed for good, not pooled: the session carries this role's name and settings.
            conn.invalidate()
            conn.close()


def holder(engine: Engine, role: str) -> str | None:
    """Who holds `role`'s lock in this database (`lomaya <role> host:pid`), None if nobody does
    (or on SQLite, where there is no lock)."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted "
                f"AND {_match(role, 'l')} "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ).scalar()
