"""Pictures for the demo data, drawn ahead in other processes and kept in a cache folder.

Drawing a photo costs about as much CPU as storing it, so `Painter` takes the list of pictures the
replay will need (in the order it needs them), draws the missing ones in a process pool on the other
cores while the replay runs, and hands each one over when asked. Every drawn picture is also written
to a cache folder keyed by what is drawn (`Picture.key`, which includes `PICTURES_VERSION`), so the
next demo reads the same pictures instead of drawing them. The cache lives outside the database's
media folder (`DATA_DIR/.demo-cache` for the demo): `--delete` and a new demo keep it.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from seeds import pictures


@dataclass(frozen=True)
class Picture:
    """What to draw: a report photo ("photo"), its near copy ("near") or a task picture ("task")."""

    kind: str
    seed: int
    scene: str = ""
    caption: str = ""  # a task picture's title
    icon: str = ""
    size: tuple[int, int] = pictures.PHOTO_SIZE

    @property
    def key(self) -> str:
        what = "|".join(
            map(str, (pictures.PICTURES_VERSION, *self.size, self.kind, self.seed, self.scene))
        )
        what += f"|{self.caption}|{self.icon}"
        return hashlib.sha256(what.encode()).hexdigest()[:32]

    def draw(self) -> bytes:
        if self.kind == "task":
            return pictures.task_picture(self.caption, self.icon, self.seed)
        if self.kind == "near":
            return pictures.near_duplicate(self.seed, self.scene, self.caption, self.size)
        return pictures.report_photo(self.seed, self.scene, self.caption, self.size)


def _path(folder: Path, picture: Picture) -> Path:
    key = picture.key
    return folder / key[:2] / f"{key}.jpg"


def _write(path: Path, data: bytes) -> None:
    """Write atomically: a demo killed half-way, or two demos at once, never leave half a picture."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _draw(picture: Picture, folder: Path | None) -> bytes:
    """Draw one picture (in a pool process) and cache it."""
    data = picture.draw()
    if folder is not None:
        # A read-only or full disk only costs the next demo a redraw.
        with contextlib.suppress(OSError):
            _write(_path(folder, picture), data)
    return data


class Painter:
    """Hands out pictures: from the cache, from the pool that drew them ahead, or drawn now."""

    def __init__(self, cache_dir: Path | None = None, workers: int | None = None) -> None:
        self.folder = cache_dir / f"v{pictures.PICTURES_VERSION}" if cache_dir else None
        if cache_dir is not None and cache_dir.is_dir():
            for old in cache_dir.glob("v*"):  # pictures of an older drawing code
                if old != self.folder:
                    shutil.rmtree(old, ignore_errors=True)
        self.workers = min(4, os.cpu_count() or 1) if workers is None else workers
        self._pool: ProcessPoolExecutor | None = None
        self._ahead: dict[Picture, Future[bytes]] = {}
        self.drawn = self.cached = 0  # pictures handed out, drawn (here or ahead) or from the cache
        self.here = 0  # of the drawn ones, those drawn in this process

    def order(self, wanted: Iterable[Picture]) -> None:
        """Start drawing, in this order, the pictures that are not cached yet."""
        if self.workers <= 0:
            return
        for picture in wanted:
            if picture in self._ahead or (self.folder and _path(self.folder, picture).exists()):
                continue
            if self._pool is None:
                # "spawn": a clean child that imports only the drawing code, whatever threads or
                # database connections this process holds.
                self._pool = ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn")
                )
            self._ahead[picture] = self._pool.submit(_draw, picture, self.folder)

    def get(self, picture: Picture) -> bytes:
        """The picture's JPEG bytes (drawn the same way every time)."""
        future = self._ahead.get(picture)
        if future is not None:
            self.drawn += 1
            if future.cancel():  # not started yet: drawing it here beats waiting in the queue
                del self._ahead[picture]
                self.here += 1
                return _draw(picture, self.folder)
            try:
                return future.result()
            except BrokenProcessPool:
                # A pool process died (killed, or the main module cannot be imported by a
                # "spawn" child): draw here instead; slower, same pictures.
                self.workers = 0
                self._ahead.clear()
                self.here += 1
                return _draw(picture, self.folder)
        data = self._cached(picture)
        if data is not None:
            self.cached += 1
            return data
        self.drawn += 1
        self.here += 1
        return _draw(picture, self.folder)

    def _cached(self, picture: Picture) -> bytes | None:
        if self.folder is None:
            return None
        try:
            return _path(self.folder, picture).read_bytes()
        except OSError:
            return None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._ahead.clear()
