"""Seed helpers: create objects directly, without HTTP, auth, faults or the request log.

``create(kind, **params)`` runs the same code path as the API (parameters are encoded the
way the SDK encodes them, then validated against the same ``*Params`` TypedDict), so
``stripe_api.create("subscription", customer=cus["id"], items=[{"price": price["id"]}])``
behaves exactly like ``client.v1.subscriptions.create(...)`` and emits the same events.

Shortcuts for states that are tedious to reach through the API:

* ``create_payment_method(customer, card=..., default=True)`` attaches any test card
  without the attach-time decline check (e.g. ``pm_card_chargeDeclined`` as a default card);
* ``create_invoice(customer, amount=..., status="open"|"paid"|"draft"|"void"|
  "uncollectible")`` makes a one-line manual invoice;
* ``get(object_id)`` returns any stored object as the API would render it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import invoicing
from . import lines as line_items
from .objects import render
from .resources import catalog, payment_methods

if TYPE_CHECKING:
    from .app import APIApp
    from .state import State

PATHS = {
    "customer": "/v1/customers",
    "product": "/v1/products",
    "price": "/v1/prices",
    "subscription": "/v1/subscriptions",
    "subscription_schedule": "/v1/subscription_schedules",
    "coupon": "/v1/coupons",
    "promotion_code": "/v1/promotion_codes",
    "payment_method": "/v1/payment_methods",
    "setup_intent": "/v1/setup_intents",
    "checkout_session": "/v1/checkout/sessions",
    "checkout.session": "/v1/checkout/sessions",
    "invoice": "/v1/invoices",
}


class Seeding:
    app: APIApp
    state: State

    def call(self, method: str, path: str, **params: Any) -> dict[str, Any]:
        """Run any API call in-process; raises :class:`.errors.StripeError` on failure."""
        return self.app.call(method.upper(), path, params)

    def create(self, kind: str, **params: Any) -> dict[str, Any]:
        if kind == "tax_id":
            customer = params.pop("customer")
            return self.call("POST", f"/v1/customers/{customer}/tax_ids", **params)
        if kind not in PATHS:
            raise ValueError(f"unknown kind {kind!r}; one of {sorted(PATHS)} or 'tax_id'")
        return self.call("POST", PATHS[kind], **params)

    def create_customer(self, **params: Any) -> dict[str, Any]:
        return self.create("customer", **params)

    def create_product(self, **params: Any) -> dict[str, Any]:
        return self.create("product", **params)

    def create_price(self, **params: Any) -> dict[str, Any]:
        return self.create("price", **params)

    def create_subscription(self, **params: Any) -> dict[str, Any]:
        return self.create("subscription", **params)

    def create_coupon(self, **params: Any) -> dict[str, Any]:
        return self.create("coupon", **params)

    def create_promotion_code(self, **params: Any) -> dict[str, Any]:
        return self.create("promotion_code", **params)

    def get(self, object_id: str) -> dict[str, Any] | None:
        with self.state.lock:
            obj = self.state.lookup(object_id)
            return None if obj is None else render(self.state, obj)

    def create_payment_method(
        self,
        customer: str | None = None,
        *,
        card: str = "4242424242424242",
        default: bool = False,
        **billing_details: Any,
    ) -> dict[str, Any]:
        state = self.state
        number = payment_methods.card_number_for_token(card) or card
        with state.lock:
            pm = payment_methods.new_card(state, number, billing_details=billing_details)
            if customer:
                owner = state.require("customer", customer, param="customer", status=400)
                pm["customer"] = owner["id"]
                state.emit("payment_method.attached", pm)
                if default:
                    owner["invoice_settings"]["default_payment_method"] = pm["id"]
                    state.emit("customer.updated", owner)
            return render(state, pm)

    def create_invoice(
        self,
        customer: str,
        *,
        amount: int = 1000,
        description: str = "One-off charge",
        currency: str = "usd",
        status: str = "open",
    ) -> dict[str, Any]:
        state = self.state
        with state.lock:
            owner = state.require("customer", customer, param="customer", status=400)
            price = catalog.new_price(
                state,
                {
                    "currency": currency,
                    "unit_amount": amount,
                    "product_data": {"name": description},
                },
            )
            now = state.now()
            item = line_items.new_invoice_item(
                state,
                customer=owner["id"],
                price=price,
                quantity=1,
                amount=amount,
                description=description,
                start=now,
                end=now,
            )
            invoice = invoicing.build_invoice(
                state, owner, lines=[], invoice_items=[item], billing_reason="manual"
            )
            if status != "draft":
                invoicing.finalize(state, invoice)
            if status == "paid" and invoice["status"] == "open":
                invoicing.mark_paid(state, invoice)
            elif status == "void":
                invoicing.void(state, invoice)
            elif status == "uncollectible":
                invoice["status"] = "uncollectible"
                invoice["status_transitions"]["marked_uncollectible_at"] = now
            return render(state, invoice)
