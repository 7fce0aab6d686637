"""Benchmark: from a photo update posted to the webhook to its card in an open queue's live stream,
on PostgreSQL (prints figures, asserts nothing).

    uv run python bench/live.py [--updates 300] [--warmup 30] [--streams 3] [--workers 1]
        [--gap-ms 50] [--browser] [--keep]
    (or: uv run python -m bench.live …)

A fresh database `lomaya_bench_live` (migrated by `lomaya migrate upgrade`) gets one started
shift with a member per update (bench/webhook.py's `arrange`) and `--streams` curators, each
signed in over HTTP and holding `GET /events` open, as a curator's open queue does. uvicorn
(`app.asgi:app`, `--workers` processes, no background jobs) serves the app; the fake Bot API
(tests/fake_telegram.py) serves 1280×960 JPEGs. Photo updates are posted one after another to the
real webhook, `--gap-ms` apart; for each the time from the start of the POST to the moment every
stream has received its `new` event (NOTIFY at commit → each process's LISTEN connection → the
stream's queue → the socket) is recorded. With `--workers 2` the streams and the webhook requests
land on different processes, so the path crosses processes through PostgreSQL.

`--browser` also opens the queue (/reports) in Debian's Chromium (Playwright), signed in as one
more curator, and records when each new card is in the page and painted (the first animation frame
after js/moderation.js appended it): photo → card is the whole path a curator sees — event, the page's
fetch of fresh cards, the swap. The page refetches at most once a second (js/live.js), so with
`--gap-ms` under 1000 cards arrive in batches and the figure shows that pacing; `--gap-ms 1100`
measures one photo at a time. The browser's fetches and claim renewals count in the app's CPU.

Prints the load average at start and end, p50/p95 of the webhook answer and of photo → event on
the first stream and on the slowest stream, and CPU ms per photo of the server processes and of
PostgreSQL's backends of the bench database (bench/_common.py CpuMeter), with the cores busy with
other work.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/<name>.py`: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import sqlalchemy as sa

from bench._common import (
    CPU_HEADER,
    CPU_NOTE,
    CpuMeter,
    cpu_columns,
    drop_database,
    environment,
    fresh_database,
    load_line,
    own_url,
    percentile,
    sign_in,
    summary,
)
from bench.webhook import ROOT, SECRET, Server, _photo, arrange, make_bodies

DB_NAME = "lomaya_bench_live"
PASSWORD = "bench password 123"


class Listener:
    """One open queue: GET /events, read line by line in a thread; the arrival time of each `new`
    event by report id."""

    def __init__(self, port: int, cookie: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.conn.request(
            "GET", "/events", headers={"Cookie": cookie, "Accept": "text/event-stream"}
        )
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.status
        self.arrived: dict[int, float] = {}
        self.ready = threading.Event()
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        event = ""
        try:
            while True:
                line = self.response.readline()
                if not line:
                    return
                text = line.decode().rstrip("\r\n")
                if text.startswith("event:"):
                    event = text[6:].strip()
                elif text.startswith("data:") and event == "report":
                    data = json.loads(text[5:].strip())
                    if data.get("kind") == "new":
                        with self.changed:
                            self.arrived.setdefault(int(data["id"]), time.perf_counter())
                            self.changed.notify_all()
                elif text == "":
                    if event == "hello":
                        self.ready.set()
                    event = ""
        except (OSError, ValueError, AttributeError):  # closed at the end of the run
            return

    def wait_for(self, report_id: int, timeout: float = 30) -> float | None:
        with self.changed:
            self.changed.wait_for(lambda: report_id in self.arrived, timeout=timeout)
            return self.arrived.get(report_id)

    def close(self) -> None:
        self.conn.close()


SEEN_JS = """() => {
  window.benchSeen = {};
  new MutationObserver((changes) => {
    for (const change of changes) {
      for (const node of change.addedNodes) {
        if (!node.classList || !node.classList.contains('mod-card')) continue;
        const id = node.dataset.id;
        requestAnimationFrame(() => {
          window.benchSeen[id] = performance.timeOrigin + performance.now();
        });
      }
    }
  }).observe(document.getElementById('queue'), {childList: true});
}"""


class BrowserQueue:
    """The review queue open in Chromium; the wall-clock time (epoch ms) each card was painted."""

    def __init__(self, port: int, email: str) -> None:
        from playwright.sync_api import sync_playwright

        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        self.page = self.browser.new_page(viewport={"width": 1280, "height": 900})
        base = f"http://127.0.0.1:{port}"
        self.page.goto(f"{base}/login?next=/reports")
        self.page.fill("#email", email)
        self.page.fill("#password", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(f"{base}/reports")
        self.page.wait_for_function("document.body.dataset.live === 'on'")
        self.page.evaluate(SEEN_JS)

    def painted(self, report_id: int, timeout: float = 30) -> float:
        """Epoch milliseconds of the frame that first showed the report's card."""
        found = self.page.wait_for_function(
            "id => window.benchSeen[id]", arg=str(report_id), timeout=timeout * 1000
        )
        return float(found.json_value())

    def cards(self) -> int:
        return int(self.page.evaluate("document.querySelectorAll('#queue .mod-card').length"))

    def close(self) -> None:
        self.browser.close()
        self.playwright.stop()


def post(conn: http.client.HTTPConnection, body: bytes) -> int:
    conn.request(
        "POST",
        "/telegram/webhook",
        body=body,
        headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    response = conn.getresponse()
    response.read()
    return response.status


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--updates", type=int, default=300, help="measured photo updates")
    parser.add_argument("--warmup", type=int, default=30, help="updates sent first, not measured")
    parser.add_argument("--streams", type=int, default=3, help="open queues (one curator each)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--gap-ms", type=float, default=50, help="pause between photo updates")
    parser.add_argument(
        "--browser", action="store_true", help="also time the card painted in Chromium's queue"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    print(load_line("start"), flush=True)
    n = args.warmup + args.updates
    from bench.webhook import _backgrounds, _init

    _init(_backgrounds(4))
    print(f"Generating {n} photos…", flush=True)
    photos = [_photo(i) for i in range(n)]

    from tests.fake_telegram import TOKEN, FakeTelegram

    fake = FakeTelegram()
    fake_url = fake.start()
    url = fresh_database(DB_NAME)
    env = environment(
        url,
        BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=fake_url,
        TELEGRAM_WEBHOOK_SECRET=SECRET,
        APPLICATION_URL="https://bench.example.org",
        BOT_WEBHOOK_MODE="true",
        WEB_BACKGROUND="false",
    )
    from app.settings import load_settings, set_settings

    set_settings(
        load_settings({"DATABASE_URL": url, "SECRET_KEY": "bench-0123456789abcdef"}, env_file=None)
    )
    server = None
    listeners: list[Listener] = []
    browser: BrowserQueue | None = None
    emails = [f"curator{i}@bench.example.org" for i in range(args.streams + args.browser)]
    try:
        subprocess.run(
            [sys.executable, "-m", "app.cli", "migrate", "upgrade"],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
        )
        engine = sa.create_engine(own_url(url))
        _, users = arrange(engine, n)
        with engine.begin() as conn:
            reports = dict(
                conn.execute(
                    sa.text(
                        "SELECT p.telegram_id, r.id FROM report r JOIN member m ON m.id = r.member_id "
                        "JOIN participant p ON p.id = m.participant_id"
                    )
                ).all()
            )
        from app.accounts import hash_password

        with engine.begin() as conn:
            for email in emails:
                conn.execute(
                    sa.text(
                        "INSERT INTO staff (email, name, surname, role, status, password_hash, "
                        "created_at, updated_at) VALUES (:e, 'Куратор', 'Замеров', 'expert', "
                        "'active', :h, now(), now())"
                    ),
                    {"e": email, "h": hash_password(PASSWORD)},
                )
        bodies = make_bodies(fake, users, photos, first_update=10_000)
        del photos
        server = Server(ROOT, args.workers, env)
        server.wait_ready()
        for email in emails[: args.streams]:
            cookie = sign_in(f"http://127.0.0.1:{server.port}", email, PASSWORD)
            listeners.append(Listener(server.port, f"lomaya_session={cookie}"))
        for listener in listeners:
            assert listener.ready.wait(30), "a stream did not start"
        if args.browser:
            browser = BrowserQueue(server.port, emails[-1])

        def run(batch: list[bytes], first: int) -> dict[str, list[float]]:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            answers: list[float] = []
            firsts: list[float] = []
            lasts: list[float] = []
            cards: list[float] = []
            for i, body in enumerate(batch):
                report_id = reports[users[first + i]]
                wall = time.time() * 1000  # the browser's clock is the wall clock
                started = time.perf_counter()
                status = post(conn, body)
                answers.append((time.perf_counter() - started) * 1000)
                assert status == 200, status
                times = [listener.wait_for(report_id) for listener in listeners]
                if any(t is None for t in times):
                    raise RuntimeError(f"report {report_id}: no event within 30 s")
                firsts.append((times[0] - started) * 1000)
                lasts.append((max(times) - started) * 1000)
                if browser is not None:
                    cards.append(browser.painted(report_id) - wall)
                time.sleep(args.gap_ms / 1000)  # pacing of the load, not synchronisation
            conn.close()
            return {"answers": answers, "firsts": firsts, "lasts": lasts, "cards": cards}

        print(f"warm-up, {args.warmup} updates (not measured)…", flush=True)
        run(bodies[: args.warmup], 0)
        print(f"measuring {args.updates} updates, {args.streams} open queues…", flush=True)
        with CpuMeter([server.process.pid], database_url=url) as meter:
            measured = run(bodies[args.warmup :], args.warmup)
        cpu = meter.result(args.updates)
        shown = browser.cards() if browser is not None else 0
        engine.dispose()
    finally:
        if browser is not None:
            browser.close()
        for listener in listeners:
            listener.close()
        if server is not None:
            server.stop()
        shutil.rmtree(env["DATA_DIR"], ignore_errors=True)
        fake.stop()
        if not args.keep:
            drop_database(DB_NAME)

    print()
    print(
        f"live queue: {args.updates} photo updates through the webhook, {args.gap_ms:.0f} ms apart, "
        f"{args.streams} open queues, {args.workers} worker{'s' if args.workers > 1 else ''}"
        + (
            f", Chromium with the queue open ({shown} cards in the page at the end)"
            if shown
            else ""
        )
    )
    print(f"{'measure':<34} {'p50 ms':>7} {'p95 ms':>7}")
    rows = [
        ("webhook answer", measured["answers"]),
        ("photo → event, first queue", measured["firsts"]),
        ("photo → event, slowest queue", measured["lasts"]),
    ]
    if measured["cards"]:
        rows.append(("photo → card painted, Chromium", measured["cards"]))
    for label, values in rows:
        print(f"{label:<34} {percentile(values, 50):7.1f} {percentile(values, 95):7.1f}")
    print(f"photo → event (slowest queue): {summary(measured['lasts'])}")
    if measured["cards"]:
        print(f"photo → card painted: {summary(measured['cards'])}")
    print(f"CPU per photo update: {CPU_HEADER}")
    print(f"                      {cpu_columns(cpu)}")
    print(f"  {cpu.line('photo')}")
    print(CPU_NOTE)
    print(load_line("end"))


if __name__ == "__main__":
    main()
