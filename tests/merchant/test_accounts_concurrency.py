"""The merchant sign-in lock under simultaneous requests for one email, as several instances (or
one busy one) make them: each request goes through its own pooled connection, as requests on
different instances do.

The rule (``accounts.MAX_FAILURES``): within a window, the first ``MAX_FAILURES - 1`` wrong
passwords are answered "wrong", the ``MAX_FAILURES``-th is answered "locked" and starts the lock,
and no password is checked at all while the lock lasts, however many requests arrive at once. A
password is "checked" when the request leaves an audit event (``merchant.sign_in_failed``,
``merchant.sign_in_locked`` or ``merchant.signed_in``); a request refused by the lock leaves none.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from app.audit.service import Actor
from app.audit.tables import AuditEvent
from app.merchant import accounts
from app.merchant.tables import MerchantSignInLimit

ACTOR = Actor(type="merchant", ip="198.51.100.9", user_agent="pytest")
EMAIL = "owner@acme.example"
PASSWORD = "correct horse battery staple"
WRONG = "not the password at all"
SIMULTANEOUS = 20  # below the PostgreSQL pool's size: every request can hold its own connection
ROUNDS = 6  # rounds of the correct-password race: one round alone may order itself harmlessly


async def _checked() -> Counter[str]:
    """How many passwords were checked, by outcome (the audit events sign-in leaves)."""
    rows = await AuditEvent.select(AuditEvent.action).where(
        AuditEvent.action.is_in(
            ["merchant.sign_in_failed", "merchant.sign_in_locked", "merchant.signed_in"]
        )
    )
    return Counter(row["action"].removeprefix("merchant.") for row in rows)


async def _at_the_limit() -> None:
    """One wrong password short of the lock, and no audit events yet."""
    await MerchantSignInLimit.delete().where(MerchantSignInLimit.email == EMAIL)
    for _ in range(accounts.MAX_FAILURES - 1):
        outcome = await accounts.authenticate(EMAIL, WRONG, actor=ACTOR)
        assert outcome.verdict == "wrong"
    await AuditEvent.delete(force=True)


async def _all_at_once(passwords: list[str]) -> list[accounts.SignInOutcome]:
    return await asyncio.gather(
        *(accounts.authenticate(EMAIL, password, actor=ACTOR) for password in passwords)
    )


@pytest.mark.parametrize("known", [True, False], ids=["known", "unknown"])
async def test_simultaneous_wrong_passwords_are_checked_only_up_to_the_limit(db, known):
    if known:
        await accounts.create(EMAIL, PASSWORD)
    outcomes = await _all_at_once([WRONG] * SIMULTANEOUS)
    verdicts = Counter(outcome.verdict for outcome in outcomes)
    refused = SIMULTANEOUS - accounts.MAX_FAILURES
    assert verdicts == {"wrong": accounts.MAX_FAILURES - 1, "locked": refused + 1}, verdicts
    assert await _checked() == {
        "sign_in_failed": accounts.MAX_FAILURES - 1,
        "sign_in_locked": 1,
    }
    row = await MerchantSignInLimit.select().where(MerchantSignInLimit.email == EMAIL).first()
    assert row["failures"] == 0
    assert row["locked_until"] is not None
    assert all(o.retry_after > 0 for o in outcomes if o.verdict == "locked")
    if known:
        late = await accounts.authenticate(EMAIL, PASSWORD, actor=ACTOR)
        assert late.verdict == "locked"


async def test_simultaneous_wrong_passwords_at_the_limit_get_one_guess(db):
    await accounts.create(EMAIL, PASSWORD)
    await _at_the_limit()
    outcomes = await _all_at_once([WRONG] * SIMULTANEOUS)
    assert Counter(outcome.verdict for outcome in outcomes) == {"locked": SIMULTANEOUS}
    assert await _checked() == {"sign_in_locked": 1}
    assert (await accounts.authenticate(EMAIL, PASSWORD, actor=ACTOR)).verdict == "locked"


async def test_a_correct_password_among_simultaneous_wrong_ones_at_the_limit(db):
    """One guess is left: either a wrong password takes it (and everything else, the correct
    password included, is refused unchecked), or the correct one does (it signs in, which clears
    the count: wrong passwords refused meanwhile stay unchecked, later ones count afresh, up to
    the limit again). No sign-in once the lock has started, and no lock undone by a sign-in that
    came through alongside it."""
    await accounts.create(EMAIL, PASSWORD)
    for round_ in range(ROUNDS):
        await _at_the_limit()
        passwords = [WRONG] * (SIMULTANEOUS - 1)
        passwords.insert(round_ * 3 % SIMULTANEOUS, PASSWORD)
        outcomes = await _all_at_once(passwords)
        correct = outcomes[passwords.index(PASSWORD)]
        wrong = Counter(o.verdict for o, p in zip(outcomes, passwords, strict=True) if p == WRONG)
        checked = await _checked()
        row = await MerchantSignInLimit.select().where(MerchantSignInLimit.email == EMAIL).first()
        context = (round_, checked, wrong, row)
        if correct.verdict == "ok":
            assert "ok" not in wrong
            # Every wrong password checked came after the sign-in, and counted from zero.
            events = await AuditEvent.select(AuditEvent.id, AuditEvent.action).order_by(
                AuditEvent.id
            )
            assert events[0]["action"] == "merchant.signed_in", context
            counted = checked["sign_in_failed"] + checked["sign_in_locked"]
            assert counted <= accounts.MAX_FAILURES, context
            assert checked["sign_in_failed"] == wrong["wrong"], context
            if counted == accounts.MAX_FAILURES:
                assert checked["sign_in_locked"] == 1, context
                assert row["locked_until"] is not None, context
            else:
                assert checked["sign_in_locked"] == 0, context
                assert (row["failures"] if row else 0) == counted, context
                assert not (row and row["locked_until"]), context
        else:
            assert correct.verdict == "locked", context
            assert checked == {"sign_in_locked": 1}, context
            assert wrong == {"locked": SIMULTANEOUS - 1}, context
            assert row["locked_until"] is not None, context
            assert (await accounts.authenticate(EMAIL, PASSWORD, actor=ACTOR)).verdict == "locked"


async def test_no_simultaneous_password_is_checked_once_locked(db):
    await accounts.create(EMAIL, PASSWORD)
    await _at_the_limit()
    assert (await accounts.authenticate(EMAIL, WRONG, actor=ACTOR)).verdict == "locked"
    await AuditEvent.delete(force=True)
    passwords = [WRONG] * (SIMULTANEOUS - 2) + [PASSWORD] * 2
    outcomes = await _all_at_once(passwords)
    assert Counter(outcome.verdict for outcome in outcomes) == {"locked": SIMULTANEOUS}
    assert await _checked() == {}
