"""The features page: access, what it shows, validation, saving (audit before/after), and the
customer portal following the saved features at once."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from app import db
from app.billing.tables import Coupon, Price, Product
from app.configuration import features as feature_types
from app.configuration import service as configurations
from app.configuration.feature_form import Choices, changes, parse
from app.configuration.tables import PortalConfiguration
from tests.helpers import HX, JENNY, configuration_of, without_html
from tests.merchant.support import COOKIE, Elements, events, signed_in
from tests.test_i18n import _untranslated, pseudo_locale  # noqa: F401  (fixture)

ACTION = "configuration.features_updated"


class FormReader(HTMLParser):
    """What a browser would submit for the ``<form method="post">`` whose action ends with
    ``action``: ticked boxes and radios, text fields and the selected option of each select."""

    def __init__(self, html: str, action: str = "/features") -> None:
        super().__init__()
        self.action = action
        self.fields: list[tuple[str, str]] = []
        self._in_form = False
        self._done = False
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self._done:
            return
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self._in_form = (a.get("action") or "").endswith(self.action)
        if not self._in_form:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.append((a["name"], a.get("value") or "on"))
            elif kind != "file":
                self.fields.append((a["name"], a.get("value") or ""))
        elif tag == "select":
            self._select = a.get("name")
            self._options = []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value") or "", "selected" in a))

    def handle_endtag(self, tag):
        if tag == "select" and self._select is not None:
            chosen = [value for value, selected in self._options if selected]
            value = chosen[0] if chosen else (self._options[0][0] if self._options else "")
            self.fields.append((self._select, value))
            self._select = None
        elif tag == "form" and self._in_form:
            self._in_form = False
            self._done = True
        elif tag == "form":
            self._in_form = False

    def data(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, value in self.fields:
            if name != "_csrf_token":
                found.setdefault(name, []).append(value)
        return found


async def page_form(merchant, url: str) -> dict[str, list[str]]:
    response = await merchant.client.get(url)
    assert response.status_code == 200, response.text
    return FormReader(response.text).data()


def switched(data: dict[str, list[str]], name: str, on: bool) -> dict[str, list[str]]:
    changed = {key: value for key, value in data.items() if key != name}
    if on:
        changed[name] = ["on"]
    return changed


async def saved_features(merchant) -> feature_types.Features:
    return configurations.features(await configuration_of(merchant.summary))


async def catalogue() -> dict[str, dict]:
    """Product name → {"id", "month", "year"} (price ids) for the demo's three plans."""
    found: dict[str, dict] = {}
    for row in await Price.select(
        Price.id, Price.recurring_interval, Price.product.id.as_alias("pid"), Price.product.name
    ):
        entry = found.setdefault(row["product.name"], {"id": row["pid"]})
        entry[row["recurring_interval"]] = row["id"]
    return found


async def add_products(count: int) -> list[str]:
    ids = []
    async with db.write():
        for n in range(count):
            product = Product(id=f"prod_extra{n:02d}", name=f"Extra {n:02d}", metadata={})
            await Product.insert(product)
            await Price.insert(
                Price(
                    id=f"price_extra{n:02d}",
                    product=product.id,
                    currency="usd",
                    unit_amount=1000 + n,
                    recurring_interval="month",
                    metadata={},
                )
            )
            ids.append(product.id)
    return ids


# -- access -------------------------------------------------------------------------------------


async def test_the_page_needs_a_merchant_session(merchant):
    url = merchant.url("features")
    response = await merchant.client.get(url)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/merchant/sign-in?next=")
    response = await merchant.post(url, {"invoice_history": "on"})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/merchant/sign-in")
    response = await merchant.client.get(url, headers=HX)
    assert response.headers["HX-Redirect"].startswith("/merchant/sign-in?next=")
    assert await events(ACTION) == []


async def test_a_customer_session_is_refused(merchant):
    token = await merchant.portal.sign_in(JENNY)
    url = merchant.url("features")
    response = await merchant.client.get(url)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/merchant/sign-in")
    merchant.client.cookies.set(COOKIE, token, domain="portal.test")
    assert (await merchant.client.get(url)).status_code == 303
    response = await merchant.post(url, {"customer_update": "on"})
    assert response.status_code == 303
    assert await events(ACTION) == []
    assert (await saved_features(merchant)).invoice_history.enabled  # nothing changed


async def test_an_unknown_configuration_is_not_found(merchant):
    await signed_in(merchant)
    url = "/merchant/configurations/bpc_nope/features"
    assert (await merchant.client.get(url)).status_code == 404
    assert (await merchant.post(url, {"invoice_history": "on"})).status_code == 404


# -- the page -----------------------------------------------------------------------------------


async def test_the_page_shows_the_saved_features_with_hints(merchant):
    await signed_in(merchant)
    response = await merchant.client.get(merchant.url("features"))
    assert response.status_code == 200
    html = response.text
    assert "<title>Features \N{EN DASH} Portico</title>" in html
    assert 'aria-current="page">Features</a>' in html
    assert "Configuration: Default" in html
    assert "Email addresses are never editable" in html
    for label in (
        "It&#39;s too expensive",
        "I need more features",
        "I found an alternative",
        "I no longer need it",
        "Customer service was less than expected",
        "Ease of use was less than expected",
        "Quality was less than expected",
        "Other reason",
    ):
        assert f">{label}</label>" in html
    assert ">Save features</button>" in html
    assert f'hx-post="{merchant.url("features")}"' in html
    inputs = {attrs.get("id"): attrs for attrs in Elements(html).named("input")}
    assert "checked" in inputs["invoice_history"]
    assert "checked" not in inputs["subscription_pause"]
    assert 'value="email"' not in html  # email is never offered
    options = [a.get("value") for a in Elements(html).named("option")]
    assert "" in options
    assert "STAY20" in options
    assert "20% off for 3 months" in html
    plans = await catalogue()
    team = plans["Team"]["id"]
    assert inputs[f"minimum-{team}"]["value"] == "1"
    assert inputs[f"maximum-{team}"]["value"] == "50"
    assert "checked" in inputs[f"quantity-{team}"]
    # Each input's hint and its label are tied to it.
    assert 'aria-describedby="customer_update-hint"' in html
    assert '<label for="customer_update">' in html


async def test_the_form_submitted_as_shown_changes_nothing(merchant):
    await signed_in(merchant)
    before = await saved_features(merchant)
    data = await page_form(merchant, merchant.url("features"))
    response = await merchant.post(merchant.url("features"), data)
    assert response.status_code == 303, response.text
    assert await saved_features(merchant) == before
    assert await events(ACTION) == []
    page = await merchant.client.get(merchant.url("features"))
    assert "Features saved." in page.text


async def test_saving_records_only_the_changed_features(merchant):
    await signed_in(merchant)
    data = await page_form(merchant, merchant.url("features"))
    data = switched(data, "invoice_history", False)
    data["cancel_mode"] = ["immediately"]
    data["cancel_proration"] = ["create_prorations"]
    data["retention_coupon"] = [""]
    response = await merchant.post(merchant.url("features"), data)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == merchant.url("features")
    saved = await saved_features(merchant)
    assert saved.invoice_history.enabled is False
    assert saved.subscription_cancel.mode == "immediately"
    assert saved.subscription_cancel.proration_behavior == "create_prorations"
    assert saved.subscription_cancel.retention_coupon is None
    [event] = await events(ACTION)
    assert event["actor_type"] == "merchant"
    assert event["configuration"] == merchant.configuration_id
    assert event["before"] == {
        "invoice_history": {"enabled": True},
        "subscription_cancel": {
            "mode": "at_period_end",
            "proration_behavior": "none",
            "retention_coupon": "STAY20",
        },
    }
    assert event["after"] == {
        "invoice_history": {"enabled": False},
        "subscription_cancel": {
            "mode": "immediately",
            "proration_behavior": "create_prorations",
            "retention_coupon": None,
        },
    }


async def test_cancelling_at_period_end_never_prorates(merchant):
    await signed_in(merchant)
    data = await page_form(merchant, merchant.url("features"))
    data["cancel_mode"] = ["at_period_end"]
    data["cancel_proration"] = ["create_prorations"]
    assert (await merchant.post(merchant.url("features"), data)).status_code == 303
    assert (await saved_features(merchant)).subscription_cancel.proration_behavior == "none"


async def test_plan_change_settings_are_saved(merchant):
    await signed_in(merchant)
    plans = await catalogue()
    starter, team = plans["Starter"], plans["Team"]
    data = await page_form(merchant, merchant.url("features"))
    data["products"] = [team["id"], starter["id"]]
    data[f"prices-{starter['id']}"] = [starter["month"]]
    data[f"quantity-{starter['id']}"] = ["on"]
    data[f"minimum-{starter['id']}"] = ["2"]
    data[f"maximum-{starter['id']}"] = ["10000"]
    data["allowed_updates"] = ["price", "quantity"]
    data["update_proration"] = ["always_invoice"]
    data["schedule_conditions"] = ["decreasing_item_amount", "shortening_interval"]
    data["trial_update_behavior"] = ["continue_trial"]
    data = switched(data, "subscription_pause", True)
    response = await merchant.post(merchant.url("features"), data, htmx=True)
    assert response.status_code == 200
    assert json.loads(response.headers["HX-Location"]) == {
        "path": merchant.url("features"),
        "target": "#main-content",
    }
    update = (await saved_features(merchant)).subscription_update
    # Products keep their saved order (the demo lists Starter first).
    assert [p.product for p in update.products] == [starter["id"], team["id"]]
    starter_saved = update.products[0]
    assert starter_saved.prices == [starter["month"]]
    assert starter_saved.adjustable_quantity == feature_types.AdjustableQuantity(
        enabled=True, minimum=2, maximum=10000
    )
    assert update.default_allowed_updates == ["price", "quantity"]
    assert update.proration_behavior == "always_invoice"
    assert update.schedule_at_period_end_conditions == [
        "decreasing_item_amount",
        "shortening_interval",
    ]
    assert update.trial_update_behavior == "continue_trial"
    assert (await saved_features(merchant)).subscription_pause.enabled
    fragment = await merchant.client.get(merchant.url("features"), headers=HX)
    assert without_html(fragment.text)
    assert "Features saved." in fragment.text
    [event] = await events(ACTION)
    assert set(event["after"]) == {"subscription_update", "subscription_pause"}
    assert event["after"]["subscription_pause"] == {"enabled": True}
    assert "customer_update" not in event["before"]


# -- validation ---------------------------------------------------------------------------------


async def _refused(merchant, data, field: str, message: str, *, htmx: bool = False):
    before = await saved_features(merchant)
    response = await merchant.post(merchant.url("features"), data, htmx=htmx)
    assert response.status_code == 422, response.text
    html = response.text
    assert "There is a problem" in html
    assert f'<a href="#{field}">' in html
    assert f'id="{field}-error"' in html
    assert message in html
    assert 'id="' + field + '"' in html  # the summary's link has a target
    assert await saved_features(merchant) == before
    assert await events(ACTION) == []
    return response


async def test_too_many_products_are_refused(merchant):
    await signed_in(merchant)
    extra = await add_products(8)  # 3 demo plans + 8 = 11
    data = await page_form(merchant, merchant.url("features"))
    for pid in extra:
        data["products"].append(pid)
        data[f"prices-{pid}"] = [f"price_{pid.removeprefix('prod_')}"]
    response = await _refused(
        merchant, data, "products", "Choose at most 10 products: customers can switch between"
    )
    assert "(you chose 11)" in response.text
    assert "<title>Error: Features \N{EN DASH} Portico</title>" in response.text
    # What was ticked stays ticked.
    inputs = {a.get("id"): a for a in Elements(response.text).named("input")}
    assert "checked" in inputs[f"products-{extra[-1]}"]
    # Ten is allowed.
    data["products"] = data["products"][:10]
    assert (await merchant.post(merchant.url("features"), data)).status_code == 303
    assert len((await saved_features(merchant)).subscription_update.products) == 10


async def test_two_prices_for_one_product_and_interval_are_refused(merchant):
    await signed_in(merchant)
    team = (await catalogue())["Team"]
    async with db.write():
        await Price.insert(
            Price(
                id="price_team_monthly_2",
                product=team["id"],
                currency="usd",
                unit_amount=3500,
                recurring_interval="month",
                nickname="Team monthly (new)",
                metadata={},
            )
        )
    data = await page_form(merchant, merchant.url("features"))
    data[f"prices-{team['id']}"] = [team["month"], "price_team_monthly_2", team["year"]]
    await _refused(
        merchant,
        data,
        f"prices-{team['id']}",
        "Choose only one price per billing interval for Team: more than one of the chosen "
        "prices is billed every month.",
    )


async def test_a_minimum_above_the_maximum_is_refused(merchant):
    await signed_in(merchant)
    team = (await catalogue())["Team"]["id"]
    data = await page_form(merchant, merchant.url("features"))
    data[f"minimum-{team}"] = ["20"]
    data[f"maximum-{team}"] = ["5"]
    response = await _refused(
        merchant,
        data,
        f"maximum-{team}",
        "The maximum quantity for Team must be at least the minimum (20).",
    )
    assert 'value="20"' in response.text  # what was typed stays


@pytest.mark.parametrize(
    ("bound", "value", "message"),
    [
        ("minimum", "0", "The minimum quantity for Team must be between 1 and 10,000."),
        ("maximum", "10001", "The maximum quantity for Team must be between 1 and 10,000."),
        ("minimum", "two", "Enter the minimum quantity for Team as a whole number, like 5."),
        ("maximum", "", "Enter the maximum quantity for Team."),
        ("minimum", "-1", "Enter the minimum quantity for Team as a whole number"),
    ],
)
async def test_quantity_bounds_are_checked(merchant, bound, value, message):
    await signed_in(merchant)
    team = (await catalogue())["Team"]["id"]
    data = await page_form(merchant, merchant.url("features"))
    data[f"{bound}-{team}"] = [value]
    await _refused(merchant, data, f"{bound}-{team}", message)


async def test_an_unknown_coupon_is_refused(merchant):
    await signed_in(merchant)
    data = await page_form(merchant, merchant.url("features"))
    data["retention_coupon"] = ["NOPE50"]
    await _refused(merchant, data, "retention_coupon", "Choose a coupon from the list")


async def test_an_invalid_coupon_is_not_offered_and_refused(merchant):
    await signed_in(merchant)
    async with db.write():
        await Coupon.insert(
            Coupon(id="EXPIRED", name="Old deal", percent_off=50, valid=False, metadata={})
        )
    response = await merchant.client.get(merchant.url("features"))
    assert 'value="EXPIRED"' not in response.text
    data = FormReader(response.text).data()
    data["retention_coupon"] = ["EXPIRED"]
    await _refused(merchant, data, "retention_coupon", "Choose a coupon from the list")


async def test_validation_with_htmx_re_renders_the_form_only(merchant):
    await signed_in(merchant)
    data = await page_form(merchant, merchant.url("features"))
    data["retention_coupon"] = ["NOPE50"]
    response = await _refused(
        merchant, data, "retention_coupon", "Choose a coupon from the list", htmx=True
    )
    assert without_html(response.text)
    assert "<title>Error: Features \N{EN DASH} Portico</title>" in response.text


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"customer_update_fields": ["email"]}, "customer_update_fields", "cannot be changed"),
        ({"customer_update_fields": []}, "customer_update_fields", "Choose at least one kind"),
        ({"cancellation_reasons": []}, "cancellation_reasons", "Choose at least one reason"),
        ({"cancellation_reasons": ["bored"]}, "cancellation_reasons", "Choose one of the options"),
        ({"cancel_mode": ["later"]}, "cancel_mode", "Choose when a cancellation takes effect."),
        ({"allowed_updates": []}, "allowed_updates", "Choose at least one change"),
        ({"update_proration": ["sometimes"]}, "update_proration", "Choose one of the options"),
        ({"schedule_conditions": ["upgrade"]}, "schedule_conditions", "Choose one of the options"),
        ({"trial_update_behavior": ["x"]}, "trial_update_behavior", "Choose one of the options"),
        ({"products": ["prod_nope"]}, "products", "Choose products from the list."),
        ({"products": []}, "products", "Choose at least one product customers can switch to."),
    ],
)
async def test_each_choice_is_validated(merchant, change, field, message):
    await signed_in(merchant)
    data = await page_form(merchant, merchant.url("features"))
    data.update(change)
    await _refused(merchant, data, field, message)


async def test_a_product_needs_a_price_that_is_its_own(merchant):
    await signed_in(merchant)
    plans = await catalogue()
    team, starter = plans["Team"], plans["Starter"]
    data = await page_form(merchant, merchant.url("features"))
    data[f"prices-{team['id']}"] = []
    await _refused(merchant, data, f"prices-{team['id']}", "Choose at least one price for Team.")
    data[f"prices-{team['id']}"] = [starter["month"]]
    await _refused(merchant, data, f"prices-{team['id']}", "Choose prices of Team from the list.")


async def test_switched_off_features_keep_their_choices_without_demanding_them(merchant):
    await signed_in(merchant)
    data = await page_form(merchant, merchant.url("features"))
    data = switched(data, "subscription_update", False)
    data = switched(data, "customer_update", False)
    data["allowed_updates"] = []
    data["customer_update_fields"] = []
    assert (await merchant.post(merchant.url("features"), data)).status_code == 303
    saved = await saved_features(merchant)
    assert saved.subscription_update.enabled is False
    assert saved.customer_update.enabled is False
    assert len(saved.subscription_update.products) == 3


# -- the customer portal follows ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("feature", "url", "nav_link"),
    [
        ("invoice_history", "/portal/invoices", 'href="/portal/invoices"'),
        ("payment_method_update", "/portal/payment-methods", 'href="/portal/payment-methods"'),
        ("customer_update", "/portal/details", 'href="/portal/details"'),
    ],
)
async def test_a_feature_switched_off_disappears_from_the_portal_at_once(
    merchant, feature, url, nav_link
):
    await merchant.portal.sign_in(JENNY)
    await signed_in(merchant)  # the same browser is the customer and the merchant
    assert (await merchant.client.get(url)).status_code == 200
    assert nav_link in (await merchant.client.get("/portal")).text

    data = switched(await page_form(merchant, merchant.url("features")), feature, False)
    assert (await merchant.post(merchant.url("features"), data)).status_code == 303

    assert (await merchant.client.get(url)).status_code == 404
    assert (await merchant.client.get(url, headers=HX)).status_code == 404
    overview = await merchant.client.get("/portal")
    assert overview.status_code == 200
    assert nav_link not in overview.text

    data = switched(data, feature, True)
    assert (await merchant.post(merchant.url("features"), data)).status_code == 303
    assert (await merchant.client.get(url)).status_code == 200


async def test_switching_off_cancellation_and_plan_changes_hides_their_buttons(merchant):
    await merchant.portal.sign_in(JENNY)
    await signed_in(merchant)
    subscriptions = await merchant.client.get("/portal/subscriptions")
    actions = [a.get("href") or "" for a in Elements(subscriptions.text).named("a")]
    cancel_links = [url for url in actions if url.endswith("/cancel")]
    change_links = [url for url in actions if url.endswith("/change")]
    assert cancel_links
    assert change_links
    data = await page_form(merchant, merchant.url("features"))
    data = switched(switched(data, "subscription_cancel", False), "subscription_update", False)
    assert (await merchant.post(merchant.url("features"), data)).status_code == 303
    after = await merchant.client.get("/portal/subscriptions")
    assert f'href="{cancel_links[0]}"' not in after.text
    assert f'href="{change_links[0]}"' not in after.text
    assert (await merchant.client.get(cancel_links[0])).status_code == 404
    assert (await merchant.client.get(change_links[0])).status_code == 404


# -- rules without the web ----------------------------------------------------------------------


def test_changes_keep_only_what_differs():
    before = feature_types.Features()
    after = feature_types.Features()
    after.subscription_cancel.cancellation_reason.options = ["other"]
    old, new = changes(before, after)
    assert old == {
        "subscription_cancel": {
            "cancellation_reason": {"options": list(feature_types.CANCELLATION_REASONS)}
        }
    }
    assert new == {"subscription_cancel": {"cancellation_reason": {"options": ["other"]}}}
    assert changes(before, feature_types.Features()) == ({}, {})


def test_parse_refuses_empty_submissions_field_by_field():
    features, errors = parse({}, Choices(products=[], coupons=[]), feature_types.Features())
    assert set(errors) == {
        "cancel_mode",
        "cancel_proration",
        "update_proration",
        "trial_update_behavior",
    }
    assert features.invoice_history.enabled is False


# -- text goes through gettext ------------------------------------------------------------------


async def test_the_page_has_no_untranslated_text(merchant, pseudo_locale):  # noqa: F811
    await signed_in(merchant)
    response = await merchant.client.get(merchant.url("features"))
    assert response.status_code == 200
    data_only = {"Team", "Starter", "Business"}
    assert [t for t in _untranslated(response.text) if t not in data_only] == []
    data = FormReader(response.text).data()
    data["retention_coupon"] = ["NOPE"]
    invalid = await merchant.post(merchant.url("features"), data)
    assert invalid.status_code == 422
    assert [t for t in _untranslated(invalid.text) if t not in data_only] == []


async def test_a_new_configuration_gets_the_default_features(merchant):
    await signed_in(merchant)
    response = await merchant.post("/merchant/configurations", {"name": "Enterprise"})
    assert response.status_code == 303
    row = (
        await PortalConfiguration.objects().where(PortalConfiguration.name == "Enterprise").first()
    )
    assert configurations.features(row) == feature_types.Features()
    page = await merchant.client.get(f"/merchant/configurations/{row.id}/features")
    assert page.status_code == 200
    assert "Configuration: Enterprise" in page.text
