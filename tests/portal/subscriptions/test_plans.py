"""Changing plans: options from the configuration, quantities, checking a choice, downgrades at
the period end."""

from __future__ import annotations

import msgspec
import pytest

from app.configuration import features as f
from app.portal.subscriptions import plans
from app.portal.subscriptions.forms import ChangeForm
from tests.portal.subscriptions.examples import (
    CATALOGUE,
    TEAM_MONTH,
    make_sub,
    option,
    row,
    update_config,
)

# --- options ---


def test_options_follow_the_configuration() -> None:
    options = plans.build_options(update_config(), make_sub(), CATALOGUE)
    assert [o.price_id for o in options] == [
        "price_starter_month",
        "price_starter_year",
        "price_team_month",
        "price_team_year",
        "price_business_month",
    ]
    current = option("price_team_month", options)
    assert current.current
    assert (current.adjustable, current.minimum, current.maximum) == (True, 2, 50)
    assert not option("price_starter_month", options).adjustable


def test_at_most_ten_products_and_one_price_per_product_and_interval() -> None:
    rows = [row(f"price_{n}", f"P{n}", "month", 100 * n) for n in range(12)]
    rows.append(row("price_0_other_month", "P0", "month", 50))
    rows.append(row("price_0_year", "P0", "year", 500))
    products = [f.UpdatableProduct(product=f"prod_p{n}", prices=[f"price_{n}"]) for n in range(12)]
    products[0].prices += ["price_0_other_month", "price_0_year"]
    options = plans.build_options(
        update_config(products=products), make_sub(), rows + CATALOGUE[2:3]
    )
    chosen = [o.price_id for o in options if not o.current]
    assert chosen == ["price_0", "price_0_year"] + [f"price_{n}" for n in range(1, 10)]
    assert "price_10" not in chosen
    assert "price_0_other_month" not in chosen
    # The current price (not configured here) stays an option.
    assert options[0].price_id == "price_team_month"
    assert options[0].current


def test_unusable_prices_are_left_out() -> None:
    rows = [
        row("price_inactive", "Starter", "month", 900, price_active=False),
        row("price_eur", "Starter", "year", 9000, currency="eur"),
        row("price_metered", "Business", "month", 10, usage_type="metered"),
        row("price_archived_product", "Business", "year", 99000, product_active=False),
        CATALOGUE[2],
    ]
    products = [
        f.UpdatableProduct(product="prod_starter", prices=["price_inactive", "price_eur"]),
        f.UpdatableProduct(
            product="prod_business", prices=["price_metered", "price_archived_product"]
        ),
        f.UpdatableProduct(product="prod_team", prices=["price_team_month"]),
        # A price configured under the wrong product is ignored.
        f.UpdatableProduct(product="prod_other", prices=["price_team_month"]),
    ]
    options = plans.build_options(update_config(products=products), make_sub(), rows)
    assert [o.price_id for o in options] == ["price_team_month"]


def test_allowed_updates_limit_the_choice() -> None:
    sub = make_sub()
    only_quantity = plans.build_options(update_config(allowed=["quantity"]), sub, CATALOGUE)
    assert [o.price_id for o in only_quantity] == ["price_team_month"]
    assert only_quantity[0].adjustable
    only_price = plans.build_options(update_config(allowed=["price"]), sub, CATALOGUE)
    assert len(only_price) == 5
    assert not any(o.adjustable for o in only_price)
    nothing = update_config(allowed=[])
    assert not plans.has_choice(nothing, plans.build_options(nothing, sub, CATALOGUE))
    promo_only = update_config(allowed=["promotion_code"])
    assert plans.has_choice(promo_only, plans.build_options(promo_only, sub, CATALOGUE))


def test_quantity_hint() -> None:
    options = plans.build_options(update_config(), make_sub(), CATALOGUE)
    assert plans.quantity_hint(options) == (
        "For Team, enter a number between 2 and 50. Other plans do not use this quantity."
    )
    team_only = [o for o in options if o.product_id == "prod_team"]
    assert plans.quantity_hint(team_only) == "Enter a number between 2 and 50."
    assert plans.quantity_hint([o for o in options if not o.adjustable]) is None


# --- validating a change ---


def check_change(update, sub, **values):
    form = ChangeForm(**values)
    errors = form.check()
    options = plans.build_options(update, sub, CATALOGUE)
    return plans.validate_change(update, sub, options, form, errors), errors


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("", "Enter a quantity."),
        ("abc", "Enter the quantity as a whole number, like 5."),
        ("-3", "Enter the quantity as a whole number, like 5."),
        ("1", "Enter a quantity between 2 and 50."),
        ("51", "Enter a quantity between 2 and 50."),
    ],
)
def test_quantity_bounds(quantity, message) -> None:
    change, errors = check_change(
        update_config(), make_sub(), price="price_team_year", quantity=quantity
    )
    assert change is None
    assert errors == {"quantity": message}


def test_valid_change_and_its_defaults() -> None:
    sub = make_sub()
    change, errors = check_change(update_config(), sub, price="price_team_month", quantity="50")
    assert errors == {}
    assert change is not None
    assert (change.price_id, change.quantity, change.promotion_code) == (
        "price_team_month",
        50,
        None,
    )
    assert change.proration_behavior == "create_prorations"
    assert change.trial_update_behavior == "end_trial"
    # Another product without adjustable quantity: the quantity is 1 whatever was typed.
    change, errors = check_change(
        update_config(), sub, price="price_business_month", quantity="7", promotion_code=" SAVE "
    )
    assert errors == {}
    assert (change.quantity, change.promotion_code) == (1, "SAVE")


def test_invalid_change_choices() -> None:
    sub = make_sub()
    assert check_change(update_config(), sub, price="")[1] == {"price": "Choose a plan."}
    assert check_change(update_config(), sub, price="price_elsewhere")[1] == {
        "price": "Choose one of the plans shown."
    }
    same = check_change(update_config(), sub, price="price_team_month", quantity="5")
    assert same[0] is None
    assert "different plan" in same[1]["price"]
    bad_code = check_change(
        update_config(), sub, price="price_starter_month", promotion_code="no spaces!"
    )
    assert set(bad_code[1]) == {"promotion_code"}
    # Promotion codes not allowed: the field is ignored.
    ignored = check_change(
        update_config(allowed=["price"]), sub, price="price_starter_month", promotion_code="x y"
    )
    assert ignored[1] == {}
    assert ignored[0].promotion_code is None


# --- downgrades at the period end ---


@pytest.mark.parametrize(
    ("conditions", "price", "quantity", "expected"),
    [
        ([], "price_starter_month", 1, False),
        (["decreasing_item_amount"], "price_starter_month", 1, True),  # 9 * 1 < 29 * 5
        (["decreasing_item_amount"], "price_team_month", 4, True),
        (["decreasing_item_amount"], "price_team_month", 6, False),
        (["decreasing_item_amount"], "price_business_month", 1, True),  # 99 < 145
        (["decreasing_item_amount"], "price_team_year", 5, False),
        (["shortening_interval"], "price_starter_month", 1, False),
        (["shortening_interval"], "price_team_year", 5, False),
    ],
)
def test_schedule_at_period_end_from_a_monthly_plan(conditions, price, quantity, expected) -> None:
    options = plans.build_options(update_config(), make_sub(), CATALOGUE)
    assert (
        plans.schedule_at_period_end(conditions, TEAM_MONTH, option(price, options), quantity)
        is expected
    )


def test_shortening_interval_schedules_year_to_month() -> None:
    yearly = msgspec.structs.replace(
        TEAM_MONTH, price_id="price_team_year", unit_amount=29000, interval="year"
    )
    sub = make_sub(items=[yearly])
    options = plans.build_options(update_config(), sub, CATALOGUE)
    monthly_team = option("price_team_month", options)
    assert plans.schedule_at_period_end(["shortening_interval"], yearly, monthly_team, 5)
    assert not plans.schedule_at_period_end(["decreasing_item_amount"], yearly, monthly_team, 50)
    change, errors = check_change(
        update_config(conditions=["shortening_interval"]),
        sub,
        price="price_team_month",
        quantity="50",
    )
    assert errors == {}
    assert change.schedule_at_period_end
