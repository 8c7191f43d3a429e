"""StripeGateway against the HTTP test server: each action changes Stripe AND the mirror."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import stripe

from app.billing.gateway import (
    CardInput,
    CustomerDetails,
    GatewayError,
    GatewayUnavailable,
    IdempotencyConflict,
    InvalidPromotionCode,
)
from app.billing.stripe_gateway import StripeGateway
from app.billing.tables import (
    Coupon,
    Customer,
    Invoice,
    InvoiceLine,
    PaymentMethod,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
    SubscriptionSchedule,
    TaxId,
)
from app.settings import Settings
from tests.billing.stripe.support import rejected_by_types
from tests.stripe_api import StripeAPIServer


async def _sub(subscription_id: str) -> Subscription:
    row = await Subscription.objects().where(Subscription.id == subscription_id).first()
    assert row is not None
    return row


async def _items(subscription_id: str) -> list[tuple[str, int]]:
    rows = await SubscriptionItem.select(SubscriptionItem.price, SubscriptionItem.quantity).where(
        SubscriptionItem.subscription == subscription_id
    )
    return sorted((r["price"], r["quantity"]) for r in rows)


def _server_items(server: StripeAPIServer, subscription_id: str) -> list[tuple[str, int]]:
    sub = server.get(subscription_id)
    assert sub is not None
    return sorted((i["price"]["id"], i["quantity"]) for i in sub["items"]["data"])


def _posts(server: StripeAPIServer, prefix: str) -> list[Any]:
    return [r for r in server.requests if r.method == "POST" and r.path.startswith(prefix)]


# --- mirror basics ----


async def test_refresh_customer_mirrors_everything(
    stripe_api: StripeAPIServer, gateway: StripeGateway, subscribed: dict[str, Any], payer
) -> None:
    customer = await Customer.objects().where(Customer.id == payer["id"]).first()
    assert customer is not None
    assert customer.email == "pat.payer@example.test"
    assert customer.invoice_settings_default_payment_method is not None
    sub = await _sub(subscribed["id"])
    assert sub.status == "active"
    assert sub.customer == payer["id"]
    assert await _items(sub.id) == _server_items(stripe_api, sub.id)
    invoice = await Invoice.objects().where(Invoice.id == sub.latest_invoice).first()
    assert invoice is not None
    assert invoice.status == "paid"
    assert invoice.total == 1000
    assert await InvoiceLine.count().where(InvoiceLine.invoice == invoice.id) == 1
    product = (
        await Price.select(Price.product.name)
        .where(Price.id == _server_items(stripe_api, sub.id)[0][0])
        .first()
    )
    assert product == {"product.name": "Basic"}
    assert await PaymentMethod.count().where(PaymentMethod.customer == payer["id"]) == 1


# --- plan changes ----


async def test_change_now_updates_stripe_and_mirror(
    stripe_api: StripeAPIServer, gateway: StripeGateway, subscribed, catalog
) -> None:
    await gateway.change_subscription(
        subscribed["id"],
        price_id=catalog["pro"]["id"],
        quantity=2,
        proration_behavior="create_prorations",
        schedule_at_period_end=False,
        trial_update_behavior="end_trial",
        idempotency_key="change-1",
    )
    expected = [(catalog["pro"]["id"], 2)]
    assert _server_items(stripe_api, subscribed["id"]) == expected
    assert await _items(subscribed["id"]) == expected
    # Requests carry an idempotency key derived from the intent.
    update = _posts(stripe_api, f"/v1/subscriptions/{subscribed['id']}")[-1]
    assert update.idempotency_key.startswith("change-1:change_subscription:")


async def test_preview_matches_what_stripe_computes(
    stripe_api: StripeAPIServer, gateway: StripeGateway, subscribed, catalog
) -> None:
    preview = await gateway.preview_subscription_change(
        subscribed["id"],
        price_id=catalog["pro"]["id"],
        quantity=1,
        proration_behavior="create_prorations",
        schedule_at_period_end=False,
        trial_update_behavior="end_trial",
    )
    assert preview.currency == "usd"
    assert preview.amount_due_now == 0
    assert [line.proration for line in preview.lines] == [True, True]
    assert preview.lines[0].amount < 0 < preview.lines[1].amount
    sub = await _sub(subscribed["id"])
    assert preview.next_invoice_date == sub.current_period_end
    assert preview.next_invoice_amount == 3000 + sum(line.amount for line in preview.lines)

    now = await gateway.preview_subscription_change(
        subscribed["id"],
        price_id=catalog["pro"]["id"],
        quantity=1,
        proration_behavior="always_invoice",
        schedule_at_period_end=False,
        trial_update_behavior="end_trial",
    )
    assert now.amount_due_now == sum(line.amount for line in now.lines) > 0
    assert now.next_invoice_amount == 3000

    yearly = await gateway.preview_subscription_change(
        subscribed["id"],
        price_id=catalog["pro_yearly"]["id"],
        quantity=1,
        proration_behavior="create_prorations",
        schedule_at_period_end=False,
        trial_update_behavior="end_trial",
    )
    assert yearly.amount_due_now > 20000  # the year now, minus the unused month
    assert yearly.next_invoice_date is not None
    assert yearly.next_invoice_date > sub.current_period_end
    # A preview changes nothing.
    assert _server_items(stripe_api, subscribed["id"]) == [(catalog["basic"]["id"], 1)]
    assert not [
        r for r in stripe_api.requests if r.method == "POST" and "create_preview" not in r.path
    ]


async def test_downgrade_at_period_end_uses_a_schedule(
    stripe_api: StripeAPIServer, gateway: StripeGateway, payer, catalog
) -> None:
    sub = stripe_api.create_subscription(
        customer=payer["id"], items=[{"price": catalog["pro"]["id"]}]
    )
    await gateway.refresh_customer(payer["id"])
    preview = await gateway.preview_subscription_change(
        sub["id"],
        price_id=catalog["basic"]["id"],
        quantity=1,
        proration_behavior="none",
        schedule_at_period_end=True,
        trial_update_behavior="end_trial",
    )
    assert preview.scheduled_at_period_end
    assert preview.lines == []
    assert preview.next_invoice_amount == 1000
    await gateway.change_subscription(
        sub["id"],
        price_id=catalog["basic"]["id"],
        quantity=1,
        proration_behavior="none",
        schedule_at_period_end=True,
        trial_update_behavior="end_trial",
        idempotency_key="downgrade-1",
    )
    server_sub = stripe_api.get(sub["id"])
    schedule = stripe_api.get(server_sub["schedule"])
    assert [p["items"][0]["price"] for p in schedule["phases"]] == [
        catalog["pro"]["id"],
        catalog["basic"]["id"],
    ]
    mirrored = await _sub(sub["id"])
    assert mirrored.schedule == schedule["id"]
    row = (
        await SubscriptionSchedule.objects()
        .where(SubscriptionSchedule.id == schedule["id"])
        .first()
    )
    assert row is not None
    assert row.status == "active"
    assert row.next_phase_price == catalog["basic"]["id"]
    assert row.next_phase_start == mirrored.current_period_end
    assert await _items(sub["id"]) == [(catalog["pro"]["id"], 1)]  # nothing changes yet

    # Choosing again while a change is pending updates the same schedule.
    await gateway.change_subscription(
        sub["id"],
        price_id=catalog["basic"]["id"],
        quantity=2,
        proration_behavior="none",
        schedule_at_period_end=True,
        trial_update_behavior="end_trial",
        idempotency_key="downgrade-2",
    )
    assert stripe_api.get(sub["id"])["schedule"] == schedule["id"]
    row = (
        await SubscriptionSchedule.objects()
        .where(SubscriptionSchedule.id == schedule["id"])
        .first()
    )
    assert row is not None
    assert row.next_phase_quantity == 2

    # Changing now instead releases the pending schedule.
    await gateway.change_subscription(
        sub["id"],
        price_id=catalog["pro"]["id"],
        quantity=3,
        proration_behavior="none",
        schedule_at_period_end=False,
        trial_update_behavior="end_trial",
        idempotency_key="upgrade-1",
    )
    assert stripe_api.get(schedule["id"])["status"] == "released"
    row = (
        await SubscriptionSchedule.objects()
        .where(SubscriptionSchedule.id == schedule["id"])
        .first()
    )
    assert row is not None
    assert row.status == "released"
    assert (await _sub(sub["id"])).schedule is None
    assert await _items(sub["id"]) == [(catalog["pro"]["id"], 3)]


async def test_ending_a_trial_with_a_plan_change(
    stripe_api: StripeAPIServer, gateway: StripeGateway, payer, catalog
) -> None:
    sub = stripe_api.create_subscription(
        customer=payer["id"], items=[{"price": catalog["basic"]["id"]}], trial_period_days=14
    )
    await gateway.refresh_customer(payer["id"])
    assert (await _sub(sub["id"])).status == "trialing"
    preview = await gateway.preview_subscription_change(
        sub["id"],
        price_id=catalog["pro"]["id"],
        quantity=1,
        proration_behavior="create_prorations",
        schedule_at_period_end=False,
        trial_update_behavior="end_trial",
    )
    assert preview.amount_due_now == 3000
    await gateway.change_subscription(
        sub["id"],
        price_id=catalog["pro"]["id"],
        quantity=1,
        proration_behavior="create_prorations",
        schedule_at_period_end=False,
        trial_update_behavior="end_trial",
        idempotency_key="trial-end",
    )
    assert stripe_api.get(sub["id"])["status"] == "active"
    mirrored = await _sub(sub["id"])
    assert mirrored.status == "active"
    invoice = await Invoice.objects().where(Invoice.id == mirrored.latest_invoice).first()
    assert invoice is not None
    assert invoice.status == "paid"
    assert invoice.amount_paid == 3000


async def test_promotion_codes(
    stripe_api: StripeAPIServer, gateway: StripeGateway, subscribed, catalog
) -> None:
    coupon = stripe_api.create_coupon(id="SAVE20", percent_off=20, duration="forever")
    stripe_api.create_promotion_code(
        promotion={"type": "coupon", "coupon": coupon["id"]}, code="SPRING"
    )
    with pytest.raises(InvalidPromotionCode):
        await gateway.change_subscription(
            subscribed["id"],
            price_id=catalog["pro"]["id"],
            quantity=1,
            proration_behavior="none",
            schedule_at_period_end=False,
            trial_update_behavior="end_trial",
            promotion_code="NOPE",
            idempotency_key="promo-bad",
        )
    assert not _posts(stripe_api, "/v1/subscriptions")
    preview = await gateway.preview_subscription_change(
        subscribed["id"],
        price_id=catalog["pro"]["id"],
        quantity=1,
        proration_behavior="none",
        schedule_at_period_end=False,
        trial_update_behavior="end_trial",
        promotion_code="spring",
    )
    assert preview.discount_description == "20% off forever"
    assert preview.next_invoice_amount == 2400
    await gateway.change_subscription(
        subscribed["id"],
        price_id=catalog["pro"]["id"],
        quantity=1,
        proration_behavior="none",
        schedule_at_period_end=False,
        trial_update_behavior="end_trial",
        promotion_code="spring",
        idempotency_key="promo-good",
    )
    server = stripe_api.get(subscribed["id"])
    assert len(server["discounts"]) == 1
    assert (await _sub(subscribed["id"])).discount_coupon == "SAVE20"
    assert await Coupon.exists().where(Coupon.id == "SAVE20")


# --- lifecycle ----


async def test_cancel_at_period_end_and_renew(
    stripe_api: StripeAPIServer, gateway: StripeGateway, subscribed
) -> None:
    await gateway.cancel_subscription(
        subscribed["id"],
        at_period_end=True,
        proration_behavior="none",
        reason="too_expensive",
        comment="  Budget cuts ",
        idempotency_key="cancel-1",
    )
    server = stripe_api.get(subscribed["id"])
    assert server["cancel_at_period_end"] is True
    assert server["cancellation_details"]["feedback"] == "too_expensive"
    sub = await _sub(subscribed["id"])
    assert sub.cancel_at_period_end is True
    assert sub.status == "active"
    assert sub.cancellation_details_feedback == "too_expensive"
    assert sub.cancellation_details_comment == "Budget cuts"
    assert sub.canceled_at is not None

    await gateway.renew_subscription(subscribed["id"], idempotency_key="renew-1")
    assert stripe_api.get(subscribed["id"])["cancel_at_period_end"] is False
    sub = await _sub(subscribed["id"])
    assert sub.cancel_at_period_end is False
    assert sub.cancel_at is None


async def test_cancel_now(stripe_api: StripeAPIServer, gateway: StripeGateway, subscribed) -> None:
    with pytest.raises(GatewayError) as problem:
        await gateway.cancel_subscription(
            subscribed["id"],
            at_period_end=False,
            proration_behavior="none",
            reason="not-a-reason",
            comment=None,
            idempotency_key="cancel-bad",
        )
    assert problem.value.field == "reason"
    await gateway.cancel_subscription(
        subscribed["id"],
        at_period_end=False,
        proration_behavior="create_prorations",
        reason=None,
        comment=None,
        idempotency_key="cancel-now",
    )
    assert stripe_api.get(subscribed["id"])["status"] == "canceled"
    sub = await _sub(subscribed["id"])
    assert sub.status == "canceled"
    assert sub.ended_at is not None
    with pytest.raises(GatewayError, match="ended"):
        await gateway.renew_subscription(subscribed["id"], idempotency_key="renew-late")


async def test_pause_resume_and_coupon(
    stripe_api: StripeAPIServer, gateway: StripeGateway, subscribed
) -> None:
    resumes = datetime.now(UTC).replace(microsecond=0) + timedelta(days=40)
    await gateway.pause_subscription(
        subscribed["id"], resumes_at=resumes, idempotency_key="pause-1"
    )
    assert stripe_api.get(subscribed["id"])["pause_collection"]["behavior"] == "void"
    sub = await _sub(subscribed["id"])
    assert sub.pause_collection_behavior == "void"
    assert sub.pause_collection_resumes_at == resumes
    await gateway.resume_subscription(subscribed["id"], idempotency_key="resume-1")
    assert stripe_api.get(subscribed["id"])["pause_collection"] is None
    assert (await _sub(subscribed["id"])).pause_collection_behavior is None

    stripe_api.create_coupon(id="STAY50", percent_off=50, duration="once")
    await gateway.apply_coupon(subscribed["id"], "STAY50", idempotency_key="offer-1")
    assert len(stripe_api.get(subscribed["id"])["discounts"]) == 1
    assert (await _sub(subscribed["id"])).discount_coupon == "STAY50"
    with pytest.raises(GatewayError, match="no longer available"):
        await gateway.apply_coupon(subscribed["id"], "MISSING", idempotency_key="offer-2")


# --- payment methods ----


async def test_add_payment_method_through_checkout(
    stripe_api: StripeAPIServer, gateway: StripeGateway, subscribed, payer
) -> None:
    card = CardInput(number="4242424242424242", exp_month=12, exp_year=2040, cvc="123")
    with pytest.raises(GatewayError):
        await gateway.add_card(payer["id"], card, make_default=True, idempotency_key="card-1")
    start = await gateway.start_add_payment_method(
        payer["id"],
        success_url="http://portal.test/portal/payment-methods/complete?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="http://portal.test/portal/payment-methods",
        idempotency_key="add-1",
    )
    assert start.redirect_url
    assert start.redirect_url.startswith(stripe_api.url)
    again = await gateway.start_add_payment_method(
        payer["id"],
        success_url="http://portal.test/portal/payment-methods/complete?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="http://portal.test/portal/payment-methods",
        idempotency_key="add-1",
    )
    assert again == start
    async with httpx.AsyncClient() as browser:
        answer = await browser.post(start.redirect_url, data={"card_number": "5555 5555 5555 4444"})
    assert answer.status_code == 303
    session_id = answer.headers["location"].rsplit("session_id=", 1)[1]
    with pytest.raises(GatewayError):
        await gateway.complete_add_payment_method(
            "cus_someone_else", session_id=session_id, make_default=True
        )
    pm_id = await gateway.complete_add_payment_method(
        payer["id"], session_id=session_id, make_default=True
    )
    assert stripe_api.get(pm_id)["customer"] == payer["id"]
    assert stripe_api.get(payer["id"])["invoice_settings"]["default_payment_method"] == pm_id
    row = await PaymentMethod.objects().where(PaymentMethod.id == pm_id).first()
    assert row is not None
    assert row.customer == payer["id"]
    assert row.card_brand == "mastercard"
    customer = await Customer.objects().where(Customer.id == payer["id"]).first()
    assert customer is not None
    assert customer.invoice_settings_default_payment_method == pm_id
    # Coming back to the success page again is harmless.
    assert (
        await gateway.complete_add_payment_method(
            payer["id"], session_id=session_id, make_default=True
        )
        == pm_id
    )


async def test_default_and_detach(
    stripe_api: StripeAPIServer, gateway: StripeGateway, subscribed, payer
) -> None:
    first = payer["invoice_settings"]["default_payment_method"]
    second = stripe_api.create_payment_method(payer["id"], card="pm_card_mastercard")["id"]
    await gateway.refresh_customer(payer["id"])
    await gateway.set_default_payment_method(payer["id"], second, idempotency_key="default-1")
    assert stripe_api.get(payer["id"])["invoice_settings"]["default_payment_method"] == second
    customer = await Customer.objects().where(Customer.id == payer["id"]).first()
    assert customer is not None
    assert customer.invoice_settings_default_payment_method == second

    await gateway.detach_payment_method(payer["id"], second, idempotency_key="detach-1")
    assert stripe_api.get(second)["customer"] is None
    row = await PaymentMethod.objects().where(PaymentMethod.id == second).first()
    assert row is not None
    assert row.customer is None
    customer = await Customer.objects().where(Customer.id == payer["id"]).first()
    assert customer is not None
    assert customer.invoice_settings_default_payment_method is None
    assert await PaymentMethod.count().where(PaymentMethod.customer == payer["id"]) == 1
    with pytest.raises(GatewayError, match="no longer on your account"):
        await gateway.set_default_payment_method(
            payer["id"], "pm_missing", idempotency_key="default-2"
        )
    assert first != second


# --- invoices ----


async def test_pay_invoice_redirects_to_the_hosted_page(
    stripe_api: StripeAPIServer, gateway: StripeGateway, subscribed, payer
) -> None:
    invoice = stripe_api.create_invoice(payer["id"], amount=2500, status="open")
    result = await gateway.pay_invoice(invoice["id"], idempotency_key="pay-1")
    assert result.status == "redirect"
    assert result.redirect_url == invoice["hosted_invoice_url"]
    row = await Invoice.objects().where(Invoice.id == invoice["id"]).first()
    assert row is not None
    assert row.status == "open"
    assert row.amount_due == 2500
    document = await gateway.invoice_document(invoice["id"], business_name="Acme")
    assert document.url == invoice["invoice_pdf"]
    assert document.content is None
    assert document.filename.endswith(".pdf")
    paid = stripe_api.get(subscribed["latest_invoice"])
    assert (await gateway.pay_invoice(paid["id"], idempotency_key="pay-2")).status == "paid"


# --- customer details ----


async def test_update_details_and_tax_ids(
    stripe_api: StripeAPIServer, gateway: StripeGateway, subscribed, payer
) -> None:
    await gateway.update_customer(
        payer["id"],
        CustomerDetails(
            name="Pat Q. Payer",
            phone="+1 555 0100",
            address_line1="1 Main St",
            address_city="Springfield",
            address_postal_code="12345",
            address_country="us",
        ),
        idempotency_key="details-1",
    )
    await gateway.update_customer(
        payer["id"],
        CustomerDetails(
            address_city="Shelbyville", shipping_name="Pat", shipping_address_line1="2 Elm"
        ),
        idempotency_key="details-2",
    )
    server = stripe_api.get(payer["id"])
    assert server["name"] == "Pat Q. Payer"
    assert server["address"]["line1"] == "1 Main St"
    assert server["address"]["city"] == "Shelbyville"
    assert server["address"]["country"] == "US"
    assert server["shipping"]["name"] == "Pat"
    assert server["shipping"]["address"]["line1"] == "2 Elm"
    customer = await Customer.objects().where(Customer.id == payer["id"]).first()
    assert customer is not None
    assert (customer.name, customer.address_line1, customer.address_city) == (
        "Pat Q. Payer",
        "1 Main St",
        "Shelbyville",
    )
    assert customer.shipping_address_line1 == "2 Elm"
    assert customer.phone == "+1 555 0100"

    tax_id = await gateway.add_tax_id(
        payer["id"], type="eu_vat", value="DE123456789", idempotency_key="tax-1"
    )
    assert stripe_api.get(tax_id)["value"] == "DE123456789"
    row = await TaxId.objects().where(TaxId.id == tax_id).first()
    assert row is not None
    assert row.country == "DE"
    assert row.verification_status == "pending"
    with pytest.raises(GatewayError) as problem:
        await gateway.add_tax_id(
            payer["id"], type="eu_vat", value="not a vat", idempotency_key="tax-2"
        )
    assert problem.value.field == "value"
    await gateway.delete_tax_id(payer["id"], tax_id, idempotency_key="tax-3")
    assert stripe_api.get(tax_id) is None
    assert not await TaxId.exists().where(TaxId.id == tax_id)


async def test_refresh_follows_changes_made_on_stripe(
    stripe_api: StripeAPIServer, gateway: StripeGateway, subscribed, payer
) -> None:
    tax_id = stripe_api.create("tax_id", customer=payer["id"], type="eu_vat", value="FR123456789")
    extra = stripe_api.create_payment_method(payer["id"], card="pm_card_amex")
    await gateway.refresh_customer(payer["id"])
    assert await TaxId.exists().where(TaxId.id == tax_id["id"])
    assert await PaymentMethod.count().where(PaymentMethod.customer == payer["id"]) == 2
    stripe_api.call("DELETE", f"/v1/customers/{payer['id']}/tax_ids/{tax_id['id']}")
    stripe_api.call("POST", f"/v1/payment_methods/{extra['id']}/detach")
    stripe_api.call("POST", f"/v1/customers/{payer['id']}", name="Renamed")
    await gateway.refresh_customer(payer["id"])
    assert not await TaxId.exists().where(TaxId.id == tax_id["id"])
    assert await PaymentMethod.count().where(PaymentMethod.customer == payer["id"]) == 1
    customer = await Customer.objects().where(Customer.id == payer["id"]).first()
    assert customer is not None
    assert customer.name == "Renamed"
    stripe_api.call("DELETE", f"/v1/customers/{payer['id']}")
    await gateway.refresh_customer(payer["id"])
    customer = await Customer.objects().where(Customer.id == payer["id"]).first()
    assert customer is not None
    assert customer.deleted is True
    assert (await _sub(subscribed["id"])).status == "active"  # its own event re-fetches it


async def test_discover_customers(
    stripe_api: StripeAPIServer, gateway: StripeGateway, catalog
) -> None:
    older = stripe_api.create_customer(email="Sam@Example.test")
    stripe_api.create_payment_method(older["id"], default=True)
    stripe_api.create_subscription(customer=older["id"], items=[{"price": catalog["pro"]["id"]}])
    stripe_api.advance_clock(60)
    newer = stripe_api.create_customer(email="sam@example.test")
    assert await gateway.discover_customers("nobody@example.test") == []
    ids = await gateway.discover_customers("Sam@Example.test")
    assert ids == [newer["id"], older["id"]]
    assert await Customer.count() == 2
    assert await Subscription.count().where(Subscription.customer == older["id"]) == 1
    assert await Product.exists().where(Product.name == "Pro")


# --- idempotency ----


async def test_same_intent_twice_changes_stripe_once(
    stripe_api: StripeAPIServer, gateway: StripeGateway, subscribed, catalog
) -> None:
    def change(key: str, quantity: int = 4):
        return gateway.change_subscription(
            subscribed["id"],
            price_id=catalog["basic"]["id"],
            quantity=quantity,
            proration_behavior="always_invoice",
            schedule_at_period_end=False,
            trial_update_behavior="end_trial",
            idempotency_key=key,
        )

    def updates() -> int:
        return len(stripe_api.events_of("customer.subscription.updated"))

    def invoices() -> int:
        return len(stripe_api.events_of("invoice.created"))

    before, invoices_before = updates(), invoices()
    await change("same-intent")
    await change("same-intent")  # a double submit after the first finished
    assert updates() == before + 1
    assert len(_posts(stripe_api, f"/v1/subscriptions/{subscribed['id']}")) == 1
    with pytest.raises(IdempotencyConflict):
        await change("same-intent", quantity=5)
    # Two submits at the same moment (two Portico processes, say): both reach Stripe while the
    # other is still in progress there. Stripe runs one and answers the other 409
    # idempotency_key_in_use; the SDK retries that into the replay. One change.
    with stripe_api.slow_processing(0.3):
        await asyncio.gather(change("racing", 6), change("racing", 6))
    assert updates() == before + 2
    assert invoices() == invoices_before + 2  # one proration invoice per change
    assert await _items(subscribed["id"]) == [(catalog["basic"]["id"], 6)]
    assert any(r.status == 409 for r in stripe_api.requests), "the submits did not overlap"


# --- faults ----


async def test_stripe_500_changes_nothing_and_a_retry_changes_once(
    stripe_api: StripeAPIServer, gateway: StripeGateway, subscribed
) -> None:
    before = len(stripe_api.events_of("customer.subscription.updated"))
    stripe_api.inject_fault(
        f"/v1/subscriptions/{subscribed['id']}", status=500, times=3, method="POST"
    )
    with pytest.raises(GatewayError) as problem:
        await gateway.cancel_subscription(
            subscribed["id"],
            at_period_end=True,
            proration_behavior="none",
            reason=None,
            comment=None,
            idempotency_key="cancel-retry",
        )
    assert problem.value.code == "unavailable"
    assert problem.value.message == (
        "Billing is not reachable right now. Nothing was changed. Please try again in a moment."
    )
    assert stripe_api.get(subscribed["id"])["cancel_at_period_end"] is False
    assert (await _sub(subscribed["id"])).cancel_at_period_end is False
    await gateway.cancel_subscription(
        subscribed["id"],
        at_period_end=True,
        proration_behavior="none",
        reason=None,
        comment=None,
        idempotency_key="cancel-retry",
    )
    assert (await _sub(subscribed["id"])).cancel_at_period_end is True
    assert len(stripe_api.events_of("customer.subscription.updated")) == before + 1
    assert len(_posts(stripe_api, f"/v1/subscriptions/{subscribed['id']}")) == 4  # 3 failed


async def test_a_request_stripe_finished_after_our_timeout_is_not_repeated(
    stripe_api: StripeAPIServer, db, stripe_settings, subscribed
) -> None:
    """Stripe slower than the timeout: the action fails (GatewayUnavailable) though Stripe
    applied it; the retry with the same intent is answered from Stripe's idempotency store."""
    quick = StripeGateway(stripe_settings, request_timeout=0.3, deadline=1.0, max_network_retries=0)
    before = len(stripe_api.events_of("customer.subscription.updated"))
    try:
        stripe_api.inject_fault(
            f"/v1/subscriptions/{subscribed['id']}", delay_seconds=0.8, method="POST"
        )
        with pytest.raises(GatewayError) as problem:
            await quick.cancel_subscription(
                subscribed["id"],
                at_period_end=True,
                proration_behavior="none",
                reason=None,
                comment=None,
                idempotency_key="slow-cancel",
            )
        assert problem.value.code == "unavailable"
        assert (await _sub(subscribed["id"])).cancel_at_period_end is False
        await asyncio.sleep(0.7)  # Stripe finishes the request it was given
        assert stripe_api.get(subscribed["id"])["cancel_at_period_end"] is True
        await quick.cancel_subscription(
            subscribed["id"],
            at_period_end=True,
            proration_behavior="none",
            reason=None,
            comment=None,
            idempotency_key="slow-cancel",
        )
    finally:
        await quick.aclose()
    assert (await _sub(subscribed["id"])).cancel_at_period_end is True
    assert len(stripe_api.events_of("customer.subscription.updated")) == before + 1
    assert any(r.replayed for r in stripe_api.requests)


async def test_hanging_stripe_fails_within_15_seconds(stripe_api: StripeAPIServer) -> None:
    """The production settings (10 s per request, 2 retries, 12 s per action): Stripe accepting
    connections but never answering fails the action with GatewayUnavailable in under 15 s.
    No database is needed: nothing is written when Stripe does not answer."""
    settings = Settings(
        billing="stripe", stripe_secret_key=stripe_api.api_key, stripe_api_base=stripe_api.url
    )
    gateway = StripeGateway(settings)
    assert gateway.connection.timeout == 10.0
    assert gateway.connection.max_network_retries == 2
    stripe_api.inject_fault("/v1/*", delay_seconds=60, times=None)
    started = time.monotonic()
    try:
        with pytest.raises(GatewayUnavailable):
            await gateway.refresh_customer("cus_hanging")
    finally:
        await gateway.aclose()
    assert time.monotonic() - started < 15
    assert gateway.health.degraded  # portal pages show the "billing unreachable" notice


async def test_card_errors_become_card_declined(
    stripe_api: StripeAPIServer, gateway: StripeGateway, payer
) -> None:
    from app.billing.gateway import CardDeclined
    from app.billing.stripe_client import guard

    with pytest.raises(CardDeclined, match="declined"):
        async with guard("The card couldn't be added."):
            await gateway.client.v1.payment_methods.attach_async(
                "pm_card_chargeDeclined", {"customer": payer["id"]}
            )


async def test_the_type_check_catches_unknown_parameters(
    stripe_api: StripeAPIServer, gateway: StripeGateway, payer
) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        await gateway.client.v1.customers.update_async(payer["id"], {"nmae": "typo"})  # type: ignore[typeddict-unknown-key]
    assert len(rejected_by_types(stripe_api)) == 1
    stripe_api.clear_requests()
