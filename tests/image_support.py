"""Pictures for the image tests: a phone-like JPEG carrying GPS EXIF, XMP, IPTC and a comment, a
HEIC file, and a check that a stored JPEG carries no metadata at all."""

from __future__ import annotations

import io
import random

from PIL import ExifTags, Image, ImageDraw

GPS = {
    ExifTags.GPS.GPSLatitudeRef: "N",
    ExifTags.GPS.GPSLatitude: (55.0, 45.0, 21.0),
    ExifTags.GPS.GPSLongitudeRef: "E",
    ExifTags.GPS.GPSLongitude: (37.0, 37.0, 4.0),
}
SECRET_MARKS = (b"Exif\x00\x00", b"PhoneMaker", b"xmpmeta", b"Photoshop 3.0", b"home at last")


def picture(seed: int = 1, size: tuple[int, int] = (1280, 960)) -> Image.Image:
    """A distinct picture whose left quarter is blue (to tell which side is up)."""
    rnd = random.Random(seed)
    image = Image.new("RGB", size, (200, 60, 40))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rnd.randrange(size[0]), rnd.randrange(size[1])
        box = (x, y, x + rnd.randrange(40, 300), y + rnd.randrange(40, 300))
        draw.rectangle(box, fill=tuple(rnd.randrange(256) for _ in range(3)))
    draw.rectangle((0, 0, size[0] // 4, size[1]), fill=(20, 20, 220))
    return image


def exif_with_gps(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Model] = "Model 7"
    exif[ExifTags.Base.DateTime] = "2026:11:27 08:15:00"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(GPS)
    return exif


def _with_app13(jpeg: bytes) -> bytes:
    """Insert an IPTC (Photoshop, APP13) segment after SOI; Pillow cannot write one."""
    body = (
        b"Photoshop 3.0\x00" + b"8BIM\x04\x04\x00\x00\x00\x00\x00\x10" + b"\x1c\x02\x78" + b"x" * 13
    )
    segment = b"\xff\xed" + (len(body) + 2).to_bytes(2, "big") + body
    return jpeg[:2] + segment + jpeg[2:]


def phone_jpeg(
    seed: int = 1, *, orientation: int | None = None, size: tuple[int, int] = (1280, 960)
) -> bytes:
    """A JPEG as a phone camera writes it: GPS and camera EXIF, XMP, IPTC, a comment, and data
    after the end of the image."""
    out = io.BytesIO()
    picture(seed, size).save(
        out,
        "JPEG",
        quality=90,
        exif=exif_with_gps(orientation),
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">home at last</x:xmpmeta>',
        comment=b"home at last",
    )
    return _with_app13(out.getvalue()) + b"vendor trailer: home at last"


def heic_bytes(seed: int = 1, *, orientation: int | None = None) -> bytes:
    """A HEIC file (as an iPhone sends one as a document), made by pillow-heif's encoder."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    picture(seed, (800, 600)).save(out, "HEIF", quality=80, exif=exif_with_gps(orientation))
    return out.getvalue()


def metadata_in(data: bytes) -> list[str]:
    """What metadata a stored JPEG carries (empty: none at all)."""
    found = []
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG", image.format
    for name, _payload in image.applist:
        if name not in ("APP0", "APP2", "APP14"):  # JFIF header, ICC profile, Adobe flag
            found.append(name)
    if image.getexif():
        found.append("EXIF tags")
    found += [key for key in ("exif", "xmp", "comment", "photoshop") if key in image.info]
    found += [mark.decode() for mark in SECRET_MARKS if mark in data]
    if not data.endswith(b"\xff\xd9"):
        found.append("data after the end of the image")
    return found
