"""Bulk-load a realistic running shift into PostgreSQL for benchmarks (not through the ORM).

    from bench.dataset import load
    load(engine, members=10_000, days=100, reviewing_share=0.2)

or, to time the load by itself:

    uv run python bench/dataset.py [--members 10000] [--days 100] [--share 0.2] [--keep]
    (or: uv run python -m bench.dataset …)

One started shift of `days` days (today is its last loaded day), `members` participants each with a
report for every day: a share `reviewing_share` still in review, the rest mostly approved, some
declined or skipped; one photo per sent report. Everything is inserted with `INSERT … SELECT
generate_series(…)` in a few statements, so a million reports take about a minute. Photo files are not
created: every photo and thumbnail points at one shared stored image (`store_shared_image`).

With verbose=True (and from the command line) it prints per step: wall seconds, rows, CPU seconds
of PostgreSQL (backends of the database) and µs per row, the cores busy with other work and the
1-minute load average at start → end of the step. From the command line it creates (and drops
first) the database `lomaya_bench_dataset` on 127.0.0.1:5432 (BENCH_PG for another server), prints
the load average at start and end, and drops the database unless --keep.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/<name>.py`: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app import clock
from app.settings import get_settings
from bench._common import CpuMeter, CpuResult

NAMES = [
    "Маша",
    "Петя",
    "Оля",
    "Ваня",
    "Соня",
    "Миша",
    "Аня",
    "Дима",
    "Катя",
    "Саша",
    "Лиза",
    "Егор",
]
SURNAMES = ["Иванов", "Петров", "Смирнов", "Кузнецов", "Попов", "Соколов", "Лебедев", "Козлов"]
CITIES = ["Уфа", "Екатеринбург", "Челябинск", "Пермь", "Ростов-на-Дону", "Казань"]


def store_shared_image() -> tuple[str, str]:
    """One real picture under the media folder, used as every bench photo and thumbnail."""
    import io

    from PIL import Image, ImageDraw

    from app.images import store_image

    image = Image.new("RGB", (1280, 960), (120, 170, 210))
    draw = ImageDraw.Draw(image)
    draw.ellipse((400, 250, 880, 730), fill=(250, 220, 90))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    stored = store_image(out.getvalue())
    return stored.key, stored.thumb_key


def _pg_array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def load(
    engine: Engine,
    members: int = 10_000,
    days: int = 100,
    reviewing_share: float = 0.2,
    *,
    tasks: int = 30,
    image_keys: tuple[str, str] | None = None,
    verbose: bool = True,
) -> dict[str, float]:
    """Fill an empty, migrated PostgreSQL database; returns timings (seconds) per step."""
    if engine.dialect.name != "postgresql":
        raise RuntimeError("bench.dataset.load needs PostgreSQL (generate_series)")
    storage_key, thumb_key = image_keys or store_shared_image()
    settings = get_settings()
    today = clock.local_today()
    start = today - timedelta(days=days - 1)
    finish = start + timedelta(days=days + 9)  # still running: ten more days to go
    task_hour = settings.send_new_task_hour
    tz = settings.time_zone
    timings: dict[str, float] = {}

    url = engine.url.render_as_string(hide_password=False)

    def report(name: str, rows: int, cpu: CpuResult) -> None:
        if verbose:
            per_row = cpu.postgres * 1e6 / rows if rows > 0 else float("nan")
            print(
                f"  {name:<14} {timings[name]:7.1f} s {rows:>11,} rows  pg CPU {cpu.postgres:6.2f} s"
                f" ({per_row:5.1f} µs/row)  others {cpu.others_cores:4.2f} cores"
                f"  load {cpu.load_start[0]:.2f}→{cpu.load_end[0]:.2f}",
                flush=True,
            )

    def step(name: str, sql: str, **params) -> None:
        began = time.perf_counter()
        with CpuMeter(database_url=url) as cpu, engine.begin() as conn:
            rows = conn.execute(sa.text(sql), params).rowcount
        timings[name] = time.perf_counter() - began
        report(name, rows, cpu.result(max(rows, 0)))

    step(
        "tasks",
        """INSERT INTO task (title, is_archived, created_at, updated_at)
           SELECT 'Задание ' || g, false, now(), now() FROM generate_series(1, :n) g""",
        n=tasks,
    )
    step(
        "shift",
        """INSERT INTO shift (number, title, status, started_at, finished_at, final_message,
                              created_at, updated_at)
           VALUES (1, 'Умею жить', 'started', :start, :finish, '', now(), now())""",
        start=start,
        finish=finish,
    )
    step(
        "shift_day",
        """INSERT INTO shift_day (shift_id, day_number, task_id)
           SELECT s.id, g, (SELECT min(id) FROM task) + (g - 1) % :tasks
           FROM shift s, generate_series(1, :length) g WHERE s.number = 1""",
        tasks=tasks,
        length=(finish - start).days + 1,
    )
    step(
        "participants",
        f"""INSERT INTO participant (telegram_id, name, surname, date_of_birth, city, phone,
                                     is_bot_blocked, is_test, consent_at, consent_version,
                                     created_at, updated_at)
           SELECT 1000000000 + g,
                  ({_pg_array(NAMES)})[1 + g % {len(NAMES)}],
                  ({_pg_array(SURNAMES)})[1 + (g / 7) % {len(SURNAMES)}]
                    || CASE WHEN g % 2 = 0 THEN 'а' ELSE '' END,
                  DATE '2008-01-01' + (g * 37) % 5000,
                  ({_pg_array(CITIES)})[1 + (g / 3) % {len(CITIES)}],
                  '+7 9' || lpad((g / 10000000 % 100)::text, 2, '0') || ' '
                    || lpad((g / 10000 % 1000)::text, 3, '0') || '-'
                    || lpad((g / 100 % 100)::text, 2, '0') || '-' || lpad((g % 100)::text, 2, '0'),
                  false, false, now(), '1', now(), now()
           FROM generate_series(1, :n) g""",
        n=members,
    )
    step(
        "members",
        """INSERT INTO member (participant_id, shift_id, status, joined_at, created_at, updated_at)
           SELECT p.id, s.id, 'active', s.started_at, now(), now()
           FROM participant p, shift s WHERE s.number = 1 ORDER BY p.id""",
    )
    # One report per member and day, in submission order (ids grow with submitted_at, like life).
    # status by a per-row pseudo-random draw (reproducible): reviewing_share in review, then approved/declined/skipped.
    step(
        "reports",
        """INSERT INTO report (member_id, shift_id, task_id, day_number, task_date, status,
                               photo_count, submitted_at, decided_at, decline_reason,
                               created_at, updated_at)
           SELECT m.id, m.shift_id, sd.task_id, d, s.started_at + (d - 1),
                  x.status::report_status,
                  CASE WHEN x.status = 'skipped' THEN 0 ELSE 1 END,
                  CASE WHEN x.status = 'skipped' THEN NULL ELSE x.sent END,
                  CASE WHEN x.status IN ('approved', 'declined')
                       THEN x.sent + interval '3 hours' END,
                  CASE WHEN x.status = 'declined' THEN 'Фото размыто или слишком тёмное' END,
                  x.sent, x.sent
           FROM shift s
           JOIN member m ON m.shift_id = s.id
           CROSS JOIN generate_series(1, :days) d
           JOIN shift_day sd ON sd.shift_id = s.id AND sd.day_number = d
           CROSS JOIN LATERAL (
             SELECT CASE WHEN r < :share THEN 'reviewing'
                         WHEN r < :share + (1 - :share) * 0.85 THEN 'approved'
                         WHEN r < :share + (1 - :share) * 0.95 THEN 'declined'
                         ELSE 'skipped' END AS status,
                    ((s.started_at + (d - 1))::timestamp + make_interval(hours => :hour)) AT TIME ZONE :tz
                      + make_interval(secs => (m.id * 7919 % 36000)) AS sent
             FROM (SELECT ((m.id::bigint * 1103515245 + d * 12345) % 1000003) / 1000003.0 AS r) rr
           ) x
           WHERE s.number = 1
           ORDER BY x.sent, m.id""",
        days=days,
        share=reviewing_share,
        hour=task_hour,
        tz=tz,
    )
    step(
        "photos",
        """INSERT INTO report_photo (report_id, attempt, storage_key, thumb_key, width, height,
                                     size_bytes, sha256, phash, dhash, flags_checked, created_at)
           SELECT r.id, 1, :storage_key, :thumb_key, 1280, 960, 50000, md5(r.id::text) || md5(r.id::text),
                  (r.id::bigint * 2654435761) % 9223372036854775807, (r.id::bigint * 40503) % 9223372036854775807,
                  true, r.submitted_at
           FROM report r WHERE r.photo_count = 1""",
        storage_key=storage_key,
        thumb_key=thumb_key,
    )
    # A few near-duplicate flags, pointing at the member's previous day's photo.
    step(
        "flags",
        """UPDATE report_photo p SET flag = 'near', flag_photo_id = prev.id, flag_distance = 4
           FROM report r JOIN report r0 ON r0.member_id = r.member_id
                                       AND r0.day_number = r.day_number - 1
                         JOIN report_photo prev ON prev.report_id = r0.id
           WHERE p.report_id = r.id AND r.id % 97 = 0""",
    )
    began = time.perf_counter()
    with (
        CpuMeter(database_url=url) as cpu,
        engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
    ):
        conn.execute(sa.text("VACUUM ANALYZE"))
        reports = conn.execute(sa.text("SELECT count(*) FROM report")).scalar_one()
    timings["vacuum"] = time.perf_counter() - began
    report("vacuum", reports, cpu.result(reports))  # per report row
    return timings


def main() -> None:
    import argparse
    import shutil

    from app.db import make_engine
    from app.migrate import upgrade
    from app.settings import load_settings, set_settings
    from bench._common import CPU_NOTE, drop_database, environment, fresh_database, load_line

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--share", type=float, default=0.2, help="share of reports in review")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    print(load_line("start"), flush=True)
    name = "lomaya_bench_dataset"
    env = environment(fresh_database(name))
    settings = set_settings(load_settings(env, env_file=None))
    engine = make_engine(settings.database_url)
    upgrade(engine)
    print(f"loading {args.members} members × {args.days} days …", flush=True)
    began = time.perf_counter()
    load(engine, members=args.members, days=args.days, reviewing_share=args.share)
    print(f"loaded in {time.perf_counter() - began:.1f} s")
    print(CPU_NOTE)
    print(load_line("end"))
    engine.dispose()
    shutil.rmtree(env["DATA_DIR"], ignore_errors=True)
    if not args.keep:
        drop_database(name)


if __name__ == "__main__":
    main()
