"""The `lomaya` command. Every sub-command has --help."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import os
import sys
import time
from typing import Any

from app import logs
from app.settings import Settings, SettingsError, load_settings, set_settings

log = logging.getLogger("lomaya")


def _settings(args: argparse.Namespace, *, allow_generated_secret: bool = False) -> Settings:
    try:
        settings = load_settings(allow_generated_secret=allow_generated_secret)
    except SettingsError as exc:
        sys.exit(f"Ошибка настройки: {exc}")
    logs.configure(settings)
    return set_settings(settings)


def _start_media() -> None:
    """The start-up check of the configured media storage (app.storage.start)."""
    from app import storage

    try:
        storage.start()
    except SettingsError as exc:
        sys.exit(f"Ошибка настройки: {exc}")


def _serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    _start_media()
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level.lower(),
        "log_config": None,  # app.logs configured logging (LOG_FORMAT) for uvicorn too
        "proxy_headers": True,
        "server_header": False,
    }
    if workers == 1:
        from app.main import create_app

        uvicorn.run(create_app(settings), **options)
        return
    # Each worker process builds the app from the environment (app.asgi), so the choice made here
    # travels in it. Several processes each running a sender would each send at the full rate.
    os.environ["WEB_BACKGROUND"] = "false"
    log.info("%d web processes without background jobs: run `lomaya worker` beside them", workers)
    uvicorn.run("app.asgi:app", workers=workers, **options)


def cmd_serve(args: argparse.Namespace) -> None:
    if args.workers < 1:
        sys.exit("--workers: ожидается число от 1")
    settings = _settings(args)
    if args.force:
        settings = set_settings(settings.with_overrides(bot_force_polling=True))
    if args.no_background:
        os.environ["WEB_BACKGROUND"] = "false"
        settings = set_settings(settings.with_overrides(web_background=False))
    _serve(settings, args.host, args.port, args.workers)


def cmd_migrate(args: argparse.Namespace) -> None:
    from app import migrate

    _settings(args)
    if args.action == "upgrade":
        migrate.upgrade(revision=args.revision or "head")
    elif args.action == "downgrade":
        migrate.downgrade(revision=args.revision or "-1")
    else:
        migrate.check()
        print("Модели и миграции совпадают.")


def cmd_seed(args: argparse.Namespace) -> None:
    from seeds import run_seed

    _settings(args, allow_generated_secret=True)
    _start_media()
    run_seed(args.delete, args.yes)


def cmd_demo(args: argparse.Namespace) -> None:
    """A fresh embedded database with fake data, then the admin site (see seeds.demo)."""
    from seeds.demo import run

    run(args.host, args.port)


def cmd_create_admin(args: argparse.Namespace) -> None:
    from app import accounts
    from app.db import session_scope
    from app.errors import Invalid
    from app.models import StaffRole

    _settings(args)
    email = args.email or input("Электронная почта: ")
    name = args.name or (input("Имя: ") if not args.non_interactive else "Администратор")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif os.environ.get("LOMAYA_ADMIN_PASSWORD"):
        password = os.environ["LOMAYA_ADMIN_PASSWORD"]
    elif args.non_interactive:
        sys.exit("Пароль не задан: передайте его через --password-stdin или LOMAYA_ADMIN_PASSWORD.")
    else:
        password = getpass.getpass("Пароль (не короче 10 символов): ")
        if password != getpass.getpass("Пароль ещё раз: "):
            sys.exit("Пароли не совпадают.")
    try:
        with session_scope() as session:
            staff = accounts.create_staff(
                session,
                email=email,
                password=password,
                name=name,
                surname=args.surname or "",
                role=StaffRole(args.role),
            )
            print(f"Создан сотрудник {staff.email} ({staff.role.value}).")
    except Invalid as exc:
        sys.exit(str(exc))


def cmd_health(args: argparse.Namespace) -> None:
    import json
    import urllib.request

    settings = _settings(args, allow_generated_secret=True)
    url = args.url or settings.healthcheck_api_url
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
    except Exception as exc:
        sys.exit(f"{url}: недоступно ({exc})")
    print(json.dumps(body, ensure_ascii=False, indent=2))
    if not body.get("ok"):
        sys.exit(1)


def _parse_now(raw: str | None, settings: Settings):
    from datetime import datetime

    from app import clock

    if not raw:
        return clock.now()
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        sys.exit(f"--now: ожидается дата и время ISO, например 2026-11-27T08:00, а не {raw!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=settings.tz)
    return moment


def cmd_jobs(args: argparse.Namespace) -> None:
    import json

    from sqlmodel import Session

    from app import clock, schedule
    from app.db import get_engine

    settings = _settings(args)
    if args.action == "status":
        with Session(get_engine()) as session:
            runs = schedule.recent_runs(session, limit=args.limit)
        if not runs:
            print("Задачи ещё не запускались.")
        for run in runs:
            finished = (
                run.finished_at.astimezone(settings.tz).isoformat() if run.finished_at else "—"
            )
            details = json.dumps(run.details, ensure_ascii=False, default=str)
            print(f"{run.job:<12} {run.day}  завершена {finished}  {details}")
        return
    now = _parse_now(args.now, settings)
    clock.set_now(now)  # everything the job stamps uses the same moment
    session = Session(get_engine())
    try:
        result = schedule.run(session, args.job, now, by_hand=True)
        if args.dry_run:
            session.rollback()
        else:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    if args.dry_run:
        print("Пробный запуск: ничего не сохранено.")


def _bot_settings(args: argparse.Namespace) -> Settings:
    settings = _settings(args)
    if not settings.bot_enabled:
        sys.exit("BOT_TOKEN не задан: бот выключен.")
    return settings


def cmd_bot(args: argparse.Namespace) -> None:
    import threading

    from app.bot import handlers, polling, updates
    from app.bot.client import ALLOWED_UPDATES, get_bot, set_progress_menu

    settings = _bot_settings(args)
    bot = get_bot(settings)
    if args.action == "poll":
        from app.bot import sender

        _start_media()
        stop = threading.Event()
        outbox = sender.Sender(settings)
        thread = threading.Thread(target=outbox.run, args=(stop,), daemon=True)
        thread.start()
        polled = True
        try:
            polled = polling.run_polling(settings, stop, force=args.force)
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            thread.join(timeout=10)
        if not polled:
            sys.exit(1)  # a webhook is set: the line above said so
    elif args.action == "set-webhook":
        if not settings.application_url.startswith("https://"):
            sys.exit(
                "APPLICATION_URL должен начинаться с https:// — иначе Telegram не примет вебхук."
            )
        url = settings.application_url + "/telegram/webhook"
        bot.set_webhook(
            url=url,
            secret_token=settings.telegram_webhook_secret,
            allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=False,
        )
        print(f"Вебхук установлен: {url}")
        print(f"Кнопка меню «Мой прогресс»: {set_progress_menu(bot, settings)}")
    elif args.action == "set-menu":
        if not settings.application_url.startswith("https://"):
            sys.exit(
                "APPLICATION_URL должен начинаться с https:// — иначе Telegram не откроет страницу."
            )
        print(f"Кнопка меню «Мой прогресс»: {set_progress_menu(bot, settings)}")
    elif args.action == "info":
        me = bot.get_me()
        info = bot.get_webhook_info()
        print(f"Бот: @{me.username} (id {me.id})")
        print(f"Вебхук: {info.url or 'не установлен (режим опроса)'}")
        print(f"Ожидают доставки: {info.pending_update_count}")
        if info.last_error_message:
            print(f"Последняя ошибка: {info.last_error_message}")
        allowed: Any = info.allowed_updates
        if allowed:
            print(f"Типы обновлений: {', '.join(str(u) for u in allowed)}")
        if not settings.is_sqlite:
            from app import locks
            from app.db import get_engine

            print(f"Отправляет сообщения: {locks.holder(get_engine(), 'sender') or 'никто'}")
            print(f"Опрашивает Telegram: {locks.holder(get_engine(), 'poller') or 'никто'}")
    elif args.action == "replay":
        failed = updates.failed_updates()
        if args.update_id:
            failed = [(uid, data) for uid, data in failed if uid in set(args.update_id)]
        done = 0
        for update_id, data in failed:
            result = updates.process_update(handlers.dispatcher(settings), data, replay=True)
            print(f"{update_id}: {result}")
            done += result == "processed"
        print(f"Обработано заново: {done} из {len(failed)}.")


def cmd_worker(args: argparse.Namespace) -> None:
    import asyncio

    from app import background

    settings = _settings(args)
    _start_media()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(background.run_worker(settings))


class _ProgressBar:
    """`[#####.....] 120/480 объектов, 35.2 МБ` on a terminal; a line every few seconds otherwise."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.shown = 0.0

    def __call__(self, copied: Any) -> None:
        done = copied.copied + copied.already + copied.vanished + len(copied.failed)
        now = time.monotonic()
        if done < copied.total and now - self.shown < (0.2 if self.tty else 5.0):
            return
        self.shown = now
        filled = 30 * done // max(copied.total, 1)
        line = (
            f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{copied.total} объектов, "
            f"{copied.bytes / 1e6:.1f} МБ"
        )
        if self.tty:
            print(
                "\r" + line, end="\n" if done >= copied.total else "", file=self.stream, flush=True
            )
        else:
            print(line, file=self.stream, flush=True)


def cmd_media(args: argparse.Namespace) -> None:
    from app import media, storage
    from app.db import session_scope

    settings = _settings(args)
    if args.action == "purge":
        _start_media()
        result = media.purge()
        with session_scope() as session:
            left = media.pending(session)["pending_deletions"]
        print(f"Удалено объектов: {result.removed}; в очереди осталось: {left}.")
        if result.failed:
            errors = ", ".join(f"{k} ×{v}" for k, v in result.errors.items())
            sys.exit(f"Не получилось удалить ({errors}): повторим позже автоматически.")
        return
    if args.action == "check":
        _start_media()
        store = storage.backend()
        with session_scope() as session:
            found = media.check(session, store)
        print(f"Хранилище: {storage.describe(store)}")
        print(
            f"Ссылок в базе: {found.referenced}, объектов: {found.objects}, "
            f"ждут удаления: {found.queued}."
        )
        for title, keys in (
            ("Нет объекта, хотя база на него ссылается", found.missing),
            ("Объекты, на которые база не ссылается", found.orphaned),
        ):
            print(f"{title}: {len(keys)}")
            for key in keys[: args.limit]:
                print(f"  {key}")
            if len(keys) > args.limit:
                print(f"  … и ещё {len(keys) - args.limit} (--limit)")
        if found.missing or found.orphaned:
            sys.exit(1)
        print("Всё сходится.")
        return
    _media_migrate(args, settings)


def _media_migrate(args: argparse.Namespace, settings: Settings) -> None:
    from app import media, storage
    from app.db import session_scope

    source_kind = "local" if args.to == "s3" else "s3"
    try:
        source = storage.from_settings(settings, source_kind)
        target = storage.from_settings(settings, args.to)
        # The source is only read (a bucket's HEAD); the target gets a real write, read and delete.
        for store, state in (
            (source, source.health() if isinstance(source, storage.S3Storage) else {"ok": True}),
            (target, storage.verify(target)),
        ):
            if not state["ok"]:
                sys.exit(
                    f"{storage.describe(store)} не отвечает или не пускает "
                    f"({state.get('error')} {state.get('code', '')}): проверьте S3_* и сеть."
                )
    except SettingsError as exc:
        sys.exit(f"Ошибка настройки: {exc}")
    print(f"Копирую фото: {storage.describe(source)} → {storage.describe(target)}.")
    print("Источник не меняется. Прервать можно в любой момент (Ctrl+C) и запустить снова.")
    try:
        result = media.copy_all(source, target, jobs=args.jobs, progress=_ProgressBar())
    except KeyboardInterrupt:
        sys.exit("\nПрервано. Запустите команду ещё раз — она продолжит с того же места.")
    print(
        f"Скопировано: {result.copied} ({result.bytes / 1e6:.1f} МБ), уже были на месте: "
        f"{result.already}, исчезли из источника во время копирования: {result.vanished}."
    )
    if args.to != settings.media_backend:
        # The target is not in use yet: what left the source meanwhile must not stay there.
        with session_scope() as session:
            pruned = media.prune_target(session, source, target)
        if pruned:
            print(f"Удалено из {storage.describe(target)}: {len(pruned)} (удалены из источника).")
    if result.failed:
        for key, error in sorted(result.failed.items())[:20]:
            print(f"  ошибка: {key} ({error})", file=sys.stderr)
        sys.exit(f"Не скопировано: {len(result.failed)}. Запустите команду ещё раз.")
    print(
        f"Готово: все объекты в {storage.describe(target)}, SHA-256 совпадают. "
        f"Чтобы приложение работало с ними, укажите MEDIA_BACKEND={args.to} и перезапустите его."
    )


FORCE_HELP = (
    "режим опроса: удалить вебхук, если он установлен (без --force процесс с вебхуком не "
    "опрашивает Telegram)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lomaya", description="Ломая барьеры: бот и сайт для кураторов."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="команда")

    p = sub.add_parser("serve", help="запустить сайт (и бота, если задан BOT_TOKEN)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="число веб-процессов (больше одного — без фоновой работы: запустите lomaya worker)",
    )
    p.add_argument(
        "--no-background",
        action="store_true",
        help="без отправки сообщений, расписания и опроса Telegram в веб-процессе "
        "(WEB_BACKGROUND=false); их выполняет lomaya worker",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="свежая демо-база с тестовыми данными и сайт")
    p.add_argument("--host", default="127.0.0.1", help="адрес сайта (по умолчанию 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        default=8080,
        help="порт сайта (по умолчанию 8080; занят — укажите другой)",
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("migrate", help="миграции базы данных (Alembic)")
    p.add_argument(
        "action", nargs="?", choices=["upgrade", "downgrade", "check"], default="upgrade"
    )
    p.add_argument(
        "revision", nargs="?", help="ревизия (по умолчанию head для upgrade, -1 для downgrade)"
    )
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("seed", help="заполнить базу тестовыми данными")
    p.add_argument("--delete", action="store_true", help="сначала удалить все данные")
    p.add_argument("--yes", action="store_true", help="не спрашивать подтверждение")
    p.set_defaults(func=cmd_seed)

    p = sub.add_parser("create-admin", help="создать сотрудника (первого администратора)")
    p.add_argument("--email")
    p.add_argument("--name")
    p.add_argument("--surname")
    p.add_argument("--role", choices=["administrator", "expert"], default="administrator")
    p.add_argument(
        "--password-stdin", action="store_true", help="прочитать пароль из стандартного ввода"
    )
    p.add_argument("--non-interactive", action="store_true", help="ничего не спрашивать")
    p.set_defaults(func=cmd_create_admin)

    p = sub.add_parser("bot", help="Telegram-бот: опрос, вебхук, сведения, повтор обновлений")
    p.add_argument(
        "action",
        choices=["poll", "set-webhook", "set-menu", "info", "replay"],
        help="poll — запустить только бота (опрос); set-webhook — зарегистрировать вебхук "
        "(и кнопку меню); set-menu — кнопка меню «Мой прогресс»; info — что знает Telegram; "
        "replay — заново обработать обновления с ошибкой",
    )
    p.add_argument("--update-id", type=int, action="append", help="только это обновление (replay)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP + " (poll)")
    p.set_defaults(func=cmd_bot)

    p = sub.add_parser(
        "worker", help="фоновая работа без сайта: отправка сообщений и ежедневные задачи"
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("health", help="проверить работу приложения по HEALTHCHECK_API_URL")
    p.add_argument("--url", help="адрес проверки (по умолчанию HEALTHCHECK_API_URL)")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("jobs", help="ежедневные задачи: запустить вручную или посмотреть запуски")
    jobs = p.add_subparsers(dest="action", required=True, metavar="действие")
    j = jobs.add_parser(
        "run", help="запустить задачу (повторный запуск за тот же день ничего не делает)"
    )
    j.add_argument("job", choices=["daily", "reminder", "transitions"])
    j.add_argument("--now", help="момент запуска, ISO (по умолчанию сейчас; без пояса — TIME_ZONE)")
    j.add_argument(
        "--dry-run", action="store_true", help="показать результат и ничего не сохранять"
    )
    j.set_defaults(func=cmd_jobs)
    j = jobs.add_parser("status", help="последние запуски")
    j.add_argument("--limit", type=int, default=20)
    j.set_defaults(func=cmd_jobs)

    p = sub.add_parser("media", help="хранилище фото: проверка, перенос, очередь удаления")
    media = p.add_subparsers(dest="action", required=True, metavar="действие")
    m = media.add_parser(
        "check", help="сверить базу и хранилище: объекты без записей и записи без объектов"
    )
    m.add_argument("--limit", type=int, default=50, help="сколько ключей показать в каждом списке")
    m.set_defaults(func=cmd_media)
    m = media.add_parser(
        "migrate",
        help="скопировать все фото в другое хранилище (с проверкой SHA-256; можно прервать и "
        "продолжить; источник не меняется)",
    )
    m.add_argument("--to", choices=["s3", "local"], required=True, help="куда копировать")
    m.add_argument("--jobs", type=int, default=4, help="сколько объектов копировать одновременно")
    m.set_defaults(func=cmd_media)
    m = media.add_parser("purge", help="удалить сейчас объекты из очереди удаления")
    m.set_defaults(func=cmd_media)

    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
