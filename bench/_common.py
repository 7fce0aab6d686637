"""Shared set-up of the bot benchmarks: a fresh PostgreSQL database and the environment."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/queue.py (the moderation benchmark, run as `-m bench.queue`) would shadow the standard
# `queue` module that psycopg imports when a script here is run as `python bench/<name>.py`: put this
# folder after the standard library (the scripts import this module before psycopg is loaded).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.append(str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

PG_SERVER = os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def fresh_database(name: str) -> str:
    """Drop and create database `name`; returns its URL."""
    admin = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_SERVER.rsplit("/", 1)[0] + "/" + name


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
