"""Media objects and their rows: the durable deletion queue, `lomaya media check|migrate|purge`.

Deletion that leaves nothing behind: an object is queued in the transaction that drops its row,
and a worker removes it. The crash tests stop a real process (SIGKILL) between the commit and the
removal, then run the worker again. Every test that takes `store` runs on the folder and on S3.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from app import clock, images, media, scheduler, storage, tasks
from app.models import (
    MediaDeletion,
    Participant,
    ReportPhoto,
    ReportStatus,
    ShiftStatus,
)
from app.storage import LocalStorage, S3Storage
from tests import factories
from tests.s3_support import store_env

ROOT = Path(__file__).resolve().parent.parent


def _queued(db) -> list[str]:
    db.expire_all()
    return sorted(db.exec(select(MediaDeletion.key)).all())


def _photo_keys(db, participant_id: int) -> list[str]:
    from app.models import Member, Report

    rows = db.exec(
        select(ReportPhoto.storage_key, ReportPhoto.thumb_key)
        .join(Report, Report.id == ReportPhoto.report_id)
        .join(Member, Member.id == Report.member_id)
        .where(Member.participant_id == participant_id)
    ).all()
    return sorted(k for row in rows for k in row if k)


def _family_with_photos(db, photos: int = 2):
    shift = factories.make_shift(db, days=4)
    participant = factories.make_participant(db, name="Вика")
    member = factories.make_member(db, shift, participant)
    factories.make_report(db, member, day=1, status=ReportStatus.declined, photos=photos)
    return participant


def _run(script: str, env: dict[str, str], settings) -> subprocess.CompletedProcess[str]:
    """Run `script` in a fresh Python process configured like a deployment (environment only)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={
            **os.environ,
            "DATABASE_URL": settings.database_url,
            "SECRET_KEY": settings.secret_key,
            "SCHEDULER_ENABLED": "false",
            "PYTHONPATH": str(ROOT),
            **env,
        },
    )


# --- the queue -------------------------------------------------------------------------------------


def test_participant_deletion_crash_before_removal_leaves_nothing_after_the_worker(
    store, db, admin, settings
):
    """The real endpoint in a real process, SIGKILLed at the moment it starts removing objects
    (after its transaction committed); then the worker, as its own process, finishes the job."""
    participant = _family_with_photos(db)
    keys = _photo_keys(db, participant.id)
    assert len(keys) == 4 and all(store.exists(k) for k in keys)
    killed = _run(
        f"""
        import os, signal
        from starlette.testclient import TestClient
        from app import media
        from app.main import create_app
        from tests.conftest import csrf_token, login

        def crash(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)

        media.purge = crash  # the process stops right after the commit, before any removal
        with TestClient(create_app(start_background=False)) as client:
            class Admin:
                email = {admin.email!r}
            login(client, Admin)
            token = csrf_token(client, "/participants/{participant.id}/delete")
            client.post(
                "/participants/{participant.id}/delete",
                data={{"csrf_token": token, "confirm": "yes"}},
            )
        print("not killed")
        """,
        store_env(store),
        settings,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    db.expire_all()
    assert db.get(Participant, participant.id).deleted_at is not None  # committed
    assert all(store.exists(k) for k in keys)  # not removed: the process died first
    assert _queued(db) == keys  # …but queued in the same transaction

    worker = _run("from app.cli import main; main(['media', 'purge'])", store_env(store), settings)
    assert worker.returncode == 0, worker.stderr
    assert "Удалено объектов: 4; в очереди осталось: 0." in worker.stdout
    assert not any(store.exists(k) for k in keys)
    assert _queued(db) == []


def test_a_crash_between_removing_objects_and_their_rows_is_finished_later(store, db, settings):
    """The worker dies after removing some objects, before deleting their rows: after the lease,
    the next run removes the rest and repeats the removed ones harmlessly."""
    keys = [f"reports/zz/crash-{n}.jpg" for n in range(4)]
    for key in keys:
        store.put(key, b"x")
    media.delete_later(db, keys)
    db.commit()
    killed = _run(
        """
        import os, signal
        from app import media, storage

        store = storage.backend()
        original, removed = store.delete, []

        def delete_then_crash(key):
            original(key)
            removed.append(key)
            if len(removed) == 2:
                os.kill(os.getpid(), signal.SIGKILL)

        store.delete = delete_then_crash
        media.purge()
        """,
        store_env(store),
        settings,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [store.exists(k) for k in keys] == [False, False, True, True]
    assert _queued(db) == keys  # claimed with a lease, not deleted
    assert media.purge().removed == 0  # the dead worker's lease still holds
    clock.set_now(clock.now() + media.LEASE + timedelta(seconds=1))
    assert media.purge().removed == 4
    assert not any(store.exists(k) for k in keys)
    assert _queued(db) == []


def test_deleting_is_idempotent(store, db):
    store.put("reports/aa/one.jpg", b"x")
    media.delete_later(db, ["reports/aa/one.jpg", "reports/aa/never-was.jpg", None, ""])
    media.delete_later(db, ["reports/aa/one.jpg"])  # queued twice: one row
    db.commit()
    assert _queued(db) == ["reports/aa/never-was.jpg", "reports/aa/one.jpg"]
    result = media.purge()
    assert (result.removed, result.failed) == (2, 0)
    assert not store.exists("reports/aa/one.jpg")
    assert media.purge().removed == 0 and _queued(db) == []


def test_a_rolled_back_transaction_queues_nothing(store, db):
    store.put("reports/aa/kept.jpg", b"x")
    media.delete_later(db, ["reports/aa/kept.jpg"])
    db.rollback()
    media.purge()
    assert store.exists("reports/aa/kept.jpg") and _queued(db) == []


def test_two_workers_never_claim_the_same_rows(db, engine, settings):
    media.delete_later(db, [f"reports/aa/{n}.jpg" for n in range(6)])
    db.commit()
    from sqlmodel import Session

    first = Session(engine)
    try:
        taken = media._claim(first, None)  # claimed, not yet committed (locked on PostgreSQL)
        if engine.dialect.name == "postgresql":
            with Session(engine) as second:  # SKIP LOCKED: nothing to take, and no waiting
                assert media._claim(second, None) == []
                second.commit()
        first.commit()  # the lease is now visible to everyone
    finally:
        first.close()
    assert len(taken) == 6
    with Session(engine) as second:
        assert media._claim(second, None) == []  # leased
        second.commit()


class _Failing(LocalStorage):
    def delete(self, key: str) -> None:
        raise OSError("the store is down")


def test_a_failed_removal_is_retried_later_and_stops_the_run(tmp_path, db):
    media.delete_later(db, ["reports/aa/1.jpg", "reports/aa/2.jpg"])
    db.commit()
    previous = storage.set_backend(_Failing(tmp_path))
    try:
        result = media.purge()
        assert (result.removed, result.failed, result.errors) == (0, 1, {"OSError": 1})
        rows = {r.key: r for r in db.exec(select(MediaDeletion)).all()}
        failed = rows["reports/aa/1.jpg"]
        assert (failed.attempts, failed.last_error) == (1, "OSError")
        assert failed.claimed_until > clock.now()  # waits before the next try
        assert rows["reports/aa/2.jpg"].claimed_until is None  # not tried, still due
    finally:
        storage.set_backend(previous)
    assert media.purge().removed == 1  # the store is back: the due one goes now
    clock.set_now(clock.now() + media.RETRY_BASE + timedelta(seconds=1))
    assert media.purge().removed == 1
    assert _queued(db) == []


def test_retention_queues_the_objects_with_the_rows_and_the_tick_removes_them(store, db, settings):
    today = clock.local_today()
    old = factories.make_shift(
        db, status=ShiftStatus.finished, start=today - timedelta(days=500), days=30
    )
    report = factories.make_report(
        db, factories.make_member(db, old), 3, ReportStatus.approved, photos=2
    )
    keys = sorted(
        k
        for p in db.exec(select(ReportPhoto).where(ReportPhoto.report_id == report.id)).all()
        for k in (p.storage_key, p.thumb_key)
    )
    now = clock.now()
    # The retention transaction commits; the process "stops" before any worker runs.
    assert scheduler.purge_expired_photos(now) == 2
    assert all(store.exists(k) for k in keys) and _queued(db) == keys
    # The next tick (this or another instance) finishes it.
    results = scheduler.tick(now)
    assert results["media"] == {"deleted": 4, "failed": 0}
    assert not any(store.exists(k) for k in keys) and _queued(db) == []


def test_replaced_and_deleted_task_pictures_are_removed(store, admin_client, db):
    from tests.conftest import csrf_token

    task = tasks.create_task(db, None, "Полить цветы", factories.jpeg_bytes(seed=1))
    db.commit()
    first = [task.image_key, tasks.thumb_key(task.image_key)]
    tasks.update_task(db, None, task, "Полить цветы", factories.jpeg_bytes(seed=2))
    db.commit()
    second = [task.image_key, tasks.thumb_key(task.image_key)]
    assert _queued(db) == sorted(first) and all(store.exists(k) for k in first)
    media.purge()
    assert not any(store.exists(k) for k in first) and all(store.exists(k) for k in second)

    token = csrf_token(admin_client, "/tasks")
    admin_client.post(f"/tasks/{task.id}/delete", data={"csrf_token": token})
    assert not any(store.exists(k) for k in second)  # removed right after the commit
    assert _queued(db) == []


def test_health_shows_the_deletion_backlog(client, db, settings):
    media.delete_later(db, ["reports/aa/1.jpg"])
    db.commit()
    state = client.get("/health").json()["storage"]
    assert state["pending_deletions"] == 1 and state["failing_deletions"] == 0


# --- lomaya media check --------------------------------------------------------------------------


def test_check_lists_missing_and_orphaned_objects(store, db, settings):
    participant = _family_with_photos(db, photos=1)
    task = tasks.create_task(db, None, "Сложить одежду", factories.jpeg_bytes(seed=3))
    db.commit()
    photo_key = _photo_keys(db, participant.id)[0]
    store.delete(photo_key)  # a row without its object
    store.put("reports/ff/orphan.jpg", b"x")  # an object without a row
    store.put("reports/ff/queued.jpg", b"x")
    media.delete_later(db, ["reports/ff/queued.jpg"])  # on its way out: not an orphan
    db.commit()
    found = media.check(db, store)
    assert found.missing == [photo_key]
    assert found.orphaned == ["reports/ff/orphan.jpg"]
    assert (found.referenced, found.objects, found.queued) == (4, 5, 1)
    assert task.image_key not in found.missing

    result = _run("from app.cli import main; main(['media', 'check'])", store_env(store), settings)
    assert result.returncode == 1
    assert photo_key in result.stdout and "reports/ff/orphan.jpg" in result.stdout
    assert "reports/ff/queued.jpg" not in result.stdout
    if isinstance(store, S3Storage):
        assert store.config.secret_access_key not in result.stdout + result.stderr


# --- lomaya media migrate --------------------------------------------------------------------------


class _Interrupted:
    """A target that is interrupted (Ctrl+C) while writing its third object."""

    def __init__(self, inner) -> None:
        self.inner, self.puts = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def put(self, key, data, content_type="image/jpeg", *, sha256=""):
        self.puts += 1
        if self.puts == 3:
            raise KeyboardInterrupt
        self.inner.put(key, data, content_type, sha256=sha256)


def _photos_in(store, count: int) -> dict[str, bytes]:
    previous = storage.set_backend(store)
    try:
        stored = [images.store_image(factories.jpeg_bytes(seed=n)) for n in range(count)]
    finally:
        storage.set_backend(previous)
    return {k: store.get(k) for s in stored for k in (s.key, s.thumb_key)}


def test_copy_is_verified_resumable_and_leaves_the_source_untouched(
    tmp_path, s3_storage, db, settings
):
    source = LocalStorage(tmp_path / "media")
    originals = _photos_in(source, 3)
    before = {k: (source.path(k).stat().st_mtime_ns, source.get(k)) for k in originals}

    with pytest.raises(KeyboardInterrupt):
        media.copy_all(source, _Interrupted(s3_storage), jobs=1)
    done_before = len(list(s3_storage.keys()))
    assert 2 <= done_before < len(originals)  # stopped part-way

    seen = []
    result = media.copy_all(source, s3_storage, jobs=2, progress=lambda c: seen.append(c.copied))
    assert (result.total, result.already, result.copied) == (6, done_before, 6 - done_before)
    assert not result.failed
    assert len(seen) == 6  # one progress call per object
    assert {k: s3_storage.get(k) for k in sorted(s3_storage.keys())} == originals
    assert all(s3_storage.checksum(k) == media._sha(v) for k, v in originals.items())
    assert {k: (source.path(k).stat().st_mtime_ns, source.get(k)) for k in originals} == before

    # A resumed run finds everything in place without downloading it again.
    downloads = []
    original_get = s3_storage.get
    s3_storage.get = lambda key: downloads.append(key) or original_get(key)  # type: ignore[method-assign]
    again = media.copy_all(source, s3_storage)
    assert (again.copied, again.already, downloads) == (0, 6, [])


def test_copy_detects_a_corrupted_copy(tmp_path, db):
    source = LocalStorage(tmp_path / "a")
    _photos_in(source, 1)

    class Corrupting(LocalStorage):
        def put(self, key, data, content_type="image/jpeg", *, sha256=""):
            super().put(key, data[:-1] + b"!", content_type)

    result = media.copy_all(source, Corrupting(tmp_path / "b"))
    assert set(result.failed.values()) == {"CopyMismatch"} and result.copied == 0


def test_migrate_command_to_s3_and_back(tmp_path, s3_storage, db, settings):
    data_dir = tmp_path / "data"
    local = LocalStorage(data_dir / "media")
    originals = _photos_in(local, 2)
    shift = factories.make_shift(db, days=2)
    member = factories.make_member(db, shift)
    report = factories.make_report(db, member, day=1, status=ReportStatus.waiting)
    keys = sorted(originals)
    db.add(ReportPhoto(report_id=report.id, attempt=1, storage_key=keys[0], thumb_key=keys[1]))
    db.add(ReportPhoto(report_id=report.id, attempt=2, storage_key=keys[2], thumb_key=keys[3]))
    db.commit()
    env = {**store_env(s3_storage), "MEDIA_BACKEND": "local", "DATA_DIR": str(data_dir)}

    first = _run(
        "from app.cli import main; main(['media', 'migrate', '--to', 's3'])", env, settings
    )
    assert first.returncode == 0, first.stderr
    assert "Скопировано: 4" in first.stdout and "SHA-256 совпадают" in first.stdout
    assert "MEDIA_BACKEND=s3" in first.stdout
    assert "4/4 объектов" in first.stderr  # the progress bar (a line when not on a terminal)
    assert sorted(s3_storage.keys()) == keys

    # Meanwhile a family's photo is deleted from the folder (retention, a request): the next
    # pass removes the copy too, and copies nothing again.
    db.execute(sa.delete(ReportPhoto).where(ReportPhoto.attempt == 2))
    db.commit()
    local.delete(keys[2])
    local.delete(keys[3])
    s3_storage.put("tasks/zz/not-ours.jpg", b"x")  # written by someone else: left alone
    second = _run(
        "from app.cli import main; main(['media', 'migrate', '--to', 's3'])", env, settings
    )
    assert second.returncode == 0, second.stderr
    assert "Скопировано: 0" in second.stdout and "уже были на месте: 2" in second.stdout
    assert sorted(s3_storage.keys()) == sorted([*keys[:2], "tasks/zz/not-ours.jpg"])
    s3_storage.delete("tasks/zz/not-ours.jpg")
    assert sorted(local.keys()) == keys[:2]  # the source only ever read

    back_dir = tmp_path / "back"
    env_back = {**env, "MEDIA_BACKEND": "s3", "DATA_DIR": str(back_dir)}
    back = _run(
        "from app.cli import main; main(['media', 'migrate', '--to', 'local'])",
        env_back,
        settings,
    )
    assert back.returncode == 0, back.stderr
    restored = LocalStorage(back_dir / "media")
    assert {k: restored.get(k) for k in sorted(restored.keys())} == {
        k: originals[k] for k in keys[:2]
    }


def test_migrate_without_s3_settings_names_the_variable(tmp_path, settings):
    result = _run(
        "from app.cli import main; main(['media', 'migrate', '--to', 's3'])",
        {"DATA_DIR": str(tmp_path), "MEDIA_BACKEND": "local", "S3_ENDPOINT_URL": ""},
        settings,
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("Ошибка настройки: S3_ENDPOINT_URL: не задан")
    )
