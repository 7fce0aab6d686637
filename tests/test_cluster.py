"""The whole production shape at once (product.md, "Past one machine"; docs/deploy.md).

nginx (the repository's deploy/nginx files, without TLS) in front of two `lomaya serve
--no-background` processes, two `lomaya worker` processes, one PostgreSQL, photos in S3
(SeaweedFS) and the fake Bot API. Families send photo reports through nginx's webhook, as Telegram
does (the secret header; any non-2xx answer is delivered again); one web process is SIGKILLed
while they arrive and started again afterwards; a curator logs in through nginx and decides every
report, half through one instance and half through the other. Then:

- the daily job ran once (two workers ticked at once): one `job_run` row, one task per member;
- every update sent was stored once: one photo per member, no photo lost or doubled, even for the
  updates the dead process was holding (retried) and those sent twice on purpose (redelivered);
- every photo is served by both instances (`/media/…`, the stored bytes, the picture sent);
- what the fake Bot API received keeps Telegram's limits: no chat got two messages within a
  second, no second held more than OUTBOX_RATE_PER_SECOND, nothing was sent twice, every queued
  message arrived.

PostgreSQL only; needs nginx and SeaweedFS (skipped when missing, unless LOMAYA_REQUIRE_NGINX=1 /
LOMAYA_REQUIRE_S3=1, as in CI). About 30 s on two busy cores.
"""

from __future__ import annotations

import io
import random
import re
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import httpx2
import sqlalchemy as sa
from PIL import Image, ImageDraw

from app.storage import S3Config, S3Storage
from tests.cluster_support import (
    START_TIMEOUT,
    CliProcess,
    create_admin,
    free_port,
    max_in_one_second,
    min_gap_per_chat,
    wait_for,
    wait_until_healthy,
)
from tests.fake_telegram import TOKEN, FakeTelegram

MEMBERS = 36
FIRST_CHAT = 8_100_000
FIRST_UPDATE = 700_000
RATE = 30  # the production default
WEBHOOK_SECRET = "cluster-webhook-secret"
EMAIL = "curator@example.org"
PASSWORD = "correct horse battery staple"
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def photo(seed: int) -> bytes:
    """A small JPEG, different for every seed."""
    rnd = random.Random(seed)
    image = Image.new("RGB", (320, 240), tuple(rnd.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(10):
        x, y = rnd.randrange(320), rnd.randrange(240)
        box = (x, y, x + rnd.randrange(20, 160), y + rnd.randrange(20, 120))
        draw.rectangle(box, fill=tuple(rnd.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").tobytes()


def arrange(engine: sa.Engine) -> list[int]:
    """A started shift covering today in any time zone, with MEMBERS active members and no
    reports yet (the daily job makes today's); their chat ids."""
    start = date.today() - timedelta(days=3)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO task (title, is_archived, created_at, updated_at) "
                "SELECT 'Задание ' || g, false, now(), now() FROM generate_series(1, 3) g"
            )
        )
        shift_id = conn.execute(
            sa.text(
                "INSERT INTO shift (number, title, status, started_at, finished_at, "
                "final_message, created_at, updated_at) VALUES (1, 'Смена', 'started', :s, :f, "
                "'', now(), now()) RETURNING id"
            ),
            {"s": start, "f": start + timedelta(days=60)},
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO shift_day (shift_id, day_number, task_id) "
                "SELECT :shift, d, (SELECT min(id) FROM task) + d % 3 "
                "FROM generate_series(1, 61) d"
            ),
            {"shift": shift_id},
        )
        conn.execute(
            sa.text(
                "INSERT INTO participant (telegram_id, name, surname, city, is_bot_blocked, "
                "is_test, created_at, updated_at) SELECT :first + g, 'Маша', 'Иванова', 'Уфа', "
                "false, false, now(), now() FROM generate_series(0, :n - 1) g"
            ),
            {"first": FIRST_CHAT, "n": MEMBERS},
        )
        conn.execute(
            sa.text(
                "INSERT INTO member (participant_id, shift_id, status, joined_at, created_at, "
                "updated_at) SELECT id, :shift, 'active', :s, now(), now() FROM participant"
            ),
            {"shift": shift_id, "s": start},
        )
    return [FIRST_CHAT + i for i in range(MEMBERS)]


def photo_update(update_id: int, chat: int, file_id: str, unique_id: str, size: int) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private"},
            "from": {"id": chat, "is_bot": False, "first_name": "Маша"},
            "photo": [
                {
                    "file_id": file_id,
                    "file_unique_id": unique_id,
                    "width": 320,
                    "height": 240,
                    "file_size": size,
                }
            ],
        },
    }


class Telegram:
    """Delivers updates to the webhook as Telegram does: until a 2xx answer, retrying after a
    connection error or any other status."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.attempts: Counter[int] = Counter()
        self.failures: list[str] = []
        self.results: dict[int, list[str]] = {}
        self._lock = threading.Lock()

    def deliver(self, update: dict, deadline: float = 60.0) -> str:
        update_id = update["update_id"]
        give_up = time.monotonic() + deadline
        with httpx2.Client(base_url=self.base_url, timeout=30) as client:
            while True:
                with self._lock:
                    self.attempts[update_id] += 1
                try:
                    response = client.post(
                        "/telegram/webhook",
                        json=update,
                        headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
                    )
                except httpx2.TransportError as exc:
                    outcome = type(exc).__name__
                else:
                    if response.status_code == 200:
                        result = response.json()["result"]
                        with self._lock:
                            self.results.setdefault(update_id, []).append(result)
                        return result
                    outcome = f"HTTP {response.status_code}"
                with self._lock:
                    self.failures.append(f"{update_id}: {outcome}")
                if time.monotonic() > give_up:
                    raise AssertionError(f"update {update_id} never accepted: {outcome}")
                time.sleep(0.2)  # Telegram's back-off before delivering again


def test_cluster_behind_nginx_keeps_every_photo_and_telegrams_limits(
    pg_database,
    app_env,
    spawn_web,
    spawn_cli,
    spawn_nginx,
    s3_server: S3Config,
    fake_tg: FakeTelegram,
):
    began = time.monotonic()
    url = pg_database()
    s3 = replace(s3_server, prefix=f"cluster-{random.randrange(16**8):08x}")
    env = app_env(
        url,
        BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=fake_tg.url,
        BOT_WEBHOOK_MODE="true",
        TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
        APPLICATION_URL="https://lomaya.example.org",
        OUTBOX_RATE_PER_SECOND=str(RATE),
        UNDO_SECONDS="0",  # decisions reach the family at once, not after the undo window
        LOG_FORMAT="json",
        MEDIA_BACKEND="s3",
        S3_ENDPOINT_URL=s3.endpoint_url,
        S3_BUCKET=s3.bucket,
        S3_REGION=s3.region,
        S3_ACCESS_KEY_ID=s3.access_key_id,
        S3_SECRET_ACCESS_KEY=s3.secret_access_key,
        S3_PREFIX=s3.prefix,
    )
    engine = sa.create_engine(url)
    chats = arrange(engine)
    create_admin(env, EMAIL, PASSWORD)
    originals: dict[int, bytes] = {}
    updates: list[dict] = []
    for i, chat in enumerate(chats):
        originals[chat] = photo(i)
        file_id = fake_tg.add_file(originals[chat])
        updates.append(
            photo_update(
                FIRST_UPDATE + i,
                chat,
                file_id,
                fake_tg.unique_id(file_id),
                len(originals[chat]),
            )
        )

    # Everything starts side by side: two web processes, two workers (each ticks the scheduler at
    # once: both try today's daily job), nginx.
    ports = [free_port(8000, 8099)]
    while len(ports) < 2:
        port = free_port(8000, 8099)
        if port not in ports:
            ports.append(port)
    webs = [spawn_web(env, port, wait=False, args=("--no-background",)) for port in ports]
    workers: list[CliProcess] = [
        spawn_cli({**env, "SCHEDULER_ENABLED": "true"}, "worker") for _ in range(2)
    ]
    for web in webs:
        wait_until_healthy(web)
    proxy = spawn_nginx(ports)

    def logs() -> str:
        parts = [w.log() for w in workers] + [f"--- web {w.port} ---\n{w.log()}" for w in webs]
        return "\n".join([*parts, f"--- nginx ---\n{proxy.error_log()}"])

    def scalar(sql: str, **params: Any) -> Any:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar_one()

    wait_for(
        lambda: scalar(
            "SELECT count(*) FROM job_run WHERE job = 'daily' AND finished_at IS NOT NULL"
        ),
        START_TIMEOUT,
        "the daily job",
        logs,
    )
    assert scalar("SELECT count(*) FROM report WHERE status = 'waiting'") == MEMBERS

    # The families' photos through nginx, four at a time; one web process dies a third of the way.
    telegram = Telegram(proxy.url)
    delivered: list[int] = []
    third = threading.Event()

    def send(update: dict) -> str:
        result = telegram.deliver(update)
        with telegram._lock:
            delivered.append(update["update_id"])
            if len(delivered) >= MEMBERS // 3:
                third.set()
        return result

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(send, update) for update in updates]
        assert third.wait(START_TIMEOUT), logs()
        killed, survivor = webs
        assert killed.kill(signal.SIGKILL) == -signal.SIGKILL
        results = [future.result() for future in futures]
    # An attempt that died with the process may have stored the photo before its answer was lost:
    # Telegram's next delivery of that update is then acknowledged as a duplicate. Only an update
    # that failed once may end so; the counts below show each is stored exactly once.
    outcomes = dict(zip((update["update_id"] for update in updates), results, strict=True))
    failed_once = {int(failure.split(":")[0]) for failure in telegram.failures}
    assert set(results) <= {"processed", "duplicate"}, Counter(results)
    assert {u for u, result in outcomes.items() if result == "duplicate"} <= failed_once, (
        Counter(results),
        telegram.failures,
    )
    # One access-log line per attempt (nginx writes it after the answer: wait for them all).
    proxy.take_log_lines(sum(telegram.attempts.values()), timeout=30)

    # Telegram delivers some updates again (a timeout on its side): acknowledged, not reprocessed,
    # and answered by the survivor (nginx tries the dead one, is refused, and goes on).
    for update in updates[:4]:
        assert telegram.deliver(update) == "duplicate"
    for line in proxy.take_log_lines(4):
        assert re.search(
            rf"upstream=(\S+, )*{re.escape(survivor.address)} upstream_status=(\S+, )*200", line
        ), line

    # A curator logs in through nginx; the session works on every instance. APPLICATION_URL is
    # https, so the session cookie is Secure and a client keeps it off plain http: carry it by hand.
    session: dict[str, str] = {}

    def browser(base_url: str) -> httpx2.Client:
        def send_cookie(request: httpx2.Request) -> None:
            if session:
                request.headers["Cookie"] = f"lomaya_session={session['value']}"

        def keep_cookie(response: httpx2.Response) -> None:
            found = re.search(r"lomaya_session=([^;]+)", response.headers.get("set-cookie", ""))
            if found:
                session["value"] = found.group(1)

        return httpx2.Client(
            base_url=base_url,
            timeout=30,
            event_hooks={"request": [send_cookie], "response": [keep_cookie]},
        )

    with browser(proxy.url) as curator:
        token = CSRF_FIELD.search(curator.get("/login").text)
        assert token
        login = curator.post(
            "/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token.group(1)}
        )
        assert login.status_code == 303, login.text

    def decide(base_url: str, report_ids: list[int], approve: bool) -> None:
        with browser(base_url) as curator:
            page = curator.get("/reports")
            assert page.status_code == 200, (base_url, page.status_code)
            csrf = CSRF_META.search(page.text)
            assert csrf, "no csrf-token on /reports"
            for report_id in report_ids:
                data = {"csrf_token": csrf.group(1)}
                if not approve:
                    data["preset"] = "1"
                action = "approve" if approve else "decline"
                answer = curator.post(f"/reports/{report_id}/{action}", data=data)
                assert answer.status_code == 303, (base_url, report_id, answer.text[:500])

    with engine.connect() as conn:
        in_review = list(
            conn.execute(
                sa.text("SELECT id FROM report WHERE status = 'reviewing' ORDER BY id")
            ).scalars()
        )
    assert len(in_review) == MEMBERS
    half = MEMBERS // 2
    decide(proxy.url, in_review[:half:2], approve=True)  # while one instance is dead
    decide(survivor.url, in_review[1:half:2], approve=False)
    # The dead instance comes back on its port (systemd's Restart=on-failure) and takes part.
    restarted = spawn_web(env, killed.port, args=("--no-background",))
    webs = [restarted, survivor]
    with httpx2.Client(base_url=proxy.url, timeout=30) as monitor:  # /health/PORT through nginx
        for web in webs:
            assert monitor.get(f"/health/{web.port}").status_code == 200, web.port
    decide(restarted.url, in_review[half::2], approve=True)
    decide(survivor.url, in_review[half + 1 :: 2], approve=False)

    # Stored once each: an update row, a report decided, one photo per member.
    assert scalar("SELECT count(*) FROM telegram_update") == MEMBERS
    assert scalar("SELECT count(*) FROM telegram_update WHERE status <> 'processed'") == 0
    assert scalar("SELECT count(*) FROM report_photo") == MEMBERS
    assert scalar("SELECT count(DISTINCT report_id) FROM report_photo") == MEMBERS
    assert scalar("SELECT count(*) FROM report WHERE status = 'approved'") == MEMBERS // 2
    assert scalar("SELECT count(*) FROM report WHERE status = 'declined'") == MEMBERS // 2

    # Every photo through both instances: the stored object's bytes, the picture the family sent.
    store = S3Storage(s3)
    with engine.connect() as conn:
        photos = conn.execute(
            sa.text(
                "SELECT ph.storage_key, ph.size_bytes, p.telegram_id FROM report_photo ph "
                "JOIN report r ON r.id = ph.report_id JOIN member m ON m.id = r.member_id "
                "JOIN participant p ON p.id = m.participant_id"
            )
        ).all()
    assert sorted(chat for _, _, chat in photos) == chats
    for web in webs:
        with browser(web.url) as client:
            for key, size, chat in photos:
                served = client.get(f"/media/{key}")
                assert served.status_code == 200, (web.address, key, served.status_code)
                assert len(served.content) == size
                assert served.content == store.get(key)
                assert pixels(served.content) == pixels(originals[chat])

    # Every queued message arrived once, within Telegram's limits.
    def drained() -> list[Any] | None:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT chat_id, kind, status FROM outgoing_message")).all()
        if any(status != "sent" for _, _, status in rows):
            return None
        return rows if len(fake_tg.sent()) >= len(rows) else None

    rows = wait_for(drained, 60, "the outbox to drain", logs)
    kinds = Counter(kind for _, kind, _ in rows)
    calls = fake_tg.sent()
    sent = [
        (int(c.params["chat_id"]), str(c.params.get("text") or c.params.get("caption")))
        for c in calls
    ]
    assert len(calls) == len(rows)
    assert len(set(sent)) == len(sent), Counter(sent).most_common(3)
    assert Counter(chat for chat, _ in sent) == Counter(chat for chat, _, _ in rows)
    # The daily job ran once though two workers ticked: one run, one task per member.
    assert scalar("SELECT count(*) FROM job_run WHERE job = 'daily'") == 1
    assert sorted(chat for chat, kind, _ in rows if kind == "task") == chats
    assert sum(kinds.values()) >= 3 * MEMBERS  # task, photo answer, decision
    per_second = max_in_one_second([c.at for c in calls])
    min_gap = min_gap_per_chat(calls)
    senders = [w for w in workers if any("sends now" in r["message"] for r in w.records())]
    print(
        f"\n{len(calls)} messages {dict(kinds)}; max in one second {per_second} (limit {RATE}); "
        f"min same-chat gap {min_gap:.3f} s; webhook attempts {sum(telegram.attempts.values())} "
        f"for {MEMBERS} updates + 4 redelivered; failed attempts {telegram.failures}; "
        f"{time.monotonic() - began:.1f} s"
    )
    assert per_second <= RATE
    assert min_gap >= 1.0
    assert len(senders) == 1, logs()  # one sender at a time; the other worker stood by
