"""Benchmark: the outbox sender against the fake Bot API (prints figures, asserts nothing).

    uv run python bench/outbox.py [--messages 3000] [--kill-after 40] [--keep]
    (or: uv run python -m bench.outbox …)

1. 3,000 messages (one per family) with the default limit (30/s): the achieved rate, and duplicates
   after the sender process (`lomaya worker`) is killed with SIGKILL mid-run and restarted.
2. 3,000 more with OUTBOX_RATE_PER_SECOND=1000: the sender's own ceiling.

Creates (and drops first) the database lomaya_bench_outbox on 127.0.0.1:5432 (BENCH_PG for another
server); drops it at the end unless --keep. Prints the load average at start and end; for each phase
the rates, duplicates and losses, and CPU ms per message sent of the worker process (`lomaya
worker`) and of PostgreSQL (backends of the bench database; the bench's own polling connection is
not counted), with the cores busy with other work and the load at start → end. Measured from the
worker's first message on, so its start-up is not counted; phase 1 before the kill and after the
restart separately (after the restart the worker takes the sender lock, releases the rows the killed one
had claimed and pauses TAKEOVER_SECONDS, 1.5 s, before its first message).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/<name>.py`: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import sqlalchemy as sa

from bench._common import (
    CPU_NOTE,
    ROOT,
    CpuMeter,
    CpuResult,
    drop_database,
    environment,
    fresh_database,
    load_line,
    own_url,
)

DB_NAME = "lomaya_bench_outbox"


def enqueue(engine: sa.Engine, n: int, tag: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO participant (telegram_id, name, surname, city, is_bot_blocked, "
                "is_test, created_at, updated_at) SELECT 9000000 + g, 'Маша', 'Иванова', 'Уфа', "
                "false, false, now(), now() FROM generate_series(1, :n) g "
                "ON CONFLICT (telegram_id) DO NOTHING"
            ),
            {"n": n},
        )
        conn.execute(
            sa.text(
                "INSERT INTO outgoing_message (dedupe_key, chat_id, participant_id, kind, payload, "
                "status, send_after, attempts, created_at) "
                "SELECT :tag || '-' || p.id, p.telegram_id, p.id, 'bench', "
                "json_build_object('text', 'Сообщение ' || :tag || ' ' || p.id), "
                "'pending', now(), 0, now() FROM participant p ORDER BY p.id LIMIT :n"
            ),
            {"n": n, "tag": tag},
        )


def pending(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT count(*) FROM outgoing_message WHERE status = 'pending'")
        ).scalar_one()


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env={**os.environ, **env}
    )


def wait_drained(engine: sa.Engine, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pending(engine) == 0:
            return True
        time.sleep(0.5)
    return False


def measured(
    worker: subprocess.Popen, fake, url: str, until: Callable[[], object]
) -> tuple[CpuResult, object]:
    """CPU of the worker and PostgreSQL per message, from its first message (start-up not
    counted) until `until()` returns; returns the figures and what `until()` returned."""
    base = len(fake.sent("sendMessage"))
    deadline = time.monotonic() + 60
    while len(fake.sent("sendMessage")) == base and time.monotonic() < deadline:
        time.sleep(0.02)
    first = len(fake.sent("sendMessage"))
    with CpuMeter([worker.pid], database_url=url) as cpu:
        outcome = until()
        sent = len(fake.sent("sendMessage")) - first
    return cpu.result(sent), outcome


def rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--kill-after", type=float, default=40.0)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    from app.migrate import upgrade
    from tests.fake_telegram import TOKEN, FakeTelegram

    print(load_line("start"), flush=True)
    url = fresh_database(DB_NAME)
    fake = FakeTelegram()
    fake_url = fake.start()
    env = environment(url, BOT_TOKEN=TOKEN, TELEGRAM_API_URL=fake_url, BOT_WEBHOOK_MODE="false")
    engine = sa.create_engine(own_url(url))  # the bench's own queries: not measured
    upgrade(engine)

    # --- 1. the default limit, with a SIGKILL mid-run -------------------------------------------
    enqueue(engine, args.messages, "a")
    print(f"1) {args.messages} messages, default limit 30/s; SIGKILL after {args.kill_after:.0f} s")
    started = time.monotonic()
    worker = start_worker(env)
    cpu_before, _ = measured(
        worker,
        fake,
        url,
        lambda: time.sleep(max(0.0, started + args.kill_after - time.monotonic())),
    )
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    killed_at = time.monotonic()
    before_kill = [c.at for c in fake.sent("sendMessage")]
    print(f"   killed after {len(before_kill)} messages; restarting")
    worker = start_worker(env)
    cpu_after, drained = measured(
        worker, fake, url, lambda: wait_drained(engine, timeout=args.messages / 25 + 180)
    )
    worker.terminate()
    worker.wait(timeout=30)
    calls = fake.sent("sendMessage")
    per_text = collections.Counter(c.params.get("text") for c in calls)
    duplicates = sum(n - 1 for n in per_text.values() if n > 1)
    after = [c.at for c in calls if c.at > killed_at]
    with engine.connect() as conn:
        sent = conn.execute(
            sa.text("SELECT count(*) FROM outgoing_message WHERE status = 'sent'")
        ).scalar_one()
    print(f"   drained: {drained}; rows sent: {sent}; Telegram calls: {len(calls)}")
    print(
        f"   achieved rate before the kill: {rate(before_kill):.1f} msg/s "
        f"({rate(before_kill) / 30 * 100:.0f} % of 30/s); after the restart: {rate(after):.1f} msg/s"
    )
    print(f"   duplicates (same message sent twice): {duplicates}")
    print(f"   lost (marked sent, never reached Telegram): {sent - len(per_text)}")
    max_per_chat = collections.Counter(int(c.params["chat_id"]) for c in calls).most_common(1)
    print(f"   most messages to one chat: {max_per_chat[0][1] if max_per_chat else 0}")
    print(f"   before the kill: {cpu_before.line('message')}")
    print(f"   after the restart: {cpu_after.line('message')}")

    # --- 2. the sender's own ceiling ---------------------------------------------------------------
    fake.reset()
    enqueue(engine, args.messages, "b")
    print(f"2) {args.messages} messages with OUTBOX_RATE_PER_SECOND=1000")
    worker = start_worker({**env, "OUTBOX_RATE_PER_SECOND": "1000"})
    cpu_ceiling, drained = measured(worker, fake, url, lambda: wait_drained(engine, timeout=300))
    worker.terminate()
    worker.wait(timeout=30)
    times = [c.at for c in fake.sent("sendMessage")]
    print(
        f"   drained: {drained}; sender ceiling: {rate(times):.0f} msg/s over {len(times)} messages"
    )
    print(f"   {cpu_ceiling.line('message')}")
    print(CPU_NOTE)
    print(load_line("end"))
    fake.stop()
    engine.dispose()
    shutil.rmtree(env["DATA_DIR"], ignore_errors=True)
    if not args.keep:
        drop_database(DB_NAME)


if __name__ == "__main__":
    main()
