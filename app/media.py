"""Media objects and the rows that refer to them (product.md §7: deletion reaches every copy).

**The deletion queue.** Whoever drops or rewrites rows that refer to objects (participant
deletion, retention, a replaced or deleted task picture) calls `delete_later(session, keys)` in
that same transaction: the keys become `media_deletion` rows, committed with the change or not at
all. `purge()` is the worker: it claims due rows with a lease (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, so several workers never take the same row; SQLite has one process), removes the
objects (a missing object counts as removed, so a repeat is harmless) and deletes the rows. A crash
anywhere — after the commit, between removing an object and deleting its row — leaves rows that
the next run finishes once the lease has passed. It runs on every scheduler tick (`lomaya worker`,
or the web app when the scheduler runs there), right after a deletion in the web app for that
deletion's keys, and by hand: `lomaya media purge`.

**Rows against objects.** `check()` lists database references without an object and objects no
row refers to (`lomaya media check`); `copy_all()` copies every object from one backend to another
and verifies it (`lomaya media migrate`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from app import clock, images, storage
from app.db import dialect_insert, is_postgres, session_scope
from app.errors import MissingObject
from app.models import MediaDeletion, ReportPhoto, Task

log = logging.getLogger("lomaya.media")

BATCH = 200  # rows claimed per transaction
LEASE = timedelta(minutes=2)  # a claimed row is due again after this (its worker died)
RETRY_BASE = timedelta(seconds=30)  # a failed removal waits 30 s, 1 min, 2 min … at most an hour
RETRY_MAX = timedelta(hours=1)


# --- the deletion queue -----------------------------------------------------------------------------


def delete_later(session: Session, keys: Iterable[str | None]) -> list[str]:
    """Queue objects for removal in the caller's transaction; returns the keys queued (for a
    `purge(keys)` right after the commit). Empty keys are skipped; a key already queued stays
    queued once."""
    unique = sorted({key for key in keys if key})
    if unique:
        now = clock.now()
        table = MediaDeletion.__table__  # type: ignore[attr-defined]
        session.execute(
            dialect_insert(session, table).on_conflict_do_nothing(index_elements=["key"]),
            [{"key": key, "attempts": 0, "created_at": now} for key in unique],
        )
    return unique


@dataclass
class Purged:
    removed: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # error class → count


def _claim(session: Session, keys: list[str] | None) -> list[tuple[int, str]]:
    now = clock.now()
    due = (
        sa.select(col(MediaDeletion.id), col(MediaDeletion.key))
        .where(
            sa.or_(
                col(MediaDeletion.claimed_until).is_(None), col(MediaDeletion.claimed_until) <= now
            )
        )
        .order_by(col(MediaDeletion.id))
        .limit(BATCH)
    )
    if keys is not None:
        due = due.where(col(MediaDeletion.key).in_(keys))
    if is_postgres(session):
        due = due.with_for_update(skip_locked=True)
    rows = [(int(row[0]), str(row[1])) for row in session.execute(due).all()]
    if rows:
        session.execute(
            sa.update(MediaDeletion)
            .where(col(MediaDeletion.id).in_([row[0] for row in rows]))
            .values(claimed_until=now + LEASE)
        )
    return rows


def _remove(rows: list[tuple[int, str]]) -> tuple[list[int], tuple[int, str] | None, list[int]]:
    """Remove the objects of claimed rows, in order, stopping at the first failure (a store that
    is down would fail them all, slowly). Returns (done ids, (failed id, error class), untried)."""
    store = storage.backend()
    done: list[int] = []
    for index, (row_id, key) in enumerate(rows):
        try:
            store.delete(key)
        except ValueError:
            pass  # a key that cannot name an object: nothing to remove
        except Exception as exc:
            return done, (row_id, type(exc).__name__), [r[0] for r in rows[index + 1 :]]
        done.append(row_id)
    return done, None, []


def purge(keys: Iterable[str] | None = None, *, engine: Engine | None = None) -> Purged:
    """Remove the objects of due queued rows (only those of `keys`, if given) and delete the rows.

    Idempotent and safe with several workers at once. A failed removal is retried later with a
    growing pause; this run stops at the first failure."""
    wanted = None if keys is None else sorted(set(keys))
    result = Purged()
    chunks: Iterator[list[str] | None] = (
        iter([None])
        if wanted is None
        else (wanted[i : i + BATCH] for i in range(0, len(wanted), BATCH))
    )
    for chunk in chunks:
        while True:
            with session_scope(engine) as session:
                rows = _claim(session, chunk)
            if not rows:
                break
            done, failure, untried = _remove(rows)
            with session_scope(engine) as session:
                if done:
                    session.execute(sa.delete(MediaDeletion).where(col(MediaDeletion.id).in_(done)))
                if untried:
                    session.execute(
                        sa.update(MediaDeletion)
                        .where(col(MediaDeletion.id).in_(untried))
                        .values(claimed_until=None)
                    )
                if failure is not None:
                    _postpone(session, *failure)
            result.removed += len(done)
            if failure is not None:
                result.failed += 1
                result.errors[failure[1]] = result.errors.get(failure[1], 0) + 1
                log.warning("media deletion failed (%s); it will be retried", failure[1])
                return result
    if result.removed:
        log.info("media: %d objects deleted", result.removed)
    return result


def _postpone(session: Session, row_id: int, error: str) -> None:
    row = session.get(MediaDeletion, row_id)
    if row is None:
        return
    pause = min(RETRY_BASE * 2**row.attempts, RETRY_MAX)
    row.attempts += 1
    row.last_error = error[:100]
    row.claimed_until = clock.now() + pause
    session.add(row)


def pending(session: Session) -> dict[str, int]:
    """The queue for /health: rows waiting, and those that failed at least once."""
    total, failing = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count(col(MediaDeletion.last_error)),
        ).select_from(MediaDeletion)
    ).one()
    return {"pending_deletions": int(total), "failing_deletions": int(failing)}


# --- rows against objects ---------------------------------------------------------------------------


def referenced_keys(session: Session) -> Iterator[str]:
    """Every key a row refers to: report photos and their thumbnails, task pictures and theirs."""
    photos = sa.select(col(ReportPhoto.storage_key), col(ReportPhoto.thumb_key))
    for key, thumb in session.execute(photos.execution_options(yield_per=5000)):
        yield from (k for k in (key, thumb) if k)
    pictures = sa.select(col(Task.image_key)).where(col(Task.image_key).is_not(None))
    for (key,) in session.execute(pictures):
        yield key
        yield images.thumb_key_of(key)


@dataclass
class Check:
    referenced: int
    objects: int
    missing: list[str]  # a row refers to it, the store has no object
    orphaned: list[str]  # an object no row refers to and none is queued to delete
    queued: int  # objects still present that are queued for deletion


def check(session: Session, store: storage.Backend) -> Check:
    """Compare the database with the objects of `store`. An upload in flight (stored, its row not
    yet committed) shows as orphaned for that moment."""
    referenced = set(referenced_keys(session))
    queued = set(session.scalars(sa.select(col(MediaDeletion.key))))
    objects = set(store.keys())
    return Check(
        referenced=len(referenced),
        objects=len(objects),
        missing=sorted(referenced - objects),
        orphaned=sorted(objects - referenced - queued),
        queued=len(objects & queued),
    )


class CopyMismatch(Exception):
    """The copy read back from the target does not have the source's SHA-256."""


@dataclass
class Copied:
    total: int = 0
    copied: int = 0
    already: int = 0  # at the target with the same SHA-256 (an earlier, interrupted run)
    vanished: int = 0  # deleted from the source while copying
    bytes: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # key → error class
    pruned: int = 0


Progress = Callable[[Copied], None]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _content_type(key: str) -> str:
    return "image/jpeg" if key.endswith((".jpg", ".jpeg")) else "application/octet-stream"


def _target_sha(target: storage.Backend, key: str) -> str | None:
    """The SHA-256 of the target's object (recorded at upload, else computed), None if absent."""
    try:
        recorded = target.checksum(key)
        return recorded if recorded is not None else _sha(target.get(key))
    except MissingObject:
        return None


def copy_one(source: storage.Backend, target: storage.Backend, key: str) -> tuple[str, int]:
    """Copy one object unless the target already has it intact; verify by reading it back.
    Returns ("copied" | "already" | "vanished", bytes)."""
    try:
        data = source.get(key)
    except MissingObject:
        return "vanished", 0
    sha = _sha(data)
    if _target_sha(target, key) == sha:
        return "already", 0
    target.put(key, data, _content_type(key), sha256=sha)
    if _sha(target.get(key)) != sha:
        raise CopyMismatch(key)
    return "copied", len(data)


def copy_all(
    source: storage.Backend,
    target: storage.Backend,
    *,
    jobs: int = 4,
    progress: Progress | None = None,
) -> Copied:
    """Copy every object of `source` to `target`, `jobs` at a time, each verified by SHA-256.

    The source is only read. Objects already at the target with the same SHA-256 are skipped, so
    a run that was interrupted (Ctrl+C: the objects in flight finish, the rest are not started)
    continues where it stopped when started again. Each object is written whole or not at all
    (a temporary file renamed into place; a single S3 PUT)."""
    keys = list(source.keys())
    result = Copied(total=len(keys))
    lock = threading.Lock()

    def one(key: str) -> None:
        try:
            outcome, size = copy_one(source, target, key)
        except Exception as exc:
            with lock:
                result.failed[key] = type(exc).__name__
        else:
            with lock:
                setattr(result, outcome, getattr(result, outcome) + 1)
                result.bytes += size
        if progress is not None:
            with lock:
                progress(result)

    # A few objects per thread in flight, not a future per object (a million photos).
    jobs = max(1, jobs)
    executor = ThreadPoolExecutor(max_workers=jobs)
    in_flight: set[Future[None]] = set()
    try:
        for key in keys:
            if len(in_flight) >= 2 * jobs:
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()  # a KeyboardInterrupt in a thread surfaces here
            in_flight.add(executor.submit(one, key))
        for future in in_flight:
            future.result()
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    return result


def prune_target(session: Session, source: storage.Backend, target: storage.Backend) -> list[str]:
    """Delete from `target` the objects that left the source while it was being copied: absent
    from the source and referred to by no row (deleted on request or by retention meanwhile).
    Only for a target the app does not use yet — there an upload in flight looks the same. In a
    bucket, only objects this command wrote (they carry its SHA-256) are touched."""
    referenced = set(referenced_keys(session))
    gone = []
    for key in sorted(set(target.keys()) - set(source.keys()) - referenced):
        with contextlib.suppress(MissingObject):
            if isinstance(target, storage.S3Storage) and target.checksum(key) is None:
                continue  # not copied by `lomaya media migrate`: not ours to remove
            target.delete(key)
            gone.append(key)
    return gone
