"""Payment methods on Stripe: adding a card through Checkout, the default card, removing one.

Portico never handles card numbers in Stripe mode: ``start_add_payment_method`` creates a
Checkout Session in setup mode and the customer types the card on Stripe's page;
``complete_add_payment_method`` attaches the result when they come back.
"""

from __future__ import annotations

import stripe

from app.billing.gateway import AddPaymentMethodStart, CardInput, GatewayError
from app.billing.stripe_actions import Keys, Outcome, StripeActions
from app.billing.stripe_batch import Batch
from app.billing.stripe_client import is_missing, plain, replayed
from app.billing.stripe_errors import payment_method_error
from app.billing.stripe_fetch import complete, fetch_subscription, gather_limited
from app.billing.stripe_mapping import ref
from app.billing.tables import Customer, Subscription


async def _currency_of(customer_id: str) -> str:
    customer = await Customer.select(Customer.currency).where(Customer.id == customer_id).first()
    if customer and customer["currency"]:
        return customer["currency"]
    sub = (
        await Subscription.select(Subscription.currency)
        .where(Subscription.customer == customer_id)
        .order_by(Subscription.created, ascending=False)
        .first()
    )
    return sub["currency"] if sub else "usd"


async def start_add_payment_method(
    actions: StripeActions,
    customer_id: str,
    *,
    success_url: str,
    cancel_url: str,
    idempotency_key: str,
) -> AddPaymentMethodStart:
    """``checkout.sessions.create(mode=setup, customer, currency, success_url, cancel_url)``:
    the customer types the card on Stripe's page. ``success_url`` gets
    ``session_id={CHECKOUT_SESSION_ID}`` unless it already carries the placeholder."""
    if "{CHECKOUT_SESSION_ID}" not in success_url:
        joiner = "&" if "?" in success_url else "?"
        success_url = f"{success_url}{joiner}session_id={{CHECKOUT_SESSION_ID}}"

    async def work(keys: Keys) -> Outcome:
        currency = await _currency_of(customer_id)
        session = await actions.client.v1.checkout.sessions.create_async(
            {
                "mode": "setup",
                "customer": customer_id,
                "currency": currency,
                "success_url": success_url,
                "cancel_url": cancel_url,
            },
            keys("session"),
        )
        return Outcome(customer_id, result={"redirect_url": session.url, "session": session.id})

    result = await actions.intent(
        idempotency_key,
        "start_add_payment_method",
        {"customer": customer_id, "success_url": success_url, "cancel_url": cancel_url},
        "Adding a card couldn't be started.",
        work,
    )
    return AddPaymentMethodStart(redirect_url=result["redirect_url"])


async def add_card(
    actions: StripeActions,
    customer_id: str,
    card: CardInput,
    *,
    make_default: bool,
    idempotency_key: str,
) -> str:
    raise GatewayError(
        "Cards are added on Stripe's secure page; Portico never handles card numbers.",
        code="not_supported",
    )


async def complete_add_payment_method(
    actions: StripeActions, customer_id: str, *, session_id: str, make_default: bool
) -> str:
    """``checkout.sessions.retrieve(expand=[setup_intent])``; the setup intent's payment
    method is attached if it is not yet (``payment_methods.attach``) and made the default
    when asked (``customers.update(invoice_settings.default_payment_method)``). Safe to
    repeat: the requests' idempotency keys derive from the session id."""
    keys = Keys(session_id, "complete_add_payment_method")
    not_found = GatewayError(
        "That card setup was not found. Please add the card again.", code="resource_missing"
    )
    async with actions.guard("The card couldn't be added."):
        v1 = actions.client.v1
        try:
            session = plain(
                await v1.checkout.sessions.retrieve_async(session_id, {"expand": ["setup_intent"]})
            )
        except stripe.InvalidRequestError as error:
            if is_missing(error):
                raise not_found from None
            raise
        if ref(session.get("customer")) != customer_id or session.get("mode") != "setup":
            raise not_found
        intent = session.get("setup_intent")
        if session.get("status") != "complete" or not isinstance(intent, dict):
            raise GatewayError(
                "Adding the card was not finished. Please try again.", code="setup_incomplete"
            )
        if intent.get("status") != "succeeded" or not intent.get("payment_method"):
            raise GatewayError(
                "Adding the card was not finished. Please try again.", code="setup_incomplete"
            )
        pm_id = ref(intent["payment_method"]) or ""
        batch = Batch()
        pm = plain(await v1.payment_methods.retrieve_async(pm_id))
        owner = ref(pm.get("customer"))
        if owner is None:
            pm = plain(
                await v1.payment_methods.attach_async(
                    pm_id, {"customer": customer_id}, keys("attach")
                )
            )
        elif owner != customer_id:
            raise not_found
        batch.add(pm)
        if make_default:
            customer = await v1.customers.update_async(
                customer_id,
                {"invoice_settings": {"default_payment_method": pm_id}},
                keys("default"),
            )
            batch.add(
                plain(await v1.customers.retrieve_async(customer_id))
                if replayed(customer)
                else plain(customer)
            )
        await complete(actions.client, batch)
    await batch.commit()
    return pm_id


async def set_default_payment_method(
    actions: StripeActions, customer_id: str, payment_method_id: str, *, idempotency_key: str
) -> None:
    """``customers.update(invoice_settings={default_payment_method})``."""

    async def work(keys: Keys) -> Outcome:
        customer = await actions.client.v1.customers.update_async(
            customer_id,
            {"invoice_settings": {"default_payment_method": payment_method_id}},
            keys("update"),
        )
        fresh = (
            plain(await actions.client.v1.customers.retrieve_async(customer_id))
            if replayed(customer)
            else plain(customer)
        )
        outcome = Outcome(customer_id, result={"payment_method": payment_method_id})
        outcome.batch.add(fresh)
        return outcome

    await actions.intent(
        idempotency_key,
        "set_default_payment_method",
        {"customer": customer_id, "payment_method": payment_method_id},
        "The default card couldn't be changed.",
        work,
        override=payment_method_error,
    )


async def detach_payment_method(
    actions: StripeActions, customer_id: str, payment_method_id: str, *, idempotency_key: str
) -> None:
    """``payment_methods.detach``; then the customer and the subscriptions that named it as
    their default are re-fetched (Stripe clears those defaults)."""

    async def work(keys: Keys) -> Outcome:
        v1 = actions.client.v1
        outcome = Outcome(customer_id, result={"payment_method": payment_method_id})
        try:
            pm = plain(
                await v1.payment_methods.detach_async(payment_method_id, None, keys("detach"))
            )
        except stripe.InvalidRequestError as error:
            if is_missing(error):
                raise
            pm = plain(await v1.payment_methods.retrieve_async(payment_method_id))
            if ref(pm.get("customer")) is not None:
                raise
        outcome.batch.add(pm)
        outcome.batch.payment_method_detached(payment_method_id)
        outcome.batch.add(plain(await v1.customers.retrieve_async(customer_id)))
        affected = await Subscription.select(Subscription.id).where(
            (Subscription.customer == customer_id)
            & (Subscription.default_payment_method == payment_method_id)
        )
        subs = await gather_limited(
            fetch_subscription(actions.client, row["id"]) for row in affected
        )
        outcome.batch.add_all(subs)
        return outcome

    await actions.intent(
        idempotency_key,
        "detach_payment_method",
        {"customer": customer_id, "payment_method": payment_method_id},
        "The card couldn't be removed.",
        work,
        override=payment_method_error,
    )
