"""Time to the demo's first page, measured from the outside (run by hand, never in the tests).

    uv run python bench/demo.py [--runs 3] [--timeout 300]
    (or: uv run python -m bench.demo …)

Each run starts `uv run lomaya demo --port <free port>` in a fresh temporary DATA_DIR (cold picture
cache), polls GET /login until it answers 200 and prints the seconds it took; then stops the demo
and starts it again on the same DATA_DIR (warm cache: the demo wipes its database but keeps
DATA_DIR/.demo-cache). Per start it prints the wall seconds to the first page, the CPU seconds the
demo's process tree had used by then (in total, and per process in start order: uv, the demo —
which fills the database, with its drawing processes — and the site's process it forks), the busy
cores of the rest of the machine, and the load average at start and at the first page. The temporary folders
are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/<name>.py`: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench._common import CLK_TCK, ROOT, _machine_busy, _tree, loadavg


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_once(data_dir: Path, timeout: float) -> dict:
    """One `lomaya demo` start: seconds to the first 200 from /login, CPU, load; then stop it."""
    port = free_port()
    env = {**os.environ, "DATA_DIR": str(data_dir)}
    env.pop("LOG_LEVEL", None)
    log = data_dir.parent / f"{data_dir.name}-{port}.log"
    load_start = loadavg()
    machine_start = _machine_busy()
    started = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["uv", "run", "lomaya", "demo", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole below
        )
    try:
        url = f"http://127.0.0.1:{port}/login"
        seconds = None
        while time.monotonic() - started < timeout and process.poll() is None:
            if answers(url):
                seconds = time.monotonic() - started
                break
            time.sleep(0.05)
        tree = _tree([process.pid])
        cpu = sum(p.own + p.reaped for p in tree.values()) / CLK_TCK
        # uv, the demo (which filled the database) and the site's process (forked by the demo)
        split = [
            round((p.own + p.reaped) / CLK_TCK, 1)
            for _key, p in sorted(tree.items(), key=lambda item: item[0][1])
        ]
        machine = (_machine_busy() - machine_start) / CLK_TCK
        load_end = loadavg()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    output = log.read_text(errors="replace")
    if seconds is None:
        print(output[-3000:])
        raise SystemExit(
            f"the demo did not answer within {timeout:.0f} s (exit {process.returncode})"
        )
    wall = seconds
    return {
        "seconds": seconds,
        "cpu": cpu,
        "split": split,
        "others": max(0.0, machine - cpu) / wall,
        "load": (load_start[0], load_end[0]),
        "output": output,
    }


def line(kind: str, run: int, r: dict) -> str:
    return (
        f"run {run} {kind:<4}: first page after {r['seconds']:5.1f} s"
        f" | demo CPU {r['cpu']:5.1f} s {r['split']}"
        f" | other load {r['others']:.2f} of {os.cpu_count()} cores"
        f" | load average {r['load'][0]:.2f} → {r['load'][1]:.2f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--show-output", action="store_true", help="print the demo's console")
    args = parser.parse_args(argv)

    print(f"uv run lomaya demo, {args.runs} runs, {os.cpu_count()} CPUs")
    results: dict[str, list[dict]] = {"cold": [], "warm": []}
    scratch = Path(tempfile.mkdtemp(prefix="lomaya-bench-demo-"))
    try:
        for run in range(1, args.runs + 1):
            data_dir = scratch / f"run{run}"
            data_dir.mkdir()
            for kind in ("cold", "warm"):
                result = start_once(data_dir, args.timeout)
                results[kind].append(result)
                print(line(kind, run, result), flush=True)
                if args.show_output:
                    print(result["output"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for kind, rows in results.items():
        seconds = [r["seconds"] for r in rows]
        cpu = [r["cpu"] for r in rows]
        print(
            f"{kind}: first page median {statistics.median(seconds):.1f} s "
            f"(min {min(seconds):.1f}, max {max(seconds):.1f}); "
            f"demo CPU median {statistics.median(cpu):.1f} s"
        )


if __name__ == "__main__":
    main()
