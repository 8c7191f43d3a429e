"""Payment method rules: the last-card rule, the list's default and overrides, the card form."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from app.audit import service as audit
from app.audit.tables import AuditEvent
from app.billing.sandbox import SandboxGateway
from app.billing.tables import IdempotencyRecord, PaymentMethod, Subscription
from app.configuration.features import Features, PaymentMethodUpdate
from app.portal.activity import Who
from app.portal.payment_methods import service
from app.portal.payment_methods.forms import CardForm, luhn_ok, parse_expiry
from app.web.forms import parse
from tests.helpers import JENNY, MAX, PAT
from tests.portal.support import customer_by_email

NOW = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cards", "active", "allowed"),
    [(1, True, False), (1, False, True), (2, True, True), (3, False, True)],
)
def test_last_payment_method_rule(cards: int, active: bool, allowed: bool) -> None:
    assert service.may_remove(cards, active) is allowed


def test_feature_switch() -> None:
    assert service.enabled(Features())
    assert not service.enabled(Features(payment_method_update=PaymentMethodUpdate(enabled=False)))


async def test_list_marks_the_default(demo) -> None:
    jenny = await customer_by_email(JENNY)
    view = await service.payment_methods(jenny)
    assert [(c.brand, c.last4, c.is_default) for c in view.cards] == [("visa", "4242", True)]
    assert view.has_active_subscription
    assert view.default is not None
    assert view.default.id == jenny.invoice_settings_default_payment_method


async def test_no_cards(demo) -> None:
    view = await service.payment_methods(await customer_by_email(MAX))
    assert view.cards == []
    assert not view.has_active_subscription


async def _second_card(customer_id: str, last4: str = "4444") -> str:
    pm = PaymentMethod(
        id=f"pm_test_{last4}",
        customer=customer_id,
        card_brand="mastercard",
        card_last4=last4,
        card_exp_month=4,
        card_exp_year=2031,
        created=NOW,
    )
    await PaymentMethod.insert(pm)
    return pm.id


async def test_subscription_default_that_overrides_is_named(demo) -> None:
    jenny = await customer_by_email(JENNY)
    other = await _second_card(jenny.id)
    await Subscription.update({Subscription.default_payment_method: other}).where(
        Subscription.customer == jenny.id
    )
    view = await service.payment_methods(jenny)
    by_id = {card.id: card for card in view.cards}
    assert by_id[other].used_for == ["Team"]
    assert by_id[jenny.invoice_settings_default_payment_method].used_for == []
    assert view.cards[0].is_default  # the default comes first


async def test_subscription_default_equal_to_customer_default_is_not_an_override(demo) -> None:
    jenny = await customer_by_email(JENNY)
    await Subscription.update(
        {Subscription.default_payment_method: jenny.invoice_settings_default_payment_method}
    ).where(Subscription.customer == jenny.id)
    view = await service.payment_methods(jenny)
    assert all(card.used_for == [] for card in view.cards)


async def test_removal_rule_against_the_mirror(demo) -> None:
    pat = await customer_by_email(PAT)  # trialing, one card
    only = (await service.payment_methods(pat)).cards[0]
    assert not (await service.removal(pat, only.id)).allowed
    second = await _second_card(pat.id)
    assert (await service.removal(pat, only.id)).allowed
    assert (await service.removal(pat, second)).allowed


async def test_removal_of_someone_elses_card_is_not_found(demo) -> None:
    jenny = await customer_by_email(JENNY)
    pat = await customer_by_email(PAT)
    with pytest.raises(service.NotFound):
        await service.removal(jenny, pat.invoice_settings_default_payment_method or "")


def test_luhn_and_expiry() -> None:
    assert luhn_ok("4242424242424242")
    assert luhn_ok("4000000000000002")
    assert not luhn_ok("4242424242424241")
    assert parse_expiry("04 / 28") == (4, 2028)
    assert parse_expiry("4/2031") == (4, 2031)
    assert parse_expiry("0428") == (4, 2028)
    assert parse_expiry("13 / 28") is None
    assert parse_expiry("soon") is None


def test_card_form_checks() -> None:
    good = {"number": "4242 4242 4242 4242", "expiry": "12 / 40", "cvc": "123", "name": "J R"}
    form, errors = parse(CardForm, good)
    assert errors == {}
    card = form.card()
    assert (card.number, card.exp_month, card.exp_year, card.cvc) == (
        "4242424242424242",
        12,
        2040,
        "123",
    )
    _, errors = parse(CardForm, {"number": "4242 4242 4242 4241", "expiry": "01 / 20", "cvc": "12"})
    assert set(errors) == {"number", "expiry", "cvc"}
    _, errors = parse(CardForm, {})
    assert set(errors) == {"number", "expiry", "cvc"}


def test_card_form_repr_hides_card_data() -> None:
    form, _ = parse(CardForm, {"number": "4242424242424242", "cvc": "987", "expiry": "1/40"})
    assert "4242" not in repr(form)
    assert "987" not in repr(form)


class SlowDetach:
    """The sandbox gateway, with a pause before each detach: without the customer's lock, two
    removals would both pass the last-card check before either detached."""

    def __init__(self, inner: SandboxGateway) -> None:
        self.inner = inner

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    async def detach_payment_method(self, *args, **kwargs) -> None:
        await asyncio.sleep(0.05)
        await self.inner.detach_payment_method(*args, **kwargs)


async def test_two_removals_at_once_keep_the_last_card(demo, settings) -> None:
    pat = await customer_by_email(PAT)  # trialing, one card
    first = pat.invoice_settings_default_payment_method or ""
    second = await _second_card(pat.id)
    gateway = SlowDetach(SandboxGateway(settings))
    who = Who(actor=audit.Actor(type="customer", id=pat.id, email=PAT), configuration="bpc")

    async def remove(pm_id: str, key: str):
        try:
            return await service.remove(gateway, who, pat, pm_id, key=key)  # type: ignore[arg-type]
        except service.LastPaymentMethod as refused:
            return refused

    results = await asyncio.gather(remove(first, "key_first_card"), remove(second, "key_second"))
    removed = [r for r in results if isinstance(r, service.CardRow)]
    refused = [r for r in results if isinstance(r, service.LastPaymentMethod)]
    assert (len(removed), len(refused)) == (1, 1)
    left = await PaymentMethod.select(PaymentMethod.id).where(PaymentMethod.customer == pat.id)
    assert [row["id"] for row in left] == [first if removed[0].id == second else second]
    events = await AuditEvent.select().where(AuditEvent.action == service.REMOVED)
    assert [event["object_id"] for event in events] == [removed[0].id]


class CountingGateway:
    """The sandbox, counting the gateway calls by name."""

    def __init__(self, inner: SandboxGateway) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str):
        self.calls.append(name)
        return getattr(self.inner, name)


def who_is(customer) -> Who:
    return Who(
        actor=audit.Actor(type="customer", id=customer.id, email=customer.email or ""),
        configuration="bpc",
    )


async def test_making_the_default_card_the_default_sends_and_records_nothing(
    demo, settings
) -> None:
    """Only a change is sent: a key billing has seen then always has its event, so a key with
    a record and no event is one whose first submit died (``activity.Replay.APPLIED``)."""
    jenny = await customer_by_email(JENNY)
    default = jenny.invoice_settings_default_payment_method or ""
    gateway = CountingGateway(SandboxGateway(settings))
    for _ in range(2):  # the form, then the same form again
        chosen = await service.make_default(
            gateway,  # type: ignore[arg-type]
            who_is(jenny),
            jenny,
            default,
            key="portico_" + "d" * 48,
        )
        assert chosen.id == default
    assert gateway.calls == []
    assert await IdempotencyRecord.count() == 0
    assert await AuditEvent.count().where(AuditEvent.action == service.DEFAULT_SET) == 0


async def test_one_removal_form_sent_twice_at_once_answers_both(demo, settings) -> None:
    """A double click: both submits wait for the customer's lock; the second finds the first's
    event and answers with the removed card (not 404 for a card that is gone)."""
    jenny = await customer_by_email(JENNY)
    second = await _second_card(jenny.id)
    gateway = SlowDetach(SandboxGateway(settings))
    same = "portico_" + "r" * 48
    results = await asyncio.gather(
        *(
            service.remove(gateway, who_is(jenny), jenny, second, key=same)  # type: ignore[arg-type]
            for _ in range(2)
        )
    )
    assert [card.id for card in results] == [second, second]
    events = await AuditEvent.select().where(AuditEvent.action == service.REMOVED)
    assert [event["object_id"] for event in events] == [second]
