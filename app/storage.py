"""Private media storage: where photos and task pictures are kept.

One small interface — put, get, stream, size, delete, exists, keys, checksum, health, probe —
behind which sits the configured backend. Keys are generated relative paths
("reports/ab/<uuid>.jpg"); a user-supplied name never becomes a key, and `check_key` refuses any key
that could leave the media area. Two backends, chosen by MEDIA_BACKEND: a folder (`DATA_DIR/media`,
the default) and an S3-compatible bucket (`S3Storage`). `backend()` builds the configured one from
the settings; tests install another with `set_backend`. Objects are private in both: the app
streams them to logged-in staff, and no object is ever given a public ACL or URL.

`start()` runs once when a process that touches photos starts (web app, worker, bot poller, the
`media` commands): a real write, read and delete. A rejected configuration (a wrong key, secret or
bucket) stops the start with one Russian line naming the variable; an unreachable store is logged
and `/health` reports it (probing again) until a probe passes.

Objects are deleted through `app.media`'s durable queue, never directly after a commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from app.errors import MissingObject
from app.settings import Settings, SettingsError, get_settings, require_s3

log = logging.getLogger("lomaya.storage")

CHUNK = 256 * 1024


def check_key(key: str) -> str:
    """`key` if it is a plain relative key, else ValueError."""
    if (
        not key
        or key.startswith(("/", "\\"))
        or "\x00" in key
        or "\\" in key
        or any(part in ("", ".", "..") for part in key.split("/"))
    ):
        raise ValueError("bad media key")
    return key


class LocalStorage:
    """Objects as files under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        """The file for `key`, guaranteed to lie inside the media folder (else ValueError)."""
        check_key(key)
        root = self.root.resolve()
        path = (root / key).resolve()
        if not path.is_relative_to(root) or path == root:
            raise ValueError("media key escapes the media folder")
        return path

    def put(
        self, key: str, data: bytes, content_type: str = "image/jpeg", *, sha256: str = ""
    ) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + f".{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise MissingObject(key) from None

    def stream(self, key: str) -> Iterator[bytes]:
        try:
            file = self.path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise MissingObject(key) from None
        return _chunks(file)

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            raise MissingObject(key) from None

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
            self.path(key).unlink()

    def exists(self, key: str) -> bool:
        try:
            return self.path(key).is_file()
        except ValueError:
            return False

    def checksum(self, key: str) -> str | None:
        """The SHA-256 of the object (computed from the file); MissingObject if there is none."""
        digest = hashlib.sha256()
        for chunk in self.stream(key):
            digest.update(chunk)
        return digest.hexdigest()

    def keys(self, prefix: str = "") -> Iterator[str]:
        root = self.root.resolve()
        if not root.is_dir():
            return
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.name.endswith(".tmp") and not path.name.startswith("."):
                key = path.relative_to(root).as_posix()
                if key.startswith(prefix):
                    yield key

    def health(self) -> dict[str, Any]:
        """Whether the folder exists (or can be made) and is writable."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            return {"ok": False, "backend": "local", "error": type(exc).__name__}
        return {"ok": True, "backend": "local"}

    def probe(self) -> dict[str, Any]:
        """The start-up check; for a folder the health check already writes and deletes a file."""
        return self.health()


@dataclass(frozen=True)
class S3Config:
    """Where the bucket is and how to sign in; the secret never appears in a repr or a log line."""

    endpoint_url: str
    bucket: str
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    prefix: str = ""

    def environ(self) -> dict[str, str]:
        """The settings (environment variables) that point a `lomaya` process at this bucket."""
        env = {
            "MEDIA_BACKEND": "s3",
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_BUCKET": self.bucket,
            "S3_REGION": self.region,
            "S3_ACCESS_KEY_ID": self.access_key_id,
            "S3_SECRET_ACCESS_KEY": self.secret_access_key,
        }
        if self.prefix:
            env["S3_PREFIX"] = self.prefix
        return env


# Requests of the app wait at most this long for the store; health probes fail faster and do not
# retry (whoever polls /health polls again).
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
RETRIES = 3
HEALTH_TIMEOUT = 3.0
LIST_PAGE_SIZE = 1000  # S3's maximum keys per list_objects_v2 page

_MISSING_CODES = {"NoSuchKey", "NotFound", "404"}


def _is_missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in _MISSING_CODES


class S3Storage:
    """Objects in an S3-compatible bucket (AWS, SeaweedFS, MinIO), under an optional key prefix."""

    def __init__(self, config: S3Config) -> None:
        # boto3 takes about a second to import; deployments on a folder never pay for it.
        import boto3
        from botocore.config import Config

        self.config = config
        self.bucket = config.bucket
        self.page_size = LIST_PAGE_SIZE
        prefix = config.prefix.strip("/")
        self.prefix = check_key(prefix) + "/" if prefix else ""
        session = boto3.session.Session(
            aws_access_key_id=config.access_key_id,
            aws_secret_access_key=config.secret_access_key,
            region_name=config.region,
        )
        common: dict[str, Any] = {
            "signature_version": "s3v4",
            # SeaweedFS and MinIO serve buckets as paths, not as subdomains.
            "s3": {"addressing_style": "path"},
            # Newer botocore adds CRC trailers (aws-chunked uploads) that several S3-compatible
            # stores reject; checksums only where the API requires them.
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        }

        def client(timeout: float | None, attempts: int) -> Any:
            return session.client(
                "s3",
                endpoint_url=config.endpoint_url,
                config=Config(
                    connect_timeout=timeout or CONNECT_TIMEOUT,
                    read_timeout=timeout or READ_TIMEOUT,
                    retries={"max_attempts": attempts, "mode": "standard"},
                    **common,
                ),
            )

        # Clients are thread-safe: one for the app's requests, one for health probes.
        self.client = client(None, RETRIES)
        self.health_client = client(HEALTH_TIMEOUT, 1)

    def object_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(
        self, key: str, data: bytes, content_type: str = "image/jpeg", *, sha256: str = ""
    ) -> None:
        """Store `data`; `sha256` (given by `lomaya media migrate`) is kept in the object's
        metadata, so a resumed copy can compare checksums without downloading the object."""
        # No ACL argument: objects inherit the bucket's (private) policy.
        extra: dict[str, Any] = {"Metadata": {"sha256": sha256}} if sha256 else {}
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.object_key(key),
            Body=data,
            ContentType=content_type,
            **extra,
        )

    def _get_object(self, key: str) -> Any:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _is_missing(exc):
                raise MissingObject(key) from None
            raise

    def get(self, key: str) -> bytes:
        body = self._get_object(key)["Body"]
        with contextlib.closing(body):
            data: bytes = body.read()
        return data

    def stream(self, key: str) -> Iterator[bytes]:
        """The object's bytes in chunks; MissingObject is raised here, before the first chunk."""
        return _body_chunks(self._get_object(key)["Body"])

    def size(self, key: str) -> int:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _is_missing(exc):
                raise MissingObject(key) from None
            raise
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        # S3 answers 204 for a missing key too; some compatible stores answer 404 instead.
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if not _is_missing(exc):
                raise

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except (ValueError, MissingObject):
            return False
        return True

    def checksum(self, key: str) -> str | None:
        """The SHA-256 recorded in the object's metadata at upload, or None when none was
        (MissingObject if there is no object)."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _is_missing(exc):
                raise MissingObject(key) from None
            raise
        value = head.get("Metadata", {}).get("sha256")
        return str(value) if value else None

    def keys(self, prefix: str = "") -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket,
            Prefix=self.prefix + prefix,
            PaginationConfig={"PageSize": self.page_size},
        )
        for page in pages:
            for item in page.get("Contents", ()):
                key = item["Key"][len(self.prefix) :]
                # Like the folder: hidden names (probe objects) are not media.
                if not key.rsplit("/", 1)[-1].startswith("."):
                    yield key

    def health(self) -> dict[str, Any]:
        """Whether the bucket answers with these credentials (HEAD bucket, no retries)."""
        try:
            self.health_client.head_bucket(Bucket=self.bucket)
        except Exception as exc:  # any failure means "down"; the class name is enough for a probe
            return _s3_failure(exc)
        return {"ok": True, "backend": "s3"}

    def probe(self) -> dict[str, Any]:
        """The start-up check: write, read back and delete a small hidden object."""
        key = self.object_key(f".probe-{uuid.uuid4().hex}")
        try:
            self.health_client.put_object(
                Bucket=self.bucket, Key=key, Body=b"ok", ContentType="text/plain"
            )
            try:
                body = self.health_client.get_object(Bucket=self.bucket, Key=key)["Body"]
                with contextlib.closing(body):
                    ok = body.read() == b"ok"
            finally:
                self.health_client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            return _s3_failure(exc)
        if not ok:
            return {"ok": False, "backend": "s3", "error": "ProbeMismatch"}
        return {"ok": True, "backend": "s3"}


def _s3_failure(exc: Exception) -> dict[str, Any]:
    """A failed check, named by class (and S3 error code): never a message, which may quote the
    endpoint or the request."""
    state: dict[str, Any] = {"ok": False, "backend": "s3", "error": type(exc).__name__}
    if isinstance(exc, ClientError):
        state["code"] = str(exc.response.get("Error", {}).get("Code", ""))
    return state


def _body_chunks(body: Any) -> Iterator[bytes]:
    with contextlib.closing(body):
        yield from body.iter_chunks(CHUNK)


def _chunks(file: Any) -> Iterator[bytes]:
    with file:
        while chunk := file.read(CHUNK):
            yield chunk


Backend = LocalStorage | S3Storage


def s3_config(settings: Settings) -> S3Config:
    """The bucket from the S3_* settings; SettingsError naming the first one missing."""
    require_s3(settings)
    return S3Config(
        endpoint_url=settings.s3_endpoint_url,
        bucket=settings.s3_bucket,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
        prefix=settings.s3_prefix,
    )


def from_settings(settings: Settings, kind: str | None = None) -> Backend:
    """The backend of `kind` ("local" or "s3"; default MEDIA_BACKEND) built from the settings."""
    if (kind or settings.media_backend) == "s3":
        return S3Storage(s3_config(settings))
    return LocalStorage(settings.media_dir)


_backend: Backend | None = None
_backend_for: Any = None
_installed: Backend | None = None
_start_failure: dict[str, Any] | None = None  # the start-up probe failed; /health probes again


def set_backend(store: Backend | None) -> Backend | None:
    """Install `store` as the backend (None: back to the one the settings configure).

    Returns the backend installed before, so a caller (a test) can put it back."""
    global _installed, _start_failure
    previous, _installed = _installed, store
    _start_failure = None
    return previous


def backend() -> Backend:
    """The installed backend, else the configured one (rebuilt when the settings change)."""
    global _backend, _backend_for
    if _installed is not None:
        return _installed
    settings = get_settings()
    if _backend is None or _backend_for is not settings:
        _backend, _backend_for = from_settings(settings), settings
    return _backend


def put(key: str, data: bytes, content_type: str = "image/jpeg") -> None:
    backend().put(key, data, content_type)


def get(key: str) -> bytes:
    return backend().get(key)


def stream(key: str) -> Iterator[bytes]:
    return backend().stream(key)


def exists(key: str) -> bool:
    return backend().exists(key)


def delete(*keys: str | None) -> None:
    """Remove objects now; missing ones and bad keys are ignored (deleting is idempotent).

    For objects whose rows a transaction deletes, use `app.media.delete_later` instead: it
    survives a crash between the commit and the removal."""
    store = backend()
    for key in keys:
        if key:
            with contextlib.suppress(ValueError):
                store.delete(key)


def health() -> dict[str, Any]:
    """The backend's health check; while the start-up probe's failure stands, the probe again."""
    global _start_failure
    if _start_failure is None:
        return backend().health()
    state = backend().probe()
    if state["ok"]:
        _start_failure = None
    return state


def probe() -> dict[str, Any]:
    """A real write, read and delete."""
    return backend().probe()


# What a failed start-up probe says about the settings: (variable, Russian explanation).
_REJECTED = {
    "InvalidAccessKeyId": ("S3_ACCESS_KEY_ID", "хранилище не знает такого ключа доступа"),
    "SignatureDoesNotMatch": (
        "S3_SECRET_ACCESS_KEY",
        "секретный ключ не подходит к S3_ACCESS_KEY_ID",
    ),
    "NoSuchBucket": ("S3_BUCKET", "в хранилище нет бакета {bucket!r}"),
    "InvalidBucketName": ("S3_BUCKET", "хранилище не принимает имя бакета {bucket!r}"),
    "AccessDenied": (
        "S3_ACCESS_KEY_ID",
        "у этого ключа нет прав записывать, читать и удалять объекты в бакете {bucket!r}",
    ),
    "AuthorizationHeaderMalformed": ("S3_REGION", "бакет {bucket!r} находится в другом регионе"),
}


def verify(store: Backend) -> dict[str, Any]:
    """Probe `store` (a write, a read and a delete); SettingsError naming the variable when the
    store rejects the configuration; the probe's state otherwise (ok, or unreachable)."""
    state = store.probe()
    if state["ok"]:
        return state
    if isinstance(store, LocalStorage):
        raise SettingsError(
            f"DATA_DIR: в папку {store.root} нельзя записать фото ({state.get('error')})"
        )
    rejected = _REJECTED.get(str(state.get("code", "")))
    if rejected is not None:
        name, why = rejected
        raise SettingsError(f"{name}: {why.format(bucket=store.bucket)}")
    return state


def start() -> dict[str, Any]:
    """The start-up check of the configured backend (`verify`). An unreachable store does not stop
    the start: it is logged, and `health()` keeps probing until it answers."""
    global _start_failure
    state = verify(backend())
    if state["ok"]:
        _start_failure = None
        return state
    _start_failure = state
    log.error(
        "media storage (S3_ENDPOINT_URL) does not answer: %s %s; photos are unavailable until "
        "it does, /health says so",
        state.get("error"),
        state.get("code", ""),
    )
    return state


def describe(store: Backend) -> str:
    """Where the objects are, for the operator (never the credentials)."""
    if isinstance(store, LocalStorage):
        return f"папка {store.root}"
    return f"S3 {store.config.endpoint_url}, бакет {store.bucket}" + (
        f", папка {store.prefix.rstrip('/')}" if store.prefix else ""
    )
