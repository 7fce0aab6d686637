"""Benchmark: the production shape — nginx, N web processes, `lomaya worker`, PostgreSQL.

    uv run python bench/cluster.py [--web 1,2] [--updates 1000] [--warmup 80] [--concurrency 8]
        [--pages 400] [--page-clients 4] [--media local] [--keep]
    (or: uv run python -m bench.cluster …)

For each count in `--web`, on a fresh database `lomaya_bench_cluster` (dropped first, migrated
with `lomaya migrate`; dropped at the end unless `--keep`) with one started shift and a member
with today's `waiting` report per update (bench/webhook.py's `arrange`): that many
`lomaya serve --no-background` processes on loopback ports behind nginx (the repository's
deploy/nginx files, without TLS, as the tests run them: tests/cluster_support.py), one
`lomaya worker` sending the replies at Telegram's 30 messages/s, the fake Bot API
(tests/fake_telegram.py) in this process serving 1280×960 JPEGs. Then two measured phases:

1. **photo reports**: `--warmup` updates (not measured), then `--updates` photo updates posted to
   nginx's /telegram/webhook over `--concurrency` keep-alive connections (with the secret header).
   Reports/s, p50/p95 of the webhook answer; CPU ms per report of the web processes (together),
   of the worker, of nginx and of PostgreSQL (backends of the bench database, the worker's included).
   The worker cannot send 30/s of replies as fast as reports arrive: after the phase, the bench
   waits for the outbox to drain (not measured) so the next phase runs on a quiet worker.
2. **the queue page**: a curator (logged in through nginx) loads `/reports` (the first page of
   the review queue, every report of phase 1 in review) `--pages` times from `--page-clients`
   clients through nginx: pages/s, p50/p95, CPU ms per page of the web processes and PostgreSQL.

Prints the load average at start and end, a table (one row per web count), and below it the CPU
per process and the cores busy with work the bench did not cause. Logs: LOG_LEVEL=WARNING (no
per-request access lines from the app; nginx keeps its access log). Numbers from a shared, noisy
2-core machine: the CPU per operation is the figure to compare, the wall clock follows the load.
`--media s3` puts the photos in S3 (a SeaweedFS on loopback; its CPU counts as other load).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/<name>.py`: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import httpx2
import sqlalchemy as sa

from bench._common import (
    CPU_NOTE,
    CpuMeter,
    CpuResult,
    database_url,
    drop_database,
    environment,
    fresh_database,
    load_line,
    media_env,
    own_url,
    percentile,
    sign_in,
    start_seaweedfs,
)
from bench.webhook import SECRET, H, W, _backgrounds, _init, _photo, arrange, make_bodies, post_all
from tests.cluster_support import (
    CliProcess,
    Nginx,
    WebProcess,
    base_environ,
    create_admin,
    free_port,
    run_cli,
    start_cli,
    start_nginx,
    start_web,
    wait_until_healthy,
)

DB_NAME = "lomaya_bench_cluster"
EMAIL = "bench@example.org"
PASSWORD = "bench password 123"


@dataclass
class Phase:
    ops: int
    elapsed: float
    latencies: list[float]
    statuses: dict[int, int]
    cpu: CpuResult  # app = the web processes only
    worker_cpu: float  # seconds of `lomaya worker`
    nginx_cpu: float  # seconds of nginx

    @property
    def per_second(self) -> float:
        return self.ops / self.elapsed

    def web_ms(self) -> float:
        return self.cpu.app_ms

    def worker_ms(self) -> float:
        return self.worker_cpu * 1000 / self.ops

    def nginx_ms(self) -> float:
        return self.nginx_cpu * 1000 / self.ops


@dataclass
class Run:
    webs: int
    photos: Phase
    pages: Phase
    sent: int  # messages the worker sent during the photo phase
    reviewing: int
    drain_seconds: float


def children(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(child) for child in text.split()}


def split(cpu: CpuResult, worker_pid: int, nginx_pid: int) -> tuple[CpuResult, float, float]:
    """The meter's result with the web processes alone as "app"; the CPU seconds of the worker
    and of nginx (master and workers) apart."""
    nginx_pids = {nginx_pid} | children(nginx_pid)
    worker = cpu.app_split.get(worker_pid, 0.0)
    nginx = sum(t for pid, t in cpu.app_split.items() if pid in nginx_pids)
    web_split = {
        pid: t for pid, t in cpu.app_split.items() if pid != worker_pid and pid not in nginx_pids
    }
    web = (cpu.app or 0.0) - worker - nginx
    # The machine's busy time without them too, so that "others" stays the load we did not cause.
    rest = dataclasses.replace(
        cpu, app=web, app_split=web_split, machine=cpu.machine - worker - nginx
    )
    return rest, worker, nginx


def get_pages(proxy: Nginx, cookie: str, total: int, clients: int):
    """`total` GET /reports through nginx from `clients` keep-alive clients."""
    left = iter(range(total))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def client() -> None:
        headers = {"Cookie": f"lomaya_session={cookie}"}
        with httpx2.Client(base_url=proxy.url, headers=headers, timeout=60) as http:
            while True:
                with lock:
                    if next(left, None) is None:
                        return
                started = time.perf_counter()
                response = http.get("/reports")
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies, statuses


def count(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def run_config(webs: int, warm: list[bytes], bodies: list[bytes], base: dict, args) -> Run:
    url = fresh_database(DB_NAME)
    env = base_environ(**environment(url, **base))
    log_dir = Path(tempfile.mkdtemp(prefix="lomaya-bench-cluster-"))
    processes: list[WebProcess | CliProcess] = []
    proxy: Nginx | None = None
    try:
        run_cli(["migrate", "upgrade"], env)
        create_admin(env, EMAIL, PASSWORD, "expert")
        engine = sa.create_engine(own_url(url))
        arrange(engine, len(warm) + len(bodies))
        worker = start_cli(env, log_dir, "worker")  # SCHEDULER_ENABLED=false: it only sends
        processes.append(worker)
        servers = [
            start_web(env, log_dir, free_port(), wait=False, args=("--no-background",))
            for _ in range(webs)
        ]
        processes += servers
        for server in servers:
            wait_until_healthy(server)
        proxy = start_nginx(log_dir / "nginx", [s.address for s in servers])
        cookie = sign_in(proxy.url, EMAIL, PASSWORD)
        label = f"{webs} web"
        print(f"{label}: warm-up, {len(warm)} updates and 20 pages (not measured)…", flush=True)
        post_all(proxy.port, SECRET, warm, args.concurrency)
        get_pages(proxy, cookie, 20, args.page_clients)

        print(f"{label}: measuring {len(bodies)} photo reports…", flush=True)
        pids = [s.process.pid for s in servers] + [worker.pid, proxy.process.pid]
        sent_sql = "SELECT count(*) FROM outgoing_message WHERE status = 'sent'"
        sent_before = count(engine, sent_sql)
        with CpuMeter(pids, database_url=url) as meter:
            elapsed, latencies, statuses = post_all(proxy.port, SECRET, bodies, args.concurrency)
        sent = count(engine, sent_sql) - sent_before
        cpu, worker_cpu, nginx_cpu = split(meter.result(len(bodies)), worker.pid, proxy.process.pid)
        photos = Phase(len(bodies), elapsed, latencies, statuses, cpu, worker_cpu, nginx_cpu)

        drain_started = time.perf_counter()
        deadline = time.monotonic() + 600
        pending_sql = "SELECT count(*) FROM outgoing_message WHERE status <> 'sent'"
        while count(engine, pending_sql) and time.monotonic() < deadline:
            time.sleep(0.5)  # a poll interval: the loop checks the outbox
        drain = time.perf_counter() - drain_started
        if left := count(engine, pending_sql):
            print(f"{label}: {left} messages still unsent after {drain:.0f} s", flush=True)

        print(f"{label}: measuring {args.pages} queue pages…", flush=True)
        with CpuMeter(pids, database_url=url) as meter:
            elapsed, latencies, statuses = get_pages(proxy, cookie, args.pages, args.page_clients)
        cpu, worker_cpu, nginx_cpu = split(meter.result(args.pages), worker.pid, proxy.process.pid)
        pages = Phase(args.pages, elapsed, latencies, statuses, cpu, worker_cpu, nginx_cpu)
        reviewing = count(engine, "SELECT count(*) FROM report WHERE status = 'reviewing'")
        engine.dispose()
    finally:
        if proxy is not None:
            proxy.stop()
        for process in processes:
            process.stop()
        shutil.rmtree(env["DATA_DIR"], ignore_errors=True)
        shutil.rmtree(log_dir, ignore_errors=True)
    return Run(webs, photos, pages, sent, reviewing, drain)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--web", default="1,2", help="web process counts, e.g. 1,2")
    parser.add_argument("--updates", type=int, default=1000, help="measured photo updates")
    parser.add_argument("--warmup", type=int, default=80, help="updates sent first, not measured")
    parser.add_argument("--concurrency", type=int, default=8, help="webhook connections")
    parser.add_argument("--pages", type=int, default=400, help="measured queue pages")
    parser.add_argument("--page-clients", type=int, default=4, help="curators loading pages")
    parser.add_argument("--media", choices=("local", "s3"), default="local")
    parser.add_argument("--keep", action="store_true", help="keep the last run's database")
    args = parser.parse_args()
    counts = [int(w) for w in args.web.split(",") if w.strip()]

    print(load_line("start"), flush=True)
    n = args.warmup + args.updates
    print(f"Generating {n} photos {W}×{H}…", flush=True)
    with Pool(2, initializer=_init, initargs=(_backgrounds(8),)) as pool:
        photos = pool.map(_photo, range(n), chunksize=20)

    from tests.fake_telegram import TOKEN, FakeTelegram

    fake = FakeTelegram()
    fake_url = fake.start()
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

    base = {
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": fake_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "APPLICATION_URL": "https://bench.example.org",
        "BOT_WEBHOOK_MODE": "true",
        "LOG_LEVEL": "WARNING",
    }
    runs: list[Run] = []
    try:
        for webs in counts:
            fake.reset()
            # A fresh SeaweedFS per configuration: the test server holds 8 volumes of 64 MB, about
            # one run's worth of 1280×960 photos; a full store answers 503 to every upload.
            seaweed = start_seaweedfs() if args.media == "s3" else None
            try:
                env = {**base, **media_env(args.media, seaweed)}
                runs.append(run_config(webs, warm, bodies, env, args))
            finally:
                if seaweed is not None:
                    seaweed.stop()
                    shutil.rmtree(seaweed.root, ignore_errors=True)
    finally:
        fake.stop()

    print()
    print(
        f"cluster: nginx → N × `lomaya serve --no-background`, one `lomaya worker`, PostgreSQL, "
        f"media {args.media}; {args.updates} photo reports over {args.concurrency} connections "
        f"after {args.warmup} warm-up; {args.pages} queue pages from {args.page_clients} clients"
    )
    print(
        f"{'web':>3} {'reports/s':>9} {'p95 ms':>7} {'web ms':>7} {'worker ms':>9} {'pg ms':>6}"
        f" {'nginx ms':>8} │ {'pages/s':>7} {'p95 ms':>7} {'web ms':>7} {'pg ms':>6}"
        f" {'nginx ms':>8} │ {'load 1-min':>11}"
    )
    for r in runs:
        p, q = r.photos, r.pages
        load = f"{p.cpu.load_start[0]:.2f}→{q.cpu.load_end[0]:.2f}"
        print(
            f"{r.webs:>3} {p.per_second:9.1f} {percentile(p.latencies, 95):7.1f}"
            f" {p.web_ms():7.2f} {p.worker_ms():9.2f} {p.cpu.pg_ms:6.2f} {p.nginx_ms():8.2f}"
            f" │ {q.per_second:7.1f} {percentile(q.latencies, 95):7.1f} {q.web_ms():7.2f}"
            f" {q.cpu.pg_ms:6.2f} {q.nginx_ms():8.2f} │ {load:>11}"
        )
    print(
        "(ms = CPU ms per photo report / per page: web = all web processes together, worker = "
        "`lomaya worker` (sending the replies), pg = PostgreSQL backends of the bench database, "
        "nginx = its master and worker; 'app' below = the web processes)"
    )
    for r in runs:
        p, q = r.photos, r.pages
        print(f"{r.webs} web process(es):")
        print(f"  photo reports: {p.cpu.line('report')}")
        print(f"    worker {p.worker_ms():.2f} ms, nginx {p.nginx_ms():.2f} ms per report")
        print(
            f"    webhook p50 {percentile(p.latencies, 50):.1f} ms, p95 "
            f"{percentile(p.latencies, 95):.1f} ms, max {max(p.latencies):.1f} ms; HTTP "
            f"{p.statuses}; worker {p.worker_cpu:.2f} s CPU, {r.sent} messages sent in the "
            f"phase ({p.worker_cpu * 1000 / max(r.sent, 1):.2f} ms per message); outbox drained "
            f"{r.drain_seconds:.1f} s after the phase; {r.reviewing} reports in review"
        )
        per_process = ", ".join(f"{pid} {t:.1f} s" for pid, t in sorted(p.cpu.app_split.items()))
        print(f"    CPU per web process: {per_process}")
        if set(p.statuses) != {200}:
            print(
                f"    !! {p.ops - p.statuses.get(200, 0)} updates were refused (Telegram "
                "would deliver them again): this row's figures are not comparable"
            )
        print(f"  queue pages: {q.cpu.line('page')}")
        print(f"    worker {q.worker_ms():.2f} ms, nginx {q.nginx_ms():.2f} ms per page")
        print(
            f"    p50 {percentile(q.latencies, 50):.1f} ms, p95 {percentile(q.latencies, 95):.1f} "
            f"ms, max {max(q.latencies):.1f} ms; HTTP {q.statuses}"
        )
    print(CPU_NOTE)
    print(load_line("end"))
    if not args.keep:
        drop_database(DB_NAME)


if __name__ == "__main__":
    main()
