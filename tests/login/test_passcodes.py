"""The passcode rules (design.md §4), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import re
import secrets
from collections import Counter
from datetime import timedelta

from app.billing.tables import Customer
from app.configuration import service as configurations
from app.configuration.tables import PortalConfiguration
from app.login import passcodes
from app.login.tables import LoginAttempt
from app.mail.tables import OutboxMessage
from tests.helpers import JENNY, NOBODY, PAT, SAM, code_of, configuration_of, wrong_code


async def _request(settings, configuration, email=JENNY):
    return await passcodes.request_code(settings, configuration, email, "203.0.113.9")


async def _attempt(attempt_id: str) -> LoginAttempt:
    attempt = await LoginAttempt.objects().where(LoginAttempt.id == attempt_id).first()
    assert attempt is not None
    return attempt


# --- the code ----------------------------------------------------------------------------------


def test_codes_are_six_digits_from_secrets():
    draws = [passcodes.new_code() for _ in range(2000)]
    assert all(re.fullmatch(r"\d{6}", code) for code in draws)
    digits = Counter("".join(draws))
    assert set(digits) == set("0123456789")
    assert len(set(draws)) > 1900  # no small cycle
    assert passcodes.secrets is secrets
    assert "secrets.choice" in inspect.getsource(passcodes.new_code)


def test_attempt_ids_carry_128_bits():
    ids = {passcodes.new_attempt_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", value) for value in ids)


def test_code_hash_is_hmac_sha256_of_attempt_and_code(settings):
    digest = passcodes.code_hash(settings, "attempt-a", "123456")
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest != hashlib.sha256(b"123456").hexdigest()
    assert digest != passcodes.code_hash(settings, "attempt-b", "123456")
    assert digest != passcodes.code_hash(settings, "attempt-a", "123457")
    other = type(settings)(**{**_fields(settings), "secret_key": "another-secret-" + "y" * 32})
    assert digest != passcodes.code_hash(other, "attempt-a", "123456")
    key = hmac.new(settings.secret_key.encode(), b"portico/login-code", hashlib.sha256).digest()
    assert digest == hmac.new(key, b"attempt-a:123456", hashlib.sha256).hexdigest()


def _fields(settings) -> dict:
    return {name: getattr(settings, name) for name in settings.__struct_fields__}


# --- storage -----------------------------------------------------------------------------------


async def test_only_the_hmac_is_stored(db, shop, settings, fake_clock):
    # (fake_clock: whole-second timestamps, so no microseconds can look like the code)
    configuration = await configuration_of(shop)
    outcome = await _request(settings, configuration)
    assert outcome.notice == "sent"
    code = await code_of(settings, outcome.attempt_id)
    attempt = await _attempt(outcome.attempt_id)
    assert attempt.code_hash == passcodes.code_hash(settings, attempt.id, code)

    rows = [*await LoginAttempt.select(), *await OutboxMessage.select()]
    assert len(rows) == 2
    for row in rows:
        for column, value in row.items():
            assert code not in str(value), f"plaintext code in {column}"


async def test_the_hash_binds_the_attempt(db, shop, settings):
    configuration = await configuration_of(shop)
    first = await _request(settings, configuration, JENNY)
    second = await _request(settings, configuration, PAT)
    code = await code_of(settings, first.attempt_id)
    # Give the second attempt the first one's stored hash: the first code still fails there,
    # because the hash covers the attempt id as well as the code.
    await LoginAttempt.update(
        {LoginAttempt.code_hash: (await _attempt(first.attempt_id)).code_hash}
    ).where(LoginAttempt.id == second.attempt_id)
    outcome = await passcodes.verify(settings, configuration, second.attempt_id, code)
    assert outcome.verdict == "wrong"
    assert (await passcodes.verify(settings, configuration, first.attempt_id, code)).verdict == "ok"


# --- lifetime and single use -------------------------------------------------------------------


async def test_a_code_lives_exactly_ten_minutes(db, shop, settings, fake_clock):
    configuration = await configuration_of(shop)
    start = fake_clock()
    outcome = await _request(settings, configuration)
    code = await code_of(settings, outcome.attempt_id)
    attempt = await _attempt(outcome.attempt_id)
    assert attempt.expires_at == start + timedelta(minutes=10)

    fake_clock.set(attempt.expires_at)
    assert (await passcodes.verify(settings, configuration, attempt.id, code)).verdict == "expired"
    fake_clock.set(attempt.expires_at - timedelta(seconds=1))
    ok = await passcodes.verify(settings, configuration, attempt.id, code)
    assert ok.verdict == "ok"


async def test_a_code_works_once(db, shop, settings):
    configuration = await configuration_of(shop)
    outcome = await _request(settings, configuration)
    code = await code_of(settings, outcome.attempt_id)
    assert (await passcodes.verify(settings, configuration, outcome.attempt_id, code)).verdict == (
        "ok"
    )
    again = await passcodes.verify(settings, configuration, outcome.attempt_id, code)
    assert again.verdict == "used"
    assert again.customer_id is None
    attempt = await _attempt(outcome.attempt_id)
    assert attempt.status == passcodes.USED
    assert attempt.used_at is not None


async def test_twenty_simultaneous_correct_codes_sign_in_once(db, shop, settings):
    configuration = await configuration_of(shop)
    outcome = await _request(settings, configuration)
    code = await code_of(settings, outcome.attempt_id)
    results = await asyncio.gather(
        *(passcodes.verify(settings, configuration, outcome.attempt_id, code) for _ in range(20))
    )
    verdicts = Counter(result.verdict for result in results)
    assert verdicts["ok"] == 1, verdicts
    assert verdicts["used"] == 19, verdicts
    assert (await _attempt(outcome.attempt_id)).failed_attempts == 0


async def test_spaces_and_dashes_are_ignored(db, shop, settings):
    configuration = await configuration_of(shop)
    outcome = await _request(settings, configuration)
    code = await code_of(settings, outcome.attempt_id)
    typed = f" {code[:3]}-{code[3:]} "
    assert (await passcodes.verify(settings, configuration, outcome.attempt_id, typed)).verdict == (
        "ok"
    )


async def test_an_unknown_attempt(db, shop, settings):
    configuration = await configuration_of(shop)
    outcome = await passcodes.verify(settings, configuration, "no-such-attempt", "123456")
    assert outcome.verdict == "unknown"
    assert await passcodes.get_attempt(configuration, "x" * 65) is None


# --- wrong guesses -----------------------------------------------------------------------------


async def test_five_wrong_guesses_burn_the_code(db, shop, settings):
    configuration = await configuration_of(shop)
    outcome = await _request(settings, configuration)
    code = await code_of(settings, outcome.attempt_id)
    wrong = wrong_code(code)
    tries = []
    for _ in range(4):
        result = await passcodes.verify(settings, configuration, outcome.attempt_id, wrong)
        assert result.verdict == "wrong"
        tries.append(result.tries_left)
    assert tries == [4, 3, 2, 1]
    burned = await passcodes.verify(settings, configuration, outcome.attempt_id, wrong)
    assert burned.verdict == "burned"
    after = await passcodes.verify(settings, configuration, outcome.attempt_id, code)
    assert after.verdict == "burned"
    attempt = await _attempt(outcome.attempt_id)
    assert attempt.status == passcodes.BURNED
    assert attempt.failed_attempts == 5


async def test_twenty_failures_a_day_lock_the_email(db, shop, settings, fake_clock):
    configuration = await configuration_of(shop)
    start = fake_clock()
    # Three codes burned (15 failures) and four wrong guesses on a fourth (19).
    for _ in range(3):
        outcome = await _request(settings, configuration)
        assert outcome.notice == "sent"
        wrong = wrong_code(await code_of(settings, outcome.attempt_id))
        for _ in range(5):
            await passcodes.verify(settings, configuration, outcome.attempt_id, wrong)
        fake_clock.advance(seconds=61)
    outcome = await _request(settings, configuration)
    wrong = wrong_code(await code_of(settings, outcome.attempt_id))
    for _ in range(4):
        await passcodes.verify(settings, configuration, outcome.attempt_id, wrong)
    fake_clock.advance(seconds=61)

    # A fifth code: the 20th failure still counts as a wrong guess...
    last = await _request(settings, configuration)
    assert last.notice == "sent"
    code = await code_of(settings, last.attempt_id)
    result = await passcodes.verify(settings, configuration, last.attempt_id, wrong_code(code))
    assert result == passcodes.VerifyOutcome("wrong", tries_left=4)
    # ...and then the email is locked: even the right code does not sign in,
    assert (await passcodes.verify(settings, configuration, last.attempt_id, code)).verdict == (
        "locked"
    )
    # and no new code is sent (in any portal).
    fake_clock.advance(seconds=61)
    before = await OutboxMessage.count()
    locked = await _request(settings, configuration)
    assert locked.notice == "locked"
    assert locked.attempt_id == last.attempt_id
    assert await OutboxMessage.count() == before
    # Another email is not affected.
    assert (await _request(settings, configuration, PAT)).notice == "sent"

    # 24 hours after those attempts, the email may sign in again.
    fake_clock.set(start + timedelta(hours=24, minutes=5))
    fresh = await _request(settings, configuration)
    assert fresh.notice == "sent"
    code = await code_of(settings, fresh.attempt_id)
    assert (await passcodes.verify(settings, configuration, fresh.attempt_id, code)).verdict == (
        "ok"
    )


# --- sending limits ----------------------------------------------------------------------------


async def test_resend_cooldown(db, shop, settings, fake_clock):
    configuration = await configuration_of(shop)
    first = await _request(settings, configuration)
    first_code = await code_of(settings, first.attempt_id)

    fake_clock.advance(seconds=30)
    again = await _request(settings, configuration)
    assert again.attempt_id == first.attempt_id
    assert again.notice == "cooldown"
    assert 29 <= again.retry_after <= 31
    assert await OutboxMessage.count() == 1
    assert await LoginAttempt.count() == 1

    fake_clock.advance(seconds=31)
    second = await _request(settings, configuration)
    assert second.notice == "sent"
    assert second.attempt_id != first.attempt_id
    assert await OutboxMessage.count() == 2
    old = await passcodes.verify(settings, configuration, first.attempt_id, first_code)
    assert old.verdict == "superseded"
    second_code = await code_of(settings, second.attempt_id)
    assert (
        await passcodes.verify(settings, configuration, second.attempt_id, second_code)
    ).verdict == ("ok")


async def test_at_most_five_sends_an_hour(db, shop, settings, fake_clock):
    configuration = await configuration_of(shop)
    start = fake_clock()
    sent = []
    for _ in range(5):
        outcome = await _request(settings, configuration)
        assert outcome.notice == "sent"
        sent.append(outcome.attempt_id)
        fake_clock.advance(seconds=61)
    limited = await _request(settings, configuration)
    assert limited.notice == "hourly_limit"
    assert limited.attempt_id == sent[-1]
    wait = start + timedelta(hours=1) - fake_clock()
    assert abs(limited.retry_after - wait.total_seconds()) <= 1
    assert await OutboxMessage.count() == 5

    fake_clock.set(start + timedelta(hours=1, seconds=1))
    assert (await _request(settings, configuration)).notice == "sent"


async def test_one_live_code_per_portal_and_email(db, shop, settings, fake_clock):
    configuration = await configuration_of(shop)
    for _ in range(3):
        await _request(settings, configuration)
        fake_clock.advance(seconds=61)
    await _request(settings, configuration, PAT)
    live = await LoginAttempt.select(LoginAttempt.email).where(
        LoginAttempt.status == passcodes.LIVE
    )
    assert sorted(row["email"] for row in live) == sorted([JENNY, PAT])

    # A second portal keeps its own live code for the same email.
    other = PortalConfiguration(
        id=configurations.new_configuration_id(),
        login_page_token=configurations.new_login_token(),
        business_name="Other",
    )
    await PortalConfiguration.insert(other)
    fake_clock.advance(seconds=61)
    elsewhere = await _request(settings, other)
    assert elsewhere.notice == "sent"
    live_for_jenny = await LoginAttempt.select(LoginAttempt.configuration).where(
        (LoginAttempt.status == passcodes.LIVE) & (LoginAttempt.email == JENNY)
    )
    assert sorted(row["configuration"] for row in live_for_jenny) == sorted(
        [configuration.id, other.id]
    )
    # An attempt belongs to its portal.
    assert await passcodes.get_attempt(configuration, elsewhere.attempt_id) is None


async def _second_portal() -> PortalConfiguration:
    other = PortalConfiguration(
        id=configurations.new_configuration_id(),
        login_page_token=configurations.new_login_token(),
        business_name="Other",
    )
    await PortalConfiguration.insert(other)
    return other


async def test_the_cooldown_is_per_portal_and_the_limits_span_portals(
    db, shop, settings, fake_clock
):
    # Regression: a cooldown on portal A used to hand portal B the attempt id of A, which B's
    # pages then answered with 404.
    first = await configuration_of(shop)
    other = await _second_portal()
    on_first = await _request(settings, first)
    on_other = await _request(settings, other)
    assert on_other.notice == "sent"
    assert await passcodes.get_attempt(other, on_other.attempt_id) is not None

    # Five sends an hour in all: the sixth, on a portal with no recent attempt, is refused
    # without an attempt to show.
    third = await _second_portal()
    for _ in range(3):
        fake_clock.advance(seconds=61)
        assert (await _request(settings, first)).notice == "sent"
    limited = await _request(settings, third)
    assert limited.notice == "hourly_limit"
    assert limited.attempt_id is None
    assert on_first.attempt_id != limited.attempt_id


# --- enumeration -------------------------------------------------------------------------------


def _shape(row: dict) -> dict:
    """What a row looks like, without the values that differ between any two requests."""
    varying = {"id", "email", "to_address", "code_hash", "sealed", "reference", "context"}
    varying |= {"created_at", "expires_at", "next_attempt_at"}
    return {key: value for key, value in row.items() if key not in varying}


async def test_an_unknown_email_gets_the_same_outcome_and_rows(db, shop, settings, fake_clock):
    configuration = await configuration_of(shop)
    known = await _request(settings, configuration, JENNY)
    unknown = await _request(settings, configuration, NOBODY)
    assert type(known) is type(unknown)
    assert (known.notice, known.retry_after) == (unknown.notice, unknown.retry_after)

    attempts = {row["email"]: row for row in await LoginAttempt.select()}
    messages = {row["to_address"]: row for row in await OutboxMessage.select()}
    assert set(attempts) == set(messages) == {JENNY, NOBODY}
    assert _shape(attempts[JENNY]) == _shape(attempts[NOBODY])
    assert _shape(messages[JENNY]) == _shape(messages[NOBODY])
    assert messages[NOBODY]["sealed"]  # a code is "sent" the same way
    assert messages[NOBODY]["status"] == "queued"

    # No code opens an account for an address with no customer, not even the queued one.
    code = await code_of(settings, unknown.attempt_id)
    result = await passcodes.verify(settings, configuration, unknown.attempt_id, code)
    assert result.verdict == "wrong"
    assert result.customer_id is None
    for guess in ("000000", "123456", "999999"):
        result = await passcodes.verify(settings, configuration, unknown.attempt_id, guess)
        assert result.verdict != "ok"

    # The limits apply alike.
    fake_clock.advance(seconds=10)
    again_known = await _request(settings, configuration, JENNY)
    again_unknown = await _request(settings, configuration, NOBODY)
    assert (again_known.notice, again_known.retry_after) == (
        again_unknown.notice,
        again_unknown.retry_after,
    )


# --- which customer ----------------------------------------------------------------------------


async def test_the_customer_with_an_active_subscription_is_chosen(db, shop, settings):
    configuration = await configuration_of(shop)
    outcome = await _request(settings, configuration, SAM)
    code = await code_of(settings, outcome.attempt_id)
    result = await passcodes.verify(settings, configuration, outcome.attempt_id, code)
    assert result.verdict == "ok"
    customer = await Customer.objects().where(Customer.id == result.customer_id).first()
    assert customer is not None
    assert customer.name == "Sam Older"


async def test_emails_are_matched_case_insensitively(db, shop, settings):
    configuration = await configuration_of(shop)
    await Customer.update({Customer.email: "Jenny.Rosen@Example.com"}).where(
        Customer.email == JENNY
    )
    outcome = await _request(settings, configuration, JENNY)
    code = await code_of(settings, outcome.attempt_id)
    result = await passcodes.verify(settings, configuration, outcome.attempt_id, code)
    assert result.verdict == "ok"


async def test_is_deliverable(db, shop, settings, fake_clock):
    configuration = await configuration_of(shop)
    outcome = await _request(settings, configuration)
    assert await passcodes.is_deliverable(outcome.attempt_id) is not None
    fake_clock.advance(minutes=10)
    assert await passcodes.is_deliverable(outcome.attempt_id) is None
    assert await passcodes.is_deliverable("missing") is None
