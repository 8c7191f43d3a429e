"""The browser-facing pages Stripe hosts, in miniature.

* ``GET /c/pay/{cs_...}`` - Checkout (setup mode): a form with a card number (plus optional
  name and email).  ``POST`` the form: 4242 4242 4242 4242 (or another working test card)
  completes the session and answers ``303`` to ``success_url``; 4000 0000 0000 0002
  re-renders the form with "Your card was declined." (HTTP 402).  A link leads to
  ``cancel_url``.
* ``GET /i/{in_...}`` - hosted invoice page: number, status, lines, amount due and, while
  the invoice is open, a "Pay" form (card number prefilled with 4242...) whose ``POST``
  pays the invoice and answers ``303`` to ``?return_url=`` (or back to the page).
* ``GET /i/{in_...}/pdf`` - a small, valid one-page PDF of the invoice.
* ``GET /__return/...`` - a stand-in "your app" page (200, echoes the query string) that
  tests can use as ``success_url``/``return_url`` when they follow redirects end to end.

No authentication (Stripe's hosted URLs are unguessable capability links).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from . import invoicing
from . import lines as line_items
from .errors import StripeError
from .resources import checkout, payment_methods
from .state import State

Response = tuple[int, dict[str, str], bytes]
Transaction = Callable[[Callable[[State], Response]], Response]

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;color:#1a1f36}"
    "label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;font-size:1rem}"
    "button{margin-top:1rem;padding:.6rem 1.4rem;font-size:1rem}.error{color:#b00020}"
    "table{width:100%;border-collapse:collapse}td{padding:.3rem 0;border-bottom:1px solid #ddd}"
)


def _page(title: str, body: str, status: int = 200) -> Response:
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )
    return status, {"Content-Type": "text/html; charset=utf-8"}, document.encode("utf-8")


def _redirect(location: str) -> Response:
    return 303, {"Location": location, "Content-Type": "text/plain"}, b""


def handle(transaction: Transaction, method: str, path: str, query: str, body: bytes) -> Response:
    parts = [p for p in path.split("/") if p]
    form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
    args = {k: v[-1] for k, v in parse_qs(query).items()}
    if parts and parts[0] == "__return" and method == "GET":
        echo = "".join(
            f"<li><code>{html.escape(k)}</code>={html.escape(v)}</li>" for k, v in args.items()
        )
        return _page("Returned", f"<h1>Returned to the app</h1><ul>{echo}</ul>")
    if len(parts) == 3 and parts[:2] == ["c", "pay"]:
        if method == "GET":
            return transaction(lambda state: _checkout_page(state, parts[2]))
        if method == "POST":
            return transaction(lambda state: _checkout_submit(state, parts[2], form))
    if len(parts) == 2 and parts[0] == "i" and method == "GET":
        return transaction(lambda state: _invoice_page(state, parts[1], args))
    if len(parts) == 3 and parts[0] == "i" and parts[2] == "pdf" and method == "GET":
        return transaction(lambda state: _invoice_pdf(state, parts[1]))
    if len(parts) == 3 and parts[0] == "i" and parts[2] == "pay" and method == "POST":
        return transaction(lambda state: _invoice_pay(state, parts[1], form))
    return _page("Not found", "<h1>Not found</h1>", 404)


# -- checkout -------------------------------------------------------------------------------
def _checkout_form(session: dict[str, Any], error: str = "", number: str = "") -> str:
    cancel = session.get("cancel_url")
    cancel_link = f'<p><a href="{html.escape(cancel)}">Cancel</a></p>' if cancel else ""
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return (
        "<h1>Save a card</h1>"
        f"<p>{html.escape(session.get('customer_email') or '')}</p>{message}"
        f'<form method="post" action="/c/pay/{session["id"]}">'
        '<label for="card_number">Card number</label>'
        f'<input id="card_number" name="card_number" inputmode="numeric" '
        f'autocomplete="cc-number" value="{html.escape(number)}" required>'
        '<label for="name">Name on card</label><input id="name" name="name">'
        '<label for="email">Email</label><input id="email" name="email" type="email">'
        '<button type="submit">Save card</button></form>'
        f"{cancel_link}"
    )


def _checkout_page(state: State, session_id: str) -> Response:
    session = state.get("checkout.session", session_id)
    if session is None:
        return _page("Not found", "<h1>This Checkout Session does not exist.</h1>", 404)
    if session["status"] != "open":
        return _page("Checkout", f"<h1>This Checkout Session is {session['status']}.</h1>", 410)
    return _page("Checkout", _checkout_form(session))


def _checkout_submit(state: State, session_id: str, form: dict[str, str]) -> Response:
    session = state.get("checkout.session", session_id)
    if session is None:
        return _page("Not found", "<h1>This Checkout Session does not exist.</h1>", 404)
    if session["status"] != "open":
        return _page("Checkout", f"<h1>This Checkout Session is {session['status']}.</h1>", 410)
    number = form.get("card_number", "").replace(" ", "")
    try:
        location = checkout.complete_setup(
            state, session, number, name=form.get("name", ""), email=form.get("email", "")
        )
    except StripeError as exc:
        raise PageError(
            _page("Checkout", _checkout_form(session, exc.message, number), 402)
        ) from exc
    return _redirect(location)


class PageError(Exception):
    """Carries an error page out of a transaction (so its state changes roll back)."""

    def __init__(self, response: Response) -> None:
        super().__init__("page error")
        self.response = response


# -- invoices -------------------------------------------------------------------------------
def _invoice_page(state: State, invoice_id: str, args: dict[str, str]) -> Response:
    invoice = state.get("invoice", invoice_id)
    if invoice is None or invoice["status"] == "draft":
        return _page("Not found", "<h1>Invoice not found</h1>", 404)
    currency = invoice["currency"]
    rows = "".join(
        f"<tr><td>{html.escape(line['description'] or '')}</td>"
        f"<td>{line_items.money(line['amount'], currency)}</td></tr>"
        for line in invoice["lines"]["data"]
    )
    pay = ""
    if invoice["status"] == "open":
        return_url = html.escape(args.get("return_url", ""))
        pay = (
            f'<form method="post" action="/i/{invoice_id}/pay">'
            f'<input type="hidden" name="return_url" value="{return_url}">'
            '<label for="card_number">Card number</label>'
            '<input id="card_number" name="card_number" value="4242424242424242">'
            f'<button type="submit">Pay {line_items.money(invoice["amount_due"], currency)}'
            "</button></form>"
        )
    body = (
        f"<h1>{html.escape(state.account['name'])}</h1>"
        f"<p>Invoice {html.escape(invoice['number'] or '')} - "
        f'<strong class="status">{invoice["status"]}</strong></p>'
        f"<table>{rows}</table>"
        f"<p>Total {line_items.money(invoice['total'], currency)} - amount due "
        f"{line_items.money(invoice['amount_due'], currency)}</p>"
        f'{pay}<p><a href="/i/{invoice_id}/pdf">Download PDF</a></p>'
    )
    return _page(f"Invoice {invoice['number']}", body)


def _invoice_pay(state: State, invoice_id: str, form: dict[str, str]) -> Response:
    invoice = state.get("invoice", invoice_id)
    if invoice is None:
        return _page("Not found", "<h1>Invoice not found</h1>", 404)
    back = form.get("return_url") or f"/i/{invoice_id}"
    if invoice["status"] != "open":
        return _redirect(back)
    number = form.get("card_number", "4242424242424242").replace(" ", "")
    try:
        pm = payment_methods.new_card(state, number)
        payment_methods.charge(pm, persist=False)
    except StripeError as exc:
        failed = _invoice_page(state, invoice_id, {"return_url": form.get("return_url", "")})
        note = f'<p class="error" role="alert">{html.escape(exc.message)}</p>'.encode()
        raise PageError(
            (402, failed[1], failed[2].replace(b"<table>", note + b"<table>", 1))
        ) from exc
    invoice["default_payment_method"] = pm["id"]
    invoicing.collect(state, invoice, payment_method=pm["id"])
    return _redirect(back)


def _invoice_pdf(state: State, invoice_id: str) -> Response:
    invoice = state.get("invoice", invoice_id)
    if invoice is None or invoice["status"] == "draft":
        return _page("Not found", "<h1>Invoice not found</h1>", 404)
    currency = invoice["currency"]
    lines = [
        state.account["name"],
        f"Invoice {invoice['number']}",
        f"Status: {invoice['status']}",
        "",
        *(
            f"{line['description']}  {line_items.money(line['amount'], currency)}"
            for line in invoice["lines"]["data"]
        ),
        "",
        f"Total: {line_items.money(invoice['total'], currency)}",
        f"Amount due: {line_items.money(invoice['amount_due'], currency)}",
    ]
    headers = {
        "Content-Type": "application/pdf",
        "Content-Disposition": f'inline; filename="{invoice["number"]}.pdf"',
    }
    return 200, headers, render_pdf(lines)


def render_pdf(lines: list[str]) -> bytes:
    """A minimal valid PDF 1.4 with one A4 page of Helvetica text."""

    def escape(text: str) -> str:
        text = text.replace("\u00d7", "x").replace("€", "EUR ").replace("£", "GBP ")
        text = text.encode("latin-1", "replace").decode("latin-1")
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    commands = ["BT", "/F1 12 Tf", "50 790 Td", "16 TL"]
    commands += [f"({escape(line)}) Tj T*" for line in lines]
    commands.append("ET")
    stream = "\n".join(commands).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
