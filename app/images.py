"""Image processing for photos and task pictures: verify, make upright, strip metadata, thumbnail,
hash.

One decode feeds the thumbnail, both hashes and the size checks:

- A JPEG (what Telegram sends for a photo) is first read segment by segment (`jpeg_layout`, no
  pixel work): size, orientation and the metadata it carries. When it is already upright, the
  stored original is the sent file with its metadata segments cut out losslessly (EXIF and XMP in
  APP1, IPTC in APP13, comments, maker data in other APPn, anything after the image's end: the
  image data is untouched), and libjpeg-turbo (simplejpeg) decodes it once, straight at the
  smallest DCT scale whose long side still fills the thumbnail (a 1280×960 photo decodes to
  480×360 at 3/8 — no resize at all).
- Everything else — a JPEG that needs rotating, PNG, WebP, HEIC/HEIF (pillow-heif), unusual JPEGs
  (CMYK, 12-bit) — is decoded by Pillow, turned upright and re-encoded as JPEG without metadata.

Photos sent through Telegram as photos arrive re-encoded by Telegram, upright and without EXIF, so
they take the first path with nothing to cut. The hashes are computed on the upright thumbnail with
imagehash's algorithms (pHash, dHash), done here with numpy so that the app does not load scipy.
The SHA-256 is that of the bytes the family sent (the "this exact photo was already used" rule), not
of the stored bytes, which may differ by the metadata removed.

Pure functions over bytes; where the bytes are kept is `app.storage`'s business. `store_image` ties
the two together (`store_processed` when the caller has processed the image already).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import re
import uuid
from dataclasses import dataclass

import numpy as np
import pillow_heif
import simplejpeg
from PIL import Image, ImageOps, UnidentifiedImageError

from app import storage
from app.errors import NotAnImage, StorageUnavailable

THUMB_SIZE = (480, 480)
MAX_IMAGE_PIXELS = 50_000_000  # ~7000×7000; larger is a decompression bomb, not a photo
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "HEIF", "HEIC", "MPO"}
ORIGINAL_QUALITY = 92  # a re-encoded original (rotated JPEG, PNG, HEIC…)
THUMB_QUALITY = 80

pillow_heif.register_heif_opener()


@dataclass(frozen=True)
class StoredImage:
    key: str
    thumb_key: str
    width: int
    height: int
    size_bytes: int
    sha256: str  # of the bytes as sent, see the module docstring
    phash: int
    dhash: int


@dataclass(frozen=True)
class Processed:
    """An image ready to store: the original without metadata, its thumbnail, size and hashes."""

    body: bytes
    thumb: bytes
    width: int
    height: int
    phash: int
    dhash: int


# --- hashes -------------------------------------------------------------------------------------


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def hamming(a: int, b: int) -> int:
    return int(((a ^ b) & ((1 << 64) - 1)).bit_count())


# imagehash.phash: the 2-D DCT-II (scipy.fftpack, unnormalised) of the 32×32 grey image, of which
# the 8×8 lowest frequencies are compared with their median. Only those 8 rows of the DCT matrix
# are needed: low = C8 · pixels · C8ᵀ.
_DCT8 = 2 * np.cos(np.pi * np.arange(8)[:, None] * (2 * np.arange(32)[None, :] + 1) / 64)


def _bits_to_int(bits: np.ndarray) -> int:
    """A boolean array as imagehash prints it (row-major, first element = highest bit)."""
    return _signed64(int.from_bytes(np.packbits(bits.reshape(-1)).tobytes(), "big"))


def perceptual_hashes(image: Image.Image) -> tuple[int, int]:
    """(pHash, dHash) of `image` as signed 64-bit integers; the same values as
    imagehash.phash/dhash (LANCZOS to 32×32 and 9×8 of the grey image)."""
    gray = image if image.mode == "L" else image.convert("L")
    pixels = np.asarray(gray.resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    low = _DCT8 @ pixels @ _DCT8.T
    strip = np.asarray(gray.resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    return _bits_to_int(low > np.median(low)), _bits_to_int(strip[:, 1:] > strip[:, :-1])


def warm_up() -> None:
    """Load the decoding and hashing code at start-up rather than in the first photo's request."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 150)).save(out, "JPEG")
    process(out.getvalue())


# --- JPEG segments ------------------------------------------------------------------------------

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0–7: no length field
# Application segments that are not metadata: the JFIF header, the colour profile, Adobe's colour
# transform flag (needed to decode some files right). Any other APPn and COM is cut.
_KEEP_APP = {0xE0: b"JFIF\x00", 0xE2: b"ICC_PROFILE\x00", 0xEE: b"Adobe"}
# Inside entropy-coded data 0xFF is followed by 0x00 (stuffing) or RST0–7; anything else is a marker.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")


@dataclass(frozen=True)
class JpegLayout:
    width: int
    height: int
    components: int
    precision: int
    sof: int  # the frame marker: 0xC0 baseline, 0xC1 extended, 0xC2 progressive, …
    orientation: int  # EXIF orientation, 1 when absent
    clean: bytes  # the file without metadata segments and without anything after its end


def _orientation(app1: bytes | None) -> int:
    if app1 is None:
        return 1
    exif = Image.Exif()
    try:
        exif.load(app1)
        value = int(exif.get(0x0112, 1))
    except Exception:  # damaged EXIF: the image itself may be fine
        return 1
    return value if 1 <= value <= 8 else 1


def jpeg_layout(data: bytes) -> JpegLayout | None:
    """The segments of a JPEG file; None if `data` is not a JPEG; NotAnImage if it is a damaged one."""
    if not data.startswith(b"\xff\xd8"):
        return None
    n = len(data)
    pos = 2
    kept: list[tuple[int, int]] = [(0, 2)]
    frame: tuple[int, int, int, int, int] | None = None
    app1: bytes | None = None
    while True:
        if pos >= n or data[pos] != 0xFF:
            raise NotAnImage("JPEG: a marker was expected")
        start = pos
        while pos < n and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= n:
            raise NotAnImage("JPEG: truncated")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI: whatever follows (another picture, vendor data) is dropped
            kept.append((start, pos))
            break
        if marker in _STANDALONE:
            kept.append((start, pos))
            continue
        if pos + 2 > n:
            raise NotAnImage("JPEG: truncated")
        end = pos + int.from_bytes(data[pos : pos + 2], "big")
        if end < pos + 2 or end > n:
            raise NotAnImage("JPEG: truncated segment")
        body = data[pos + 2 : end]
        if marker in _SOF and frame is None:
            if len(body) < 6:
                raise NotAnImage("JPEG: bad frame header")
            height = int.from_bytes(body[1:3], "big")
            width = int.from_bytes(body[3:5], "big")
            frame = (width, height, body[5], body[0], marker)
        if marker == 0xE1 and app1 is None and body.startswith(b"Exif\x00\x00"):
            app1 = body
        is_metadata = marker == 0xFE or (
            0xE0 <= marker <= 0xEF and not body.startswith(_KEEP_APP.get(marker, b"\x00-"))
        )
        if not is_metadata:
            kept.append((start, end))
        pos = end
        if marker == 0xDA:  # SOS: entropy-coded data up to the next marker
            found = _NEXT_MARKER.search(data, pos)
            if found is None:
                raise NotAnImage("JPEG: truncated scan")
            kept.append((pos, found.start()))
            pos = found.start()
    if frame is None or not frame[0] or not frame[1]:
        raise NotAnImage("JPEG: no frame header")
    if len(kept) == 1 or kept[-1][1] != pos:
        raise NotAnImage("JPEG: bad structure")
    clean = data[:pos] if _contiguous(kept) else b"".join(data[a:b] for a, b in kept)
    width, height, components, precision, sof = frame
    return JpegLayout(width, height, components, precision, sof, _orientation(app1), clean)


def _contiguous(spans: list[tuple[int, int]]) -> bool:
    return all(a[1] == b[0] for a, b in itertools.pairwise(spans))


# --- decoding -----------------------------------------------------------------------------------


def open_image(data: bytes) -> Image.Image:
    """Open, verify and load `data` as an accepted image with Pillow; raises NotAnImage."""
    try:
        probe = Image.open(io.BytesIO(data))
        probe.verify()
        image = Image.open(io.BytesIO(data))
        if image.format not in ACCEPTED_FORMATS:
            raise NotAnImage(f"unsupported image format {image.format}")
        image.load()
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        raise NotAnImage(str(exc)) from exc
    return image


def jpeg_bytes(image: Image.Image, quality: int = 85) -> bytes:
    """`image` as a JPEG with no metadata at all (no EXIF, XMP, ICC or comment is passed on)."""
    out = io.BytesIO()
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    image.info = {}  # Pillow would carry a comment over from the source
    image.save(out, "JPEG", quality=quality, optimize=False)
    return out.getvalue()


def _fits(size: tuple[int, int]) -> tuple[int, int]:
    """The thumbnail's size for an image of `size` (never enlarged)."""
    width, height = size
    scale = min(THUMB_SIZE[0] / width, THUMB_SIZE[1] / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _fast_thumbnail(layout: JpegLayout) -> Image.Image | None:
    """The thumbnail of an upright 8-bit grey or YCbCr JPEG, decoded once by libjpeg-turbo at the
    smallest DCT scale that still fills it; None when simplejpeg cannot decode this file."""
    if layout.precision != 8 or layout.components not in (1, 3) or layout.sof > 0xC2:
        return None
    target = _fits((layout.width, layout.height))
    try:
        array = simplejpeg.decode_jpeg(
            layout.clean,
            colorspace="GRAY" if layout.components == 1 else "RGB",
            min_width=target[0],
            min_height=target[1],
        )
    except ValueError:
        return None
    image = Image.fromarray(array[:, :, 0] if layout.components == 1 else array)
    if image.size != target:
        image = image.resize(target, Image.Resampling.BILINEAR)
    return image


def process(data: bytes, *, reencode: bool = False) -> Processed:
    """Check `data` is an accepted image and make what is stored of it (see the module docstring).

    `reencode=True` (task pictures) always stores a fresh JPEG. Raises NotAnImage."""
    layout = None if reencode else jpeg_layout(data)
    if layout is not None:
        if layout.width * layout.height > MAX_IMAGE_PIXELS:
            raise NotAnImage("image too large")
        if layout.orientation == 1:
            thumb = _fast_thumbnail(layout)
            if thumb is not None:
                phash, dhash = perceptual_hashes(thumb)
                return Processed(
                    layout.clean,
                    jpeg_bytes(thumb, THUMB_QUALITY),
                    layout.width,
                    layout.height,
                    phash,
                    dhash,
                )
    image = open_image(data)
    image = ImageOps.exif_transpose(image) or image
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    thumb = image.resize(_fits(image.size), Image.Resampling.BICUBIC, reducing_gap=2.0)
    phash, dhash = perceptual_hashes(thumb)
    return Processed(
        jpeg_bytes(image, ORIGINAL_QUALITY),
        jpeg_bytes(thumb, THUMB_QUALITY),
        image.width,
        image.height,
        phash,
        dhash,
    )


# --- storing ------------------------------------------------------------------------------------


def new_key(folder: str, suffix: str = ".jpg") -> str:
    name = uuid.uuid4().hex
    return f"{folder}/{name[:2]}/{name}{suffix}"


def thumb_key_of(key: str) -> str:
    """The thumbnail's key for an image's key (they are stored side by side)."""
    return key.removesuffix(".jpg") + "_t.jpg"


def store_processed(done: Processed, sha256: str, folder: str = "reports") -> StoredImage:
    """Store a processed image and its thumbnail under new keys. If a write fails, nothing written
    by this call is left behind and StorageUnavailable is raised."""
    key = new_key(folder)
    thumb_key = thumb_key_of(key)
    try:
        storage.put(key, done.body)
        storage.put(thumb_key, done.thumb)
    except BaseException as exc:
        with contextlib.suppress(Exception):  # the store may be down for deletes too
            storage.delete(key, thumb_key)
        if isinstance(exc, Exception):
            raise StorageUnavailable(type(exc).__name__) from exc
        raise
    return StoredImage(
        key=key,
        thumb_key=thumb_key,
        width=done.width,
        height=done.height,
        size_bytes=len(done.body),
        sha256=sha256,
        phash=done.phash,
        dhash=done.dhash,
    )


def store_image(data: bytes, folder: str = "reports", *, reencode: bool = False) -> StoredImage:
    """Process `data` (raises NotAnImage) and store it: `process` then `store_processed`."""
    return store_processed(
        process(data, reencode=reencode), hashlib.sha256(data).hexdigest(), folder
    )
