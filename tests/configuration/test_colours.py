"""WCAG 2.1 contrast arithmetic for brand colours."""

from __future__ import annotations

import itertools

import pytest

from app.configuration import colours

GRID = [f"#{r}{r}{g}{g}{b}{b}" for r, g, b in itertools.product("0479bdf", repeat=3)]


@pytest.mark.parametrize(
    ("a", "b", "ratio"),
    [
        ("#ffffff", "#000000", 21.0),
        ("#000000", "#ffffff", 21.0),
        ("#ffffff", "#ffffff", 1.0),
        ("#ffffff", "#777777", 4.48),  # the classic "just fails AA" grey
        ("#ffffff", "#767676", 4.54),  # ...and the one that passes
        ("#ffffff", "#1f4ed8", 6.69),
        ("#000000", "#ff0000", 5.25),
        ("#ffffff", "#0000ff", 8.59),
        ("#ffffff", "#4f46e5", 6.29),
    ],
)
def test_known_ratios(a, b, ratio):
    assert colours.contrast(a, b) == pytest.approx(ratio, abs=0.01)


def test_luminance():
    assert colours.luminance("#ffffff") == pytest.approx(1.0)
    assert colours.luminance("#000000") == 0.0
    assert colours.luminance("#FF0000") == pytest.approx(0.2126)
    assert colours.luminance("#808080") == pytest.approx(0.2159, abs=1e-4)


def test_is_hex_colour():
    assert colours.is_hex_colour("#1f4ed8")
    assert colours.is_hex_colour("#ABCDEF")
    for bad in ("1f4ed8", "#1f4ed", "#1f4ed8a", "#gggggg", "red", "", "#1f4ed8;}"):
        assert not colours.is_hex_colour(bad)


def test_text_on():
    assert colours.text_on("#000000") == colours.WHITE
    assert colours.text_on("#1f4ed8") == colours.WHITE
    assert colours.text_on("#ffff00") == colours.INK
    assert colours.text_on("#ffffff") == colours.INK


def test_readable_on_keeps_good_colours_and_fixes_others():
    assert colours.readable_on("#1f4ed8") == "#1f4ed8"
    fixed = colours.readable_on("#777777")
    assert fixed != "#777777"
    assert colours.contrast(fixed, colours.WHITE) >= 4.5
    assert colours.luminance(fixed) < colours.luminance("#777777")  # darkened, not replaced
    on_dark = colours.readable_on("#333333", "#000000")
    assert colours.contrast(on_dark, "#000000") >= 4.5


def test_fill_and_ink_always_reach_aa():
    for colour in GRID:  # 343 colours across the cube
        fill, text = colours.fill(colour)
        assert colours.contrast(fill, text) >= colours.AA_NORMAL, colour
        ink = colours.readable_on(colour)
        assert colours.contrast(ink, colours.WHITE) >= colours.AA_NORMAL, colour


def test_palette():
    palette = colours.palette("#4f46e5", "#0e7490")
    assert set(palette) == {
        "--brand",
        "--brand-fill",
        "--brand-text",
        "--brand-ink",
        "--accent",
        "--accent-fill",
        "--accent-text",
        "--accent-ink",
    }
    assert palette["--brand"] == "#4f46e5"
    assert palette["--brand-fill"] == "#4f46e5"
    assert palette["--brand-text"] == colours.WHITE
