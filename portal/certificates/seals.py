"""Seal impressions (印影): a round red seal with the family name in vertical writing, made with
Pillow for the demo city and for tests (a counter registers a scanned impression in real life)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

from portal.certificates.pdf import FONTS, MINCHO

RED = (200, 30, 35, 255)


def impression_png(name: str, size: int = 240) -> bytes:
    """A round seal (丸印) of ``name`` (1-4 characters), top to bottom, on a transparent ground."""
    text = (name or "印").strip()[:4]
    image = Image.new("RGBA", (size, size), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    border = max(size // 24, 3)
    draw.ellipse((border, border, size - border, size - border), outline=RED, width=border)
    path = next(p for p in FONTS[MINCHO] if p.exists())
    inner = size - 6 * border
    step = inner / max(len(text), 2)
    font = ImageFont.truetype(str(path), int(step * 0.92))
    top = (size - step * len(text)) / 2
    for i, ch in enumerate(text):
        draw.text((size / 2, top + step * (i + 0.5)), ch, fill=RED, font=font, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
