"""WCAG 2.1 contrast arithmetic for merchant brand colours.

Merchants pick any ``#RRGGBB``; Portico picks the text colour on top of it (white or near-black,
whichever contrasts more) and, where the brand colour is used as text on the page background,
darkens or lightens it just enough to reach AA (4.5:1).
"""

from __future__ import annotations

import re

HEX_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
AA_NORMAL = 4.5
WHITE = "#ffffff"
INK = "#111827"


def is_hex_colour(value: str) -> bool:
    return bool(HEX_RE.match(value))


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in _rgb(hex_colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    la, lb = luminance(a), luminance(b)
    light, dark = max(la, lb), min(la, lb)
    return (light + 0.05) / (dark + 0.05)


def text_on(background: str) -> str:
    """White or ink, whichever reads better on ``background``."""
    return WHITE if contrast(WHITE, background) >= contrast(INK, background) else INK


def readable_on(colour: str, background: str = WHITE, target: float = AA_NORMAL) -> str:
    """``colour`` moved towards black (or white, on dark backgrounds) until it reaches ``target``
    contrast against ``background``. Returns ``colour`` unchanged when it already does."""
    if contrast(colour, background) >= target:
        return colour
    towards = (0, 0, 0) if luminance(background) > 0.5 else (255, 255, 255)
    r, g, b = _rgb(colour)
    for step in range(1, 101):
        t = step / 100
        candidate = _hex(
            (r + (towards[0] - r) * t, g + (towards[1] - g) * t, b + (towards[2] - b) * t)
        )
        if contrast(candidate, background) >= target:
            return candidate
    return INK if towards == (0, 0, 0) else WHITE


def fill(colour: str) -> tuple[str, str]:
    """A background close to ``colour`` and the text colour to put on it, together at least AA.
    Mid-tones where neither white nor ink reaches 4.5:1 are darkened until white text does."""
    text = text_on(colour)
    if contrast(text, colour) >= AA_NORMAL:
        return colour, text
    return readable_on(colour, WHITE), WHITE


def palette(brand: str, accent: str) -> dict[str, str]:
    """The CSS custom properties a configuration's colours produce."""
    brand_fill, brand_text = fill(brand)
    accent_fill, accent_text = fill(accent)
    return {
        "--brand": brand,
        "--brand-fill": brand_fill,
        "--brand-text": brand_text,
        "--brand-ink": readable_on(brand),
        "--accent": accent,
        "--accent-fill": accent_fill,
        "--accent-text": accent_text,
        "--accent-ink": readable_on(accent),
    }
