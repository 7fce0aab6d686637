"""store_image's JPEG fast path (draft-mode thumbnail): sizes, orientation, bad data."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from app import images, storage
from app.errors import NotAnImage
from tests import factories


def _jpeg(size, orientation: int | None = None) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    image.paste((20, 20, 220), (0, 0, size[0] // 4, size[1]))  # a blue band on the left
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    image.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def test_jpeg_kept_as_sent_with_full_size_and_small_thumb(settings):
    data = _jpeg((1280, 960))
    stored = images.store_image(data)
    assert storage.get(stored.key) == data
    assert (stored.width, stored.height) == (1280, 960)
    thumb = Image.open(io.BytesIO(storage.get(stored.thumb_key)))
    assert max(thumb.size) <= 480 and thumb.size[0] > thumb.size[1]


def test_exif_rotation_is_applied(settings):
    stored = images.store_image(_jpeg((1280, 960), orientation=6))
    assert (stored.width, stored.height) == (960, 1280)
    thumb = Image.open(io.BytesIO(storage.get(stored.thumb_key)))
    assert thumb.size[1] > thumb.size[0]


def test_same_hashes_as_the_full_decode_within_tolerance(settings):
    data = factories.jpeg_bytes(seed=3, size=(1280, 960))
    fast = images.store_image(data)
    slow = images.store_image(data, reencode=True)
    assert images.hamming(fast.phash, slow.phash) <= 4


@pytest.mark.parametrize("cut", [100, 2000])
def test_truncated_jpeg_is_not_an_image(settings, cut):
    with pytest.raises(NotAnImage):
        images.store_image(_jpeg((640, 480))[:cut])
