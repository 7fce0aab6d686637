"""Telegram's limits and the one poller across real processes on one PostgreSQL (issue 12).

Three `lomaya worker` processes send one outbox against the fake Bot API, which records when each
call arrives: one of them (the holder of the sender lock) sends, the others stand by. The test
kills the sender with SIGKILL mid-run and checks what Telegram would have seen: no chat got two
messages within a second, no one-second window held more than OUTBOX_RATE_PER_SECOND messages,
nothing was sent twice, nothing was lost beyond the messages in flight at the kill, and another
process went on sending within seconds. Then two `lomaya bot poll` processes: one polls, the other
takes over when it is killed.

PostgreSQL only (the locks are PostgreSQL's; SQLite runs one process). Workers log JSON
(LOG_FORMAT=json): the test reads their lines as JSON.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from app import locks
from tests import cluster_support
from tests.cluster_support import START_TIMEOUT, max_in_one_second, min_gap_per_chat
from tests.fake_telegram import TOKEN, FakeTelegram

RATE = 30  # the production default: proven at the real limit
CHATS = 100
WORKERS = 8  # Sender's thread pool: the in-flight rule is "at most workers"
FIRST_CHAT = 7_000_000


@dataclass
class Process:
    """A `python -m app.cli …` process whose output (JSON log lines) goes to a file."""

    args: list[str]
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))  # a line that is not JSON fails the test
        return out

    def said(self, text: str) -> dict[str, Any] | None:
        return next((r for r in self.records() if text in r["message"]), None)

    def output(self) -> str:
        return f"--- {' '.join(self.args)} (pid {self.pid}) ---\n" + self.log_path.read_text(
            errors="replace"
        )


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(env: dict[str, str], *args: str) -> Process:
        log_path = tmp_path / f"{args[0]}-{len(started)}.log"
        with log_path.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "app.cli", *args],
                env=env,
                cwd=env["DATA_DIR"],  # no developer .env
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        process = Process(list(args), popen, log_path)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.alive():
            process.popen.terminate()
            try:
                process.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait(timeout=15)


def wait_for(
    condition: Callable[[], object], timeout: float, what: str, processes: list[Process]
) -> Any:
    """cluster_support.wait_for, failing with these processes' output."""
    return cluster_support.wait_for(
        condition, timeout, what, lambda: "\n".join(p.output() for p in processes)
    )


def holder_pid(engine: sa.Engine, role: str) -> int | None:
    name = locks.holder(engine, role)  # "lomaya <role> host:pid"
    return int(name.rsplit(":", 1)[1]) if name else None


def queue(engine: sa.Engine, counts: list[int]) -> dict[str, int]:
    """Participants for CHATS chats and counts[i] messages for chat i, queued round by round
    (every chat's first message, then every second one…); returns text → chat."""
    expected: dict[str, int] = {}
    rows = []
    for turn in range(max(counts)):
        for i, count in enumerate(counts):
            if turn < count:
                text = f"сообщение {i}-{turn}"
                expected[text] = FIRST_CHAT + i
                rows.append(
                    {
                        "key": f"cluster-{i}-{turn}",
                        "chat": FIRST_CHAT + i,
                        "payload": json.dumps({"text": text}),
                    }
                )
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO participant (telegram_id, name, surname, city, is_bot_blocked, "
                "is_test, created_at, updated_at) SELECT :first + g, 'Маша', 'Иванова', '', "
                "false, false, now(), now() FROM generate_series(0, :n - 1) g"
            ),
            {"first": FIRST_CHAT, "n": len(counts)},
        )
        conn.execute(
            sa.text(
                "INSERT INTO outgoing_message (dedupe_key, chat_id, participant_id, kind, "
                "payload, status, send_after, attempts, created_at) SELECT :key, :chat, p.id, "
                "'cluster', CAST(:payload AS json), 'pending', now(), 0, now() "
                "FROM participant p WHERE p.telegram_id = :chat"
            ),
            rows,
        )
    return expected


def test_three_senders_keep_telegrams_limits_and_survive_a_kill(
    pg_database, app_env, spawn, fake_tg: FakeTelegram
):
    url = pg_database()
    env = app_env(
        url,
        BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=fake_tg.url,
        OUTBOX_RATE_PER_SECOND=str(RATE),
        LOG_FORMAT="json",
    )
    engine = sa.create_engine(url)
    try:
        workers = [spawn(env, "worker") for _ in range(3)]
        wait_for(
            lambda: (
                sum(bool(w.said("this process sends now")) for w in workers) == 1
                and sum(bool(w.said("this one stands by")) for w in workers) == 2
            ),
            START_TIMEOUT,
            "one sender and two standing by",
            workers,
        )
        # 100 chats: 20 get four messages, 80 get two (240 messages, ~9 s at 30/s).
        expected = queue(engine, [4] * 20 + [2] * 80)

        wait_for(lambda: len(fake_tg.sent()) >= 60, 30, "60 messages sent", workers)
        busiest = next(w for w in workers if w.pid == holder_pid(engine, "sender"))
        killed_at = time.time()
        busiest.popen.send_signal(signal.SIGKILL)
        busiest.popen.wait(timeout=10)
        dead_at = time.time()
        survivors = [w for w in workers if w is not busiest]

        takeover = wait_for(
            lambda: next(
                (r for w in survivors if (r := w.said("this process sends now")) is not None),
                None,
            ),
            15,
            "a survivor taking over",
            workers,
        )
        took_over_at = datetime.fromisoformat(takeover["time"]).timestamp()

        def rows() -> list[Any]:
            with engine.connect() as conn:
                return list(
                    conn.execute(sa.text("SELECT payload, status, sent_at FROM outgoing_message"))
                )

        def drained() -> list[Any] | None:
            """Every row started, and every call the survivors started arrived."""
            now = rows()
            if any(status == "pending" for _, status, _ in now):
                return None
            arrived = set(fake_tg.texts())
            survivors_sent = {p["text"] for p, _, sent_at in now if sent_at.timestamp() > dead_at}
            return now if survivors_sent <= arrived else None

        final = wait_for(drained, 60, "the outbox drained", workers)
    finally:
        engine.dispose()

    calls = fake_tg.sent("sendMessage")
    texts = [str(c.params["text"]) for c in calls]
    after_takeover = [c for c in calls if c.wall >= took_over_at]
    duplicates = len(texts) - len(set(texts))
    lost = set(expected) - set(texts)
    per_second = max_in_one_second([c.at for c in calls])
    min_gap = min_gap_per_chat(calls)
    takeover_seconds = took_over_at - killed_at
    resumed_seconds = min(c.wall for c in after_takeover) - killed_at
    start = min(c.at for c in calls)
    histogram = defaultdict(int)
    for c in calls:
        histogram[int(c.at - start)] += 1
    print("\nper second:", [histogram[i] for i in range(max(histogram) + 1)])
    print(
        f"\nsends {len(calls)} of {len(expected)}; max in one second {per_second} "
        f"(limit {RATE}); min same-chat gap {min_gap:.3f} s; duplicates {duplicates}; "
        f"lost in flight {len(lost)}; lock taken over {takeover_seconds:.2f} s and sending "
        f"resumed {resumed_seconds:.2f} s after the SIGKILL"
    )

    assert duplicates == 0
    assert set(texts) <= set(expected)
    assert all(status == "sent" for _, status, _ in final)
    # Lost: only rows the killed sender had started (`sent` before the call) when it died.
    assert len(lost) <= WORKERS
    started_at = {payload["text"]: sent_at for payload, _, sent_at in final}
    assert all(started_at[text].timestamp() <= dead_at for text in lost)
    assert per_second <= RATE
    assert min_gap >= 1.0  # the sender keeps 1 s + MARGIN_SECONDS at its end
    # The kill was mid-run, and another process went on within seconds.
    assert after_takeover and len(calls) - len(after_takeover) >= 60
    assert resumed_seconds <= 10
    assert busiest.popen.returncode == -signal.SIGKILL


def test_one_poller_at_a_time_and_another_takes_over_a_killed_one(
    pg_database, app_env, spawn, fake_tg: FakeTelegram
):
    url = pg_database()
    env = app_env(url, BOT_TOKEN=TOKEN, TELEGRAM_API_URL=fake_tg.url, LOG_FORMAT="json")
    engine = sa.create_engine(url)
    try:
        pollers = [spawn(env, "bot", "poll") for _ in range(2)]
        wait_for(
            lambda: (
                sum(bool(p.said("bot polling started")) for p in pollers) == 1
                and sum(bool(p.said("another process polls")) for p in pollers) == 1
            ),
            START_TIMEOUT,
            "one poller and one standing by",
            pollers,
        )
        rounds = len(fake_tg.sent("getUpdates"))
        wait_for(lambda: len(fake_tg.sent("getUpdates")) >= rounds + 5, 15, "five rounds", pollers)
        polling = next(p for p in pollers if p.pid == holder_pid(engine, "poller"))
        standby = next(p for p in pollers if p is not polling)
        assert fake_tg.conflicts == 0  # never two getUpdates at once
        killed_at_monotonic, killed_at = time.monotonic(), time.time()
        polling.popen.send_signal(signal.SIGKILL)
        polling.popen.wait(timeout=10)

        started = wait_for(lambda: standby.said("bot polling started"), 15, "the takeover", pollers)
        took_over_at = datetime.fromisoformat(started["time"]).timestamp()
        wait_for(
            lambda: [c for c in fake_tg.sent("getUpdates") if c.wall >= took_over_at][2:],
            15,
            "the new poller's rounds",
            pollers,
        )
        assert holder_pid(engine, "poller") == standby.pid
    finally:
        engine.dispose()

    # Calls made after the kill never overlap (before it, the fake counted no conflict).
    after = sorted(
        (c for c in fake_tg.sent("getUpdates") if c.at > killed_at_monotonic),
        key=lambda c: c.at,
    )
    assert all(b.at >= a.ended for a, b in itertools.pairwise(after) if a.ended)
    assert not fake_tg.sent("deleteWebhook")  # there was no webhook: nothing to delete
    print(f"\npoller taken over {took_over_at - killed_at:.2f} s after the SIGKILL")
    assert took_over_at - killed_at <= 10
