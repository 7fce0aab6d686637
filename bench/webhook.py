"""Benchmark: photo reports through the webhook on PostgreSQL (prints figures, asserts nothing).

2,000 photo-report updates (1280×960 JPEGs served by the fake Bot API) are posted to one uvicorn
worker over 8 concurrent keep-alive connections; the app downloads each photo with getFile, stores it
with a thumbnail, hashes it, flags duplicates and moves the report to review, answering through the
outbox (the sender runs in the app, as in production). Then the shift is filled up to 100,000 photos
and the duplicate check (app.duplicates.find_flag) is timed.

    uv run python bench/webhook.py [--updates 2000] [--concurrency 8]

Creates (and drops first) the database lomaya_bench_bot on 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from multiprocessing import Pool

from _common import ROOT, environment, fresh_database, summary

W, H = 1280, 960


def _backgrounds(n: int) -> list[bytes]:
    from PIL import Image

    out = []
    for i in range(n):
        rnd = random.Random(i)
        noise = Image.effect_noise((W, H), 60).convert("RGB")
        tint = Image.new("RGB", (W, H), tuple(rnd.randrange(256) for _ in range(3)))
        out.append(Image.blend(noise, tint, 0.6).tobytes())
    return out


_BG: list[bytes] = []


def _init(backgrounds: list[bytes]) -> None:
    _BG.extend(backgrounds)


def _photo(seed: int) -> bytes:
    from PIL import Image, ImageDraw

    rnd = random.Random(seed * 7919)
    image = Image.frombytes("RGB", (W, H), _BG[seed % len(_BG)])
    draw = ImageDraw.Draw(image)
    for _ in range(16):
        x, y = rnd.randrange(W), rnd.randrange(H)
        box = (x, y, x + rnd.randrange(60, 500), y + rnd.randrange(60, 400))
        draw.rectangle(box, fill=tuple(rnd.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def arrange(n: int) -> tuple[int, list[int]]:
    """A started shift with n members, each with today's `waiting` report."""
    import sqlalchemy as sa

    from app import clock
    from app.days import report_day
    from app.db import session_scope

    today = report_day(clock.now())
    start = today - timedelta(days=4)
    with session_scope() as db:
        conn = db.connection()
        conn.execute(
            sa.text(
                "INSERT INTO task (title, is_archived, created_at, updated_at) "
                "SELECT 'Задание ' || g, false, now(), now() FROM generate_series(1, 10) g"
            )
        )
        shift_id = conn.execute(
            sa.text(
                "INSERT INTO shift (number, title, status, started_at, finished_at, "
                "final_message, created_at, updated_at) VALUES (1, 'Смена для замера', "
                "'started', :s, :f, '', now(), now()) RETURNING id"
            ),
            {"s": start, "f": start + timedelta(days=90)},
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO shift_day (shift_id, day_number, task_id) "
                "SELECT :shift, d, 1 + (d % 10) FROM generate_series(1, 91) d"
            ),
            {"shift": shift_id},
        )
        conn.execute(
            sa.text(
                "INSERT INTO participant (telegram_id, name, surname, city, phone, "
                "is_bot_blocked, is_test, created_at, updated_at) "
                "SELECT 7000000 + g, 'Маша', 'Иванова', 'Уфа', "
                "'+7 912 ' || lpad((g / 10000)::text, 3, '0') || '-' || "
                "lpad((g / 100 % 100)::text, 2, '0') || '-' || lpad((g % 100)::text, 2, '0'), "
                "false, false, now(), now() FROM generate_series(1, :n) g"
            ),
            {"n": n},
        )
        conn.execute(
            sa.text(
                "INSERT INTO member (participant_id, shift_id, status, joined_at, created_at, "
                "updated_at) SELECT id, :shift, 'active', :s, now(), now() FROM participant"
            ),
            {"shift": shift_id, "s": start},
        )
        day = (today - start).days + 1
        conn.execute(
            sa.text(
                "INSERT INTO report (member_id, shift_id, task_id, day_number, task_date, status, "
                "photo_count, created_at, updated_at) SELECT m.id, :shift, 1 + (:day % 10), :day, "
                ":today, 'waiting', 0, now(), now() FROM member m"
            ),
            {"shift": shift_id, "day": day, "today": today},
        )
        users = [
            int(r[0])
            for r in conn.execute(sa.text("SELECT telegram_id FROM participant ORDER BY id"))
        ]
    return shift_id, users


def post_all(port: int, secret: str, bodies: list[bytes], concurrency: int):
    work = iter(bodies)  # shared by the threads, handed out under the lock
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                body = next(work, None)
            if body is None:
                break
            started = time.perf_counter()
            conn.request(
                "POST",
                "/telegram/webhook",
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Telegram-Bot-Api-Secret-Token": secret,
                },
            )
            response = conn.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                statuses[response.status] = statuses.get(response.status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies, statuses


def fill_shift(shift_id: int, total: int) -> int:
    """Add synthetic photos (random hashes) to other days' reports until the shift has `total`."""
    import sqlalchemy as sa

    from app.db import session_scope

    with session_scope() as db:
        conn = db.connection()
        have = conn.execute(
            sa.text(
                "SELECT count(*) FROM report_photo p JOIN report r ON r.id = p.report_id "
                "WHERE r.shift_id = :s"
            ),
            {"s": shift_id},
        ).scalar_one()
        members = conn.execute(
            sa.text("SELECT count(*) FROM member WHERE shift_id = :s"), {"s": shift_id}
        ).scalar_one()
        missing = max(0, total - have)
        days = -(-missing // members)
        conn.execute(
            sa.text(
                "INSERT INTO report (member_id, shift_id, task_id, day_number, task_date, status, "
                "photo_count, submitted_at, created_at, updated_at) "
                "SELECT m.id, :s, 1, 100 + d, date '2000-01-01' + d, 'approved', 1, now(), now(), "
                "now() FROM member m, generate_series(1, :days) d WHERE m.shift_id = :s"
            ),
            {"s": shift_id, "days": days},
        )
        conn.execute(
            sa.text(
                "INSERT INTO report_photo (report_id, attempt, storage_key, thumb_key, sha256, "
                "phash, dhash, telegram_file_unique_id, flags_checked, created_at) "
                "SELECT id, 1, 'bench/x.jpg', 'bench/x_t.jpg', md5(id::text) || md5((-id)::text), "
                "(random() * 18446744073709551615 - 9223372036854775808)::numeric(20,0)::bigint, "
                "(random() * 18446744073709551615 - 9223372036854775808)::numeric(20,0)::bigint, "
                "'bench-' || id, true, now() FROM report "
                "WHERE shift_id = :s AND day_number > 100 ORDER BY id LIMIT :missing"
            ),
            {"s": shift_id, "missing": missing},
        )
        conn.execute(sa.text("ANALYZE"))
        return conn.execute(
            sa.text(
                "SELECT count(*) FROM report_photo p JOIN report r ON r.id = p.report_id "
                "WHERE r.shift_id = :s"
            ),
            {"s": shift_id},
        ).scalar_one()


def time_duplicate_check(shift_id: int, runs: int = 300) -> tuple[list[float], int]:
    import sqlalchemy as sa

    from app import duplicates
    from app.db import session_scope

    with session_scope() as db:
        real = db.execute(
            sa.text(
                "SELECT p.sha256, p.phash, p.dhash FROM report_photo p JOIN report r ON "
                "r.id = p.report_id WHERE r.shift_id = :s AND p.storage_key <> 'bench/x.jpg' "
                "LIMIT 100"
            ),
            {"s": shift_id},
        ).all()
    rnd = random.Random(1)
    times, hits = [], 0
    for i in range(runs):
        if i % 2 and real:  # half: a re-encoded copy of a real photo (near), half: new photos
            sha, p, d = real[i % len(real)]
            sha = f"{rnd.getrandbits(256):064x}"
            p ^= 1 << rnd.randrange(63)
        else:
            sha = f"{rnd.getrandbits(256):064x}"
            p, d = rnd.getrandbits(64) - 2**63, rnd.getrandbits(64) - 2**63
        with session_scope() as db:
            started = time.perf_counter()
            flag = duplicates.find_flag(
                db, shift_id, sha256=sha, file_unique_id=f"new-{i}", phash=p, dhash=d
            )
            times.append((time.perf_counter() - started) * 1000)
        hits += flag is not None
    return times, hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--photos", type=int, default=100_000)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from tests.fake_telegram import TOKEN, FakeTelegram

    url = fresh_database("lomaya_bench_bot")
    fake = FakeTelegram()
    fake_url = fake.start()
    env = environment(
        url,
        BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=fake_url,
        APPLICATION_URL="https://bench.example.org",
        BOT_WEBHOOK_MODE="true",
    )
    os.environ.update(env)
    from app.db import get_engine
    from app.migrate import upgrade
    from app.settings import load_settings, set_settings

    settings = set_settings(load_settings(env, env_file=None))
    upgrade(get_engine(settings))
    shift_id, users = arrange(args.updates)

    print(f"Generating {args.updates} photos {W}×{H}…", flush=True)
    started = time.perf_counter()
    with Pool(2, initializer=_init, initargs=(_backgrounds(8),)) as pool:
        photos = pool.map(_photo, range(args.updates), chunksize=20)
    print(
        f"  {time.perf_counter() - started:.0f} s, "
        f"mean {sum(map(len, photos)) / len(photos) / 1024:.0f} KB",
        flush=True,
    )
    bodies = []
    for i, (uid, data) in enumerate(zip(users, photos, strict=False)):
        file_id = fake.add_file(data)
        bodies.append(
            json.dumps(
                {
                    "update_id": 10_000 + i,
                    "message": {
                        "message_id": i + 1,
                        "date": int(time.time()),
                        "chat": {"id": uid, "type": "private"},
                        "from": {"id": uid, "is_bot": False, "first_name": "Маша"},
                        "photo": [
                            {
                                "file_id": file_id,
                                "file_unique_id": fake.unique_id(file_id),
                                "width": W,
                                "height": H,
                                "file_size": len(data),
                            }
                        ],
                    },
                }
            ).encode()
        )

    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.asgi:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/health")
                break
            except OSError:
                time.sleep(0.2)
        # warm-up: 10 updates of the same shape (not counted)
        print(f"Posting {len(bodies)} photo updates, {args.concurrency} connections…", flush=True)
        elapsed, latencies, statuses = post_all(
            port, settings.telegram_webhook_secret, bodies, args.concurrency
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        fake.stop()

    import sqlalchemy as sa

    from app.db import session_scope

    with session_scope() as db:
        reviewing = db.execute(
            sa.text("SELECT count(*) FROM report WHERE status = 'reviewing'")
        ).scalar_one()
        flagged = db.execute(
            sa.text("SELECT count(*) FROM report_photo WHERE flag IS NOT NULL")
        ).scalar_one()
    print()
    print(f"webhook: {len(bodies)} photo reports in {elapsed:.1f} s")
    print(f"  sustained: {len(bodies) / elapsed:.1f} reports/s (target ≥ 60 on 2 cores)")
    print(f"  answer latency: {summary(latencies)} (target p95 ≤ 250 ms)")
    print(f"  HTTP statuses: {statuses}; reports in review: {reviewing}; flagged: {flagged}")

    total = fill_shift(shift_id, args.photos)
    times, hits = time_duplicate_check(shift_id)
    print(f"duplicate check at {total} photos in the shift ({len(times)} runs, {hits} flagged):")
    print(f"  {summary(times)} (target ≤ 20 ms)")


if __name__ == "__main__":
    main()
