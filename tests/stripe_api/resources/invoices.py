"""Invoice endpoints: retrieve, list, lines, create, finalize, pay, void, create_preview.

Modelled: list filters ``customer``, ``subscription``, ``status``, ``collection_method``,
``created``; ``pay`` finalises drafts, charges ``payment_method`` or the default payment
method (402 ``card_error`` on decline, with the failed attempt recorded) or
``paid_out_of_band``; ``void``, ``mark_uncollectible``; ``create`` makes a draft from the
customer's pending invoice items.  ``create_preview`` never stores anything: it applies the
requested ``subscription_details`` (items, proration behaviour/date, trial end,
``cancel_now``, ``cancel_at_period_end``) and ``discounts`` to a throw-away copy of the state
and returns the invoice that would result - the immediate proration invoice for
``always_invoice`` or an anchor reset, otherwise the next renewal invoice (next period's
items, after any schedule phase change, plus pending prorations), or the first invoice of a
new subscription.  Preview ids look like ``upcoming_in_...``, lines ``il_tmp_...``.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import changes, invoicing, lifecycle, periods
from .. import lines as line_items
from ..errors import StripeError, invalid
from ..objects import list_object, match_range, paginate, render, update_metadata
from ..routing import Context, route
from ..state import State
from . import discounts, payment_methods, schedules


def _invoice(ctx: Context) -> dict[str, Any]:
    return ctx.state.require("invoice", ctx.args["invoice"])


@route("GET", "/v1/invoices/{invoice}", "InvoiceRetrieveParams")
def retrieve(ctx: Context) -> dict[str, Any]:
    return _invoice(ctx)


@route("GET", "/v1/invoices", "InvoiceListParams")
def list_invoices(ctx: Context) -> dict[str, Any]:
    params = ctx.params
    items = ctx.state.all("invoice")
    for key in ("customer", "status", "collection_method"):
        if key in params:
            items = [i for i in items if i[key] == params[key]]
    if "subscription" in params:
        items = [
            i
            for i in items
            if ((i["parent"] or {}).get("subscription_details") or {}).get("subscription")
            == params["subscription"]
        ]
    items = [i for i in items if match_range(i["created"], params.get("created"))]
    return paginate(ctx.state, items, params, "/v1/invoices")


@route("GET", "/v1/invoices/{invoice}/lines", "InvoiceLineItemListParams")
def list_lines(ctx: Context) -> dict[str, Any]:
    invoice = _invoice(ctx)
    lines = invoice["lines"]["data"]
    limit = ctx.params.get("limit", 10)
    start = 0
    if ctx.params.get("starting_after"):
        ids = [line["id"] for line in lines]
        if ctx.params["starting_after"] not in ids:
            raise invalid("No such line item.", "starting_after", "resource_missing")
        start = ids.index(ctx.params["starting_after"]) + 1
    page = lines[start : start + limit]
    return list_object(invoice["lines"]["url"], page, start + limit < len(lines))


@route("POST", "/v1/invoices", "InvoiceCreateParams")
def create(ctx: Context) -> dict[str, Any]:
    state, params = ctx.state, ctx.params
    customer = state.require("customer", params.get("customer"), param="customer", status=400)
    subscription = None
    if params.get("subscription"):
        subscription = state.require(
            "subscription", params["subscription"], param="subscription", status=400
        )
    pending = []
    if params.get("pending_invoice_items_behavior", "exclude") == "include":
        pending = line_items.pending_items(
            state, customer["id"], subscription["id"] if subscription else None
        )
    invoice = invoicing.build_invoice(
        state,
        customer,
        lines=[],
        invoice_items=pending,
        billing_reason="manual",
        subscription=subscription,
    )
    invoice["collection_method"] = params.get("collection_method", "charge_automatically")
    invoice["auto_advance"] = params.get("auto_advance", False)
    invoice["description"] = params.get("description")
    invoice["metadata"] = dict(params.get("metadata") or {})
    return invoice


@route("POST", "/v1/invoices/{invoice}", "InvoiceUpdateParams")
def update(ctx: Context) -> dict[str, Any]:
    invoice = _invoice(ctx)
    if "metadata" in ctx.params:
        invoice["metadata"] = update_metadata(invoice["metadata"], ctx.params["metadata"])
    for key in ("description", "footer"):
        if key in ctx.params:
            if invoice["status"] != "draft":
                raise StripeError(
                    400,
                    "You can only update the description of a draft invoice.",
                    code="invoice_not_editable",
                    param=key,
                )
            invoice[key] = ctx.params[key] or None
    ctx.state.emit("invoice.updated", invoice)
    return invoice


@route("POST", "/v1/invoices/{invoice}/finalize", "InvoiceFinalizeInvoiceParams")
def finalize(ctx: Context) -> dict[str, Any]:
    invoice = _invoice(ctx)
    invoicing.finalize(ctx.state, invoice)
    return invoice


@route("POST", "/v1/invoices/{invoice}/pay", "InvoicePayParams")
def pay(ctx: Context) -> dict[str, Any]:
    state, params = ctx.state, ctx.params
    invoice = _invoice(ctx)
    if invoice["status"] == "paid":
        raise invalid("Invoice is already paid.", code="invoice_already_paid")
    if invoice["status"] == "void":
        raise invalid("You cannot pay a voided invoice.")
    if invoice["status"] == "draft":
        invoicing.finalize(state, invoice)
        if invoice["status"] == "paid":
            return invoice
    if params.get("paid_out_of_band"):
        invoicing.mark_paid(state, invoice, attempted=False, out_of_band=True)
        return invoice
    pm_id = None
    if params.get("payment_method"):
        pm_id = payment_methods.resolve(state, params["payment_method"], "payment_method")["id"]
    invoicing.collect(state, invoice, payment_method=pm_id, raise_on_failure=True)
    return invoice


@route("POST", "/v1/invoices/{invoice}/void", "InvoiceVoidInvoiceParams")
def void(ctx: Context) -> dict[str, Any]:
    invoice = _invoice(ctx)
    invoicing.void(ctx.state, invoice)
    return invoice


@route("POST", "/v1/invoices/{invoice}/mark_uncollectible", "InvoiceMarkUncollectibleParams")
def mark_uncollectible(ctx: Context) -> dict[str, Any]:
    invoice = _invoice(ctx)
    if invoice["status"] != "open":
        raise invalid("You can only mark open invoices as uncollectible.")
    invoice["status"] = "uncollectible"
    invoice["status_transitions"]["marked_uncollectible_at"] = ctx.now
    ctx.state.emit("invoice.marked_uncollectible", invoice)
    return invoice


# -- previews -------------------------------------------------------------------------------
def upcoming_none(customer: str) -> StripeError:
    return StripeError(
        400, f"No upcoming invoices for customer: {customer}", code="invoice_upcoming_none"
    )


@route("POST", "/v1/invoices/create_preview", "InvoiceCreatePreviewParams")
def create_preview(ctx: Context) -> dict[str, Any]:
    state = ctx.state
    snapshot = state.snapshot()
    try:
        return render(state, _preview(state, ctx.params), ctx.expand)
    finally:
        state.restore(snapshot)


def _preview(state: State, params: dict[str, Any]) -> dict[str, Any]:
    subscription = None
    if params.get("subscription"):
        subscription = state.require(
            "subscription", params["subscription"], param="subscription", status=400
        )
    customer_id = params.get("customer") or (subscription or {}).get("customer")
    if not customer_id:
        raise invalid("Missing required param: customer.", "customer", "parameter_missing")
    customer = state.require("customer", customer_id, param="customer", status=400)
    if subscription and subscription["customer"] != customer["id"]:
        raise invalid("The subscription does not belong to this customer.", "subscription")
    details = params.get("subscription_details") or {}
    discount_ids = None
    if "discounts" in params:
        discount_ids = (
            discounts.redeem(
                state,
                params["discounts"],
                customer=customer["id"],
                subscription=None,
                param="discounts",
            )
            if params["discounts"]
            else []
        )
    if subscription is None and details.get("items"):
        return _new_subscription_preview(state, customer, details, discount_ids)
    if subscription is None:
        pending = line_items.pending_items(state, customer["id"])
        if not pending:
            raise upcoming_none(customer["id"])
        return invoicing.build_invoice(
            state,
            customer,
            lines=[],
            invoice_items=pending,
            billing_reason="upcoming",
            discount_ids=discount_ids,
            preview=True,
        )
    if subscription["status"] in ("canceled", "incomplete_expired"):
        raise upcoming_none(customer["id"])
    return _subscription_preview(state, customer, subscription, details, params, discount_ids)


def _new_subscription_preview(
    state: State, customer: dict[str, Any], details: dict[str, Any], discount_ids: Any
) -> dict[str, Any]:
    sub_params: dict[str, Any] = {
        "items": details["items"],
        "payment_behavior": "default_incomplete",
    }
    if "trial_end" in details:
        sub_params["trial_end"] = details["trial_end"]
    subscription = lifecycle.new_subscription(state, customer, sub_params)
    stored = state.require("invoice", subscription["latest_invoice"])
    return invoicing.build_invoice(
        state,
        customer,
        lines=copy.deepcopy(stored["lines"]["data"]),
        billing_reason="subscription_create",
        subscription=subscription,
        discount_ids=discount_ids,
        preview=True,
    )


def _subscription_preview(
    state: State,
    customer: dict[str, Any],
    subscription: dict[str, Any],
    details: dict[str, Any],
    params: dict[str, Any],
    discount_ids: Any,
) -> dict[str, Any]:
    from . import subscriptions

    behavior = details.get("proration_behavior", "create_prorations")
    result = changes.ChangeResult(proration_date=state.now())
    if details.get("items"):
        result = changes.change_items(
            state,
            subscription,
            details["items"],
            proration_behavior="none" if behavior == "none" else "create_prorations",
            proration_date=details.get("proration_date"),
            param="subscription_details[items]",
        )
    if details.get("trial_end") is not None and subscriptions._trial_end(
        state, subscription, details["trial_end"]
    ):
        result.reset_anchor = True
    if details.get("cancel_now"):
        lifecycle.cancel_now(state, subscription, prorate=behavior != "none")
        pending = line_items.pending_items(state, customer["id"], subscription["id"])
        if not pending:
            raise upcoming_none(customer["id"])
        return invoicing.build_invoice(
            state,
            customer,
            lines=[],
            invoice_items=pending,
            billing_reason="subscription_update",
            subscription=subscription,
            discount_ids=discount_ids,
            preview=True,
        )
    if discount_ids is not None:
        subscription["discounts"] = discount_ids
    if result.reset_anchor or (behavior == "always_invoice" and result.changes):
        invoice = changes.update_invoice(state, subscription, result, preview=True)
    else:
        invoice = _next_renewal(state, customer, subscription, details, params)
    if invoice is None:
        raise upcoming_none(customer["id"])
    if details.get("items"):
        invoice["parent"]["subscription_details"]["subscription_proration_date"] = (
            result.proration_date
        )
    return invoice


def _next_renewal(
    state: State,
    customer: dict[str, Any],
    subscription: dict[str, Any],
    details: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any] | None:
    start, end = changes.period(subscription)
    pending = []
    if params.get("preview_mode", "next") == "next":
        pending = line_items.pending_items(state, customer["id"], subscription["id"])
    ending = details.get("cancel_at_period_end", subscription["cancel_at_period_end"]) or (
        subscription["cancel_at"] is not None and subscription["cancel_at"] <= end
    )
    lines: list[dict[str, Any]] = []
    if not ending:
        if subscription["schedule"]:
            schedules.on_period_end(state, subscription, end)
        interval, count = changes.interval_of(state, subscription)
        anchor = subscription["billing_cycle_anchor"]
        changes.set_period(subscription, end, periods.next_boundary(anchor, end, interval, count))
        lines = changes.period_lines(state, subscription)
    if not lines and not pending:
        return None
    return invoicing.build_invoice(
        state,
        customer,
        lines=lines,
        invoice_items=pending,
        billing_reason="upcoming",
        subscription=subscription,
        period=(start, end),
        preview=True,
    )
