"""images.process/store_image: one decode, upright, no metadata kept, hashes, bad data."""

from __future__ import annotations

import io

import imagehash
import pytest
from PIL import Image, ImageOps

from app import images, storage
from app.errors import NotAnImage
from tests import factories
from tests.image_support import heic_bytes, metadata_in, phone_jpeg, picture


def _jpeg(size, orientation: int | None = None, **save) -> bytes:
    image = picture(3, size)
    out = io.BytesIO()
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        save["exif"] = exif.tobytes()
    image.save(out, "JPEG", quality=90, **save)
    return out.getvalue()


def _pixels(data: bytes) -> bytes:
    return Image.open(io.BytesIO(data)).convert("RGB").tobytes()


def test_upright_jpeg_without_metadata_is_stored_as_sent(settings):
    """What Telegram sends for a photo: kept byte for byte, with the full size and a small thumb."""
    data = _jpeg((1280, 960))
    stored = images.store_image(data)
    assert storage.get(stored.key) == data
    assert (stored.width, stored.height, stored.size_bytes) == (1280, 960, len(data))
    thumb = Image.open(io.BytesIO(storage.get(stored.thumb_key)))
    assert thumb.size == (480, 360)
    assert metadata_in(storage.get(stored.thumb_key)) == []


def test_metadata_is_cut_losslessly_from_an_upright_jpeg(settings):
    data = phone_jpeg(seed=5)
    assert "APP1" in [name for name, _ in Image.open(io.BytesIO(data)).applist]
    stored = images.store_image(data)
    body = storage.get(stored.key)
    assert metadata_in(body) == []
    assert _pixels(body) == _pixels(data)  # the image data itself is untouched
    assert len(body) < len(data)
    assert metadata_in(storage.get(stored.thumb_key)) == []
    # the SHA-256 is that of what the family sent, not of what is stored
    import hashlib

    assert stored.sha256 == hashlib.sha256(data).hexdigest()


def test_rotated_jpeg_is_turned_upright_and_reencoded_without_metadata(settings):
    data = phone_jpeg(seed=6, orientation=6)  # the camera was held upright: rotate 90° clockwise
    stored = images.store_image(data)
    body = storage.get(stored.key)
    assert metadata_in(body) == []
    upright = Image.open(io.BytesIO(body))
    assert upright.size == (960, 1280) == (stored.width, stored.height)
    assert upright.getpixel((480, 40))[2] > 150  # the blue left band is now on top
    thumb = Image.open(io.BytesIO(storage.get(stored.thumb_key)))
    assert thumb.size == (360, 480)
    # hashes are those of the upright picture
    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    assert images.hamming(stored.phash, images.perceptual_hashes(reference)[0]) <= 4


def test_hashes_are_imagehash_values(settings):
    """pHash and dHash are imagehash's algorithms (computed without scipy)."""
    for seed in range(5):
        image = picture(seed, (480, 360))
        phash, dhash = images.perceptual_hashes(image)
        for mine, theirs in ((phash, imagehash.phash(image)), (dhash, imagehash.dhash(image))):
            expected = int(str(theirs), 16)
            assert mine == (expected - (1 << 64) if expected >= 1 << 63 else expected)


def test_same_hashes_as_the_full_decode_within_tolerance(settings):
    data = factories.jpeg_bytes(seed=3, size=(1280, 960))
    fast = images.store_image(data)
    slow = images.store_image(data, reencode=True)
    assert images.hamming(fast.phash, slow.phash) <= 4


@pytest.mark.parametrize(("size", "thumb"), [((4032, 3024), (480, 360)), ((300, 200), (300, 200))])
def test_large_and_small_jpegs(settings, size, thumb):
    stored = images.store_image(_jpeg(size))
    assert (stored.width, stored.height) == size
    assert Image.open(io.BytesIO(storage.get(stored.thumb_key))).size == thumb


def test_cmyk_and_grey_jpegs_are_accepted(settings):
    cmyk = io.BytesIO()
    picture(4, (640, 480)).convert("CMYK").save(cmyk, "JPEG")
    grey = io.BytesIO()
    picture(4, (640, 480)).convert("L").save(grey, "JPEG")
    for data in (cmyk.getvalue(), grey.getvalue()):
        stored = images.store_image(data)
        assert (stored.width, stored.height) == (640, 480)
        assert Image.open(io.BytesIO(storage.get(stored.key))).mode in ("RGB", "L")


def test_heic_is_stored_as_jpeg_without_metadata(settings):
    stored = images.store_image(heic_bytes(seed=2))
    body = storage.get(stored.key)
    assert body.startswith(b"\xff\xd8") and metadata_in(body) == []
    assert (stored.width, stored.height) == (800, 600)


@pytest.mark.parametrize("cut", [100, 2000, -200])
def test_truncated_jpeg_is_not_an_image(settings, cut):
    with pytest.raises(NotAnImage):
        images.store_image(_jpeg((640, 480))[:cut])


@pytest.mark.parametrize(
    "data",
    [b"\xff\xd8\xff\xe1\x00", b"\xff\xd8garbage", b"\xff\xd8\xff\xd9", b"GIF89a" + b"\x00" * 40],
)
def test_broken_or_other_files_are_not_images(settings, data):
    with pytest.raises(NotAnImage):
        images.process(data)


def test_a_gif_is_not_accepted(settings):
    out = io.BytesIO()
    picture(1, (64, 48)).save(out, "GIF")
    with pytest.raises(NotAnImage):
        images.process(out.getvalue())
