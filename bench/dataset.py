"""Bulk-load a realistic running shift into PostgreSQL for benchmarks (not through the ORM).

    from bench.dataset import load
    load(engine, members=10_000, days=100, reviewing_share=0.2)

One started shift of `days` days (today is its last loaded day), `members` participants each with a
report for every day: a share `reviewing_share` still in review, the rest mostly approved, some
declined or skipped; one photo per sent report. Everything is inserted with `INSERT … SELECT
generate_series(…)` in a few statements, so a million reports take about a minute. Photo files are not
created: every photo and thumbnail points at one shared stored image (`store_shared_image`).
"""

from __future__ import annotations

import time
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app import clock
from app.settings import get_settings

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

    def step(name: str, sql: str, **params) -> None:
        began = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(sa.text(sql), params)
        timings[name] = time.perf_counter() - began
        if verbose:
            print(f"  {name:<14} {timings[name]:7.1f} s", flush=True)

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
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    timings["vacuum"] = time.perf_counter() - began
    if verbose:
        print(f"  {'vacuum':<14} {timings['vacuum']:7.1f} s", flush=True)
    return timings
