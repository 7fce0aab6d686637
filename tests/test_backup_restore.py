"""deploy/backup.sh and deploy/restore.sh round-trip the database and the photos (PostgreSQL only)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.cluster_support import DEPLOY, run_cli

EMAIL = "boss@example.org"
PHOTO_KEY = "reports/ab/0f1e2d3c.jpg"
PHOTO = b"\xff\xd8\xff\xe0 not really a jpeg, but bytes to compare \xff\xd9"


@pytest.fixture(autouse=True)
def _postgres_tools() -> None:
    missing = [
        tool for tool in ("pg_dump", "pg_restore", "psql", "createdb") if not shutil.which(tool)
    ]
    if missing:
        pytest.skip(f"PostgreSQL client tools missing: {', '.join(missing)} (postgresql-client)")


def _script(name: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", str(DEPLOY / name), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result


def _staff_emails(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT email FROM staff ORDER BY email")).scalars())
    finally:
        engine.dispose()


def _revision(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()


def test_backup_then_restore_into_a_fresh_database_brings_back_data_and_photos(
    pg_database, app_env, tmp_path: Path
):
    source = pg_database()
    env = app_env(source)
    run_cli(
        ["create-admin", "--email", EMAIL, "--password-stdin", "--non-interactive"],
        env,
        input="correct horse battery staple\n",
    )
    media = Path(env["DATA_DIR"]) / "media"
    (media / PHOTO_KEY).parent.mkdir(parents=True)
    (media / PHOTO_KEY).write_bytes(PHOTO)
    revision = _revision(source)

    backups = tmp_path / "backups"
    made = _script("backup.sh", [str(backups)], env)
    assert made.returncode == 0, made.stderr
    backup = Path(made.stdout.strip().splitlines()[-1])
    assert backup.parent == backups and backup.name.startswith("lomaya-")
    assert {p.name for p in backup.iterdir()} == {
        "database.dump",
        "media",
        "manifest.txt",
        "SHA256SUMS",
    }
    assert (backup / "media" / PHOTO_KEY).read_bytes() == PHOTO
    manifest = (backup / "manifest.txt").read_text()
    assert f"schema_revision={revision}" in manifest and "media_files=1" in manifest
    assert os.stat(backup).st_mode & 0o077 == 0  # children's data: the owner's only

    # The disaster: the account is gone and the photo with it.
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM staff"))
    engine.dispose()
    shutil.rmtree(media)
    assert _staff_emails(source) == []

    # A restore never overwrites a database that has tables.
    refused = _script("restore.sh", [str(backup)], env)
    assert refused.returncode != 0
    assert "not empty" in refused.stderr

    # Restore into a new database (created by the script) and the same DATA_DIR.
    target = pg_database(create=False)
    restored = _script("restore.sh", ["--create", str(backup)], {**env, "DATABASE_URL": target})
    assert restored.returncode == 0, restored.stderr
    assert _staff_emails(target) == [EMAIL]
    assert _revision(target) == revision
    assert (media / PHOTO_KEY).read_bytes() == PHOTO

    # The restored database is what the app expects: its models match the schema.
    run_cli(["migrate", "check"], {**env, "DATABASE_URL": target})


def test_restore_refuses_a_damaged_backup(pg_database, app_env, tmp_path: Path):
    env = app_env(pg_database(migrate=False))
    made = _script("backup.sh", ["--db-only", str(tmp_path)], env)
    assert made.returncode == 0, made.stderr
    backup = Path(made.stdout.strip().splitlines()[-1])
    with (backup / "database.dump").open("ab") as dump:
        dump.write(b"garbage")
    target = pg_database(create=False)
    result = _script(
        "restore.sh", ["--create", "--db-only", str(backup)], {**env, "DATABASE_URL": target}
    )
    assert result.returncode != 0
    assert "checksums do not match" in result.stderr
