"""Benchmark of the admin screens and exports on PostgreSQL (run by hand, prints figures).

    uv run python bench/admin.py [--runs 40] [--participants 100000] [--members 10000] [--days 100]
        [--keep | --reuse]
    (or: uv run python -m bench.admin …)

Creates its own database (lomaya_bench_admin, dropped first; BENCH_PG for another server), bulk-loads
100,000 participants and a shift of 10,000 members × 100 days = 1,000,000 reports with INSERT …
SELECT generate_series, then times the list pages in-process (Starlette TestClient, a logged-in
administrator) and the two exports of the shift's results. Drops the database afterwards unless
`--keep`; `--reuse` measures a database kept earlier.

Prints the load average at start and end; per page: p50/p95/max ms, CPU ms per request of the app
(this process minus the client thread) and of PostgreSQL (backends of the bench database), the cores
busy with other work, and the 1-minute load average at start → end. Each export runs in a fresh
child process that receives the session cookie of the parent's login, so Argon2's 64 MiB password
hash never enters it; right before the export the child resets its peak RSS (`5` written to
/proc/self/clear_refs), so the printed peak is the export's own: seconds, MB written, peak RSS during
the export, its RSS before and the difference, and CPU ms of app and PostgreSQL for the export.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/<name>.py`: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import sqlalchemy as sa

from bench._common import (
    CPU_HEADER,
    CPU_NOTE,
    ROOT,
    CpuMeter,
    cpu_columns,
    database_url,
    drop_database,
    fresh_database,
    load_line,
    percentile,
)

DB_NAME = "lomaya_bench_admin"
PASSWORD = "bench password 123"
TASKS = 40
SESSION_COOKIE = "lomaya_session"


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


def load_sql(participants: int, members: int, days: int) -> list[str]:
    pending = min(2000, participants - members)
    return [
        f"""INSERT INTO task (title, is_archived, created_at, updated_at)
            SELECT 'Задание ' || g, false, now(), now() FROM generate_series(1, {TASKS}) g""",
        f"""INSERT INTO shift (number, title, status, started_at, finished_at, final_message, created_at, updated_at)
            VALUES (1, 'Умею жить', 'finished', current_date - 400, current_date - 400 + 90, '', now(), now()),
                   (2, 'Умею дружить', 'started', current_date - {days - 1}, current_date + 20, '', now(), now())""",
        f"""INSERT INTO shift_day (shift_id, day_number, task_id)
            SELECT 2, g, 1 + (g * 7) % {TASKS} FROM generate_series(1, {days + 20}) g""",
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
            FROM generate_series(1, {participants}) g""",
        f"""INSERT INTO request (participant_id, shift_id, status, attempts, created_at, updated_at)
            SELECT g, 2, CASE WHEN g <= {members} THEN 'approved' ELSE 'pending' END::request_status, 1, now(), now()
            FROM generate_series(1, {members + pending}) g""",
        f"""INSERT INTO member (participant_id, shift_id, status, joined_at, created_at, updated_at)
            SELECT g, 2, CASE WHEN g % 40 = 0 THEN 'excluded' ELSE 'active' END::member_status,
                   current_date - {days - 1}, now(), now()
            FROM generate_series(1, {members}) g""",
        f"""INSERT INTO report (member_id, shift_id, task_id, day_number, task_date, status, photo_count,
                submitted_at, created_at, updated_at)
            SELECT m, 2, 1 + (d * 7) % {TASKS}, d, current_date - {days} + d,
                   (CASE WHEN (m * 31 + d * 17) % 100 < 70 THEN 'approved'
                         WHEN (m * 31 + d * 17) % 100 < 80 THEN 'declined'
                         WHEN (m * 31 + d * 17) % 100 < 90 THEN 'skipped'
                         WHEN (m * 31 + d * 17) % 100 < 95 THEN 'reviewing'
                         ELSE 'waiting' END)::report_status,
                   CASE WHEN (m * 31 + d * 17) % 100 >= 80 AND (m * 31 + d * 17) % 100 < 90 THEN 0
                        ELSE 1 + (m + d) % 3 END,
                   now() - ((({days} - d) * 24) || ' hours')::interval, now(), now()
            FROM generate_series(1, {members}) m, generate_series(1, {days}) d""",
        f"""INSERT INTO audit_event (at, actor_id, action, object_type, object_id, before, after)
            SELECT now() - (g || ' seconds')::interval, 1, 'report.approve', 'report', g,
                   '{{"status": "reviewing"}}'::json, '{{"status": "approved"}}'::json
            FROM generate_series(1, {participants * 2}) g""",
    ]


def load(participants: int, members: int, days: int) -> str:
    db_url = fresh_database(DB_NAME)
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
        for statement in load_sql(participants, members, days):
            conn.execute(sa.text(statement))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    print(f"loaded in {time.perf_counter() - started:.1f} s")
    return db_url


def login(client) -> None:
    page = client.get("/login")
    token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
    response = client.post(
        "/login",
        data={"email": "bench@example.org", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def measure_pages(db_url: str, data_dir: str, runs: int, members: int) -> str:
    """Times the pages; returns the session cookie of the login, for the export children."""
    from starlette.testclient import TestClient

    from app.main import create_app

    settings = _settings(db_url, data_dir)
    app = create_app(settings, start_background=False)
    some = max(1, min(5000, members // 2))  # a participant and a member in the middle
    pages = [
        "/participants",
        "/participants?page=200",
        "/participants?q=Маша",
        "/participants?q=912345",
        "/participants?status=member&shift=2",
        "/participants?status=pending&shift=2&test=no",
        f"/participants/{some}",
        f"/members/{some}",
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
        login(client)
        cookie = client.cookies.get(SESSION_COOKIE)
        gc.collect()
        gc.freeze()
        print(f"\n{'page':48} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {CPU_HEADER}")
        for url in pages:
            for _ in range(3):  # warm-up, not measured
                assert client.get(url).status_code == 200, url
            times = []
            with CpuMeter(in_process=True, database_url=db_url) as cpu:
                for _ in range(runs):
                    t = time.perf_counter()
                    response = client.get(url)
                    times.append((time.perf_counter() - t) * 1000)
                    assert response.status_code == 200
            print(
                f"{url:48} {percentile(times, 50):8.1f} {percentile(times, 95):8.1f}"
                f" {max(times):8.1f} {cpu_columns(cpu.result(runs))}",
                flush=True,
            )
    return cookie


def _memory() -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of this process, KiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def export_child(db_url: str, data_dir: str, ext: str) -> None:
    """Runs in its own process: one export, streamed and counted; prints seconds, bytes, memory.

    Logged in by the parent's session cookie (no password hashing here); the peak RSS is reset
    right before the export, so the peak printed is the export's own."""
    from starlette.testclient import TestClient

    from app.main import create_app

    settings = _settings(db_url, data_dir)
    app = create_app(settings, start_background=False)
    with TestClient(app) as client:
        client.cookies.set(SESSION_COOKIE, os.environ["BENCH_SESSION_COOKIE"])
        assert client.get("/shifts/2").status_code == 200  # logged in, app warm
        gc.collect()
        try:
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux ≥ 4.0)
            peak_note = "peak RSS reset right before the export"
        except OSError as exc:
            peak_note = f"could not reset the peak RSS ({exc}): peak since the child started"
        before = _memory()
        t = time.perf_counter()
        size = 0
        with (
            CpuMeter(in_process=True, database_url=db_url) as cpu,
            client.stream("GET", f"/shifts/2/results.{ext}") as response,
        ):
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                size += len(chunk)
        seconds = time.perf_counter() - t
        after = _memory()
    result = cpu.result(1)
    print(
        f"export .{ext}: {seconds:.2f} s, {size / 1e6:.2f} MB; peak RSS during the export "
        f"{after['VmHWM'] / 1024:.0f} MB = {before['VmRSS'] / 1024:.0f} MB before "
        f"+ {(after['VmHWM'] - before['VmRSS']) / 1024:.0f} MB ({peak_note})"
    )
    print(f"  {result.line('export')}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=40, help="requests per page (after 3 warm-up)")
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=100)
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
    print(load_line("start"), flush=True)
    with tempfile.TemporaryDirectory() as data_dir:
        db_url = database_url(DB_NAME)
        _settings(db_url, data_dir)
        if not args.reuse:
            load(args.participants, args.members, args.days)
        print(
            f"{args.participants} participants, {args.members} members × {args.days} days "
            f"= {args.members * args.days} reports"
        )
        cookie = measure_pages(db_url, data_dir, args.runs, args.members)
        print()
        for ext in ("csv", "xlsx"):
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.admin",
                    "--export",
                    ext,
                    "--db-url",
                    db_url,
                    "--data-dir",
                    data_dir,
                ],
                check=True,
                cwd=ROOT,
                env={**os.environ, "BENCH_SESSION_COOKIE": cookie},
            )
    print(CPU_NOTE)
    print(load_line("end"))
    if not args.keep:
        from app.db import set_engine

        set_engine(None)
        drop_database(DB_NAME)


if __name__ == "__main__":
    main()
