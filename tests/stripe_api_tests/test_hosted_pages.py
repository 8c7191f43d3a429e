"""Checkout (setup mode) and the hosted invoice page, driven like a browser with httpx."""

from __future__ import annotations

import io
import re

import httpx
import pytest
import stripe
from pypdf import PdfReader

from tests.stripe_api import StripeAPIServer


async def test_checkout_setup_round_trip(stripe_api: StripeAPIServer, stripe_client) -> None:
    customer = stripe_api.create_customer(email="card@example.test")
    success = f"{stripe_api.url}/__return/billing?session_id={{CHECKOUT_SESSION_ID}}"
    session = await stripe_client.v1.checkout.sessions.create_async(
        {
            "mode": "setup",
            "customer": customer["id"],
            "currency": "usd",
            "success_url": success,
            "cancel_url": f"{stripe_api.url}/__return/cancel",
            "setup_intent_data": {"metadata": {"purpose": "default card"}},
        }
    )
    assert session.id.startswith("cs_test_")
    assert session.status == "open"
    assert session.url.startswith(stripe_api.url)
    assert session.setup_intent is None

    async with httpx.AsyncClient() as browser:
        page = await browser.get(session.url)
        assert page.status_code == 200
        assert 'name="card_number"' in page.text
        assert "/__return/cancel" in page.text

        declined = await browser.post(session.url, data={"card_number": "4000000000000002"})
        assert declined.status_code == 402
        assert "Your card was declined." in declined.text
        still_open = await stripe_client.v1.checkout.sessions.retrieve_async(session.id)
        assert still_open.status == "open"

        done = await browser.post(
            session.url,
            data={"card_number": "4242 4242 4242 4242", "name": "Card Holder"},
            follow_redirects=True,
        )
        assert done.status_code == 200
        assert "Returned to the app" in done.text
        assert str(done.url) == success.replace("{CHECKOUT_SESSION_ID}", session.id)
        assert done.history[0].status_code == 303

    completed = await stripe_client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["setup_intent", "setup_intent.payment_method"]}
    )
    assert completed.status == "complete"
    assert completed.url is None
    intent = completed.setup_intent
    assert intent.id.startswith("seti_")
    assert intent.status == "succeeded"
    assert intent.metadata.to_dict() == {"purpose": "default card"}
    assert intent.payment_method.card.last4 == "4242"
    assert intent.payment_method.customer == customer["id"]
    types = [e["type"] for e in stripe_api.events]
    assert types.index("setup_intent.succeeded") < types.index("checkout.session.completed")
    retrieved = await stripe_client.v1.setup_intents.retrieve_async(intent.id)
    assert retrieved.payment_method == intent.payment_method.id


async def test_checkout_requires_a_currency_in_setup_mode(stripe_client) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await stripe_client.v1.checkout.sessions.create_async(
            {"mode": "setup", "success_url": "https://example.test/ok"}
        )
    assert caught.value.param == "currency"


async def test_hosted_invoice_page_and_pdf(stripe_api: StripeAPIServer, stripe_client) -> None:
    customer = stripe_api.create_customer(name="Invoice Person")
    invoice = stripe_api.create_invoice(customer["id"], amount=4200, description="Setup fee")
    assert invoice["status"] == "open"
    assert invoice["hosted_invoice_url"].startswith(stripe_api.url)
    back = f"{stripe_api.url}/__return/invoices"
    async with httpx.AsyncClient() as browser:
        page = await browser.get(invoice["hosted_invoice_url"], params={"return_url": back})
        assert "Setup fee" in page.text
        assert "$42.00" in page.text
        action = re.search(r'action="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        declined = await browser.post(
            stripe_api.url + action, data={"card_number": "4000000000000002", "return_url": back}
        )
        assert declined.status_code == 402
        assert "declined" in declined.text
        paid = await browser.post(
            stripe_api.url + action,
            data={"card_number": "4242424242424242", "return_url": back},
            follow_redirects=True,
        )
        assert str(paid.url) == back
        pdf = await browser.get(invoice["invoice_pdf"])
    assert pdf.headers["content-type"] == "application/pdf"
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert invoice["number"] in text
    assert "Setup fee" in text
    assert "$42.00" in text
    refreshed = await stripe_client.v1.invoices.retrieve_async(invoice["id"])
    assert refreshed.status == "paid"
    assert refreshed.amount_paid == 4200
