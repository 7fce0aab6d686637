"""Benchmark: the outbox sender against the fake Bot API (prints figures, asserts nothing).

1. 3,000 messages (one per family) with the default limit (30/s): the achieved rate, and duplicates
   after the sender process (`lomaya worker`) is killed with SIGKILL mid-run and restarted.
2. 3,000 more with OUTBOX_RATE_PER_SECOND=1000: the sender's own ceiling.

    uv run python bench/outbox.py [--messages 3000] [--kill-after 40]

Creates (and drops first) the database lomaya_bench_outbox on 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import time

import sqlalchemy as sa
from _common import ROOT, environment, fresh_database


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


def rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--kill-after", type=float, default=40.0)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from app.migrate import upgrade
    from tests.fake_telegram import TOKEN, FakeTelegram

    url = fresh_database("lomaya_bench_outbox")
    fake = FakeTelegram()
    fake_url = fake.start()
    env = environment(url, BOT_TOKEN=TOKEN, TELEGRAM_API_URL=fake_url, BOT_WEBHOOK_MODE="false")
    from app.db import make_engine

    engine = make_engine(env["DATABASE_URL"])
    upgrade(engine)

    # --- 1. the default limit, with a SIGKILL mid-run -------------------------------------------
    enqueue(engine, args.messages, "a")
    print(f"1) {args.messages} messages, default limit 30/s; SIGKILL after {args.kill_after:.0f} s")
    worker = start_worker(env)
    time.sleep(args.kill_after)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    killed_at = time.monotonic()
    before_kill = [c.at for c in fake.sent("sendMessage")]
    print(f"   killed after {len(before_kill)} messages; restarting")
    worker = start_worker(env)
    drained = wait_drained(engine, timeout=args.messages / 25 + 180)
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

    # --- 2. the sender's own ceiling ---------------------------------------------------------------
    fake.reset()
    enqueue(engine, args.messages, "b")
    print(f"2) {args.messages} messages with OUTBOX_RATE_PER_SECOND=1000")
    worker = start_worker({**env, "OUTBOX_RATE_PER_SECOND": "1000"})
    drained = wait_drained(engine, timeout=300)
    worker.terminate()
    worker.wait(timeout=30)
    times = [c.at for c in fake.sent("sendMessage")]
    print(
        f"   drained: {drained}; sender ceiling: {rate(times):.0f} msg/s over {len(times)} messages"
    )
    fake.stop()
    engine.dispose()


if __name__ == "__main__":
    main()
