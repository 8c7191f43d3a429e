"""Subscription pages with and without htmx: list, change plan, cancel (with the retention offer),
renew, pause and resume; ownership, CSRF, one-time intents, 422 re-renders, switched-off features
and gateway failures."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from app import clock
from app.billing.gateway import GatewayError, GatewayUnavailable
from app.billing.tables import Subscription
from app.web import formatting
from tests.helpers import JENNY, LEE, MAX, PAT, without_html
from tests.portal.subscriptions.support import LIST, items_of, price_id, subscription_of
from tests.portal.support import (
    FailingGateway,
    audit_events,
    intents_on,
    set_features,
    signed_in,
    success_target,
)

HTMX = pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])


def url(sub: dict, step: str = "") -> str:
    return f"{LIST}/{sub['id']}" + (f"/{step}" if step else "")


def assert_fragment(response, htmx: bool) -> None:
    assert response.text.count("<h1") == 1
    if htmx:
        assert without_html(response.text)
    else:
        assert "<!doctype html>" in response.text.lower()
    assert response.headers["vary"] == "HX-Request"


def error_page(response) -> None:
    """A 422 re-render: the error summary and a title starting with "Error:"."""
    assert response.status_code == 422, response.text
    assert "There is a problem" in response.text
    assert "<title>Error:" in response.text


# --- list ----------------------------------------------------------------------------------------


async def test_list_full_page_and_fragment(settings, demo) -> None:
    async with signed_in(settings, demo, JENNY) as jenny:
        full = await jenny.get(LIST)
        assert full.status_code == 200
        assert_fragment(full, False)
        html = full.text
        assert html.count("<h1") == 1
        assert 'href="/portal/subscriptions" aria-current="page"' in html
        assert "Team — $29.00 / month per seat" in html
        assert "$145.00 on " in html
        assert ">Change plan</a>" in html
        assert ">Cancel subscription</a>" in html
        assert "Pause subscription" not in html  # off by default
        assert "Renew subscription" not in html
        # Links that look like buttons: without JavaScript the browser goes to ".../change", not
        # to ".../change?" (what a GET form without fields sends); htmx swaps the same URL in.
        sub = await subscription_of(JENNY)
        for step, label in (("change", "Change plan"), ("cancel", "Cancel subscription")):
            target = url(sub, step)
            assert (
                f'href="{target}" hx-get="{target}" hx-target="#main-content" '
                f'hx-push-url="true">{label}</a>'
            ) in html
        assert 'method="get"' not in html
        fragment = await jenny.get(LIST, htmx=True)
        assert fragment.status_code == 200
        assert_fragment(fragment, True)
        assert "<title>Subscriptions \N{EN DASH} Acme Cloud</title>" in fragment.text
        assert "Team — $29.00 / month per seat" in fragment.text


async def test_list_shows_trials_and_cancellations(settings, demo) -> None:
    async with signed_in(settings, demo, PAT) as pat:
        html = (await pat.get(LIST)).text
        assert "Trial ends" in html
        assert ">Trial<" in html
    async with signed_in(settings, demo, LEE) as lee:
        html = (await lee.get(LIST)).text
        sub = await subscription_of(LEE)
        day = formatting.day(sub["current_period_end"], lee.customer.time_zone)
        assert "Access ends" in html
        assert day in html
        assert "Cancels soon" in html
        assert ">Renew subscription</button>" in html
        assert "Cancel subscription" not in html
        assert "Change plan</a>" not in html
        assert "set to cancel. Renew it to change your plan" in html


async def test_no_subscriptions(settings, demo) -> None:
    async with signed_in(settings, demo, MAX) as max_:
        page = await max_.get(LIST)
        assert page.status_code == 200
        assert "You have no subscriptions." in page.text


# --- change plan -------------------------------------------------------------------------------


@HTMX
async def test_change_plan(settings, demo, htmx) -> None:
    sub = await subscription_of(JENNY)
    team = await price_id("Team", "month")
    async with signed_in(settings, demo, JENNY) as jenny:
        form = await jenny.get(url(sub, "change"), htmx=htmx)
        assert form.status_code == 200
        assert_fragment(form, htmx)
        html = form.text
        assert "Business — $99.00 / month" in html
        assert "Starter — $90.00 / year" in html
        assert '<label class="field__label" for="quantity">Quantity</label>' in html
        assert '<label class="field__label" for="promotion_code">Promotion code</label>' in html
        assert "<legend" in html
        assert ">Continue</button>" in html
        assert f'hx-post="{url(sub, "preview")}"' in html
        assert f'action="{url(sub, "preview")}"' in html

        preview = await jenny.post(url(sub, "preview"), {"price": team, "quantity": "6"}, htmx=htmx)
        assert preview.status_code == 200, preview.text
        assert_fragment(preview, htmx)
        assert ">Confirm change</button>" in preview.text
        assert "Amount due now" in preview.text
        assert "Next invoice" in preview.text
        assert f'name="price" value="{team}"' in preview.text
        assert 'name="quantity" value="6"' in preview.text
        (intent,) = intents_on(preview.text)
        assert (await items_of(sub["id"]))[0]["quantity"] == 5  # a preview changes nothing

        done = await jenny.post(
            url(sub, "change"), {"price": team, "quantity": "6", "intent": intent}, htmx=htmx
        )
        assert success_target(done, htmx) == LIST
        assert (await items_of(sub["id"]))[0]["quantity"] == 6
        page = await jenny.flashes()
        assert "Your plan was changed." in page
        assert "Team \N{MULTIPLICATION SIGN} 6" in page

    (event,) = await audit_events("subscription.plan_changed", sub["id"])
    assert event["actor_id"] == jenny.customer.id
    assert event["actor_email"] == JENNY
    assert event["before"]["items"][0]["quantity"] == 5
    assert event["after"]["items"][0]["quantity"] == 6
    assert event["after"]["requested"]["proration_behavior"] == "create_prorations"
    assert event["after"]["requested"]["schedule_at_period_end"] is False
    assert event["ip"]
    assert event["user_agent"]


@HTMX
async def test_downgrade_waits_for_the_period_end(settings, demo, htmx) -> None:
    sub = await subscription_of(JENNY)
    starter = await price_id("Starter", "month")
    async with signed_in(settings, demo, JENNY) as jenny:
        day = formatting.day(sub["current_period_end"], jenny.customer.time_zone)
        preview = await jenny.post(url(sub, "preview"), {"price": starter}, htmx=htmx)
        assert preview.status_code == 200, preview.text
        assert f"Your plan changes on {day}" in preview.text
        (intent,) = intents_on(preview.text)
        done = await jenny.post(
            url(sub, "change"), {"price": starter, "quantity": "", "intent": intent}, htmx=htmx
        )
        assert success_target(done, htmx) == LIST
        page = await jenny.flashes()
        assert f"Your plan will change on {day}." in page
        assert f"Changes to Starter on {day}" in page
        assert "Change plan</a>" not in page
        assert "A change is already scheduled" in page
        assert ">Cancel subscription</a>" in page
        # Nothing changes before the period ends.
        assert (await items_of(sub["id"]))[0]["quantity"] == 5
        (event,) = await audit_events("subscription.plan_changed", sub["id"])
        assert event["after"]["requested"]["schedule_at_period_end"] is True
        assert event["after"]["pending_change"]["product"] == "Starter"


@HTMX
async def test_invalid_choices_re_render_with_messages(settings, demo, htmx) -> None:
    sub = await subscription_of(JENNY)
    team = await price_id("Team", "month")
    async with signed_in(settings, demo, JENNY) as jenny:
        response = await jenny.post(
            url(sub, "preview"),
            {"price": team, "quantity": "0", "promotion_code": "KEEP"},
            htmx=htmx,
        )
        error_page(response)
        assert_fragment(response, htmx)
        assert "Enter a quantity between 1 and 50." in response.text
        assert 'href="#quantity"' in response.text
        assert 'value="0"' in response.text
        assert 'value="KEEP"' in response.text
        assert 'aria-invalid="true"' in response.text
        nothing = await jenny.post(url(sub, "preview"), {}, htmx=htmx)
        error_page(nothing)
        assert "Choose a plan." in nothing.text
        same = await jenny.post(url(sub, "preview"), {"price": team, "quantity": "5"}, htmx=htmx)
        error_page(same)
        assert "Choose a different plan or quantity" in same.text


async def test_gateway_errors_show_on_the_form(settings, demo) -> None:
    sub = await subscription_of(JENNY)
    business = await price_id("Business", "month")
    async with signed_in(settings, demo, JENNY) as jenny:
        response = await jenny.post(
            url(sub, "preview"), {"price": business, "promotion_code": "NOPE"}
        )
        error_page(response)
        assert "That promotion code is not valid." in response.text
        assert 'href="#promotion_code"' in response.text
        jenny.app.state.gateway = FailingGateway(
            jenny.app.state.gateway,
            GatewayUnavailable("Billing is not answering. Try again in a minute."),
            "change_subscription",
        )
        form = await jenny.post(url(sub, "preview"), {"price": business})
        (intent,) = intents_on(form.text)
        failed = await jenny.post(
            url(sub, "change"), {"price": business, "intent": intent}, htmx=True
        )
        assert failed.status_code == 502
        # htmx swaps error statuses into <body>, so the whole page comes back.
        assert "<!doctype html>" in failed.text.lower()
        assert "Billing is not answering" in failed.text
    assert (await items_of(sub["id"]))[0]["quantity"] == 5
    assert await audit_events("subscription.plan_changed") == []


async def test_the_same_form_twice_changes_once(settings, demo) -> None:
    sub = await subscription_of(JENNY)
    team = await price_id("Team", "year")
    async with signed_in(settings, demo, JENNY) as jenny:
        preview = await jenny.post(url(sub, "preview"), {"price": team, "quantity": "5"})
        (intent,) = intents_on(preview.text)
        data = {"price": team, "quantity": "5", "intent": intent}
        first = await jenny.post(url(sub, "change"), data)
        second = await jenny.post(url(sub, "change"), data)
        third = await jenny.post(url(sub, "change"), data, htmx=True)
        assert success_target(first, False) == LIST
        assert success_target(second, False) == LIST
        assert success_target(third, True) == LIST
    assert len(await audit_events("subscription.plan_changed", sub["id"])) == 1
    assert (await items_of(sub["id"]))[0]["price"] == team


@HTMX
async def test_a_form_without_its_intent_has_expired(settings, demo, htmx) -> None:
    sub = await subscription_of(JENNY)
    team = await price_id("Team", "year")
    async with signed_in(settings, demo, JENNY) as jenny:
        for intent in (None, "short", "x" * 80):
            data = {"price": team, "quantity": "5"}
            if intent:
                data["intent"] = intent
            response = await jenny.post(url(sub, "change"), data, htmx=htmx)
            error_page(response)
            assert "This form has expired, reload the page" in response.text
    assert (await items_of(sub["id"]))[0]["price"] != team
    assert await audit_events("subscription.plan_changed") == []


async def test_update_switched_off(settings, demo) -> None:
    await set_features(demo, subscription_update={"enabled": False})
    sub = await subscription_of(JENNY)
    async with signed_in(settings, demo, JENNY) as jenny:
        page = await jenny.get(LIST)
        assert "Change plan" not in page.text
        assert "can't be changed" not in page.text
        assert (await jenny.get(url(sub, "change"))).status_code == 404
        assert (await jenny.get(url(sub, "preview"))).status_code == 404
        assert (await jenny.post(url(sub, "preview"), {"price": "x"})).status_code == 404
        response = await jenny.post(url(sub, "change"), {"price": "x", "intent": "i" * 22})
        assert response.status_code == 404


async def test_subscriptions_the_portal_cannot_change_offer_cancel_only(settings, demo) -> None:
    sub = await subscription_of(JENNY)
    await Subscription.update({Subscription.collection_method: "send_invoice"}).where(
        Subscription.id == sub["id"]
    )
    business = await price_id("Business", "month")
    async with signed_in(settings, demo, JENNY) as jenny:
        page = (await jenny.get(LIST)).text
        assert "paid by invoice, so its plan can&#39;t be changed here" in page
        assert "Change plan</a>" not in page
        assert ">Cancel subscription</a>" in page
        form = await jenny.get(url(sub, "change"))
        assert form.status_code == 200
        assert "paid by invoice" in form.text
        assert "Continue" not in form.text
        refused = await jenny.post(url(sub, "preview"), {"price": business})
        assert refused.status_code == 422
        assert "paid by invoice" in refused.text


async def test_post_only_urls_lead_back_to_their_form(settings, demo) -> None:
    sub = await subscription_of(LEE)
    async with signed_in(settings, demo, LEE) as lee:
        for step, target in (
            ("preview", url(sub, "change")),
            ("cancel/review", url(sub, "cancel")),
            ("offer", url(sub, "cancel")),
            ("renew", LIST),
        ):
            response = await lee.get(url(sub, step))
            assert response.status_code == 303, step
            assert response.headers["location"] == target


# --- ownership and CSRF ------------------------------------------------------------------------


async def test_another_customers_subscription_is_not_found(settings, demo) -> None:
    await set_features(demo, subscription_pause={"enabled": True})
    lee_sub = await subscription_of(LEE)
    team = await price_id("Team", "month")
    async with signed_in(settings, demo, JENNY) as jenny:
        intent = "a" * 22
        for path in ("change", "cancel", "pause"):
            assert (await jenny.get(url(lee_sub, path))).status_code == 404, path
        data = {
            "price": team,
            "quantity": "2",
            "reason": "unused",
            "mode": "indefinitely",
            "intent": intent,
        }
        for path in (
            "preview",
            "change",
            "cancel/review",
            "cancel",
            "offer",
            "renew",
            "pause",
            "resume",
        ):
            response = await jenny.post(url(lee_sub, path), data)
            assert response.status_code == 404, path
            response = await jenny.post(url(lee_sub, path), data, htmx=True)
            assert response.status_code == 404, path
        assert (await jenny.get(url({"id": "sub_nope"}, "change"))).status_code == 404
    after = await subscription_of(LEE)
    assert after == lee_sub
    assert len(await items_of(lee_sub["id"])) == 1
    for action in ("plan_changed", "canceled", "renewed", "paused", "resumed"):
        assert await audit_events(f"subscription.{action}") == []


async def test_forms_need_the_csrf_token(settings, demo) -> None:
    sub = await subscription_of(LEE)
    async with signed_in(settings, demo, LEE) as lee:
        page = await lee.get(LIST)
        (intent,) = intents_on(page.text)
        for step in ("renew", "cancel", "change", "preview"):
            response = await lee.post(url(sub, step), {"intent": intent}, csrf=False)
            assert response.status_code == 403, step
    assert (await subscription_of(LEE))["cancel_at_period_end"] is True


# --- cancel --------------------------------------------------------------------------------------


@HTMX
async def test_cancel_with_the_retention_offer_then_confirm(settings, demo, htmx) -> None:
    sub = await subscription_of(JENNY)
    async with signed_in(settings, demo, JENNY) as jenny:
        day = formatting.day(sub["current_period_end"], jenny.customer.time_zone)
        form = await jenny.get(url(sub, "cancel"), htmx=htmx)
        assert form.status_code == 200
        assert_fragment(form, htmx)
        html = form.text
        assert "<legend" in html
        assert "Why are you canceling?" in html
        assert html.count('type="radio" ') == 8
        assert "It&#39;s too expensive" in html
        assert "Ease of use was less than expected" in html
        assert '<label class="field__label" for="comment">' in html
        assert "Anything else you would like to tell us?" in html
        assert ">Continue</button>" in html
        assert f"your subscription ends on {day}" in html

        # Submission 1: reason and comment.
        review = await jenny.post(
            url(sub, "cancel/review"),
            {"reason": "too_expensive", "comment": "Prices went up."},
            htmx=htmx,
        )
        assert review.status_code == 200, review.text
        assert_fragment(review, htmx)
        assert ">Accept offer</button>" in review.text
        assert ">Confirm cancellation</button>" in review.text
        assert "20% off for 3 months" in review.text
        intent = intents_on(review.text)[0]

        # Submission 2: the confirmation.
        done = await jenny.post(
            url(sub, "cancel"),
            {"reason": "too_expensive", "comment": "Prices went up.", "intent": intent},
            htmx=htmx,
        )
        assert success_target(done, htmx) == LIST
        page = await jenny.flashes()
        assert f"Your subscription was canceled. You have access until {day}." in page
        assert ">Renew subscription</button>" in page

    after = await subscription_of(JENNY)
    assert after["cancel_at_period_end"] is True
    assert after["status"] == "active"
    assert after["cancellation_details_feedback"] == "too_expensive"
    assert after["cancellation_details_comment"] == "Prices went up."
    (event,) = await audit_events("subscription.canceled", sub["id"])
    assert event["before"]["cancel_at_period_end"] is False
    assert event["after"]["cancel_at_period_end"] is True
    assert event["after"]["reason"] == "too_expensive"
    assert event["after"]["comment"] == "Prices went up."
    assert len(await audit_events("subscription.retention_offered", sub["id"])) == 1


async def test_the_offer_is_shown_once(settings, demo) -> None:
    sub = await subscription_of(JENNY)
    async with signed_in(settings, demo, JENNY) as jenny:
        first = await jenny.post(url(sub, "cancel/review"), {})
        assert "Accept offer" in first.text
        second = await jenny.post(url(sub, "cancel/review"), {})
        assert second.status_code == 200
        assert "Accept offer" not in second.text
        assert "<h1" in second.text
        assert "Confirm cancellation</h1>" in second.text
        assert ">Confirm cancellation</button>" in second.text


@HTMX
async def test_accept_the_retention_offer(settings, demo, htmx) -> None:
    sub = await subscription_of(JENNY)
    async with signed_in(settings, demo, JENNY) as jenny:
        review = await jenny.post(url(sub, "cancel/review"), {"reason": "too_expensive"})
        intent = intents_on(review.text)[0]
        data = {"intent": intent, "reason": "too_expensive", "comment": ""}
        first = await jenny.post(url(sub, "offer"), data, htmx=htmx)
        assert success_target(first, htmx) == LIST
        again = await jenny.post(url(sub, "offer"), data, htmx=htmx)
        assert success_target(again, htmx) == LIST
        page = await jenny.flashes()
        assert "Thank you for staying: 20% off for 3 months has been applied" in page
        assert "Discount" in page
        assert "$116.00 on " in page  # 145.00 less 20%
        # Accepted once: no offer on the next attempt.
        review = await jenny.post(url(sub, "cancel/review"), {})
        assert "Accept offer" not in review.text
    after = await subscription_of(JENNY)
    assert after["discount_coupon"] == "STAY20"
    assert after["cancel_at_period_end"] is False
    (event,) = await audit_events("subscription.retention_accepted", sub["id"])
    assert event["before"]["discount_coupon"] is None
    assert event["after"]["discount_coupon"] == "STAY20"


@HTMX
async def test_cancel_immediately_without_offer_or_survey(settings, demo, htmx) -> None:
    await set_features(
        demo,
        subscription_cancel={
            "mode": "immediately",
            "retention_coupon": None,
            "cancellation_reason": {"enabled": False, "options": []},
        },
    )
    sub = await subscription_of(JENNY)
    async with signed_in(settings, demo, JENNY) as jenny:
        form = await jenny.get(url(sub, "cancel"), htmx=htmx)
        assert "ends immediately" in form.text
        assert 'type="radio"' not in form.text
        assert "Anything else" not in form.text
        review = await jenny.post(url(sub, "cancel/review"), {}, htmx=htmx)
        assert "Accept offer" not in review.text
        (intent,) = intents_on(review.text)
        done = await jenny.post(url(sub, "cancel"), {"intent": intent}, htmx=htmx)
        assert success_target(done, htmx) == LIST
        page = await jenny.flashes()
        assert "Your subscription was canceled immediately." in page
        assert "Ended" in page
        assert "Cancel subscription" not in page
    assert (await subscription_of(JENNY))["status"] == "canceled"
    assert len(await audit_events("subscription.canceled", sub["id"])) == 1


@HTMX
async def test_cancel_input_is_checked(settings, demo, htmx) -> None:
    sub = await subscription_of(JENNY)
    async with signed_in(settings, demo, JENNY) as jenny:
        long = await jenny.post(
            url(sub, "cancel/review"), {"reason": "other", "comment": "x" * 501}, htmx=htmx
        )
        error_page(long)
        assert_fragment(long, htmx)
        assert "Your comment must be 500 characters or fewer." in long.text
        assert 'href="#comment"' in long.text
        assert 'value="other" checked' in long.text
        odd = await jenny.post(url(sub, "cancel/review"), {"reason": "bored"}, htmx=htmx)
        error_page(odd)
        assert "Choose one of the reasons shown." in odd.text
        # The final step checks again (a tampered confirmation page).
        review = await jenny.post(url(sub, "cancel/review"), {})
        intent = intents_on(review.text)[0]
        tampered = await jenny.post(
            url(sub, "cancel"), {"intent": intent, "reason": "bored"}, htmx=htmx
        )
        error_page(tampered)
        expired = await jenny.post(url(sub, "cancel"), {"reason": "unused"}, htmx=htmx)
        error_page(expired)
        assert "This form has expired, reload the page" in expired.text
    assert (await subscription_of(JENNY))["cancel_at_period_end"] is False
    assert await audit_events("subscription.canceled") == []


async def test_cancel_twice_with_one_form_cancels_once(settings, demo) -> None:
    sub = await subscription_of(JENNY)
    async with signed_in(settings, demo, JENNY) as jenny:
        review = await jenny.post(url(sub, "cancel/review"), {"reason": "unused"})
        intent = intents_on(review.text)[-1]
        data = {"intent": intent, "reason": "unused", "comment": ""}
        assert success_target(await jenny.post(url(sub, "cancel"), data), False) == LIST
        assert success_target(await jenny.post(url(sub, "cancel"), data, htmx=True), True) == LIST
        page = await jenny.flashes()
        assert "Your subscription was canceled. You have access until" in page
    assert len(await audit_events("subscription.canceled", sub["id"])) == 1


async def test_cancel_switched_off(settings, demo) -> None:
    await set_features(demo, subscription_cancel={"enabled": False})
    sub = await subscription_of(JENNY)
    async with signed_in(settings, demo, JENNY) as jenny:
        page = await jenny.get(LIST)
        assert "Cancel subscription" not in page.text
        assert (await jenny.get(url(sub, "cancel"))).status_code == 404
        assert (await jenny.get(url(sub, "cancel/review"))).status_code == 404
        for step in ("cancel/review", "cancel", "offer"):
            response = await jenny.post(url(sub, step), {"intent": "i" * 22})
            assert response.status_code == 404, step
    assert (await subscription_of(JENNY))["cancel_at_period_end"] is False


async def test_cancel_gateway_failures(settings, demo) -> None:
    sub = await subscription_of(JENNY)
    async with signed_in(settings, demo, JENNY) as jenny:
        gateway = jenny.app.state.gateway
        jenny.app.state.gateway = FailingGateway(
            gateway, GatewayError("Cancelling is not possible right now."), "cancel_subscription"
        )
        review = await jenny.post(url(sub, "cancel/review"), {})
        intent = intents_on(review.text)[-1]
        failed = await jenny.post(url(sub, "cancel"), {"intent": intent}, htmx=True)
        error_page(failed)
        assert without_html(failed.text)
        assert "Cancelling is not possible right now." in failed.text
        assert ">Confirm cancellation</button>" in failed.text
        assert intents_on(failed.text)[-1] != intent  # a fresh key for the retry
        jenny.app.state.gateway = FailingGateway(
            gateway, GatewayUnavailable("Billing is down."), "cancel_subscription"
        )
        down = await jenny.post(url(sub, "cancel"), {"intent": intent})
        assert down.status_code == 502
        assert "Billing is down." in down.text
    assert (await subscription_of(JENNY))["cancel_at_period_end"] is False
    assert await audit_events("subscription.canceled") == []


# --- renew ---------------------------------------------------------------------------------------


@HTMX
async def test_renew(settings, demo, htmx) -> None:
    sub = await subscription_of(LEE)
    async with signed_in(settings, demo, LEE) as lee:
        page = await lee.get(LIST)
        (intent,) = intents_on(page.text)
        assert f'hx-post="{url(sub, "renew")}"' in page.text
        first = await lee.post(url(sub, "renew"), {"intent": intent}, htmx=htmx)
        assert success_target(first, htmx) == LIST
        second = await lee.post(url(sub, "renew"), {"intent": intent}, htmx=htmx)
        assert success_target(second, htmx) == LIST
        page = await lee.flashes()
        assert "Your subscription was renewed." in page
        assert "Renew subscription" not in page
        assert ">Cancel subscription</a>" in page
    after = await subscription_of(LEE)
    assert after["cancel_at_period_end"] is False
    assert after["cancel_at"] is None
    (event,) = await audit_events("subscription.renewed", sub["id"])
    assert event["before"]["cancel_at_period_end"] is True
    assert event["after"]["cancel_at_period_end"] is False


@HTMX
async def test_renew_problems_show_on_the_list(settings, demo, htmx) -> None:
    sub = await subscription_of(JENNY)
    async with signed_in(settings, demo, JENNY) as jenny:
        response = await jenny.post(url(sub, "renew"), {"intent": "k" * 22}, htmx=htmx)
        error_page(response)
        assert_fragment(response, htmx)
        assert "This subscription is not set to cancel." in response.text
        assert f'href="#sub-{sub["id"]}"' in response.text
        expired = await jenny.post(url(sub, "renew"), {}, htmx=htmx)
        error_page(expired)
        assert "This form has expired" in expired.text
    lee_sub = await subscription_of(LEE)
    async with signed_in(settings, demo, LEE) as lee:
        lee.app.state.gateway = FailingGateway(
            lee.app.state.gateway, GatewayUnavailable("Billing is down."), "renew_subscription"
        )
        down = await lee.post(url(lee_sub, "renew"), {"intent": "k" * 22}, htmx=htmx)
        assert down.status_code == 502
        assert "<!doctype html>" in down.text.lower()  # whole page, even for htmx
        assert "Billing is down." in down.text
    assert (await subscription_of(LEE))["cancel_at_period_end"] is True
    assert await audit_events("subscription.renewed") == []


# --- pause and resume ----------------------------------------------------------------------------


async def test_pause_is_off_by_default(settings, demo) -> None:
    sub = await subscription_of(JENNY)
    async with signed_in(settings, demo, JENNY) as jenny:
        page = await jenny.get(LIST)
        assert "Pause subscription" not in page.text
        assert "Resume subscription" not in page.text
        assert (await jenny.get(url(sub, "pause"))).status_code == 404
        assert (await jenny.get(url(sub, "resume"))).status_code == 404
        data = {"mode": "indefinitely", "intent": "p" * 22}
        assert (await jenny.post(url(sub, "pause"), data)).status_code == 404
        assert (await jenny.post(url(sub, "resume"), data)).status_code == 404
    assert (await subscription_of(JENNY))["pause_collection_behavior"] is None


@HTMX
async def test_pause_until_a_date_then_resume(settings, demo, htmx) -> None:
    await set_features(demo, subscription_pause={"enabled": True})
    sub = await subscription_of(JENNY)
    async with signed_in(settings, demo, JENNY) as jenny:
        tz = jenny.customer.time_zone
        page = await jenny.get(LIST)
        assert f'href="{url(sub, "pause")}" hx-get="{url(sub, "pause")}"' in page.text
        assert ">Pause subscription</a>" in page.text
        form = await jenny.get(url(sub, "pause"), htmx=htmx)
        assert form.status_code == 200
        assert_fragment(form, htmx)
        assert '<label class="field__label" for="resume_on">Resume on</label>' in form.text
        assert 'type="date"' in form.text
        assert ">Pause subscription</button>" in form.text
        (intent,) = intents_on(form.text)
        today = clock.now().astimezone(formatting.zone(tz)).date()
        resume_on = today + timedelta(days=10)
        data = {"mode": "date", "resume_on": resume_on.isoformat(), "intent": intent}
        done = await jenny.post(url(sub, "pause"), data, htmx=htmx)
        assert success_target(done, htmx) == LIST
        again = await jenny.post(url(sub, "pause"), data, htmx=htmx)
        assert success_target(again, htmx) == LIST
        page = await jenny.flashes()
        day = f"{resume_on.day} {resume_on.strftime('%b %Y')}"
        assert f"Payments are paused until {day}." in page
        assert f"Payments paused until {day}" in page
        assert "Next charge" not in page
        assert ">Resume subscription</button>" in page
        assert "Pause subscription" not in page
        paused = await subscription_of(JENNY)
        assert paused["pause_collection_behavior"] == "void"
        assert formatting.day(paused["pause_collection_resumes_at"], tz) == day

        (intent,) = intents_on(page)
        resumed = await jenny.post(url(sub, "resume"), {"intent": intent}, htmx=htmx)
        assert success_target(resumed, htmx) == LIST
        page = await jenny.flashes()
        assert "Payments have resumed." in page
        assert ">Pause subscription</a>" in page
    assert (await subscription_of(JENNY))["pause_collection_behavior"] is None
    (paused_event,) = await audit_events("subscription.paused", sub["id"])
    assert paused_event["before"]["pause_collection_behavior"] is None
    assert paused_event["after"]["pause_collection_behavior"] == "void"
    (resumed_event,) = await audit_events("subscription.resumed", sub["id"])
    assert resumed_event["after"]["pause_collection_behavior"] is None


async def test_pause_until_resumed(settings, demo) -> None:
    await set_features(demo, subscription_pause={"enabled": True})
    sub = await subscription_of(JENNY)
    async with signed_in(settings, demo, JENNY) as jenny:
        form = await jenny.get(url(sub, "pause"))
        (intent,) = intents_on(form.text)
        done = await jenny.post(url(sub, "pause"), {"mode": "indefinitely", "intent": intent})
        assert success_target(done, False) == LIST
        page = await jenny.flashes()
        assert "Payments are paused until you resume them." in page
        assert "Payments paused until you resume them" in page
    paused = await subscription_of(JENNY)
    assert paused["pause_collection_behavior"] == "void"
    assert paused["pause_collection_resumes_at"] is None


@HTMX
async def test_pause_dates_are_checked(settings, demo, htmx) -> None:
    await set_features(demo, subscription_pause={"enabled": True})
    sub = await subscription_of(JENNY)
    async with signed_in(settings, demo, JENNY) as jenny:
        today = clock.now().astimezone(formatting.zone(jenny.customer.time_zone)).date()
        cases = {
            today.isoformat(): "must be in the future",
            (today + timedelta(days=100)).isoformat(): "must be on or before",
            "soon": "Enter a real date",
            "": "Enter the date payments resume.",
        }
        for value, message in cases.items():
            response = await jenny.post(
                url(sub, "pause"),
                {"mode": "date", "resume_on": value, "intent": "p" * 22},
                htmx=htmx,
            )
            error_page(response)
            assert_fragment(response, htmx)
            assert message in response.text
            assert 'href="#resume_on"' in response.text
            assert 'value="date" checked' in response.text
        nothing = await jenny.post(url(sub, "pause"), {"intent": "p" * 22}, htmx=htmx)
        error_page(nothing)
        assert "Choose how long to pause payments." in nothing.text
    assert (await subscription_of(JENNY))["pause_collection_behavior"] is None
    assert await audit_events("subscription.paused") == []


async def test_concurrent_double_submits_record_one_event(settings, demo) -> None:
    sub = await subscription_of(LEE)
    async with signed_in(settings, demo, LEE) as lee:
        page = await lee.get(LIST)
        (intent,) = intents_on(page.text)
        await lee.csrf()
        responses = await asyncio.gather(
            *(lee.post(url(sub, "renew"), {"intent": intent}) for _ in range(3))
        )
        assert [r.status_code for r in responses] == [303, 303, 303]
    assert len(await audit_events("subscription.renewed", sub["id"])) == 1
    assert (await subscription_of(LEE))["cancel_at_period_end"] is False
