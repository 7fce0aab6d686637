"""Benchmark of the report queue (moderation) on PostgreSQL with ~1,000,000 reports. Run by hand:

    uv run python bench/review_queue.py [--members 10000] [--days 100] [--n 100] [--reload]
        [--no-browser] [--media local,s3] [--database lomaya_bench_queue]
    (or: uv run python -m bench.review_queue …)

Creates (once) the database `lomaya_bench_queue` on 127.0.0.1:5432 (BENCH_PG to change the server),
migrates it, bulk-loads it with bench.dataset (reused by later runs; `--reload` to force), then drives
the real app in this process (Starlette TestClient, a logged-in expert). Decisions made by the
benchmark are put back afterwards, so runs can be repeated on the same data.

Prints one row per request kind (queue page, next pages, deep page, filters, flagged only, approve,
decline, undo): n, p50/p95/max of the server time per request (measured around the ASGI app, without
the test client), SQL statements per request (an engine event listener), CPU ms per request of the
app (this process minus the client thread) and of PostgreSQL (backends of the bench database), the
cores busy with other people's work, and the 1-minute load average at start → end of that row;
then, unless --no-browser, the same for Chromium (key press → next card focused, → decided card
back from the server, uvicorn in a thread). The load average is printed at start and end of the run.
`--media local,s3` runs it all with the photos in the folder and then in S3 (a SeaweedFS on
loopback, bench/_common.py; the folder's objects are copied there first), side by side: the queue's
pages must not move; the photo row (GET /media/…) shows what S3 costs a thumbnail.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/<name>.py`: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import sqlalchemy as sa

from app.db import make_engine, set_engine
from app.migrate import upgrade
from app.settings import load_settings, set_settings
from bench._common import (
    CPU_HEADER,
    CPU_NOTE,
    CpuMeter,
    CpuResult,
    cpu_columns,
    database_url,
    load_line,
    media_env,
    percentile,
    start_seaweedfs,
)

DB_NAME = "lomaya_bench_queue"
WARMUP = 3  # requests of each kind sent before the measured ones (not counted)
DATA_DIR = Path("var/bench_queue")
PASSWORD = "bench password 123"
HX = {"HX-Request": "true"}


HEADER = f"{'request':<46} {'n':>4} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'SQL/req':>7} {CPU_HEADER}"


def line(
    label: str, values: list[float], cpu: CpuResult, statements: list[int] | None = None
) -> None:
    sql = ""
    if statements is not None:
        kinds = sorted(set(statements))
        sql = f"{kinds[0]}" + (f"–{kinds[-1]}" if len(kinds) > 1 else "")
    print(
        f"{label:<46} {len(values):>4} {percentile(values, 50):7.1f} {percentile(values, 95):7.1f}"
        f" {max(values):7.1f} {sql:>7} {cpu_columns(cpu)}",
        flush=True,
    )


class Timed:
    """ASGI wrapper: server time of the last request, from receiving it to the last body byte."""

    def __init__(self, app) -> None:
        self.app = app
        self.last = 0.0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()

        async def timed_send(message):
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last = (time.perf_counter() - began) * 1000

        await self.app(scope, receive, timed_send)


def ensure_database(name: str) -> str:
    admin = sa.create_engine(database_url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return database_url(name)


def prepare(args) -> tuple:
    url = ensure_database(args.database)
    settings = set_settings(
        load_settings(
            {
                "DATABASE_URL": url,
                "DATA_DIR": str(DATA_DIR),
                "SECRET_KEY": "bench-secret-key-0123456789",
                "SCHEDULER_ENABLED": "false",
            },
            env_file=None,
        )
    )
    engine = make_engine(settings.database_url)
    set_engine(engine)
    upgrade(engine)
    expected = args.members * args.days
    with engine.connect() as conn:
        have = conn.execute(sa.text("SELECT count(*) FROM report")).scalar_one()
    if args.reload or have < expected * 0.99:
        from bench.dataset import load

        print(f"loading {args.members} members × {args.days} days …", flush=True)
        with engine.begin() as conn:
            tables = conn.execute(
                sa.text(
                    "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables "
                    "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                )
            ).scalar_one()
            conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        began = time.perf_counter()
        load(engine, members=args.members, days=args.days, reviewing_share=args.share)
        print(f"loaded in {time.perf_counter() - began:.0f} s", flush=True)
    from sqlmodel import Session, select

    from app.accounts import hash_password
    from app.models import Staff, StaffRole

    with Session(engine) as db:
        staff = db.exec(select(Staff).where(Staff.email == "bench@example.org")).first()
        if staff is None:
            staff = Staff(
                email="bench@example.org",
                name="Бенч",
                surname="Куратор",
                role=StaffRole.expert,
                password_hash=hash_password(PASSWORD),
            )
            db.add(staff)
            db.commit()
    with engine.connect() as conn:
        counts = dict(
            conn.execute(sa.text("SELECT status::text, count(*) FROM report GROUP BY 1")).all()
        )
    print(
        f"data: {sum(counts.values()):,} reports "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))
    )
    return settings, engine


def login(client) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    r = client.post(
        "/login",
        data={"email": "bench@example.org", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def http_bench(settings, engine, args) -> list[int]:
    from starlette.testclient import TestClient

    from app.main import create_app

    app = create_app(settings, start_background=False)
    timed = Timed(app)
    statements = [0]

    def count(*_a):
        statements[0] += 1

    sa.event.listen(engine, "before_cursor_execute", count)
    decided: list[int] = []
    with TestClient(timed, base_url="http://testserver") as client:
        login(client)
        token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/reports").text)[1]

        def run(label, n, make_application):
            def one(i):
                statements[0] = 0
                response = make_application(i)
                assert response.status_code in (200, 303), (label, response.status_code)
                return response

            for i in range(WARMUP):
                one(i)
            times, stmts = [], []
            with CpuMeter(in_process=True, database_url=settings.database_url) as cpu:
                for i in range(WARMUP, WARMUP + n):
                    one(i)
                    times.append(timed.last)
                    stmts.append(statements[0])
            line(label, times, cpu.result(n), stmts)

        print(HEADER, flush=True)
        run("queue page (GET /reports, 20 cards)", args.n, lambda i: client.get("/reports"))
        with engine.connect() as conn:
            thumb = conn.execute(
                sa.text("SELECT thumb_key FROM report_photo WHERE thumb_key <> '' LIMIT 1")
            ).scalar_one()
        run("photo thumbnail (GET /media/…)", args.n, lambda i: client.get(f"/media/{thumb}"))

        # Walk the queue: each next page is an HTMX partial fetched with the previous cursor.
        first = client.get("/reports")
        next_url = re.search(r'hx-get="([^"]+)"', first.text)[1].replace("&amp;", "&")
        urls: list[str] = []

        def next_page(i):
            nonlocal next_url
            urls.append(next_url)
            response = client.get(next_url, headers=HX)
            found = re.search(r'hx-get="([^"]+)"', response.text)
            next_url = found[1].replace("&amp;", "&") if found else next_url
            return response

        run("next pages (HTMX partial, pages 2…)", args.n, next_page)
        with engine.connect() as conn:
            deep = conn.execute(
                sa.text(
                    "SELECT submitted_at, id FROM report WHERE status = 'reviewing' "
                    "ORDER BY submitted_at, id OFFSET :deep LIMIT 1"
                ),
                {"deep": args.members * args.days // 7},
            ).first()
        from app.report_queue import encode_cursor

        deep_url = f"/reports?after={encode_cursor(deep[0], deep[1])}"
        run(
            f"a page {args.members * args.days // 7:,} cards deep (keyset)",
            args.n,
            lambda i: client.get(deep_url, headers=HX),
        )
        run(
            "filtered: child name 'Соня'",
            max(args.n // 2, 10),
            lambda i: client.get("/reports?q=Соня"),
        )
        run(
            "filtered: status=approved (newest first)",
            max(args.n // 2, 10),
            lambda i: client.get("/reports?status=approved"),
        )
        run(
            "filtered: status=all (newest first)",
            max(args.n // 2, 10),
            lambda i: client.get("/reports?status=all"),
        )
        run(
            "filtered: a name nobody has ('Яна')",
            max(args.n // 2, 10),
            lambda i: client.get("/reports?q=Яна"),
        )
        run(
            "filtered: flagged only",
            max(args.n // 2, 10),
            lambda i: client.get("/reports?flagged=1"),
        )

        with engine.connect() as conn:
            ids = [
                row[0]
                for row in conn.execute(
                    sa.text(
                        "SELECT id FROM report WHERE status = 'reviewing' "
                        "ORDER BY submitted_at DESC, id DESC LIMIT :n"
                    ),
                    {"n": (args.n + WARMUP) * 2},
                )
            ]
        decided.extend(ids)
        approve_ids, decline_ids = ids[: args.n + WARMUP], ids[args.n + WARMUP :]
        run(
            "decision POST approve (HTMX)",
            args.n,
            lambda i: client.post(
                f"/reports/{approve_ids[i]}/approve", data={"csrf_token": token}, headers=HX
            ),
        )
        run(
            "decision POST decline, preset reason (HTMX)",
            args.n,
            lambda i: client.post(
                f"/reports/{decline_ids[i]}/decline",
                data={"csrf_token": token, "preset": "1"},
                headers=HX,
            ),
        )
        run(
            "undo POST (HTMX)",
            args.n,
            lambda i: client.post(
                f"/reports/{approve_ids[i]}/undo", data={"csrf_token": token}, headers=HX
            ),
        )
    sa.event.remove(engine, "before_cursor_execute", count)
    return decided


def browser_bench(settings, engine, args) -> list[int]:
    """Key press → next card focused, in Chromium against uvicorn on loopback."""
    import uvicorn
    from playwright.sync_api import sync_playwright

    from app.main import create_app

    app = create_app(settings, start_background=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    decided: list[int] = []
    args_chromium = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args_chromium)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/login?next=/reports")
        page.fill("#email", "bench@example.org")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/reports")
        page.wait_for_function(
            "document.activeElement && document.activeElement.id.startsWith('report-')"
        )
        page.evaluate(
            """() => {
              window.benchTimes = []; window.benchDown = 0; window.benchSwap = []; window.benchAt = {};
              document.addEventListener('keydown', (e) => {
                window.benchDown = performance.now();
                const card = document.activeElement.closest('.mod-card');
                if (card && (e.key === 'a' || e.key === '2')) window.benchAt[card.id] = window.benchDown;
              }, true);
              document.body.addEventListener('htmx:load', (e) => {
                const t = window.benchAt[e.target.id];
                if (t && e.target.dataset.status !== 'reviewing') {
                  window.benchSwap.push(performance.now() - t); delete window.benchAt[e.target.id];
                }
              });
              document.addEventListener('focusin', (e) => {
                if (window.benchDown && e.target.classList.contains('mod-card')) {
                  window.benchTimes.push(performance.now() - window.benchDown); window.benchDown = 0;
                }
              }, true);
            }"""
        )
        # app = uvicorn's threads (this process minus the main thread, which runs Playwright);
        # Chromium and the Playwright driver are separate processes and count as "others".
        with CpuMeter(in_process=True, database_url=settings.database_url) as meter:
            for i in range(args.keys):
                current = page.evaluate("document.activeElement.id")
                decided.append(int(current.removeprefix("report-")))
                key = "a" if i % 3 else "d"
                page.keyboard.press(key)
                if key == "d":
                    page.keyboard.press("2")
                page.wait_for_function(
                    "id => document.activeElement && document.activeElement.id !== id"
                    " && document.activeElement.classList.contains('mod-card')",
                    arg=current,
                )
                page.wait_for_timeout(40)  # a curator's glance is far longer; keep requests apart
            page.wait_for_function(
                "() => !document.querySelector('.mod-card.is-deciding')", timeout=30_000
            )
        times = page.evaluate("window.benchTimes")
        swaps = page.evaluate("window.benchSwap")
        cards = page.evaluate("document.querySelectorAll('.mod-card').length")
        browser.close()
    server.should_exit = True
    thread.join(timeout=10)
    cpu = meter.result(args.keys)
    print()
    print("Chromium, CPU per decision by keyboard (including the prefetching it causes):")
    print(HEADER.replace("SQL/req", "       "))
    line("Chromium: key press → next card focused", times, cpu)
    line("Chromium: key press → decided card from server", swaps, cpu)
    print(f"  ({args.keys} decisions by keyboard; {cards} cards in the page after prefetching)")
    return decided


def use_media(kind: str, seaweed, settings) -> None:
    """Serve the photos from the folder, or from a fresh prefix of `seaweed` holding a copy."""
    from app import media, storage

    if kind == "local":
        storage.set_backend(None)
        return
    env = media_env("s3", seaweed)
    target = storage.from_settings(
        settings.with_overrides(
            s3_endpoint_url=env["S3_ENDPOINT_URL"],
            s3_bucket=env["S3_BUCKET"],
            s3_region=env["S3_REGION"],
            s3_access_key_id=env["S3_ACCESS_KEY_ID"],
            s3_secret_access_key=env["S3_SECRET_ACCESS_KEY"],
            s3_prefix=env["S3_PREFIX"],
        ),
        "s3",
    )
    copied = media.copy_all(storage.from_settings(settings, "local"), target)
    print(f"copied {copied.copied} objects to S3", flush=True)
    storage.set_backend(target)


def restore(engine, ids: list[int]) -> None:
    """Put the benchmark's decisions back so the next run sees the same queue."""
    if not ids:
        return
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE report SET status = 'reviewing', decided_by_id = NULL, decided_at = NULL, "
                "decline_reason = NULL WHERE id = ANY(:ids)"
            ),
            {"ids": ids},
        )
        conn.execute(sa.text("DELETE FROM outgoing_message"))
        conn.execute(sa.text("DELETE FROM audit_event"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--share", type=float, default=0.2, help="share of reports in review")
    parser.add_argument("--n", type=int, default=100, help="requests per measurement")
    parser.add_argument("--keys", type=int, default=60, help="keyboard decisions in Chromium")
    parser.add_argument("--reload", action="store_true", help="reload the data even if present")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--media", default="local", help="local, s3, or local,s3 side by side")
    parser.add_argument("--database", default=DB_NAME, help="database name (kept for later runs)")
    args = parser.parse_args(argv)
    print(load_line("start"), flush=True)
    settings, engine = prepare(args)
    kinds = [m.strip() for m in args.media.split(",") if m.strip()]
    seaweed = start_seaweedfs() if "s3" in kinds else None
    decided: list[int] = []
    try:
        for kind in kinds:
            if len(kinds) > 1:
                print(f"\n== photos: {kind} ==", flush=True)
            use_media(kind, seaweed, settings)
            decided += http_bench(settings, engine, args)
            if not args.no_browser:
                decided += browser_bench(settings, engine, args)
    finally:
        restore(engine, decided)
        engine.dispose()
        use_media("local", None, settings)
        if seaweed is not None:
            seaweed.stop()
    print(CPU_NOTE)
    print(load_line("end"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
