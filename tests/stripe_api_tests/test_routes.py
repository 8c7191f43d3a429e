"""The route table maps every endpoint to the Params class the SDK itself uses for it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import stripe

from tests.stripe_api.params import params_class
from tests.stripe_api.routing import ROUTES

SDK = Path(stripe.__file__).parent


def _sdk_endpoints() -> dict[tuple[str, str], str]:
    """``(METHOD, /v1/path/{}) -> Params class name`` from the SDK's service modules."""
    found: dict[tuple[str, str], str] = {}
    for path in [*SDK.glob("_*_service.py"), *SDK.glob("checkout/_*_service.py")]:
        namespace = "checkout." if path.parent.name == "checkout" else ""
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.AsyncFunctionDef):
                continue
            annotation = next(
                (
                    ast.unparse(a.annotation)
                    for a in node.args.args
                    if a.arg == "params" and a.annotation is not None
                ),
                None,
            )
            for call in ast.walk(node):
                if (
                    isinstance(call, ast.Call)
                    and getattr(call.func, "attr", "") == "_request_async"
                    and annotation
                ):
                    method = call.args[0].value.upper()  # type: ignore[attr-defined]
                    template = ast.unparse(call.args[1]).split(".format(")[0].strip("'\"")
                    name = re.search(r"(\w+Params)", annotation).group(1)  # type: ignore[union-attr]
                    found[(method, re.sub(r"\{\w+\}", "{}", template))] = namespace + name
    return found


def test_every_route_uses_the_sdk_params_class_for_that_endpoint() -> None:
    sdk = _sdk_endpoints()
    assert len(sdk) > 300
    for route in ROUTES:
        key = (route.method, re.sub(r"\{\w+\}", "{}", route.template))
        assert key in sdk, f"{key} is not an SDK endpoint"
        assert sdk[key] == route.params, f"{key}: SDK uses {sdk[key]}, route says {route.params}"
        assert params_class(route.params) is not None


def test_required_endpoints_are_routed() -> None:
    routed = {(r.method, r.template) for r in ROUTES}
    for endpoint in [
        ("POST", "/v1/customers"),
        ("GET", "/v1/customers/{customer}"),
        ("POST", "/v1/customers/{customer}/tax_ids"),
        ("DELETE", "/v1/customers/{customer}/tax_ids/{id}"),
        ("POST", "/v1/subscriptions/{subscription_exposed_id}"),
        ("DELETE", "/v1/subscriptions/{subscription_exposed_id}"),
        ("POST", "/v1/subscriptions/{subscription}/resume"),
        ("POST", "/v1/subscription_schedules/{schedule}/release"),
        ("POST", "/v1/invoices/create_preview"),
        ("POST", "/v1/invoices/{invoice}/pay"),
        ("POST", "/v1/payment_methods/{payment_method}/detach"),
        ("GET", "/v1/setup_intents/{intent}"),
        ("POST", "/v1/checkout/sessions"),
        ("GET", "/v1/promotion_codes"),
        ("GET", "/v1/events"),
        ("GET", "/v1/account"),
    ]:
        assert endpoint in routed
