"""Private media storage: where photos and task pictures are kept.

One small interface — put, get, stream, delete, exists, keys, health — behind which sits the
configured backend. Keys are generated relative paths ("reports/ab/<uuid>.jpg"); a user-supplied
name never becomes a key, and `check_key` refuses any key that could leave the media area.
Today's backend is a folder (`DATA_DIR/media`).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.errors import MissingObject
from app.settings import get_settings

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

    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> None:
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


def _chunks(file: Any) -> Iterator[bytes]:
    with file:
        while chunk := file.read(CHUNK):
            yield chunk


_backend: LocalStorage | None = None
_backend_for: Any = None


def backend() -> LocalStorage:
    """The configured backend (rebuilt when the settings change)."""
    global _backend, _backend_for
    settings = get_settings()
    if _backend is None or _backend_for is not settings:
        _backend, _backend_for = LocalStorage(settings.media_dir), settings
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
    """Remove objects; missing ones and bad keys are ignored (deleting is idempotent)."""
    store = backend()
    for key in keys:
        if key:
            with contextlib.suppress(ValueError):
                store.delete(key)


def health() -> dict[str, Any]:
    return backend().health()
