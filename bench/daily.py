"""Benchmark of the daily jobs on PostgreSQL (prints figures; run by hand, never in the tests).

    uv run python bench/daily.py [--members 10000] [--day 60] [--paused-share 0.1]
                                 [--url postgresql://…/postgres] [--keep]
    (or: uv run python -m bench.daily …)

A started shift with 10,000 active members on day 60 (590,000 reports of days 1–59, bulk-loaded
with INSERT … SELECT generate_series); then the daily task job (skips day 59's waiting reports,
checks exclusions, creates 10,000 reports and queues 10,000 task messages) and the reminder job,
both run in this process. With --paused-share S, that share of the members (spread over the ids)
is on a pause from 3 days ago to 4 days ahead (member_pause rows; their reports of the paused past
days are `paused`, day 59's waiting ones become `paused` at the deadline): the daily job gives them a
paused report and no task message, the reminder skips them.

Creates (and drops first) the database `lomaya_bench_daily` on the server of --url; drops it at the
end unless --keep. Prints the load average at start and end, and per job: wall seconds, SQL
statements (and rows sent with executemany), peak RSS, the job's result, time in SQL and the
slowest statements, and CPU ms per member of the app (this process) and of PostgreSQL (backends of
the bench database), with the cores busy with other work and the load at start → end of the job.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from datetime import date, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/<name>.py`: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import sqlalchemy as sa

from app import clock, schedule
from app.db import make_engine, session_scope, set_engine
from app.migrate import upgrade
from app.settings import load_settings, set_settings
from bench._common import CPU_NOTE, CpuMeter, drop_database, fresh_database, load_line

DB_NAME = "lomaya_bench_daily"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def load(
    engine: sa.engine.Engine, members: int, today_number: int, start: date, paused_share: float
) -> None:
    """Bulk data in SQL: tasks, the shift and its plan, participants, members, past reports and
    (with a paused share) pauses."""
    days = 92
    last_past = today_number - 1
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO task (title, is_archived, created_at, updated_at) "
                "SELECT 'Задание ' || g, false, now(), now() FROM generate_series(1, 30) g"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO shift (number, title, status, started_at, finished_at, "
                "final_message, created_at, updated_at) VALUES (1, 'Умею жить', 'started', "
                ":start, :finish, '', now(), now())"
            ),
            {"start": start, "finish": start + timedelta(days=days - 1)},
        )
        conn.execute(
            sa.text(
                "INSERT INTO shift_day (shift_id, day_number, task_id) "
                "SELECT 1, g, 1 + (g - 1) % 30 FROM generate_series(1, :days) g"
            ),
            {"days": days},
        )
        conn.execute(
            sa.text(
                "INSERT INTO participant (telegram_id, name, surname, city, phone, "
                "is_bot_blocked, is_test, created_at, updated_at) "
                "SELECT 500000000 + g, 'Имя' || g, 'Фамилия', 'Уфа', "
                "'+7 9' || lpad((g / 10000000)::text, 2, '0') || ' ' || "
                "lpad((g / 10000 % 1000)::text, 3, '0') || '-' || "
                "lpad((g / 100 % 100)::text, 2, '0') || '-' || lpad((g % 100)::text, 2, '0'), "
                "g % 200 = 0, false, now(), now() FROM generate_series(1, :n) g"
            ),
            {"n": members},
        )
        conn.execute(
            sa.text(
                "INSERT INTO member (participant_id, shift_id, status, joined_at, created_at, "
                "updated_at) SELECT id, 1, 'active', :start, now(), now() FROM participant"
            ),
            {"start": start},
        )
        # Past days: mostly approved, some declined or skipped; day 59 has waiting reports left
        # (their deadline passes at today's task hour) and a few still under review.
        conn.execute(
            sa.text(
                "INSERT INTO report (member_id, shift_id, task_id, day_number, task_date, status, "
                "photo_count, created_at, updated_at) "
                "SELECT m.id, 1, 1 + (d - 1) % 30, d, CAST(:start AS date) + (d - 1), "
                "CAST(CASE WHEN d = :last AND (m.id + d) % 4 = 0 THEN 'waiting' "
                "WHEN d = :last AND (m.id + d) % 4 = 1 THEN 'reviewing' "
                "WHEN (m.id * 7 + d) % 10 = 0 THEN 'skipped' "
                "WHEN (m.id * 3 + d) % 10 = 1 THEN 'declined' "
                "ELSE 'approved' END AS report_status), "
                "1, now(), now() FROM member m CROSS JOIN generate_series(1, :last) d"
            ),
            {"start": start, "last": last_past},
        )
        if paused_share > 0:
            today = start + timedelta(days=today_number - 1)
            # Every member whose id falls in the share of each 1000 (spread, not a block).
            chosen = "(m.id * 7919) % 1000 < :per_mille"
            params = {
                "per_mille": round(paused_share * 1000),
                "first": today - timedelta(days=3),
                "last": today + timedelta(days=4),
            }
            conn.execute(
                sa.text(
                    "INSERT INTO member_pause (member_id, first_day, last_day, reason, created_at, "
                    "cancelled) SELECT m.id, :first, :last, 'болеет', now(), false FROM member m "
                    f"WHERE {chosen}"
                ),
                params,
            )
            conn.execute(
                sa.text(
                    "UPDATE report r SET status = 'paused' FROM member m WHERE m.id = r.member_id "
                    f"AND {chosen} AND r.task_date >= :first AND r.task_date < :yesterday"
                ),
                {**params, "yesterday": today - timedelta(days=1)},
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))


def timed_job(engine: sa.engine.Engine, job: str, now, members: int) -> None:
    statements: list[str] = []
    rows_in_executemany: list[int] = []
    timings: list[tuple[float, str]] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)
        conn.info["bench_t"] = time.perf_counter()
        if executemany:
            rows_in_executemany.append(len(parameters))

    def done(conn, cursor, statement, parameters, context, executemany):
        timings.append((time.perf_counter() - conn.info["bench_t"], " ".join(statement.split())))

    sa.event.listen(engine, "before_cursor_execute", listener)
    sa.event.listen(engine, "after_cursor_execute", done)
    clock.set_now(now)
    started = time.perf_counter()
    try:
        with (
            CpuMeter(
                [os.getpid()], database_url=engine.url.render_as_string(hide_password=False)
            ) as cpu,
            session_scope(engine) as session,
        ):
            result = schedule.run(session, job, now)
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
        sa.event.remove(engine, "after_cursor_execute", done)
    elapsed = time.perf_counter() - started
    sql_time = sum(t for t, _ in timings)
    summary = {k: v for k, v in result.items() if k != "shifts"}
    for info in result.get("shifts", []):
        summary.update({k: v for k, v in info.items() if k != "shift_id"})
    print(f"{job:<9} {elapsed:6.2f} s  SQL statements: {len(statements)}", end="")
    if rows_in_executemany:
        print(f" (of which executemany carrying {sum(rows_in_executemany)} rows)", end="")
    print(f"  peak RSS so far: {peak_mb():.0f} MB")
    print(f"          {summary}")
    print(f"          time in SQL {sql_time:.2f} s (the rest: Python, rendering, commit); slowest:")
    for seconds, statement in sorted(timings, reverse=True)[:3]:
        print(f"          {seconds:6.3f} s  {statement[:90]}")
    print(f"          {cpu.result(members).line('member')}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--day", type=int, default=60)
    parser.add_argument(
        "--paused-share", type=float, default=0.0, help="share of members on a pause (0.1 = 10 %%)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    print(load_line("start"), flush=True)
    url = fresh_database(DB_NAME, server=args.url)
    settings = set_settings(
        load_settings(
            {"DATABASE_URL": url, "SECRET_KEY": "bench-secret-key-0123456789", "BOT_TOKEN": ""},
            env_file=None,
        )
    )
    engine = make_engine(settings.database_url)
    set_engine(engine)
    upgrade(engine)

    from app import days

    today = date(2026, 11, 20)
    start = today - timedelta(days=args.day - 1)
    began = time.perf_counter()
    load(engine, args.members, args.day, start, args.paused_share)
    with engine.connect() as conn:
        reports = conn.execute(sa.text("SELECT count(*) FROM report")).scalar()
        paused = conn.execute(sa.text("SELECT count(*) FROM member_pause")).scalar()
    print(
        f"loaded {args.members} members ({paused} on a pause today), {reports} reports "
        f"(days 1–{args.day - 1}) in {time.perf_counter() - began:.1f} s; "
        f"peak RSS {peak_mb():.0f} MB"
    )

    timed_job(engine, "daily", days.task_moment(today), args.members)
    reminder_at = schedule.reminder_moment(today)
    timed_job(engine, "reminder", reminder_at, args.members)
    with engine.connect() as conn:
        counts = conn.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM report), "
                "(SELECT count(*) FROM outgoing_message WHERE kind = 'task'), "
                "(SELECT count(*) FROM outgoing_message WHERE kind = 'reminder'), "
                "(SELECT count(*) FROM report WHERE status = 'paused' AND day_number = :today)"
            ),
            {"today": args.day},
        ).one()
    print(
        f"after: {counts[0]} reports ({counts[3]} of today paused), {counts[1]} task messages, "
        f"{counts[2]} reminders queued"
    )
    print(f"peak RSS of the process: {peak_mb():.0f} MB")
    print(CPU_NOTE)
    print(load_line("end"))
    engine.dispose()
    set_engine(None)
    if not args.keep:
        drop_database(DB_NAME, server=args.url)


if __name__ == "__main__":
    main()
