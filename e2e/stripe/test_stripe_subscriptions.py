"""Subscription journeys in Stripe mode, each with JavaScript on and off, on a customer of its
own in the Stripe test server: plan and seat changes with the proration preview (now, at the
period end through a schedule, with a promotion code, invoiced at once, ending a trial), cancel
at period end then renew, the retention offer accepted, cancel now past the offer, pause and
resume. Each checks Stripe's state, and the mirror against it once the webhooks arrived."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any

from playwright.sync_api import Page, expect

from app.billing.demo_offers import RETENTION_COUPON, WELCOME_CODE, WELCOME_COUPON
from e2e.support.axe import assert_accessible
from e2e.support.customers import changed_features
from e2e.support.database import PorticoDatabase
from e2e.support.portal import (
    PostCounter,
    assert_stayed_in_document,
    button,
    follow,
    heading,
    link,
)
from e2e.support.stripe_journeys import (
    TIMES,
    StripeJourney,
    cents,
    coupon_of,
    double_click,
    flash,
    invoices_of,
    open_section,
    subscription_writes,
)
from e2e.support.stripe_world import StripeWorld
from tests.stripe_api import StripeAPIServer


def test_change_plan_with_a_preview_then_confirm(
    page: Page,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
) -> None:
    with journey.webhooks_held():
        subscription = journey.sign_in("plan")["subscription"]
        open_section(page, "Subscriptions")
        expect(page.get_by_role("heading", name=re.compile(r"^Starter\b"), level=2)).to_be_visible()

        page.get_by_role("link", name="Change plan").click()
        expect(page.get_by_role("heading", name="Change plan", level=1)).to_be_visible()
        page.get_by_label(re.compile(r"^Team — \$29\.00 / month")).check()
        page.get_by_role("button", name="Continue").click()

        expect(
            page.get_by_role("heading", name="Confirm your plan change", level=1)
        ).to_be_visible()
        expect(page.get_by_role("main")).to_contain_text("Amount due now")
        expect(page.get_by_role("main")).to_contain_text("Unused time on Starter")
        item = stripe_api.get(subscription)["items"]["data"][0]
        assert item["price"]["id"] == stripe_world.price("starter"), "the preview changed Stripe"
        page.get_by_role("button", name="Confirm change").click()

        article = page.get_by_role("article", name=re.compile(r"^Team\b"))
        expect(article).to_contain_text("Team — $29.00 / month per seat")
        expect(page.get_by_role("article", name=re.compile(r"^Starter\b"))).to_have_count(0)
        item = stripe_api.get(subscription)["items"]["data"][0]
        assert (item["price"]["id"], item["quantity"]) == (stripe_world.price("team"), 1)
    journey.assert_mirror_agrees()


def test_change_quantity_with_a_preview_then_confirm(
    page: Page,
    js: bool,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
) -> None:
    with journey.webhooks_held():
        subscription = journey.sign_in("quantity")["subscription"]
        card = journey.open_subscription()
        expect(card.get_by_role("heading", level=2)).to_contain_text(f"Team {TIMES} 5")

        journey.press(card, "Change plan")
        quantity = page.get_by_label("Quantity", exact=True)
        expect(quantity).to_have_value("5")
        quantity.fill("8")
        journey.press(page, "Continue", then="Confirm your plan change")
        lines = page.get_by_role("table", name="Charges and credits for this change")
        expect(lines.get_by_role("row").filter(has_text="Unused time on")).to_have_count(1)
        expect(lines.get_by_role("row").filter(has_text="Remaining time on")).to_have_count(1)
        main = page.get_by_role("main")
        expect(main.locator("dt", has_text="New plan").locator("+ dd")).to_contain_text(
            f"{TIMES} 8"
        )
        # Prorations go on the next invoice (the configuration's "create_prorations").
        expect(main.locator("dt", has_text="Amount due now").locator("+ dd")).to_have_text("$0.00")
        next_invoice = main.locator("dt", has_text="Next invoice").locator("+ dd")
        expect(next_invoice).to_have_text(re.compile(r"^\$[\d,]+\.\d\d on \w"))
        previewed = cents(next_invoice.inner_text())
        assert stripe_api.get(subscription)["items"]["data"][0]["quantity"] == 5, "preview wrote"
        writes_before = len(subscription_writes(stripe_api, subscription))
        follow(page, js, button(page, "Confirm change"))

        flash(page, "Your plan was changed.")
        expect(card.get_by_role("heading", level=2)).to_contain_text(f"Team {TIMES} 8")
        assert_stayed_in_document(page, js)
        writes = subscription_writes(stripe_api, subscription)[writes_before:]
        assert len(writes) == 1, [w.params for w in writes]
        item = stripe_api.get(subscription)["items"]["data"][0]
        assert (item["price"]["id"], item["quantity"]) == (stripe_world.price("team"), 8)
        # The next invoice Stripe now has in store is the one previewed (give or take a cent: the
        # prorations are a few seconds shorter than when they were previewed).
        upcoming = stripe_api.call("POST", "/v1/invoices/create_preview", subscription=subscription)
        assert abs(upcoming["amount_due"] - previewed) <= 1, (upcoming["amount_due"], previewed)

        # Back. JS on: the plan form htmx pushed, loaded whole. JS off: the browser posts the
        # preview's form again; the change is made, so the plan form says so. Stripe is not asked
        # to change anything again.
        page.go_back()
        expect(heading(page, "Change plan")).to_be_visible()
        if js:
            expect(page.get_by_label("Quantity", exact=True)).to_have_value("8")
        else:
            expect(page.get_by_role("alert")).to_contain_text("Choose a different plan or quantity")
    journey.after_webhooks()
    expect(card.get_by_role("heading", level=2)).to_contain_text(f"Team {TIMES} 8")
    assert len(subscription_writes(stripe_api, subscription)[writes_before:]) == 1


def test_a_cheaper_plan_waits_for_the_period_end(
    page: Page,
    js: bool,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
    stripe_world: StripeWorld,
) -> None:
    # Team with 5 seats ($145 a month) to Business ($99): cheaper, so the configuration's
    # "decreasing_item_amount" rule schedules it for the period end (a subscription schedule).
    with journey.webhooks_held():
        subscription = journey.sign_in("later")["subscription"]
        card = journey.open_subscription()
        journey.press(card, "Change plan")
        page.get_by_role("radio", name=re.compile(r"^Business — \$99\.00 \/ month")).check()
        page.get_by_label("Quantity", exact=True).fill("1")
        journey.press(page, "Continue", then="Confirm your plan change")
        main = page.get_by_role("main")
        expect(main).to_contain_text("at the end of your current billing period")
        expect(main.locator("dt", has_text="Amount due now").locator("+ dd")).to_have_text("$0.00")
        expect(main.locator("dt", has_text="Next invoice").locator("+ dd")).to_contain_text(
            "$99.00"
        )
        follow(page, js, button(page, "Confirm change"))

        flash(page, "Your plan will change on")
        expect(card.get_by_role("heading", level=2)).to_contain_text(f"Team {TIMES} 5")
        expect(card).to_contain_text("Changes to Business on")
        if js:
            assert_accessible(page, "the list with a change scheduled on Stripe")
        assert_stayed_in_document(page, js)
        on_stripe = stripe_api.get(subscription)
        item = on_stripe["items"]["data"][0]
        assert (item["price"]["id"], item["quantity"]) == (stripe_world.price("team"), 5)
        schedule = stripe_api.get(on_stripe["schedule"])
        assert schedule["status"] == "active"
        now, then = schedule["phases"]
        assert now["end_date"] == then["start_date"] == item["current_period_end"]
        [later] = then["items"]
        assert (later["price"], later["quantity"]) == (stripe_world.price("business"), 1)
    journey.after_webhooks()
    expect(card).to_contain_text("Changes to Business on")


def test_change_quantity_with_a_promotion_code(
    page: Page,
    js: bool,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
) -> None:
    with journey.webhooks_held():
        subscription = journey.sign_in("promo")["subscription"]
        card = journey.open_subscription()
        journey.press(card, "Change plan")
        page.get_by_label("Quantity", exact=True).fill("6")
        page.get_by_label("Promotion code", exact=True).fill("NOPE")
        follow(page, js, button(page, "Continue"))
        expect(page.get_by_role("alert")).to_contain_text("There is a problem")
        expect(page.get_by_label("Promotion code", exact=True)).to_have_attribute(
            "aria-invalid", "true"
        )

        page.get_by_label("Promotion code", exact=True).fill(WELCOME_CODE.lower())
        journey.press(page, "Continue", then="Confirm your plan change")
        promotion = (
            page.get_by_role("main").locator("dt", has_text="Promotion code").locator("+ dd")
        )
        expect(promotion).to_contain_text("10% off your next invoice")
        follow(page, js, button(page, "Confirm change"))

        flash(page, "Your plan was changed.")
        expect(card.get_by_role("heading", level=2)).to_contain_text(f"Team {TIMES} 6")
        expect(card.locator("dt", has_text="Discount").locator("+ dd")).to_contain_text("10% off")
        assert_stayed_in_document(page, js)
        on_stripe = stripe_api.get(subscription)
        assert on_stripe["items"]["data"][0]["quantity"] == 6
        [discount_id] = on_stripe["discounts"]
        discount = stripe_api.get(discount_id)
        assert coupon_of(discount) == WELCOME_COUPON
        assert stripe_api.get(discount["promotion_code"])["code"] == WELCOME_CODE
    journey.after_webhooks()
    expect(card.locator("dt", has_text="Discount").locator("+ dd")).to_contain_text("10% off")


def invoicing_now(features: dict[str, Any]) -> None:
    features["subscription_update"]["proration_behavior"] = "always_invoice"


def test_more_seats_invoiced_now(
    page: Page,
    js: bool,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
    portico_db: PorticoDatabase,
) -> None:
    # "always_invoice": the prorations are invoiced and charged at once; the preview's amount due
    # now is what Stripe then charges, and the invoice is in the list straight away.
    ids = journey.sign_in("invoice_now")
    before = {invoice["id"] for invoice in invoices_of(stripe_api, ids["customer"])}
    with journey.webhooks_held(), changed_features(portico_db, invoicing_now):
        card = journey.open_subscription()
        journey.press(card, "Change plan")
        page.get_by_label("Quantity", exact=True).fill("7")
        journey.press(page, "Continue", then="Confirm your plan change")
        due_now = page.get_by_role("main").locator("dt", has_text="Amount due now")
        expect(due_now.locator("+ dd")).to_have_text(re.compile(r"^\$[\d,]+\.\d\d$"))
        previewed = cents(due_now.locator("+ dd").inner_text())
        assert previewed > 0
        # A double click: the form's one-time key makes it one change and one charge.
        posts = PostCounter(page)
        writes_before = len(subscription_writes(stripe_api, ids["subscription"]))
        double_click(page, js, button(page, "Confirm change"))

        flash(page, "Your plan was changed.")
        expect(card.get_by_role("heading", level=2)).to_contain_text(f"Team {TIMES} 7")
        assert posts.count >= 1
        assert len(subscription_writes(stripe_api, ids["subscription"])) == writes_before + 1
        [invoice] = [i for i in invoices_of(stripe_api, ids["customer"]) if i["id"] not in before]
        assert (invoice["billing_reason"], invoice["status"]) == ("subscription_update", "paid")
        assert abs(invoice["amount_paid"] - previewed) <= 1, (invoice["amount_paid"], previewed)

        follow(
            page,
            js,
            page.get_by_role("navigation", name="Account").get_by_role("link", name="Invoices"),
        )
        expect(heading(page, "Invoices")).to_be_visible()
        row = page.get_by_role("row").filter(has_text=invoice["number"])
        expect(row).to_contain_text("Paid")
        expect(row).to_contain_text(f"${invoice['total'] / 100:,.2f}")
    journey.assert_mirror_agrees()


def test_changing_plan_ends_the_trial(
    page: Page,
    js: bool,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
) -> None:
    # "end_trial": a change during the trial ends it, and the new plan is invoiced in full.
    # (A cheaper plan would wait for the trial's end, by the "decreasing_item_amount" rule.)
    ids = journey.sign_in("trial")
    assert stripe_api.get(ids["subscription"])["status"] == "trialing"
    with journey.webhooks_held():
        card = journey.open_subscription()
        expect(card.locator("dt", has_text="Trial ends")).to_be_visible()
        journey.press(card, "Change plan")
        page.get_by_label("Quantity", exact=True).fill("6")
        journey.press(page, "Continue", then="Confirm your plan change")
        main = page.get_by_role("main")
        expect(main).to_contain_text("Your free trial ends when you confirm this change.")
        due_now = main.locator("dt", has_text="Amount due now").locator("+ dd")
        expect(due_now).to_have_text("$174.00")
        follow(page, js, button(page, "Confirm change"))

        flash(page, "Your plan was changed.")
        expect(card.get_by_role("heading", level=2)).to_contain_text(f"Team {TIMES} 6")
        expect(card.locator("dt", has_text="Trial ends")).to_have_count(0)
        on_stripe = stripe_api.get(ids["subscription"])
        assert on_stripe["status"] == "active"
        latest = stripe_api.get(on_stripe["latest_invoice"])
        assert (latest["status"], latest["amount_paid"]) == ("paid", 17400)
        expect(card.locator("dt", has_text="Next charge").locator("+ dd")).to_contain_text(
            "$174.00"
        )
    journey.assert_mirror_agrees()


def test_cancel_at_period_end_with_a_reason_then_renew(
    page: Page,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
) -> None:
    with journey.webhooks_held():
        subscription = journey.sign_in("cancel")["subscription"]
        open_section(page, "Subscriptions")

        page.get_by_role("link", name="Cancel subscription").click()
        expect(page.get_by_role("heading", name="Cancel subscription", level=1)).to_be_visible()
        page.get_by_label("It's too expensive").check()
        page.get_by_label("Anything else you would like to tell us?").fill("Budget cuts this year.")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", name="Confirm cancellation", level=1)).to_be_visible()
        page.get_by_role("button", name="Confirm cancellation").click()

        card = page.get_by_role("article", name=re.compile(r"Team"))
        expect(card.get_by_text("Cancels soon")).to_be_visible()
        canceled = stripe_api.get(subscription)
        assert canceled["cancel_at_period_end"] is True
        assert canceled["cancellation_details"]["feedback"] == "too_expensive"
        assert canceled["cancellation_details"]["comment"] == "Budget cuts this year."

        card.get_by_role("button", name="Renew subscription").click()
        expect(card.get_by_text("Active", exact=True)).to_be_visible()
        expect(card.get_by_role("button", name="Renew subscription")).to_have_count(0)
        assert stripe_api.get(subscription)["cancel_at_period_end"] is False
    journey.assert_mirror_agrees()


def with_retention_offer(features: dict[str, Any]) -> None:
    """The demo's retention coupon (synced from Stripe) offered before a cancellation."""
    features["subscription_cancel"]["retention_coupon"] = RETENTION_COUPON


def cancelling_now_with_offer(features: dict[str, Any]) -> None:
    with_retention_offer(features)
    features["subscription_cancel"]["mode"] = "immediately"


def test_cancel_accepting_the_retention_offer(
    page: Page,
    js: bool,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
    portico_db: PorticoDatabase,
) -> None:
    with journey.webhooks_held():
        subscription = journey.sign_in("offer")["subscription"]
        with changed_features(portico_db, with_retention_offer):
            card = journey.open_subscription()
            journey.press(card, "Cancel subscription")
            page.get_by_role("radio", name="It's too expensive").check()
            journey.press(page, "Continue", then="Before you go")
            offer = page.locator("#offer")
            expect(offer).to_contain_text("Stay with us and get 20% off for 3 months.")
            follow(page, js, button(offer, "Accept offer"))

            flash(page, "Thank you for staying: 20% off for 3 months has been applied")
            discount = card.locator("dt", has_text="Discount").locator("+ dd")
            expect(discount).to_contain_text("20% off for 3 months")
            if js:
                assert_accessible(page, "the list with the retention coupon from Stripe")
            expect(card.get_by_role("heading", level=2)).not_to_contain_text("Cancels soon")
            expect(link(card, "Cancel subscription")).to_be_visible()
            assert_stayed_in_document(page, js)
        on_stripe = stripe_api.get(subscription)
        assert (on_stripe["status"], on_stripe["cancel_at_period_end"]) == ("active", False)
        [discount_id] = on_stripe["discounts"]
        assert coupon_of(stripe_api.get(discount_id)) == RETENTION_COUPON
    journey.after_webhooks()
    expect(card.locator("dt", has_text="Discount").locator("+ dd")).to_contain_text("20% off")


def test_cancel_immediately_declining_the_offer(
    page: Page,
    js: bool,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
    portico_db: PorticoDatabase,
) -> None:
    with journey.webhooks_held():
        subscription = journey.sign_in("cancel_now")["subscription"]
        with changed_features(portico_db, cancelling_now_with_offer):
            card = journey.open_subscription()
            journey.press(card, "Cancel subscription")
            expect(page.get_by_role("main")).to_contain_text(
                "your subscription ends immediately and you lose access straight away"
            )
            page.get_by_role("radio", name="I found an alternative").check()
            page.get_by_label("Anything else you would like to tell us?").fill("Moving on, thanks.")
            journey.press(page, "Continue", then="Before you go")
            expect(page.locator("#offer")).to_contain_text("20% off for 3 months")
            expect(page.get_by_role("main")).to_contain_text(
                "Your subscription will end immediately"
            )
            follow(page, js, button(page, "Confirm cancellation"))

            flash(page, "Your subscription was canceled immediately.")
            expect(card.get_by_role("heading", level=2)).to_contain_text("Canceled")
            expect(link(card, "Cancel subscription")).to_have_count(0)
            assert_stayed_in_document(page, js)
        on_stripe = stripe_api.get(subscription)
        assert on_stripe["status"] == "canceled"
        assert on_stripe["ended_at"] is not None
        details = on_stripe["cancellation_details"]
        assert (details["feedback"], details["comment"]) == (
            "switched_service",
            "Moving on, thanks.",
        )
        assert on_stripe["discounts"] == []  # the offer was declined
    journey.after_webhooks()
    expect(card.get_by_role("heading", level=2)).to_contain_text("Canceled")


def with_pause(features: dict[str, Any]) -> None:
    features["subscription_pause"]["enabled"] = True


def test_pause_payments_until_a_date_then_resume(
    page: Page,
    js: bool,
    journey: StripeJourney,
    stripe_api: StripeAPIServer,
    portico_db: PorticoDatabase,
) -> None:
    resume_on = datetime.now(UTC).date() + timedelta(days=14)
    with journey.webhooks_held():
        subscription = journey.sign_in("pause")["subscription"]
        with changed_features(portico_db, with_pause):
            card = journey.open_subscription()
            journey.press(card, "Pause subscription")
            page.get_by_role("radio", name="Until a date").check()
            page.get_by_label("Resume on", exact=True).fill(resume_on.isoformat())
            follow(page, js, button(page, "Pause subscription"))

            flash(page, "Payments are paused until")
            expect(card).to_contain_text("Payments paused until")
            expect(button(card, "Resume subscription")).to_be_visible()
            if js:
                assert_accessible(page, "the list with payments paused on Stripe")
            resumes_at = int(datetime.combine(resume_on, time(0), tzinfo=UTC).timestamp())
            pause = stripe_api.get(subscription)["pause_collection"]
            assert pause == {"behavior": "void", "resumes_at": resumes_at}

            follow(page, js, button(card, "Resume subscription"))
            flash(page, "Payments have resumed.")
            expect(card).not_to_contain_text("Payments paused")
            assert stripe_api.get(subscription)["pause_collection"] is None

            # Until the customer resumes them: no resumes_at on Stripe.
            journey.press(card, "Pause subscription")
            page.get_by_role("radio", name="Until I resume them").check()
            follow(page, js, button(page, "Pause subscription"))
            flash(page, "Payments are paused until you resume them.")
            expect(card).to_contain_text("Payments paused until you resume them")
            pause = stripe_api.get(subscription)["pause_collection"]
            assert pause == {"behavior": "void", "resumes_at": None}

            follow(page, js, button(card, "Resume subscription"))
            flash(page, "Payments have resumed.")
            expect(card).not_to_contain_text("Payments paused")
            expect(link(card, "Pause subscription")).to_be_visible()
            assert_stayed_in_document(page, js)
        assert stripe_api.get(subscription)["pause_collection"] is None
    journey.after_webhooks()
    expect(card).not_to_contain_text("Payments paused")
