"""Invoice PDFs for the sandbox, drawn with fpdf2 (Stripe serves its own PDF in stripe mode).

The page follows Stripe's invoice layout: business name and "Invoice", the number and dates, who it
is billed to (name, email, address, tax ids), the lines (description, quantity, amount), then
subtotal, discount, tax, total, amount paid and amount due, and the status.

Text uses DejaVu Sans when the system has it (any script); otherwise the PDF core font Helvetica,
with characters outside Latin-1 transliterated (``€`` → ``EUR``) so rendering never fails.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from app.web.formatting import day, money

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts"),
)
_REPLACEMENTS = {"\u20ac": "EUR ", "\u2013": "-", "\u2014": "-", "\u2019": "'", "\u00a0": " "}
# Letters without a decomposition to ASCII.
_LETTERS = str.maketrans(
    {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Œ": "OE", "œ": "oe", "Ħ": "H", "ħ": "h"}
)
STATUS_LABELS = {
    "draft": "Draft",
    "open": "Open",
    "paid": "Paid",
    "uncollectible": "Uncollectible",
    "void": "Void",
}


@dataclass(frozen=True)
class PdfLine:
    description: str
    quantity: int | None
    amount: int
    period_start: datetime | None = None
    period_end: datetime | None = None


@dataclass(frozen=True)
class InvoicePdf:
    business_name: str
    number: str
    status: str
    currency: str
    created: datetime
    customer_name: str | None
    customer_email: str | None
    subtotal: int
    total: int
    amount_due: int
    amount_paid: int
    amount_remaining: int
    tax: int = 0
    discount: int = 0
    discount_label: str | None = None
    due_date: datetime | None = None
    paid_at: datetime | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    address: list[str] = field(default_factory=list)
    tax_ids: list[str] = field(default_factory=list)
    lines: list[PdfLine] = field(default_factory=list)
    time_zone: str | None = None


def find_font() -> tuple[Path, Path] | None:
    """DejaVu Sans (regular, bold) when installed."""
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None


def latin1(text: str) -> str:
    """``text`` made safe for the PDF core fonts."""
    for char, replacement in _REPLACEMENTS.items():
        text = text.replace(char, replacement)
    text = text.translate(_LETTERS)
    out = []
    for char in text:
        if ord(char) < 256:
            out.append(char)
            continue
        ascii_form = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
        out.append(ascii_form or "?")
    return "".join(out)


class _Document(FPDF):
    def __init__(self, font: tuple[Path, Path] | None) -> None:
        super().__init__(format="A4")
        self.set_margins(18, 18, 18)
        self.set_auto_page_break(auto=True, margin=18)
        if font is not None:
            self.add_font("DejaVu", "", str(font[0]))
            self.add_font("DejaVu", "B", str(font[1]))
            self.font_name = "DejaVu"
        else:
            self.font_name = "Helvetica"
        self.has_unicode = font is not None

    def text_of(self, value: str) -> str:
        return value if self.has_unicode else latin1(value)

    def write_line(
        self,
        value: str,
        *,
        size: float = 10,
        bold: bool = False,
        h: float = 5,
        align: str = "L",
        w: float = 0,
    ) -> None:
        self.set_font(self.font_name, "B" if bold else "", size)
        self.cell(w, h, self.text_of(value), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def pair(self, label: str, value: str, *, bold: bool = False) -> None:
        """A right-hand totals row: label and amount."""
        self.set_font(self.font_name, "B" if bold else "", 10)
        self.set_x(self.l_margin + 70)
        self.cell(70, 6, self.text_of(label))
        self.cell(0, 6, self.text_of(value), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def render(data: InvoicePdf, *, font: tuple[Path, Path] | bool | None = True) -> bytes:
    """The invoice as PDF bytes. ``font=True`` looks for DejaVu; ``None`` forces Helvetica."""
    chosen = find_font() if font is True else (font or None)
    pdf = _Document(chosen)  # type: ignore[arg-type]
    pdf.set_title(f"Invoice {data.number}")
    pdf.set_author(data.business_name)
    pdf.set_creation_date(data.created)
    pdf.add_page()
    tz = data.time_zone
    cur = data.currency

    pdf.write_line("Invoice", size=22, bold=True, h=10)
    pdf.write_line(data.business_name, size=12, bold=True, h=7)
    pdf.ln(3)
    pdf.write_line(f"Invoice number: {data.number}")
    pdf.write_line(f"Date of issue: {day(data.created, tz)}")
    if data.due_date is not None:
        pdf.write_line(f"Date due: {day(data.due_date, tz)}")
    if data.period_start and data.period_end and data.period_end > data.period_start:
        pdf.write_line(f"Period: {day(data.period_start, tz)} - {day(data.period_end, tz)}")
    pdf.write_line(f"Status: {STATUS_LABELS.get(data.status, data.status.title())}")
    pdf.ln(4)

    pdf.write_line("Bill to", bold=True)
    for value in (data.customer_name, data.customer_email, *data.address, *data.tax_ids):
        if value:
            pdf.write_line(value)
    pdf.ln(4)

    if data.status == "paid" and data.paid_at is not None:
        headline = f"{money(data.amount_paid, cur)} paid on {day(data.paid_at, tz)}"
    elif data.status == "open":
        due = f" due {day(data.due_date, tz)}" if data.due_date else " due"
        headline = f"{money(data.amount_remaining, cur)}{due}"
    else:
        headline = f"{money(data.total, cur)} ({STATUS_LABELS.get(data.status, data.status)})"
    pdf.write_line(headline, size=14, bold=True, h=8)
    pdf.ln(3)

    pdf.set_font(pdf.font_name, "", 10)
    with pdf.table(
        col_widths=(120, 20, 34),
        text_align=("LEFT", "RIGHT", "RIGHT"),
        line_height=6,
        first_row_as_headings=True,
    ) as table:
        table.row(["Description", "Qty", "Amount"])
        for line in data.lines:
            text = line.description
            if line.period_start and line.period_end and line.period_end > line.period_start:
                period = f"{day(line.period_start, tz)} - {day(line.period_end, tz)}"
                text = f"{text}\n{period}"
            quantity = "" if line.quantity is None else str(line.quantity)
            table.row([pdf.text_of(text), quantity, pdf.text_of(money(line.amount, cur))])
    pdf.ln(4)

    pdf.pair("Subtotal", money(data.subtotal, cur))
    if data.discount:
        label = f"Discount ({data.discount_label})" if data.discount_label else "Discount"
        pdf.pair(label, money(-data.discount, cur))
    if data.tax:
        pdf.pair("Tax", money(data.tax, cur))
    pdf.pair("Total", money(data.total, cur), bold=True)
    pdf.pair("Amount paid", money(data.amount_paid, cur))
    pdf.pair("Amount due", money(data.amount_remaining, cur), bold=True)
    return bytes(pdf.output())
