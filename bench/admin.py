"""Benchmark of the admin screens and exports on PostgreSQL (run by hand, prints figures).

    uv run python -m bench.admin [--base postgresql://postgres@127.0.0.1:5432/postgres] [--keep]

Creates its own database (lomaya_bench_admin), bulk-loads 100,000 participants and a shift of
10,000 members × 100 days = 1,000,000 reports with INSERT … SELECT generate_series, then times the
list pages in-process (Starlette TestClient, a logged-in administrator) and the two exports, each
export in a fresh process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = "lomaya_bench_admin"
PASSWORD = "bench password 123"
PARTICIPANTS = 100_000
MEMBERS = 10_000
DAYS = 100
TASKS = 40


def _urls(base: str) -> tuple[str, str]:
    url = make_url(base).set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False), url.set(database=DB_NAME).render_as_string(
        hide_password=False
    )


def _settings(db_url: str, data_dir: str):
    from app.settings import load_settings, set_settings

    return set_settings(
        load_settings(
            {
                "DATABASE_URL": db_url,
                "DATA_DIR": data_dir,
                "SECRET_KEY": "bench-secret-key-0123456789abcdef",
                "SCHEDULER_ENABLED": "false",
                "BOT_TOKEN": "",
            },
            env_file=None,
        )
    )


LOAD_SQL = [
    f"""INSERT INTO task (title, is_archived, created_at, updated_at)
        SELECT 'Задание ' || g, false, now(), now() FROM generate_series(1, {TASKS}) g""",
    f"""INSERT INTO shift (number, title, status, started_at, finished_at, final_message, created_at, updated_at)
        VALUES (1, 'Умею жить', 'finished', current_date - 400, current_date - 400 + 90, '', now(), now()),
               (2, 'Умею дружить', 'started', current_date - {DAYS - 1}, current_date + 20, '', now(), now())""",
    f"""INSERT INTO shift_day (shift_id, day_number, task_id)
        SELECT 2, g, 1 + (g * 7) % {TASKS} FROM generate_series(1, {DAYS + 20}) g""",
    f"""INSERT INTO participant (telegram_id, name, surname, date_of_birth, city, phone, is_bot_blocked,
            is_test, consent_at, consent_version, created_at, updated_at)
        SELECT 1000000000 + g,
               (ARRAY['Маша','Петя','Оля','Саша','Дима','Катя','Ваня','Лена','Гоша','Ира'])[1 + g % 10],
               (ARRAY['Иванова','Петров','Сидорова','Смирнов','Кузнецова','Попов','Волкова','Соколов'])[1 + g % 8]
                 || CASE WHEN g % 3 = 0 THEN '' ELSE '-' || (g % 97) END,
               date '2010-01-01' + (g % 3000),
               (ARRAY['Уфа','Екатеринбург','Ростов-на-Дону','Казань','Пермь','Омск'])[1 + g % 6],
               '+7 9' || lpad((g / 10000000)::text, 2, '0') || ' ' || lpad(((g / 10000) % 1000)::text, 3, '0')
                 || '-' || lpad(((g / 100) % 100)::text, 2, '0') || '-' || lpad((g % 100)::text, 2, '0'),
               g % 50 = 0, g % 500 = 0, now(), '1', now() - (g || ' minutes')::interval, now()
        FROM generate_series(1, {PARTICIPANTS}) g""",
    f"""INSERT INTO request (participant_id, shift_id, status, attempts, created_at, updated_at)
        SELECT g, 2, CASE WHEN g <= {MEMBERS} THEN 'approved' ELSE 'pending' END::request_status, 1, now(), now()
        FROM generate_series(1, {MEMBERS + 2000}) g""",
    f"""INSERT INTO member (participant_id, shift_id, status, joined_at, created_at, updated_at)
        SELECT g, 2, CASE WHEN g % 40 = 0 THEN 'excluded' ELSE 'active' END::member_status,
               current_date - {DAYS - 1}, now(), now()
        FROM generate_series(1, {MEMBERS}) g""",
    f"""INSERT INTO report (member_id, shift_id, task_id, day_number, task_date, status, photo_count,
            submitted_at, created_at, updated_at)
        SELECT m, 2, 1 + (d * 7) % {TASKS}, d, current_date - {DAYS} + d,
               (CASE WHEN (m * 31 + d * 17) % 100 < 70 THEN 'approved'
                     WHEN (m * 31 + d * 17) % 100 < 80 THEN 'declined'
                     WHEN (m * 31 + d * 17) % 100 < 90 THEN 'skipped'
                     WHEN (m * 31 + d * 17) % 100 < 95 THEN 'reviewing'
                     ELSE 'waiting' END)::report_status,
               CASE WHEN (m * 31 + d * 17) % 100 >= 80 AND (m * 31 + d * 17) % 100 < 90 THEN 0
                    ELSE 1 + (m + d) % 3 END,
               now() - ((({DAYS} - d) * 24) || ' hours')::interval, now(), now()
        FROM generate_series(1, {MEMBERS}) m, generate_series(1, {DAYS}) d""",
    """INSERT INTO audit_event (at, actor_id, action, object_type, object_id, before, after)
        SELECT now() - (g || ' seconds')::interval, 1, 'report.approve', 'report', g,
               '{"status": "reviewing"}'::json, '{"status": "approved"}'::json
        FROM generate_series(1, 200000) g""",
]


def load(base: str) -> str:
    server_url, db_url = _urls(base)
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    from sqlmodel import Session

    from app.accounts import create_staff
    from app.db import make_engine, set_engine
    from app.migrate import upgrade

    engine = make_engine(db_url)
    set_engine(engine)
    upgrade(engine)
    with Session(engine) as session:
        create_staff(session, email="bench@example.org", password=PASSWORD, name="Бенч")
        session.commit()
    started = time.perf_counter()
    with engine.begin() as conn:
        for statement in LOAD_SQL:
            conn.execute(sa.text(statement))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    print(f"loaded in {time.perf_counter() - started:.1f} s")
    return db_url


def measure_pages(db_url: str, data_dir: str, runs: int) -> None:
    from starlette.testclient import TestClient

    from app.main import create_app

    settings = _settings(db_url, data_dir)
    app = create_app(settings, start_background=False)
    pages = [
        "/participants",
        "/participants?page=200",
        "/participants?q=Маша",
        "/participants?q=912345",
        "/participants?status=member&shift=2",
        "/participants?status=pending&shift=2&test=no",
        "/participants/5000",
        "/members/5000",
        "/shifts",
        "/shifts/2",
        "/shifts/2/plan",
        "/tasks",
        "/staff",
        "/audit",
        "/audit?type=report",
        "/shifts/2/results",
    ]
    with TestClient(app) as client:
        page = client.get("/login")
        token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
        response = client.post(
            "/login",
            data={"email": "bench@example.org", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        gc.collect()
        gc.freeze()
        print(f"\n{'page':48} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for url in pages:
            for _ in range(3):
                assert client.get(url).status_code == 200, url
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200
            times.sort()
            p95 = times[max(0, int(len(times) * 0.95) - 1)]
            print(f"{url:48} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f}")


def export_child(db_url: str, data_dir: str, ext: str) -> None:
    """Runs in its own process: one export, streamed to /dev/null; prints seconds, bytes, RSS."""
    from starlette.testclient import TestClient

    from app.main import create_app

    settings = _settings(db_url, data_dir)
    app = create_app(settings, start_background=False)
    with TestClient(app) as client:
        page = client.get("/login")
        token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
        client.post(
            "/login",
            data={"email": "bench@example.org", "password": PASSWORD, "csrf_token": token},
        )
        client.get("/")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        size = 0
        with client.stream("GET", f"/shifts/2/results.{ext}") as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                size += len(chunk)
        seconds = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"export .{ext}: {seconds:.2f} s, {size / 1e6:.1f} MB, "
        f"peak RSS {after / 1024:.0f} MB (was {before / 1024:.0f} MB before the export)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="measure a database kept by an earlier --keep run"
    )
    parser.add_argument("--export", choices=["csv", "xlsx"], help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export:
        export_child(args.db_url, args.data_dir, args.export)
        return
    with tempfile.TemporaryDirectory() as data_dir:
        _settings(_urls(args.base)[1], data_dir)
        db_url = _urls(args.base)[1] if args.reuse else load(args.base)
        print(
            f"{PARTICIPANTS} participants, {MEMBERS} members × {DAYS} days = {MEMBERS * DAYS} reports"
        )
        measure_pages(db_url, data_dir, args.runs)
        print()
        for ext in ("csv", "xlsx"):
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.admin",  # as a module: bench/queue.py would shadow the stdlib queue
                    "--export",
                    ext,
                    "--db-url",
                    db_url,
                    "--data-dir",
                    data_dir,
                ],
                check=True,
                cwd=ROOT,
            )
    if not args.keep:
        server_url, _ = _urls(args.base)
        admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
