"""The features settings page of one configuration: what customers can do in the portal.

A plain form (POST → 303 → the page with a flash) that htmx enhances (``hx-post`` to the same URL,
``#main-content`` swapped; success through ``done``). Invalid input re-renders the form with every
message beside its field, what was submitted, and 422. The rules live in
``app.configuration.feature_form`` (checking) and ``app.configuration.editing`` (saving); the
portal reads the configuration on every request, so a feature switched off disappears at once.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from app.configuration import editing, feature_form
from app.configuration import service as configurations
from app.configuration.features import reason_labels
from app.configuration.tables import PortalConfiguration
from app.i18n import gettext as _
from app.i18n import ngettext
from app.merchant.access import EXCEPTION_HANDLERS, MerchantAccess, actor, done, merchant_access
from app.merchant.settings import configuration_or_404, merchant_context
from app.web import formatting
from app.web.forms import MAX_FIELD
from app.web.htmx import page

MAX_VALUES = 2000  # fields in one submitted form (ten products need well under 200)


def features_url(configuration: PortalConfiguration) -> str:
    return f"/merchant/configurations/{configuration.id}/features"


async def read_multi_form(request: Request) -> dict[str, list[str]]:
    """Every submitted value (checkbox groups send several under one name), CSRF token removed;
    over-long values are cut (they are never valid choices)."""
    form = await request.form()
    data: dict[str, list[str]] = {}
    for count, (key, value) in enumerate(form.multi_items()):
        if count >= MAX_VALUES:
            break
        if key == "_csrf_token" or not isinstance(value, str):
            continue
        data.setdefault(key[:200], []).append(value[:MAX_FIELD])
    return data


def labels() -> dict[str, dict[str, str]]:
    """The choices' labels, and a sentence for each that says what it does."""
    return {
        "customer_fields": {
            "name": _("Name"),
            "address": _("Billing address"),
            "phone": _("Phone number"),
            "shipping": _("Shipping address"),
            "tax_id": _("Tax IDs"),
        },
        "cancel_modes": {
            "at_period_end": _(
                "At the end of the billing period: the customer keeps access until the period "
                "they paid for ends, and can renew until then."
            ),
            "immediately": _(
                "Immediately: the subscription ends as soon as the customer confirms."
            ),
        },
        "cancel_prorations": {
            "none": _("No credit: the customer is not refunded for the rest of the period."),
            "create_prorations": _(
                "Prorate: credit the unused part of the period to the customer's balance."
            ),
        },
        # Stripe's eight reasons, with Stripe's labels (as the portal's cancellation page shows).
        "reasons": reason_labels(),
        "allowed_updates": {
            "price": _("Switch plans: choose another of the products and prices below."),
            "quantity": _("Change the quantity, within the limits set for each product below."),
            "promotion_code": _("Enter a promotion code when changing their plan."),
        },
        "update_prorations": {
            "none": _("No prorations: the new price applies from the next renewal."),
            "create_prorations": _(
                "Prorate: charge or credit the difference for the rest of the period on the next "
                "invoice."
            ),
            "always_invoice": _(
                "Prorate and invoice at once: charge the difference for the rest of the period "
                "straight away."
            ),
        },
        "schedule_conditions": {
            "decreasing_item_amount": _(
                "Downgrades: moving to a cheaper price or a lower quantity waits for the end of "
                "the period."
            ),
            "shortening_interval": _(
                "Shorter billing intervals: moving from yearly to monthly billing waits for the "
                "end of the period."
            ),
        },
        "trial_behaviors": {
            "end_trial": _("End the trial: the customer pays for the new plan straight away."),
            "continue_trial": _(
                "Keep the trial: the new plan is billed when the trial ends, as planned."
            ),
        },
    }


def coupon_terms(coupon: feature_form.ChoiceCoupon) -> str:
    """``20% off for 3 months``, ``$10.00 off the next invoice``…"""
    if coupon.percent_off:
        amount = f"{coupon.percent_off}%"
    else:
        amount = formatting.money(coupon.amount_off or 0, coupon.currency or "usd")
    if coupon.duration == "forever":
        return _("%(amount)s off for as long as the customer stays subscribed") % {"amount": amount}
    if coupon.duration == "repeating" and coupon.duration_in_months:
        months = coupon.duration_in_months
        return ngettext(
            "%(amount)s off for %(n)d month", "%(amount)s off for %(n)d months", months
        ) % {"amount": amount, "n": months}
    return _("%(amount)s off the next invoice") % {"amount": amount}


def coupon_options(choices: feature_form.Choices) -> dict[str, str]:
    options = {"": _("No retention coupon")}
    for coupon in choices.coupons:
        terms = coupon_terms(coupon)
        name = coupon.name or coupon.id
        if coupon.valid and name.casefold() == terms.casefold():
            options[coupon.id] = _("%(terms)s (%(id)s)") % {"terms": terms, "id": coupon.id}
        elif coupon.valid:
            options[coupon.id] = _("%(name)s: %(terms)s (%(id)s)") % {
                "name": name,
                "terms": terms,
                "id": coupon.id,
            }
        else:
            options[coupon.id] = _(
                "%(name)s (%(id)s): no longer valid, so customers are not offered it"
            ) % {"name": name, "id": coupon.id}
    return options


class FeaturesController(Controller):
    path = "/merchant/configurations/{configuration_id:str}/features"
    dependencies = {"access": Provide(merchant_access)}
    exception_handlers = EXCEPTION_HANDLERS

    @get("/", name="merchant:features")
    async def features(
        self,
        request: Request,
        configuration_id: FromPath[str],
        access: NamedDependency[MerchantAccess],
    ) -> Response:
        configuration = await configuration_or_404(configuration_id)
        current = configurations.features(configuration)
        choices = await editing.choices(current)
        values = feature_form.values_from_features(current)
        return await self._page(request, access, configuration, choices, values, {})

    @post("/", name="merchant:features_save")
    async def save(
        self,
        request: Request,
        configuration_id: FromPath[str],
        access: NamedDependency[MerchantAccess],
    ) -> Response:
        configuration = await configuration_or_404(configuration_id)
        current = configurations.features(configuration)
        choices = await editing.choices(current)
        data = await read_multi_form(request)
        features, errors = feature_form.parse(data, choices, current)
        if errors:
            values = feature_form.values_from_form(data, choices)
            return await self._page(
                request, access, configuration, choices, values, errors, status=422
            )
        await editing.save_features(configuration.id, features, actor(request, access))
        return await done(
            request,
            access,
            features_url(configuration),
            _("Features saved. The customer portal shows the change at once."),
        )

    async def _page(
        self,
        request: Request,
        access: MerchantAccess,
        configuration: PortalConfiguration,
        choices: feature_form.Choices,
        values: dict[str, Any],
        errors: dict[str, str],
        status: int = 200,
    ) -> Response:
        return page(
            request,
            "merchant/features/features.html",
            fragment="main_content",
            status=status,
            context={
                **await merchant_context(access, configuration, "features"),
                "features_url": features_url(configuration),
                "values": values,
                "errors": errors,
                "choices": choices,
                "labels": labels(),
                "coupons": coupon_options(choices),
                "max_products": feature_form.MAX_PRODUCTS,
                "quantity_max": feature_form.QUANTITY_MAX,
                "field_name": feature_form.field,
            },
        )
