"""`lomaya demo`: a fresh embedded database with demo data, then the admin site.

The steps run in an order that never wastes or destroys anything:

1. take the demo's lock (`DATA_DIR/demo.lock`): a second demo on the same DATA_DIR refuses, in
   Russian, instead of wiping the database the first one is serving;
2. bind the port: a busy port is reported at once, in Russian, with a free one to use instead —
   before anything is wiped or filled; the bound socket is handed to uvicorn later;
3. wipe and migrate `DATA_DIR/demo`, fill it (`seeds.fill`; drawn pictures are kept in
   `DATA_DIR/.demo-cache` for the next time);
4. serve the site on that socket.

The console is for people: a few Russian lines, no access log line per thumbnail, no library
chatter. Setting LOG_LEVEL brings the usual logs back.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.settings import Settings

LOCK_NAME = "demo.lock"
log = logging.getLogger("lomaya.demo")


def _say(line: str = "") -> None:
    print(line, flush=True)


def _took(started: float) -> str:
    """Wall and CPU seconds so far (for LOG_LEVEL=INFO)."""
    return f"{time.monotonic() - started:.1f} s (CPU {time.process_time():.1f} s)"


# --- one demo per DATA_DIR -----------------------------------------------------------------------


class DemoLock:
    """An exclusive lock on a file, held as long as the demo runs.

    The operating system releases it when the process ends, however it ends, so a demo that was
    killed never leaves a stale lock behind. The file holds who has it (pid and address), to tell
    the person who tried to start a second demo.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self, note: str) -> bool:
        """Take the lock and write `note` (pid and address) into the file; False if taken."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (kept open while held)
        try:
            _lock(handle)
        except OSError:
            handle.close()
            return False
        self._file = handle
        self.write(note)
        return True

    def write(self, note: str) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            self._file.write(note + "\n")
            self._file.flush()

    def holder(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the file releases the lock
            self._file = None


def _lock(handle: IO[str]) -> None:
    """Lock `handle` without waiting; OSError if another process holds it."""
    if os.name == "nt":  # pragma: no cover - the project runs on Linux and macOS
        import msvcrt

        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _busy_demo(base: Path, holder: str) -> str:
    pid, _, url = holder.partition(" ")
    who = f" (процесс {pid}, {url})" if pid and url else ""
    return (
        f"Демо с папкой данных {base} уже запущено{who} — его базу не трогаю.\n"
        "Откройте его адрес в браузере или остановите его (Ctrl+C в его окне) и запустите снова.\n"
        f"Второе демо рядом — с другой папкой и портом: DATA_DIR={base}-2 uv run lomaya demo "
        "--port 8081"
    )


# --- the port ------------------------------------------------------------------------------------


class PortError(Exception):
    """The port cannot be used; the message is for people."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or PortError with a Russian message."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise PortError(f"Не понимаю адрес --host {host!r}: {exc}.") from exc
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name != "nt":  # a port in TIME_WAIT after the last demo is free to use
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # connections from now on wait in the queue until the site is up
    except OSError as exc:
        sock.close()
        raise PortError(_port_problem(host, port, exc)) from exc
    return sock


def _port_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"Порт {port} уже занят другой программой (может быть, демо или сайт уже запущены). "
            "Демо не запущено, данные не тронуты.\n"
            f"Выберите другой порт, например: uv run lomaya demo --port {_free_port(host, port)}"
        )
    if exc.errno == errno.EACCES:
        return (
            f"Нет прав занять порт {port}: порты меньше 1024 открывает только администратор "
            "системы.\nВыберите другой порт, например: uv run lomaya demo --port 8080"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"Адрес {host} не принадлежит этому компьютеру. Попробуйте --host 127.0.0.1"
    return f"Не удалось открыть {host}:{port}: {exc.strerror or exc}."


def _free_port(host: str, busy: int) -> int:
    """A port near `busy` that is free now (any free one if none near is)."""
    for candidate in [*range(busy + 1, busy + 20), 0]:
        try:
            probe = bind(host, candidate)
        except PortError:
            continue
        free = int(probe.getsockname()[1])
        probe.close()
        return free
    return busy + 1


# --- the demo ------------------------------------------------------------------------------------


def _configure_logging(level: str | None) -> None:
    """Warnings and errors only, unless LOG_LEVEL asks for more."""
    logging.basicConfig(
        level=level or "WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def run(host: str, port: int) -> None:
    try:
        _run(host, port)
    except KeyboardInterrupt:  # Ctrl+C before the site was up
        _say("\nОстановлено: демо-база не заполнена до конца.")
        sys.exit(130)


def _run(host: str, port: int) -> None:
    started = time.monotonic()
    base = Path(os.environ.get("DATA_DIR", "./var")).expanduser()
    data_dir = base / "demo"
    url = f"http://{host}:{port}"
    log_level = os.environ.get("LOG_LEVEL", "").strip().upper() or None
    _configure_logging(log_level)

    lock = DemoLock(base / LOCK_NAME)
    try:
        taken = lock.acquire(f"{os.getpid()} {url}")
    except OSError as exc:
        why = {errno.EACCES: "нет прав", errno.EROFS: "диск только для чтения"}.get(
            exc.errno or 0, "её нельзя создать или в неё нельзя писать"
        )
        sys.exit(f"Папка данных {base} не подходит: {why}. Укажите другую: DATA_DIR=…")
    if not taken:
        sys.exit(_busy_demo(base, lock.holder()))
    try:
        sock = bind(host, port)
    except PortError as exc:
        sys.exit(str(exc))
    if port == 0:  # "any free port": say which one
        url = f"http://{host}:{sock.getsockname()[1]}"
        lock.write(f"{os.getpid()} {url}")

    from app.settings import SettingsError, load_settings, set_settings

    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "DB_HOST", "BOT_TOKEN", "BOT_WEBHOOK_MODE"}
    }
    environ["DATA_DIR"] = str(data_dir)
    environ["MEDIA_BACKEND"] = "local"  # the demo is thrown away with its folder
    try:
        settings = set_settings(load_settings(environ, env_file=None, allow_generated_secret=True))
    except SettingsError as exc:
        sys.exit(f"Ошибка настройки: {exc}")

    if data_dir.exists():
        shutil.rmtree(data_dir)
    _say(f"Создаю демо-базу в {data_dir}…")
    # Both processes need SQLAlchemy and the models: imported once, before the fork (nothing here
    # opens a connection or starts a thread).
    import app.db
    import app.models  # noqa: F401

    site = _Site.start(settings, sock, quiet=log_level is None)
    try:
        from app import images, media
        from app.db import session_scope
        from seeds.fill import fill

        images.warm_up()  # the hashing code loads while the site's process migrates
        log.info("demo: code loaded after %s", _took(started))
        site.wait_migrated()
        log.info("demo: database migrated after %s", _took(started))
        with session_scope() as session:
            summary = fill(session, progress=_say, cache_dir=base / ".demo-cache")
        media.purge()  # the objects the replayed retention queued for deletion
        log.info(
            "demo: filled after %s; pictures drawn %d, from the cache %d",
            _took(started),
            summary.pictures_drawn,
            summary.pictures_cached,
        )
    except BaseException:
        site.abort()
        raise
    _say()
    _say(f"Готово за {time.monotonic() - started:.1f} с. Откройте {url}")
    _say(f"  администратор: {summary.admin_email} / {summary.admin_password}")
    _say(f"  эксперт:       {summary.expert_email} / {summary.expert_password}")
    _say("Остановить демо: Ctrl+C.")
    code = site.serve()
    _say("Демо остановлено.")
    lock.release()
    if code:
        sys.exit(code)


class _Site:
    """The site's side of the demo.

    Where the system can fork, a second process is forked right after the port is bound, before
    anything heavy is imported: it migrates the fresh database, tells this process, loads the web
    app, and serves on the bound socket once this process has filled the database — so migrating
    and loading the site take the other core instead of adding to the wait. Elsewhere the same
    steps run one after another in this process.
    """

    def __init__(self, settings: Settings, sock: socket.socket, quiet: bool) -> None:
        self.settings, self.sock, self.quiet = settings, sock, quiet
        self.pid = 0
        self._from_site = self._to_site = -1

    @classmethod
    def start(cls, settings: Settings, sock: socket.socket, *, quiet: bool) -> _Site:
        site = cls(settings, sock, quiet)
        if not hasattr(os, "fork"):
            return site
        from_site, to_parent = os.pipe()
        from_parent, to_site = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the site's process
            os.close(from_site)
            os.close(to_site)
            code = site._child(to_parent, from_parent)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        os.close(to_parent)
        os.close(from_parent)
        sock.close()  # the site's process holds the listening socket now
        site.pid, site._from_site, site._to_site = pid, from_site, to_site
        return site

    def _child(self, to_parent: int, from_parent: int) -> int:
        try:
            from app import migrate

            try:
                migrate.upgrade()
            except Exception:
                os.write(to_parent, b"E")
                raise
            os.write(to_parent, b"M")
            os.close(to_parent)
            server = _server(self.settings, self.sock, quiet=self.quiet)
            if os.read(from_parent, 1) != b"G":
                return 0  # the demo did not get filled: nothing to serve
            _run_server(server, self.sock)
            return 0
        except KeyboardInterrupt:
            return 130
        except BaseException:
            import traceback

            traceback.print_exc()
            return 1

    def wait_migrated(self) -> None:
        if not self.pid:
            from app import migrate

            migrate.upgrade()
            return
        if os.read(self._from_site, 1) != b"M":
            os.waitpid(self.pid, 0)
            self.pid = 0
            sys.exit("Не удалось создать демо-базу: подробности выше.")

    def serve(self) -> int:
        """Serve until Ctrl+C; the exit code."""
        if not self.pid:
            _run_server(_server(self.settings, self.sock, quiet=self.quiet), self.sock)
            return 0
        os.write(self._to_site, b"G")
        while True:
            try:
                _pid, status = os.waitpid(self.pid, 0)
                return os.waitstatus_to_exitcode(status) % 256
            except KeyboardInterrupt:
                continue  # Ctrl+C reached the site's process too: wait until it has stopped

    def abort(self) -> None:
        if self.pid:
            os.close(self._to_site)  # the site's process reads the end and leaves
            with contextlib.suppress(ChildProcessError, KeyboardInterrupt):
                os.waitpid(self.pid, 0)
            self.pid = 0


def _server(settings: Settings, sock: socket.socket, *, quiet: bool) -> Any:
    import uvicorn

    from app.main import create_app

    config = uvicorn.Config(
        create_app(settings),
        log_level="warning" if quiet else settings.log_level.lower(),
        access_log=not quiet,
        proxy_headers=True,
        server_header=False,
    )
    return uvicorn.Server(config)


def _run_server(server: Any, sock: socket.socket) -> None:
    # uvicorn stops gracefully on Ctrl+C and then raises KeyboardInterrupt again: a normal end here.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
