"""The certificate PDF: reportlab with IPAex fonts embedded, the city's seal drawn in vector, the
issue date in 和暦, serial and verification code, a verification QR code; then ``sign.sign_pdf``.

The renderer gets a ``Document`` (plain data the service assembled for one resident) and nothing
else: it never reads the database, so one issuance cannot pick up another's data."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

import segno
from reportlab.lib.colors import Color, black, white
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from portal.i18n import wareki

GOTHIC, MINCHO = "IPAexGothic", "IPAexMincho"
FONTS = {
    GOTHIC: (
        Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"),
        Path("/usr/share/fonts/truetype/fonts-japanese-gothic.ttf"),
    ),
    MINCHO: (
        Path("/usr/share/fonts/opentype/ipaexfont-mincho/ipaexm.ttf"),
        Path("/usr/share/fonts/truetype/fonts-japanese-mincho.ttf"),
    ),
}
TILE_W, TILE_H = 150, 36  # points
SEAL_RED = Color(0.80, 0.10, 0.12)
PATTERN = Color(0.90, 0.93, 0.97)
FOOTER_TOP = 42 * mm  # the QR code and serial block below it
STATEMENT_HEIGHT = 12 * mm + 27 * mm  # the gap, the statement, the date and the mayor's seal
TITLES = {"residence": "住民票の写し", "seal": "印鑑登録証明書", "income": "所得・課税証明書"}


_fonts_lock = threading.Lock()


def fonts() -> tuple[str, str]:
    with _fonts_lock:  # kiosks render at once; register each font once
        for name, paths in FONTS.items():
            if name not in pdfmetrics.getRegisteredFontNames():
                path = next((p for p in paths if p.exists()), None)
                if path is None:
                    raise RuntimeError(f"{name} is not installed (Debian package fonts-ipaexfont)")
                pdfmetrics.registerFont(TTFont(name, str(path)))
    return GOTHIC, MINCHO


@dataclass
class Document:
    """What one certificate prints. ``rows``: (label, value) lines; ``people``: for 住民票, one
    list of (label, value) per person; ``seal_png``: the registered seal's impression."""

    kind: str
    city_ja: str
    serial: str
    verify_code: str
    verify_url: str
    issued_on: date
    copies: int
    terminal: str | None
    rows: list[tuple[str, str]] = field(default_factory=list)
    people: list[list[tuple[str, str]]] = field(default_factory=list)
    seal_png: bytes | None = None
    statement: str = ""
    notes: list[str] = field(default_factory=list)


@lru_cache(maxsize=4)
def _pattern_tile(city: str) -> bytes:
    """One tile of the background pattern as an image (two staggered rows of "<city> 原本"), so the
    pattern is graphics, not text a reader or a copy-paste would pick up."""
    from PIL import Image, ImageDraw, ImageFont

    scale = 4  # pixels per point
    image = Image.new("RGB", (TILE_W * scale, TILE_H * scale), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(next(p for p in FONTS[GOTHIC] if p.exists())), 9 * scale)
    colour = tuple(int(c * 255) for c in (PATTERN.red, PATTERN.green, PATTERN.blue))
    draw.text((0, 2 * scale), f"{city} 原本", fill=colour, font=font)
    draw.text((TILE_W * scale // 2, (TILE_H // 2 + 2) * scale), f"{city} 原本", fill=colour, font=font)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _background(pdf: canvas.Canvas, width: float, height: float, city: str) -> None:
    """A light tiled pattern (コピー防止の地紋), so a photocopy is told from the original: drawn
    once per document as a form XObject that every page reuses."""
    if not getattr(pdf, "_city_background", False):
        pdf.beginForm("pattern-tile", lowerx=0, lowery=0, upperx=TILE_W, uppery=TILE_H)
        pdf.drawImage(ImageReader(io.BytesIO(_pattern_tile(city))), 0, 0, TILE_W, TILE_H)
        pdf.endForm()
        pdf.beginForm("background")
        y = 0.0
        while y < height:
            x = 0.0
            while x < width:
                pdf.saveState()
                pdf.translate(x, y)
                pdf.doForm("pattern-tile")
                pdf.restoreState()
                x += TILE_W
            y += TILE_H
        pdf.endForm()
        pdf._city_background = True  # type: ignore[attr-defined]
    pdf.doForm("background")


def draw_city_seal(pdf: canvas.Canvas, x: float, y: float, size: float, city: str) -> None:
    """The mayor's official seal (市長之印): a red square, the characters in columns right to left."""
    text = f"{city}長之印"
    columns = [text[0:3], text[3:5], text[5:]] if len(text) >= 6 else [text]
    pdf.saveState()
    pdf.setStrokeColor(SEAL_RED)
    pdf.setFillColor(SEAL_RED)
    pdf.setLineWidth(2.2)
    pdf.rect(x, y, size, size)
    pdf.setLineWidth(0.8)
    pdf.rect(x + 2, y + 2, size - 4, size - 4)
    n = len(columns)
    col_w = (size - 8) / n
    for i, col in enumerate(columns):  # first column at the right
        cx = x + size - 4 - col_w * (i + 0.5)
        ch_h = (size - 8) / max(len(col), 1)
        font_size = min(col_w, ch_h) * 0.9
        pdf.setFont(MINCHO, font_size)
        for j, ch in enumerate(col):
            cy = y + size - 4 - ch_h * (j + 1) + (ch_h - font_size) / 2 + font_size * 0.12
            pdf.drawCentredString(cx, cy, ch)
    pdf.restoreState()


def _qr(pdf: canvas.Canvas, value: str, x: float, y: float, size: float) -> None:
    """The QR code (segno's matrix, error correction M, quiet zone included), drawn as one
    rectangle per run of dark modules: vector, and far quicker than reportlab's own widget."""
    code = segno.make_qr(value, error="m")
    matrix = list(code.matrix_iter(scale=1, border=4))
    module = size / len(matrix)
    pdf.saveState()
    pdf.setFillColor(black)
    path = pdf.beginPath()
    for r, row in enumerate(matrix):
        top = y + size - (r + 1) * module
        c = 0
        while c < len(row):
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                path.rect(x + start * module, top, (c - start) * module, module)
            else:
                c += 1
    pdf.drawPath(path, stroke=0, fill=1)
    pdf.restoreState()


def _table(pdf, rows, left, right, y, label_w, size=11, font=GOTHIC) -> float:
    line_h = size * 2.0
    for label, value in rows:
        pdf.setStrokeColor(black)
        pdf.setLineWidth(0.5)
        pdf.rect(left, y - line_h, right - left, line_h)
        pdf.line(left + label_w, y - line_h, left + label_w, y)
        pdf.setFont(font, size - 1)
        pdf.drawString(left + 2 * mm, y - line_h + size * 0.7, label)
        pdf.setFont(MINCHO, size)
        value_size = size
        while (
            pdfmetrics.stringWidth(value, MINCHO, value_size) > right - left - label_w - 4 * mm
            and value_size > 6
        ):
            value_size -= 0.5
        pdf.setFont(MINCHO, value_size)
        pdf.drawString(left + label_w + 2 * mm, y - line_h + size * 0.7, value)
        y -= line_h
    return y


def render(doc: Document) -> bytes:
    """One page per copy (a long household continues on further pages)."""
    fonts()
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=0, pageCompression=1, initialFontName=GOTHIC)
    title = TITLES[doc.kind]
    pdf.setTitle(f"{title} {doc.serial}")
    pdf.setAuthor(doc.city_ja)
    pdf.setCreator(f"{doc.city_ja} 証明書交付")
    width, height = A4
    left, right = 20 * mm, width - 20 * mm
    for copy in range(1, doc.copies + 1):
        _page(pdf, doc, title, copy, width, height, left, right)
    pdf.save()
    return buffer.getvalue()


def _page(pdf, doc: Document, title: str, copy: int, width, height, left, right) -> None:
    def new_page_header() -> float:
        _background(pdf, width, height, doc.city_ja)
        pdf.setFillColor(black)
        pdf.setFont(GOTHIC, 9)
        pdf.drawRightString(right, height - 12 * mm, f"交付番号 {doc.serial}　（{copy}／{doc.copies}通）")
        pdf.setFont(MINCHO, 22)
        pdf.drawCentredString(width / 2, height - 28 * mm, title)
        return height - 40 * mm

    y = new_page_header()
    y = _table(pdf, doc.rows, left, right, y, 38 * mm)

    def continue_on_next_page() -> float:
        pdf.setFont(GOTHIC, 9)
        pdf.drawRightString(right, y - 5 * mm, "（次ページに続く）")
        _footer(pdf, doc, left, right, last=False)
        pdf.showPage()
        return new_page_header()

    for i, person in enumerate(doc.people):
        needed = len(person) * 22 + 8 * mm
        if y - needed < FOOTER_TOP:
            y = continue_on_next_page()
        y -= 6 * mm
        pdf.setFont(GOTHIC, 10)
        pdf.drawString(left, y, f"（{i + 1}）")
        y -= 2 * mm
        y = _table(pdf, person, left, right, y, 38 * mm)
    if doc.seal_png:
        y -= 4 * mm
        pdf.setFont(GOTHIC, 10)
        pdf.drawString(left, y - 4 * mm, "印影")
        box = 40 * mm
        pdf.rect(left + 38 * mm, y - box, box, box)
        pdf.drawImage(
            ImageReader(io.BytesIO(doc.seal_png)),
            left + 38 * mm + 3 * mm,
            y - box + 3 * mm,
            box - 6 * mm,
            box - 6 * mm,
            mask="auto",
        )
        y -= box
    # the notes, the statement, the date and the mayor's seal stay together above the footer
    if y - len(doc.notes) * 6 * mm - STATEMENT_HEIGHT < FOOTER_TOP:
        y = continue_on_next_page()
    for note in doc.notes:
        y -= 6 * mm
        pdf.setFont(GOTHIC, 8.5)
        pdf.drawString(left, y, note)
    # the certification, the date in 和暦 and the mayor's seal
    y = min(y - 12 * mm, 95 * mm) if y - 12 * mm - 27 * mm >= FOOTER_TOP else y - 12 * mm
    pdf.setFont(MINCHO, 12)
    pdf.drawString(left, y, doc.statement)
    pdf.drawString(left, y - 9 * mm, wareki(doc.issued_on))
    pdf.setFont(MINCHO, 15)
    pdf.drawRightString(right - 30 * mm, y - 20 * mm, f"{doc.city_ja}長")
    draw_city_seal(pdf, right - 27 * mm, y - 27 * mm, 24 * mm, doc.city_ja)
    _footer(pdf, doc, left, right, last=True)
    pdf.showPage()


def _footer(pdf, doc: Document, left, right, *, last: bool) -> None:
    size = 26 * mm
    pdf.setFillColor(white)
    pdf.rect(left, 12 * mm, size, size, stroke=0, fill=1)
    pdf.setFillColor(black)
    _qr(pdf, doc.verify_url, left, 12 * mm, size)
    x = left + size + 4 * mm
    pdf.setFont(GOTHIC, 9)
    pdf.drawString(x, 33 * mm, f"交付番号 Serial: {doc.serial}")
    pdf.drawString(x, 28 * mm, f"確認コード Code: {doc.verify_code}")
    pdf.setFont(GOTHIC, 7.5)
    pdf.drawString(x, 23 * mm, "この証明書はQRコードまたは下記のページで真正性を確認できます。電子署名付き。")
    pdf.drawString(x, 19 * mm, doc.verify_url.split("?")[0])
    where = f"交付端末 {doc.terminal}" if doc.terminal else "交付端末 —"
    pdf.drawString(x, 15 * mm, where)
