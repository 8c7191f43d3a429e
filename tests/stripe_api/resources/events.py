"""Events and the account.

Events: list (``type`` with Stripe's ``*`` wildcard such as ``customer.subscription.*``,
``types[]``, ``created`` ranges, pagination) and retrieve.  Every event the server records
is kept (Stripe keeps 30 days).  ``GET /v1/account`` returns the account behind the key with
``business_profile.name`` and ``settings.dashboard.display_name``; like Stripe's, it has no
"mode" field - the mode of a key is its prefix (``sk_test_``), and this server only accepts
test-mode keys.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from ..objects import match_range, paginate
from ..routing import Context, route


def _type_matches(event_type: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(event_type, pattern) if "*" in pattern else event_type == pattern


@route("GET", "/v1/events", "EventListParams")
def list_events(ctx: Context) -> dict[str, Any]:
    params = ctx.params
    items = ctx.state.all("event")
    if "type" in params:
        items = [e for e in items if _type_matches(e["type"], params["type"])]
    if "types" in params:
        items = [e for e in items if any(_type_matches(e["type"], t) for t in params["types"])]
    items = [e for e in items if match_range(e["created"], params.get("created"))]
    return paginate(ctx.state, items, params, "/v1/events")


@route("GET", "/v1/events/{id}", "EventRetrieveParams")
def retrieve_event(ctx: Context) -> dict[str, Any]:
    return ctx.state.require("event", ctx.args["id"])


@route("GET", "/v1/account", "AccountRetrieveCurrentParams")
def retrieve_account(ctx: Context) -> dict[str, Any]:
    account = ctx.state.account
    return {
        "id": account["id"],
        "object": "account",
        "business_profile": {
            "annual_revenue": None,
            "estimated_worker_count": None,
            "mcc": None,
            "name": account["name"],
            "product_description": None,
            "support_address": None,
            "support_email": account["email"],
            "support_phone": None,
            "support_url": None,
            "url": None,
        },
        "business_type": "company",
        "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": True,
        "controller": {"type": "account"},
        "country": "US",
        "created": 1_600_000_000,
        "default_currency": "usd",
        "details_submitted": True,
        "email": account["email"],
        "metadata": {},
        "payouts_enabled": True,
        "settings": {
            "branding": {
                "icon": None,
                "logo": None,
                "primary_color": None,
                "secondary_color": None,
            },
            "dashboard": {"display_name": account["name"], "timezone": "Etc/UTC"},
            "payments": {
                "statement_descriptor": account["name"].upper()[:22],
                "statement_descriptor_kana": None,
                "statement_descriptor_kanji": None,
            },
        },
        "type": "standard",
    }
