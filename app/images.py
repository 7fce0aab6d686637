"""Image processing for photos and task pictures: verify, make upright, thumbnail, hash.

Pure functions over bytes; where the bytes are kept is `app.storage`'s business. `store_image`
ties the two together for callers that want one step.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass

import imagehash
from PIL import Image, ImageOps, UnidentifiedImageError

from app import storage
from app.errors import NotAnImage

THUMB_SIZE = (480, 480)
MAX_IMAGE_PIXELS = 50_000_000  # ~7000×7000; larger is a decompression bomb, not a photo
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "HEIF", "HEIC", "MPO"}


@dataclass(frozen=True)
class StoredImage:
    key: str
    thumb_key: str
    width: int
    height: int
    size_bytes: int
    sha256: str
    phash: int
    dhash: int


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def hash_to_int(h: imagehash.ImageHash) -> int:
    """A 64-bit image hash as a signed integer (fits PostgreSQL BIGINT)."""
    return _signed64(int(str(h), 16))


def hamming(a: int, b: int) -> int:
    return int(((a ^ b) & ((1 << 64) - 1)).bit_count())


def perceptual_hashes(image: Image.Image) -> tuple[int, int]:
    return hash_to_int(imagehash.phash(image)), hash_to_int(imagehash.dhash(image))


def warm_up() -> None:
    """Load the hashing code (scipy) at start-up rather than in the first photo's request."""
    perceptual_hashes(Image.new("L", (32, 32)))


def open_image(data: bytes) -> Image.Image:
    """Open and verify `data` as an accepted image; raises NotAnImage."""
    try:
        probe = Image.open(io.BytesIO(data))
        probe.verify()
        image = Image.open(io.BytesIO(data))
        if image.format not in ACCEPTED_FORMATS:
            raise NotAnImage(f"unsupported image format {image.format}")
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise NotAnImage(str(exc)) from exc
    return image


def new_key(folder: str, suffix: str = ".jpg") -> str:
    name = uuid.uuid4().hex
    return f"{folder}/{name[:2]}/{name}{suffix}"


def thumb_key_of(key: str) -> str:
    """The thumbnail's key for an image's key (they are stored side by side)."""
    return key.removesuffix(".jpg") + "_t.jpg"


def jpeg_bytes(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    image.save(out, "JPEG", quality=quality, optimize=False)
    return out.getvalue()


def _jpeg_thumbnail(data: bytes) -> tuple[Image.Image, tuple[int, int]] | None:
    """For a JPEG: its upright thumbnail and upright full size, decoding with JPEG draft mode
    (DCT scaling, tech-notes.md) instead of the full image. None for other formats."""
    try:
        probe = Image.open(io.BytesIO(data))
        if probe.format not in ("JPEG", "MPO"):
            return None
        probe.verify()
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise NotAnImage("image too large")
        orientation = image.getexif().get(0x0112, 1)
        image.draft("RGB", THUMB_SIZE)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise NotAnImage(str(exc)) from exc
    thumb: Image.Image = ImageOps.exif_transpose(image) or image
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    thumb.thumbnail(THUMB_SIZE)
    return thumb, (width, height)


def store_image(data: bytes, folder: str = "reports", *, reencode: bool = False) -> StoredImage:
    """Verify, store and thumbnail an image; compute its SHA-256 and perceptual hashes.

    Photos keep their original bytes when they are JPEG (so the SHA-256 identifies the file a family
    sent); other formats, and everything with `reencode=True` (task pictures), are stored as JPEG.
    """
    sha = hashlib.sha256(data).hexdigest()
    fast = None if reencode else _jpeg_thumbnail(data)
    if fast is not None:
        # A JPEG photo is kept as sent; only a thumbnail is decoded (at reduced scale).
        body, thumb, (width, height) = data, fast[0], fast[1]
    else:
        image = open_image(data)
        image = ImageOps.exif_transpose(image) or image
        body = jpeg_bytes(image, quality=90)
        width, height = image.width, image.height
        thumb = image.copy()
        thumb.thumbnail(THUMB_SIZE)
    key = new_key(folder)
    thumb_key = thumb_key_of(key)
    phash, dhash = perceptual_hashes(thumb)
    storage.put(key, body)
    storage.put(thumb_key, jpeg_bytes(thumb, quality=80))
    return StoredImage(
        key=key,
        thumb_key=thumb_key,
        width=width,
        height=height,
        size_bytes=len(body),
        sha256=sha,
        phash=phash,
        dhash=dhash,
    )
