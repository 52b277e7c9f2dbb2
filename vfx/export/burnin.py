"""Burn-ins and the slate of a dailies review, drawn into display-referred pictures.

Text is drawn with Pillow's bundled font (``ImageFont.load_default(size=...)``, no system fonts), so a review
looks the same on a fresh farm node as on an artist's machine. Each label sits on a darkened box in one of six
places (the corners and the middles of the top and bottom edges), as in RV or a Nuke dailies template; the
``SYNTHETIC FACE`` tag is white on an opaque red box at the top centre, where no one can miss it.

Convention:
    - pictures are (H, W, 3) float32 display code values in [0, 1] (after the OCIO display/view), top row first
    - boxes are (y0, x0, y1, x1) pixels, ends exclusive, origin top-left
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["SYNTHETIC_TAG", "BurnIn", "burn_in_boxes", "draw_burn_ins", "slate_frame"]

SYNTHETIC_TAG = "SYNTHETIC FACE"
"""The tag burnt into every review frame and onto the slate."""

Place = Literal["top-left", "top", "top-right", "bottom-left", "bottom", "bottom-right"]

_ALERT_RED = np.array([0.78, 0.06, 0.06], np.float32)
_BOX_DARKEN = 0.35  # a label's box keeps 35 % of the picture under it: readable over white, still shows the plate
_TEXT = np.array([1.0, 1.0, 1.0], np.float32)


@dataclass(frozen=True)
class BurnIn:
    """One label burnt into the picture.

    Attributes:
        text: what it says (ASCII and Latin-1 are safe with the bundled font).
        place: where: a corner, or the middle of the top or bottom edge.
        alert: white on opaque red (the synthetic-face tag) instead of white on a darkened box.
    """

    text: str
    place: Place
    alert: bool = False


@functools.lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _text_box(text: str, size: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of ``text`` drawn at the origin; top and bottom are the font's ascender and
    descender lines, so every label of one size gets a box of the same height."""
    font = _font(size)
    left, _, right, _ = font.getbbox(text or " ")
    ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (size, 0)
    return int(left), 0, int(right), int(ascent + descent)


#: Which labels give way first when a picture is too small for all of them at the smallest font.
_DROP_ORDER = ("top-right", "top-left", "bottom-left", "bottom-right", "bottom")
_MIN_SIZE = 6


def _fits(labels: list[BurnIn], size: int, width: int) -> bool:
    pad, margin = max(2, size // 4), max(2, size // 2)
    for row in ("top", "bottom"):
        widths = {lab.place.removeprefix(row).strip("-") or "centre": (lambda b: b[2] - b[0] + 2 * pad)(
            _text_box(lab.text, size)) for lab in labels if lab.place.startswith(row)}
        sides = max(widths.get("left", 0), widths.get("right", 0))
        if "centre" in widths:  # centred: each side of it needs room for the wider corner label
            need = widths["centre"] + 2 * (sides + 2 * margin if sides else margin)
        else:
            need = widths.get("left", 0) + widths.get("right", 0) + 3 * margin
        if need > width:
            return False
    return True


def _layout(labels: list[BurnIn], height: int, width: int) -> tuple[int, list[tuple[BurnIn, tuple[int, int, int, int]]]]:
    """Font size and the labels drawn with their boxes: the font is ~1/32 of the height (at least 8 px), smaller
    (down to 6 px) when a row would not fit; below the smallest font, labels give way in :data:`_DROP_ORDER` (the alert tag never)."""
    size = max(8, round(height / 32))
    while size > _MIN_SIZE and not _fits(labels, size, width):
        size -= 1
    kept = list(labels)
    for place in _DROP_ORDER:
        if _fits(kept, size, width):
            break
        kept = [lab for lab in kept if lab.place != place or lab.alert]
    pad, margin = max(2, size // 4), max(2, size // 2)
    placed = []
    for label in kept:
        left, top, right, bottom = _text_box(label.text, size)
        box_h, box_w = bottom - top + 2 * pad, right - left + 2 * pad
        y0 = margin if label.place.startswith("top") else height - margin - box_h
        if label.place.endswith("left"):
            x0 = margin
        elif label.place.endswith("right"):
            x0 = width - margin - box_w
        else:
            x0 = (width - box_w) // 2
        y0, x0 = max(0, y0), max(0, x0)
        placed.append((label, (y0, x0, min(height, y0 + box_h), min(width, x0 + box_w))))
    return size, placed


def burn_in_boxes(labels: list[BurnIn], height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Where :func:`draw_burn_ins` draws labels in a picture of (height, width): (y0, x0, y1, x1) each, for the
    labels that fit (on a picture too small for all of them, the version, shot, persona, timecode and frame give
    way in that order; ``SYNTHETIC FACE`` always stays).

    Outside these boxes the picture is left bit-identical.
    """
    return [box for _, box in _layout(labels, height, width)[1]]


def draw_burn_ins(picture: np.ndarray, labels: list[BurnIn]) -> np.ndarray:
    """Burn ``labels`` into a display-referred picture.

    Args:
        picture: (H, W, 3) float32 display code values in [0, 1]; not modified.
        labels: what to draw where; see :class:`BurnIn`.

    Returns:
        A new (H, W, 3) float32 picture; pixels outside :func:`burn_in_boxes` are the input's, bit for bit.

    Convention:
        - display-referred values, drawn after the view transform so the text is white on every display
    """
    out = np.array(picture, dtype=np.float32, copy=True)
    height, width = out.shape[:2]
    size, placed = _layout(labels, height, width)
    font = _font(size)
    pad = max(2, size // 4)
    for label, (y0, x0, y1, x1) in placed:
        if y1 <= y0 or x1 <= x0:
            continue
        left, top, _, _ = _text_box(label.text, size)
        mask = Image.new("L", (x1 - x0, y1 - y0), 0)
        ImageDraw.Draw(mask).text((pad - left, pad - top), label.text, fill=255, font=font)
        alpha = (np.asarray(mask, np.float32) / 255.0)[:, :, None]
        region = out[y0:y1, x0:x1]
        under = np.broadcast_to(_ALERT_RED, region.shape) if label.alert else region * _BOX_DARKEN
        out[y0:y1, x0:x1] = under * (1.0 - alpha) + _TEXT * alpha
    return out


def _wrap(text: str, size: int, width: int) -> list[str]:
    """``text`` broken into lines no wider than ``width`` pixels at font ``size``."""
    font = _font(size)
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def slate_frame(height: int, width: int, fields: list[tuple[str, str]], notice: str) -> np.ndarray:
    """The slate: a dark card listing ``fields`` (name, value), the ``SYNTHETIC FACE`` tag and ``notice``.

    Args:
        height, width: the movie's picture size.
        fields: e.g. ``[("SHOT", "sh010"), ("VERSION", "sh010_swap 1a2b3c4d"), ...]``, top to bottom.
        notice: the synthetic-face notice, wrapped to the card's width.

    Returns:
        (H, W, 3) float32 display code values in [0, 1].

    Convention:
        - display-referred (no view transform applies to it); the font shrinks until everything fits
    """
    size = max(6, round(height / 18))
    margin = max(4, width // 16)
    while True:
        line_h = round(size * 1.45)
        key_w = max((_font(size).getlength(k) for k, _ in fields), default=0) + size
        notice_lines = _wrap(notice, max(6, round(size * 0.7)), width - 2 * margin)
        total = line_h * (len(fields) + 2) + round(size * 0.7 * 1.4) * len(notice_lines)
        widest = max((key_w + _font(size).getlength(v) for _, v in fields), default=0)
        if (total <= height - 2 * margin // 2 and widest <= width - 2 * margin) or size <= 6:
            break
        size -= 1
    card = Image.new("RGB", (width, height), (30, 30, 32))
    draw = ImageDraw.Draw(card)
    font, small = _font(size), _font(max(6, round(size * 0.7)))
    y = max(2, (height - total) // 2)
    for key, value in fields:
        draw.text((margin, y), key, fill=(150, 150, 155), font=font)
        draw.text((margin + key_w, y), value, fill=(240, 240, 240), font=font)
        y += line_h
    y += line_h // 3
    left, top, right, bottom = font.getbbox(SYNTHETIC_TAG)
    pad = max(2, size // 4)
    red = tuple(int(round(c * 255)) for c in _ALERT_RED)
    draw.rectangle((margin, y, margin + right - left + 2 * pad, y + bottom - top + 2 * pad), fill=red)
    draw.text((margin + pad - left, y + pad - top), SYNTHETIC_TAG, fill=(255, 255, 255), font=font)
    y += bottom - top + 2 * pad + line_h // 3
    for line in notice_lines:
        draw.text((margin, y), line, fill=(220, 220, 220), font=small)
        y += round(size * 0.7 * 1.4)
    return np.asarray(card, np.float32) / 255.0
