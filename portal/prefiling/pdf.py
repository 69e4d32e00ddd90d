"""A printable summary of a pre-filing: reportlab, with the IPAex Gothic font embedded (Debian
``fonts-ipaexfont``), so Japanese prints on any machine. Staff link to the same ``render``."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from portal.i18n import wareki
from portal.prefiling import catalogue, forms, service
from portal.prefiling.models import PreFiling

FONT = "IPAexGothic"
FONT_PATHS = (
    Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"),
    Path("/usr/share/fonts/truetype/fonts-japanese-gothic.ttf"),
)
TOKYO = ZoneInfo("Asia/Tokyo")
STATUS_JA = {
    "draft": "下書き",
    "submitted": "送信済み",
    "correction_requested": "修正依頼",
    "ready": "窓口受付可",
    "arrived": "来庁",
    "completed": "完了",
    "withdrawn": "取り下げ",
}


def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        path = next((p for p in FONT_PATHS if p.exists()), None)
        if path is None:
            raise RuntimeError("IPAex Gothic is not installed (Debian package fonts-ipaexfont)")
        pdfmetrics.registerFont(TTFont(FONT, str(path)))
    return FONT


def _wrap(text: str, width: float, size: float, font: str) -> list[str]:
    lines, line = [], ""
    for ch in text:
        if pdfmetrics.stringWidth(line + ch, font, size) > width:
            lines.append(line)
            line = ch
        else:
            line += ch
    return [*lines, line] if line or not lines else lines


def render(prefiling: PreFiling, *, now: datetime | None = None) -> bytes:
    """The PDF: title, reservation number, every shown field with its Japanese label, generated-at
    in 和暦."""
    font = _font()
    defn = catalogue.get(prefiling.procedure_code, prefiling.procedure_version)
    values = service.values(prefiling)
    buffer = io.BytesIO()
    title = catalogue.label(defn["name"], "ja") if defn else prefiling.procedure_code
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=0)
    pdf.setTitle(f"{title} {prefiling.reservation_no or ''}".strip())
    pdf.setCreator("Minato City Portal")
    width, height = A4
    left, right, bottom = 20 * mm, width - 20 * mm, 20 * mm
    y = height - 25 * mm

    def line(text: str, size: float = 10, indent: float = 0, gap: float = 1.5) -> None:
        nonlocal y
        for part in _wrap(text, right - left - indent, size, font):
            if y < bottom:
                pdf.showPage()
                y = height - 20 * mm
            pdf.setFont(font, size)
            pdf.drawString(left + indent, y, part)
            y -= size * gap

    line(title, 18, gap=1.8)
    if defn:
        line(catalogue.label(defn["name"], "en"), 10)
    if prefiling.reservation_no:
        line(
            f"受付番号 Reservation number: {service.format_reservation_no(prefiling.reservation_no)}",
            13,
            gap=1.8,
        )
    line(f"状態: {STATUS_JA.get(prefiling.status, prefiling.status)}", 10)
    made = (now or datetime.now(UTC)).astimezone(TOKYO)
    line(f"作成日時: {wareki(made.date())} {made:%H:%M}", 10, gap=2.2)
    if defn:
        for section in defn["sections"]:
            if not forms.visible(section, values):
                continue
            y -= 4
            line(f"■ {catalogue.label(section['title'], 'ja')}", 12, gap=1.7)
            for field in section["fields"]:
                value = values.get(field["name"])
                if field["type"] == "group":
                    rows = value or []
                    line(f"{catalogue.label(field['label'], 'ja')}: {len(rows)}", 10, indent=4 * mm)
                    for i, row in enumerate(rows, 1):
                        parts = [forms.display(sub, row.get(sub["name"]), "ja") for sub in field["fields"]]
                        line(f"{i}. " + " / ".join(p for p in parts if p), 10, indent=8 * mm)
                    continue
                shown = forms.display(field, value, "ja")
                line(f"{catalogue.label(field['label'], 'ja')}: {shown}", 10, indent=4 * mm)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
