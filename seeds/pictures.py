"""Pictures for the demo data, drawn with Pillow: task icons and children's report "photos".

Nothing here tries to look like real photography. The aim is variety: every report photo differs in
scene, colours, layout, lighting and caption, so a page of thumbnails looks like many families'
photos and the perceptual hashes of unrelated photos are far apart (only the deliberate near
duplicates are close). Everything is built from a few C-level Pillow primitives — no per-pixel
Python loops — so hundreds of photos take seconds.

Scenes are laid out in the units of an 800×600 picture (`BASE_SIZE`) and drawn at `PHOTO_SIZE`
through `Canvas`, which scales every coordinate: a smaller photo costs less to draw and to store,
and looks the same. Drawing is deterministic — the same arguments give the same bytes — which is
what makes exact duplicates and the picture cache (`seeds.painter`) possible; change
`PICTURES_VERSION` whenever a change here changes the pictures, so cached ones are drawn again.
"""

from __future__ import annotations

import functools
import io
import random
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

PICTURES_VERSION = 3  # part of the cache key: bump it when the drawings change
BASE_SIZE = (800, 600)  # the units scenes are laid out in
PHOTO_SIZE = (640, 480)  # a report photo still in the queue (a moderate phone photo)
SMALL_PHOTO_SIZE = (400, 300)  # an older one: below thumbnail size, so storing it is cheap
TASK_BASE_SIZE = (640, 480)  # the units a task picture is laid out in
TASK_SIZE = (480, 360)  # what it is drawn at
STAND_IN_SIZE = (40, 30)  # the old shift's photos, deleted by the retention job (see seeds.fill)

Color = tuple[int, int, int]
Box = tuple[float, float, float, float]

# Pillow's built-in font has no Cyrillic letters, so a system font is preferred.
_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/arialbd.ttf",
)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


class Canvas:
    """`ImageDraw` in `BASE_SIZE` units, drawn at `scale`: scenes are laid out once, drawn at any size."""

    def __init__(self, image: Image.Image, scale: float = 1.0) -> None:
        self.draw = ImageDraw.Draw(image)
        self.scale = scale

    def _xy(self, xy: Any) -> Any:
        s = self.scale
        if s == 1.0:
            return xy
        if xy and isinstance(xy[0], tuple | list):
            return [(x * s, y * s) for x, y in xy]
        return [v * s for v in xy]

    def _width(self, width: float) -> int:
        return max(1, round(width * self.scale))

    def rectangle(self, xy: Any, fill: Any = None, outline: Any = None, width: float = 1) -> None:
        self.draw.rectangle(self._xy(xy), fill=fill, outline=outline, width=self._width(width))

    def rounded_rectangle(
        self, xy: Any, radius: float = 0, fill: Any = None, outline: Any = None, width: float = 1
    ) -> None:
        self.draw.rounded_rectangle(
            self._xy(xy),
            radius=radius * self.scale,
            fill=fill,
            outline=outline,
            width=self._width(width),
        )

    def ellipse(self, xy: Any, fill: Any = None, outline: Any = None, width: float = 1) -> None:
        self.draw.ellipse(self._xy(xy), fill=fill, outline=outline, width=self._width(width))

    def line(self, xy: Any, fill: Any = None, width: float = 1) -> None:
        self.draw.line(self._xy(xy), fill=fill, width=self._width(width))

    def polygon(self, xy: Any, fill: Any = None) -> None:
        self.draw.polygon(self._xy(xy), fill=fill)

    def arc(self, xy: Any, start: float, end: float, fill: Any = None, width: float = 1) -> None:
        self.draw.arc(self._xy(xy), start, end, fill=fill, width=self._width(width))

    def chord(self, xy: Any, start: float, end: float, fill: Any = None) -> None:
        self.draw.chord(self._xy(xy), start, end, fill=fill)

    def text(self, xy: tuple[float, float], text: str, size: int, fill: Color) -> None:
        """Russian text of `size` (base units); without a Cyrillic font only the digits are kept
        (e.g. the day number)."""
        scaled = max(6, round(size * self.scale))
        font = cyrillic_font(scaled)
        if font is None:
            text = "".join(ch for ch in text if ch.isdigit() or ch == " ").strip()
            if not text:
                return
            font = ImageFont.load_default(size=scaled)
        self.draw.text(self._xy(xy), text, font=font, fill=fill)


@functools.cache
def _font_file() -> str | None:
    for candidate in _FONT_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    try:
        listed = subprocess.run(
            ["fc-list", ":lang=ru", "file"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    files = sorted(line.split(":")[0].strip() for line in listed.splitlines() if line.strip())
    return files[0] if files else None


def _glyph(font: Font, char: str) -> bytes:
    canvas = Image.new("L", (64, 64))
    ImageDraw.Draw(canvas).text((4, 4), char, font=font, fill=255)
    return canvas.tobytes()


def _renders_cyrillic(font: Font) -> bool:
    # A font without Cyrillic draws every such letter as the same "missing glyph" box.
    return len({_glyph(font, char) for char in "ЖЩД"}) == 3


@functools.cache
def cyrillic_font(size: int) -> Font | None:
    """A font of `size` px that can draw Russian text, or None when the system has none."""
    path = _font_file()
    font: Font | None = None
    if path:
        try:
            font = ImageFont.truetype(path, size)
        except OSError:
            font = None
    if font is None:
        font = ImageFont.load_default(size=size)
    return font if _renders_cyrillic(font) else None


def _text_size(text: str, size: int) -> tuple[int, int]:
    font = cyrillic_font(size) or ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(text)
    return int(right - left), int(bottom - top)


# --- colours -------------------------------------------------------------------------------------

WALLS = (
    (236, 226, 208),
    (214, 229, 236),
    (240, 222, 222),
    (222, 236, 214),
    (245, 240, 225),
    (205, 210, 230),
    (250, 235, 200),
    (230, 230, 230),
    (200, 225, 215),
    (238, 214, 196),
)
FLOORS = (
    (160, 120, 80),
    (190, 150, 105),
    (120, 90, 70),
    (200, 190, 170),
    (140, 140, 145),
    (175, 135, 95),
    (95, 80, 70),
    (210, 200, 190),
)
BRIGHT = (
    (220, 60, 60),
    (60, 140, 220),
    (250, 190, 40),
    (80, 180, 90),
    (160, 90, 200),
    (240, 130, 40),
    (40, 180, 180),
    (230, 90, 160),
    (120, 120, 220),
    (30, 100, 60),
)
SKIN = ((255, 220, 190), (240, 200, 165), (225, 180, 140), (200, 150, 110), (160, 110, 80))


def _jitter(rng: random.Random, color: Color, spread: int = 18) -> Color:
    r, g, b = (min(255, max(0, c + rng.randint(-spread, spread))) for c in color)
    return (r, g, b)


def _darker(color: Color, factor: float = 0.75) -> Color:
    r, g, b = (int(c * factor) for c in color)
    return (r, g, b)


def _bright(rng: random.Random) -> Color:
    return _jitter(rng, rng.choice(BRIGHT), 25)


# --- objects: each draws into a box, so scenes and task icons can share them ---------------------


def _window(d: Canvas, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    sky = _jitter(
        rng, rng.choice(((150, 200, 240), (190, 210, 230), (120, 160, 210), (250, 200, 150)))
    )
    d.rectangle(box, fill=(250, 250, 250))
    d.rectangle((x0 + 8, y0 + 8, x1 - 8, y1 - 8), fill=sky)
    if rng.random() < 0.6:  # a tree or a house behind the glass
        cx = rng.uniform(x0 + 20, x1 - 20)
        d.ellipse((cx - 30, y1 - 70, cx + 30, y1 - 20), fill=_jitter(rng, (70, 140, 70)))
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    d.line((mx, y0, mx, y1), fill=(250, 250, 250), width=6)
    d.line((x0, my, x1, my), fill=(250, 250, 250), width=6)
    if rng.random() < 0.7:  # curtains
        curtain = _bright(rng)
        w = (x1 - x0) * 0.22
        d.rectangle((x0 - 15, y0 - 10, x0 + w, y1 + 20), fill=curtain)
        d.rectangle((x1 - w, y0 - 10, x1 + 15, y1 + 20), fill=curtain)


def _sink(d: Canvas, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    white = _jitter(rng, (245, 245, 245), 8)
    d.rounded_rectangle(
        (x0, y0 + (y1 - y0) * 0.35, x1, y1), radius=18, fill=white, outline=(190, 190, 190), width=3
    )
    d.ellipse((x0 + 20, y0 + (y1 - y0) * 0.42, x1 - 20, y0 + (y1 - y0) * 0.7), fill=(215, 220, 225))
    mx = (x0 + x1) / 2
    d.rectangle((mx - 6, y0, mx + 6, y0 + (y1 - y0) * 0.4), fill=(170, 175, 180))
    d.rectangle((mx - 6, y0, mx + 40, y0 + 12), fill=(170, 175, 180))


def _plate(d: Canvas, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    d.ellipse(box, fill=(250, 250, 250), outline=_darker((230, 230, 230)), width=3)
    pad_x, pad_y = (x1 - x0) * 0.22, (y1 - y0) * 0.22
    rim = _bright(rng) if rng.random() < 0.5 else (235, 235, 235)
    d.ellipse((x0 + pad_x, y0 + pad_y, x1 - pad_x, y1 - pad_y), outline=rim, width=4)
    for _ in range(rng.randint(0, 3)):  # food
        fx = rng.uniform(x0 + pad_x, x1 - pad_x - 20)
        fy = rng.uniform(y0 + pad_y, y1 - pad_y - 14)
        d.ellipse((fx, fy, fx + rng.uniform(14, 34), fy + rng.uniform(10, 22)), fill=_bright(rng))


def _cup(d: Canvas, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    color = _bright(rng)
    d.rectangle((x0, y0, x1 - (x1 - x0) * 0.25, y1), fill=color)
    d.arc((x1 - (x1 - x0) * 0.45, y0 + 8, x1, y1 - 8), -90, 90, fill=color, width=6)


def _toothbrush(d: Canvas, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    _cup(d, (x0, y0 + (y1 - y0) * 0.45, x1, y1), rng)
    for i, dx in enumerate((0.25, 0.45)):
        bx = x0 + (x1 - x0) * dx
        d.line((bx, y0 + 10, bx + 8 * (i - 0.5), y0 + (y1 - y0) * 0.6), fill=_bright(rng), width=7)
        d.rectangle((bx - 5, y0, bx + 5, y0 + 14), fill=(250, 250, 250))


def _bed(d: Canvas, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    wood = _jitter(rng, rng.choice(((150, 100, 60), (200, 170, 130), (240, 240, 240))))
    d.rectangle((x0, y0, x0 + 20, y1), fill=wood)  # headboard
    d.rectangle((x0, y0 + (y1 - y0) * 0.45, x1, y1 - 10), fill=wood)
    blanket = _bright(rng)
    top = y0 + (y1 - y0) * 0.3
    d.rounded_rectangle((x0 + 15, top, x1 - 5, y1 - 25), radius=14, fill=blanket)
    if rng.random() < 0.6:  # a pattern on the blanket
        step = rng.randint(18, 40)
        stripe = _darker(blanket, 0.8)
        for sx in range(int(x0 + 40), int(x1 - 10), step):
            d.line((sx, top + 4, sx, y1 - 30), fill=stripe, width=5)
    d.ellipse(
        (x0 + 25, y0 + (y1 - y0) * 0.12, x0 + 25 + (x1 - x0) * 0.28, top + 30),
        fill=_jitter(rng, (245, 245, 245), 10),
    )


def _flower_pot(d: Canvas, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    w = x1 - x0
    pot = _jitter(rng, rng.choice(((190, 90, 50), (230, 230, 230), (60, 120, 170))))
    d.polygon(
        (
            (x0 + w * 0.15, y1 - (y1 - y0) * 0.35),
            (x1 - w * 0.15, y1 - (y1 - y0) * 0.35),
            (x1 - w * 0.28, y1),
            (x0 + w * 0.28, y1),
        ),
        fill=pot,
    )
    green = _jitter(rng, (60, 150, 70), 25)
    mx = (x0 + x1) / 2
    for _ in range(rng.randint(3, 6)):
        tip = (rng.uniform(x0, x1), rng.uniform(y0, y0 + (y1 - y0) * 0.4))
        d.line((mx, y1 - (y1 - y0) * 0.35, *tip), fill=green, width=5)
        if rng.random() < 0.6:
            d.ellipse((tip[0] - 9, tip[1] - 9, tip[0] + 9, tip[1] + 9), fill=_bright(rng))


def _door(d: Canvas, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    wood = _jitter(rng, rng.choice(((130, 90, 60), (220, 220, 215), (90, 70, 60), (170, 130, 90))))
    d.rectangle(box, fill=wood, outline=_darker(wood), width=4)
    d.rectangle(
        (x0 + 18, y0 + 20, x1 - 18, (y0 + y1) / 2 - 10), outline=_darker(wood, 0.85), width=3
    )
    d.ellipse((x1 - 34, (y0 + y1) / 2, x1 - 20, (y0 + y1) / 2 + 14), fill=(210, 180, 60))


def _shoes(d: Canvas, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    x = x0
    while x < x1 - 60:
        color = _bright(rng) if rng.random() < 0.5 else _jitter(rng, (50, 45, 45))
        w = rng.uniform(55, 80)
        d.chord((x, y0, x + w, y1 + (y1 - y0)), 180, 360, fill=color)
        d.rectangle((x, y1 - 6, x + w, y1), fill=(240, 240, 240))
        x += w + rng.uniform(8, 30)


def _bin_bag(d: Canvas, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    color = _jitter(rng, rng.choice(((40, 40, 45), (60, 90, 160), (70, 130, 70))))
    d.ellipse((x0, y0 + (y1 - y0) * 0.2, x1, y1), fill=color)
    mx = (x0 + x1) / 2
    d.polygon(
        ((mx - 18, y0 + (y1 - y0) * 0.25), (mx + 18, y0 + (y1 - y0) * 0.25), (mx, y0)), fill=color
    )


def _table(d: Canvas, box: Box, rng: random.Random) -> tuple[float, float, float]:
    """A table; returns (left, right, top) of its surface for things to put on it."""
    x0, y0, x1, y1 = box
    wood = _jitter(
        rng, rng.choice(((180, 130, 80), (240, 240, 235), (120, 85, 55), (210, 180, 140)))
    )
    d.rectangle((x0, y0, x1, y0 + 24), fill=wood)
    d.rectangle((x0 + 15, y0 + 24, x0 + 35, y1), fill=_darker(wood))
    d.rectangle((x1 - 35, y0 + 24, x1 - 15, y1), fill=_darker(wood))
    if rng.random() < 0.5:  # a tablecloth
        cloth = _bright(rng)
        d.polygon(
            ((x0 - 10, y0 - 4), (x1 + 10, y0 - 4), (x1 + 25, y0 + 60), (x0 - 25, y0 + 60)),
            fill=cloth,
        )
    return x0, x1, y0


def _shelf(d: Canvas, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    wood = _jitter(rng, (170, 125, 85))
    rows = rng.randint(2, 3)
    row_h = (y1 - y0) / rows
    for r in range(rows):
        base = y0 + row_h * (r + 1)
        d.rectangle((x0, base - 8, x1, base), fill=wood)
        x = x0 + 6
        while x < x1 - 20:  # books, boxes, folded clothes
            w = rng.uniform(10, 34)
            h = rng.uniform(row_h * 0.45, row_h * 0.85)
            d.rectangle((x, base - 8 - h, x + w, base - 8), fill=_bright(rng))
            x += w + rng.uniform(1, 12)


def _wardrobe(d: Canvas, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    wood = _jitter(rng, rng.choice(((200, 170, 130), (245, 245, 240), (120, 90, 70))))
    d.rectangle(box, fill=wood, outline=_darker(wood), width=4)
    mx = (x0 + x1) / 2
    d.line((mx, y0, mx, y1), fill=_darker(wood), width=4)
    d.rectangle((mx - 16, (y0 + y1) / 2 - 20, mx - 10, (y0 + y1) / 2 + 20), fill=(90, 90, 90))
    d.rectangle((mx + 10, (y0 + y1) / 2 - 20, mx + 16, (y0 + y1) / 2 + 20), fill=(90, 90, 90))


def _mirror(d: Canvas, box: Box, rng: random.Random) -> None:
    frame = _jitter(rng, rng.choice(((200, 170, 90), (240, 240, 240), (80, 80, 85))))
    d.rounded_rectangle(box, radius=20, fill=frame)
    x0, y0, x1, y1 = box
    d.rounded_rectangle((x0 + 10, y0 + 10, x1 - 10, y1 - 10), radius=14, fill=(200, 220, 230))
    d.line((x0 + 30, y1 - 40, x0 + 70, y0 + 40), fill=(235, 245, 250), width=8)


def _tiles(d: Canvas, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    tile = _jitter(
        rng, rng.choice(((220, 235, 240), (245, 245, 245), (190, 215, 200), (230, 210, 230)))
    )
    d.rectangle(box, fill=tile)
    step = rng.choice((30, 40, 50, 60))
    grout = _darker(tile, 0.85)
    for x in range(int(x0), int(x1), step):
        d.line((x, y0, x, y1), fill=grout, width=2)
    for y in range(int(y0), int(y1), step):
        d.line((x0, y, x1, y), fill=grout, width=2)


def _rug(d: Canvas, box: Box, rng: random.Random) -> None:
    color = _bright(rng)
    d.ellipse(box, fill=color)
    x0, y0, x1, y1 = box
    d.ellipse((x0 + 25, y0 + 12, x1 - 25, y1 - 12), outline=_darker(color), width=6)


def _toys(d: Canvas, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    for _ in range(rng.randint(2, 5)):
        s = rng.uniform(24, 60)
        x, y = rng.uniform(x0, x1 - s), rng.uniform(y0, y1 - s)
        if rng.random() < 0.5:
            d.ellipse((x, y, x + s, y + s), fill=_bright(rng))
        else:
            d.rectangle((x, y, x + s, y + s), fill=_bright(rng), outline=(40, 40, 40), width=2)


def _shirt(d: Canvas, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    w = x1 - x0
    color = _bright(rng)
    d.polygon(
        (
            (x0 + w * 0.3, y0),
            (x0, y0 + w * 0.25),
            (x0 + w * 0.12, y0 + w * 0.42),
            (x0 + w * 0.24, y0 + w * 0.34),
            (x0 + w * 0.24, y1),
            (x1 - w * 0.24, y1),
            (x1 - w * 0.24, y0 + w * 0.34),
            (x1 - w * 0.12, y0 + w * 0.42),
            (x1, y0 + w * 0.25),
            (x1 - w * 0.3, y0),
        ),
        fill=color,
    )
    d.chord(
        (x0 + w * 0.36, y0 - w * 0.1, x1 - w * 0.36, y0 + w * 0.12), 0, 180, fill=(250, 250, 248)
    )
    for i in range(4):  # buttons
        by = y0 + w * 0.2 + i * (y1 - y0 - w * 0.25) / 4
        d.ellipse((x0 + w / 2 - 5, by, x0 + w / 2 + 5, by + 10), fill=(250, 250, 250))


def _backpack(d: Canvas, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    w = x1 - x0
    color = _bright(rng)
    d.arc((x0 + w * 0.3, y0, x1 - w * 0.3, y0 + w * 0.4), 180, 360, fill=_darker(color), width=8)
    d.rounded_rectangle(
        (x0 + w * 0.12, y0 + w * 0.2, x1 - w * 0.12, y1), radius=int(w * 0.18), fill=color
    )
    d.rounded_rectangle(
        (x0 + w * 0.25, y1 - (y1 - y0) * 0.4, x1 - w * 0.25, y1 - 12),
        radius=10,
        fill=_darker(color, 0.8),
    )


def _table_icon(d: Canvas, box: Box, rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    left, right, top = _table(d, (x0, (y0 + y1) / 2, x1, y1), rng)
    _plate(d, (left + 20, top - 40, left + 100, top + 5), rng)
    _cup(d, (right - 60, top - 50, right - 20, top), rng)


def _child(d: Canvas, box: Box, rng: random.Random) -> None:
    """A simple figure of the child doing the task."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    skin = rng.choice(SKIN)
    head = w * 0.22
    hair = _jitter(rng, rng.choice(((60, 40, 30), (120, 80, 40), (200, 160, 90), (30, 30, 30))))
    d.ellipse((cx - head - 4, y0 - 6, cx + head + 4, y0 + head * 2 - 6), fill=hair)
    d.ellipse((cx - head, y0, cx + head, y0 + head * 2), fill=skin)
    shirt = _bright(rng)
    body_top = y0 + head * 2
    d.rounded_rectangle(
        (cx - w * 0.3, body_top, cx + w * 0.3, y0 + h * 0.65), radius=12, fill=shirt
    )
    pants = _jitter(rng, rng.choice(((40, 60, 120), (60, 60, 60), (120, 80, 60), (200, 60, 90))))
    d.rectangle((cx - w * 0.25, y0 + h * 0.65, cx - 3, y1), fill=pants)
    d.rectangle((cx + 3, y0 + h * 0.65, cx + w * 0.25, y1), fill=pants)
    arm_y = body_top + h * 0.05
    d.line(
        (cx - w * 0.3, arm_y, cx - w * 0.55, arm_y + rng.uniform(-h * 0.2, h * 0.25)),
        fill=shirt,
        width=max(4, int(w * 0.1)),
    )
    d.line(
        (cx + w * 0.3, arm_y, cx + w * 0.55, arm_y + rng.uniform(-h * 0.2, h * 0.25)),
        fill=shirt,
        width=max(4, int(w * 0.1)),
    )


# --- report photo scenes ----------------------------------------------------------------------------


def _floor(d: Canvas, rng: random.Random, horizon: float) -> None:
    w, h = BASE_SIZE
    floor = _jitter(rng, rng.choice(FLOORS), 20)
    d.rectangle((0, horizon, w, h), fill=floor)
    # Boards or tiles seen in perspective: lines converging to a vanishing point.
    vx = rng.uniform(w * 0.2, w * 0.8)
    line = _darker(floor, 0.85)
    for i in range(-6, 14):
        d.line(
            (vx + (i - 4) * 20, horizon, vx + (i - 4) * rng.uniform(110, 150), h),
            fill=line,
            width=2,
        )
    d.rectangle((0, horizon - 6, w, horizon + 2), fill=_darker(floor, 0.7))  # skirting board


def _kitchen(d: Canvas, rng: random.Random, horizon: float) -> None:
    w, _h = BASE_SIZE
    counter_top = horizon - rng.uniform(120, 170)
    tiles_top = counter_top - rng.uniform(80, 140)
    _tiles(d, (0, tiles_top, w, counter_top), rng)
    if tiles_top > 130 and rng.random() < 0.6:
        wx = rng.uniform(60, w - 260)
        _window(d, (wx, 30, wx + rng.uniform(150, 220), tiles_top - 20), rng)
    cabinet = _jitter(
        rng, rng.choice(((240, 240, 235), (170, 200, 170), (200, 170, 140), (120, 140, 170)))
    )
    d.rectangle((0, counter_top, w, horizon), fill=cabinet)
    for x in range(0, w, rng.choice((100, 130, 160))):
        d.line((x, counter_top + 14, x, horizon), fill=_darker(cabinet, 0.8), width=3)
    d.rectangle((0, counter_top - 6, w, counter_top + 14), fill=_jitter(rng, (90, 90, 95), 30))
    sx = rng.uniform(40, w - 260)
    _sink(d, (sx, counter_top - 110, sx + 200, counter_top + 10), rng)
    for _ in range(rng.randint(1, 3)):
        cx = rng.uniform(20, w - 80)
        _cup(d, (cx, counter_top - 60, cx + 45, counter_top - 6), rng)
    left, right, top = _table(
        d, (rng.uniform(40, 260), horizon + 40, rng.uniform(520, 760), 590), rng
    )
    for _ in range(rng.randint(1, 3)):
        px = rng.uniform(left, right - 150)
        _plate(d, (px, top - 50, px + rng.uniform(110, 160), top + 10), rng)


def _bathroom(d: Canvas, rng: random.Random, horizon: float) -> None:
    w, h = BASE_SIZE
    _tiles(d, (0, 0, w, horizon), rng)
    mx = rng.uniform(120, w - 320)
    _mirror(d, (mx, rng.uniform(20, 60), mx + rng.uniform(160, 220), rng.uniform(200, 260)), rng)
    _sink(d, (mx - 20, horizon - 200, mx + 220, horizon - 40), rng)
    _toothbrush(d, (mx + 230, horizon - 310, mx + 290, horizon - 200), rng)
    if rng.random() < 0.6:  # a towel on a hook
        tx = rng.choice((rng.uniform(10, max(11, mx - 140)), rng.uniform(mx + 320, w - 90)))
        d.rectangle((tx, 120, tx + 80, 300), fill=_bright(rng))
    if rng.random() < 0.5:  # the bathtub
        d.rounded_rectangle(
            (rng.uniform(-100, 200), horizon - 60, w + 50, h - 40),
            radius=40,
            fill=(250, 250, 250),
            outline=(200, 200, 200),
            width=4,
        )


def _bedroom(d: Canvas, rng: random.Random, horizon: float) -> None:
    w, _h = BASE_SIZE
    if rng.random() < 0.5:  # wallpaper stripes
        stripe = _darker(_jitter(rng, rng.choice(WALLS)), 0.93)
        step = rng.randint(30, 70)
        for x in range(0, w, step * 2):
            d.rectangle((x, 0, x + step, horizon), fill=stripe)
    wx = rng.uniform(40, w - 260)
    _window(d, (wx, 40, wx + rng.uniform(170, 240), 40 + rng.uniform(160, 220)), rng)
    if rng.random() < 0.6:
        ox = rng.choice((rng.uniform(-60, 20), rng.uniform(w - 220, w - 120)))
        _wardrobe(d, (ox, horizon - 330, ox + rng.uniform(160, 220), horizon + 10), rng)
    bx = rng.uniform(20, 260)
    _bed(d, (bx, horizon - 150, bx + rng.uniform(380, 520), horizon + rng.uniform(90, 140)), rng)
    _rug(d, (rng.uniform(100, 400), 500, rng.uniform(500, 780), 590), rng)


def _room(d: Canvas, rng: random.Random, horizon: float) -> None:
    w, _h = BASE_SIZE
    wx = rng.uniform(30, w - 300)
    top, bottom = 40, horizon - rng.uniform(120, 180)
    _window(d, (wx, top, wx + rng.uniform(200, 280), bottom), rng)
    for _ in range(rng.randint(1, 3)):  # flowers on the sill
        fx = rng.uniform(wx, wx + 180)
        _flower_pot(d, (fx, bottom - 110, fx + 70, bottom + 5), rng)
    d.rectangle((wx - 20, bottom, wx + 300, bottom + 14), fill=(245, 245, 245))
    sx = rng.choice((rng.uniform(0, 20), rng.uniform(w - 240, w - 180)))
    _shelf(d, (sx, 60, sx + rng.uniform(160, 220), horizon - 20), rng)
    if rng.random() < 0.6:  # a sofa
        sofa = _bright(rng)
        ox = rng.uniform(150, 400)
        d.rounded_rectangle((ox, horizon - 90, ox + 330, horizon + 60), radius=24, fill=sofa)
        d.rounded_rectangle(
            (ox + 20, horizon - 150, ox + 310, horizon - 60), radius=20, fill=_darker(sofa, 0.85)
        )
    _rug(d, (rng.uniform(60, 300), 470, rng.uniform(500, 780), 585), rng)
    _toys(d, (60, 480, 740, 590), rng)


def _hall(d: Canvas, rng: random.Random, horizon: float) -> None:
    w, _h = BASE_SIZE
    dx = rng.uniform(30, w - 250)
    _door(d, (dx, horizon - rng.uniform(360, 420), dx + rng.uniform(170, 210), horizon), rng)
    hx = rng.choice(
        (rng.uniform(0, max(1, dx - 200)), rng.uniform(min(dx + 230, w - 200), w - 190))
    )
    d.rectangle((hx, 90, hx + 190, 100), fill=(120, 90, 60))  # coat hooks with coats
    for i in range(rng.randint(1, 3)):
        cx = hx + 15 + i * 60
        d.rounded_rectangle((cx, 100, cx + 55, rng.uniform(230, 300)), radius=12, fill=_bright(rng))
    _shoes(d, (rng.uniform(0, 150), horizon + 60, rng.uniform(450, 780), horizon + 110), rng)
    if rng.random() < 0.6:
        bx = rng.uniform(500, 700)
        _bin_bag(d, (bx, horizon - 20, bx + 90, horizon + 110), rng)
    if rng.random() < 0.4:
        mx = rng.uniform(20, 600)
        _mirror(d, (mx, 60, mx + 120, 260), rng)


_SCENES = {
    "kitchen": _kitchen,
    "bathroom": _bathroom,
    "bedroom": _bedroom,
    "room": _room,
    "hall": _hall,
}


def _lighting(image: Image.Image, rng: random.Random) -> Image.Image:
    """A soft light gradient and sensor noise, so flat drawings look a little more like photos."""
    factor = rng.uniform(0.4, 0.8)
    shade = image.point([int(v * factor) for v in range(256)] * 3)
    # The gradient is made small and scaled up bilinearly: it is smooth anyway, and a full-size
    # resize with a better filter would cost more than drawing the whole scene.
    mask = Image.linear_gradient("L").rotate(rng.uniform(0, 360), Image.Resampling.BILINEAR)
    mask = mask.crop((64, 64, 192, 192))  # the middle only: no empty corners from the rotation
    low = rng.randint(40, 120)
    mask = mask.point(lambda v: low + v * (255 - low) // 255).resize(
        image.size, Image.Resampling.BILINEAR
    )
    lit = Image.composite(image, shade, mask)
    # Seeded noise (not Image.effect_noise, which uses C's rand()): re-drawing a photo must give
    # the very same bytes, which is how the exact duplicates are made.
    small = (image.width // 4, image.height // 4)
    noise = Image.frombytes("L", small, rng.randbytes(small[0] * small[1]))
    noise = noise.resize(image.size, Image.Resampling.BILINEAR).convert("RGB")
    return Image.blend(lit, noise, 0.05)


def _caption(d: Canvas, rng: random.Random, text: str) -> None:
    """A sticker in a corner with the day, as families sometimes add in a phone editor."""
    size = rng.randint(28, 40)
    tw, th = _text_size(text, size)
    w, h = BASE_SIZE
    x = rng.choice((20, w - tw - 50))
    y = rng.choice((20, h - th - 50))
    bg = _bright(rng)
    d.rounded_rectangle((x - 12, y - 10, x + tw + 14, y + th + 18), radius=12, fill=bg)
    d.text((x, y), text, size, (255, 255, 255))


def render_photo(
    seed: int, scene: str, caption: str, size: tuple[int, int] = PHOTO_SIZE
) -> Image.Image:
    """The report photo number `seed` of a `scene`; the same arguments give the same picture."""
    rng = random.Random(seed)
    scale = size[0] / BASE_SIZE[0]
    wall = _jitter(rng, rng.choice(WALLS), 12)
    image = Image.new("RGB", size, wall)
    d = Canvas(image, scale)
    horizon = rng.uniform(300, 450)
    _floor(d, rng, horizon)
    _SCENES.get(scene, _room)(d, rng, horizon)
    if rng.random() < 0.75:
        cx = rng.uniform(80, 620)
        figure = rng.uniform(110, 170)
        _child(d, (cx, horizon - figure * 1.3, cx + figure, horizon + figure * 1.1), rng)
    if rng.random() < 0.5:  # the same room seen from the other side
        image = ImageOps.mirror(image)
    image = _lighting(image, rng)
    if caption:
        _caption(Canvas(image, scale), rng, caption)
    return image


def jpeg(image: Image.Image, quality: int = 82) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def report_photo(seed: int, scene: str, caption: str, size: tuple[int, int] = PHOTO_SIZE) -> bytes:
    """JPEG bytes of a report photo; deterministic, so the same arguments give an exact duplicate."""
    return jpeg(render_photo(seed, scene, caption, size))


def near_duplicate(
    seed: int, scene: str, caption: str, size: tuple[int, int] = PHOTO_SIZE
) -> bytes:
    """The same scene as `report_photo(seed, ...)`, as if re-saved by another phone.

    Smaller and at another JPEG quality: different bytes (and SHA-256), nearly the same perceptual
    hash — well within the near-duplicate limits for every seed tried (a crop or a brighter copy
    pushes a few over them).
    """
    image = render_photo(seed, scene, caption, size)
    w, h = image.size
    return jpeg(image.resize((w * 4 // 5, h * 4 // 5), Image.Resampling.BILINEAR), quality=70)


def stand_in_photo(seed: int) -> bytes:
    """A tiny, distinct JPEG: the photos of the long-finished demo shift, which exist only until the
    retention job deletes them (seeds.fill), so drawing a scene for them would be wasted."""
    rng = random.Random(seed)
    w, h = STAND_IN_SIZE
    image = Image.frombytes("RGB", (w // 4, h // 4), rng.randbytes(3 * (w // 4) * (h // 4)))
    return jpeg(image.resize(STAND_IN_SIZE, Image.Resampling.BILINEAR), quality=70)


_ICONS = {
    "toothbrush": _toothbrush,
    "bed": _bed,
    "sink": _sink,
    "flower": _flower_pot,
    "plate": _plate,
    "mirror": _mirror,
    "bin": _bin_bag,
    "shelf": _shelf,
    "table": _table_icon,
    "rug": _rug,
    "shirt": _shirt,
    "wardrobe": _wardrobe,
    "shoes": _shoes,
    "cup": _cup,
    "backpack": _backpack,
    "door": _door,
    "toys": _toys,
    "child": _child,
}


def task_picture(title: str, icon: str, index: int) -> bytes:
    """A task's picture: an icon-like object (see `_ICONS`) in a circle, and the title below."""
    rng = random.Random(1000 + index)
    w, _h = TASK_BASE_SIZE
    background = _jitter(rng, rng.choice(WALLS), 10)
    image = Image.new("RGB", TASK_SIZE, background)
    d = Canvas(image, TASK_SIZE[0] / TASK_BASE_SIZE[0])
    accent = _bright(rng)
    d.ellipse((w / 2 - 150, 30, w / 2 + 150, 330), fill=accent)
    d.ellipse((w / 2 - 135, 45, w / 2 + 135, 315), fill=(250, 250, 248))
    _ICONS.get(icon, _toys)(d, (w / 2 - 90, 90, w / 2 + 90, 270), rng)
    lines = textwrap.wrap(title, width=22)[:2]
    size = 34 if len(lines) == 1 else 30
    y = 350 if len(lines) == 1 else 340
    for line in lines:
        tw, th = _text_size(line, size)
        d.text(((w - tw) / 2, y), line, size, _darker(accent, 0.6))
        y += th + 12
    return jpeg(image, quality=92)
