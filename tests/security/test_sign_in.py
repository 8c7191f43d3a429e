"""Sign-in over HTTP: single use under concurrency, binding of a code to its attempt and email,
session fixation, and enumeration (pages and timing).

The service-level rules (lifetime at the boundary, burning, locking, cooldown, hourly limit, the
stored HMAC) are tested in tests/login/test_passcodes.py; see test_catalogue.py for the map.
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import time
from collections import Counter

from app.audit.tables import AuditEvent
from app.billing.tables import Customer
from app.login import passcodes
from app.login.tables import LoginAttempt, WebSession
from app.mail.tables import OutboxMessage
from tests.helpers import HX, JENNY, NOBODY, PAT, code_of, configuration_of, wrong_code
from tests.login.test_controller import _normalised

TIMING_TRIES = 200
TIMING_LIMIT_MS = 5.0


async def test_twenty_simultaneous_correct_submissions_make_one_session(portal):
    await portal.request_code(JENNY)
    attempt_id = await portal.latest_attempt(JENNY)
    code = await code_of(portal.settings, attempt_id)
    token = await portal.csrf()
    url = portal.code_url(attempt_id)
    responses = await asyncio.gather(
        *(
            portal.client.post(url, data={"code": code, "_csrf_token": token}, headers=headers)
            for headers in [{}, HX] * 10
        )
    )
    outcomes = Counter(
        "signed in"
        if "set-cookie" in r.headers and "portico_session=" in r.headers["set-cookie"]
        else r.status_code
        for r in responses
    )
    assert outcomes == {"signed in": 1, 422: 19}, outcomes
    assert all("already been used" in r.text for r in responses if r.status_code == 422)
    assert await WebSession.count() == 1
    assert await AuditEvent.count().where(AuditEvent.action == "customer.signed_in") == 1


async def test_a_code_opens_only_its_own_attempt_and_email(portal):
    await portal.request_code(JENNY)
    jenny_attempt = await portal.latest_attempt(JENNY)
    await portal.request_code(PAT)
    pat_attempt = await portal.latest_attempt(PAT)
    jenny_code = await code_of(portal.settings, jenny_attempt)
    pat_code = await code_of(portal.settings, pat_attempt)
    if jenny_code == pat_code:  # one chance in a million: nothing to tell apart
        return
    # Jenny's code typed on Pat's attempt: a wrong guess there, nothing more.
    wrong = await portal.post(portal.code_url(pat_attempt), {"code": jenny_code})
    assert wrong.status_code == 422
    assert "set-cookie" not in wrong.headers
    assert await WebSession.count() == 0
    rows = {r["id"]: r for r in await LoginAttempt.select()}
    assert rows[pat_attempt]["failed_attempts"] == 1
    assert rows[jenny_attempt]["failed_attempts"] == 0
    # Each code signs in its own email's customer.
    response = await portal.post(portal.code_url(jenny_attempt), {"code": jenny_code})
    assert response.status_code == 303
    session = await WebSession.select().first()
    jenny = await Customer.select(Customer.id).where(Customer.email == JENNY).first()
    assert session["subject"] == jenny["id"]


async def test_a_planted_session_cookie_is_never_adopted(portal):
    planted = "attacker-chosen-session-value-0123456789abcdef"
    portal.client.cookies.set("portico_session", planted, domain="portal.test")
    issued = await portal.sign_in(JENNY)
    assert issued != planted
    assert len(issued) >= 43  # 256 bits, URL-safe base64
    digests = {row["id"] for row in await WebSession.select(WebSession.id)}
    assert hashlib.sha256(planted.encode()).hexdigest() not in digests
    replay = await portal.client.get("/portal", headers={"Cookie": f"portico_session={planted}"})
    assert replay.status_code == 401


async def test_the_code_step_looks_the_same_for_known_and_unknown_emails(portal, fake_clock):
    """tests/login/test_controller.py::test_known_and_unknown_emails_look_the_same compares the
    answers to the email step; the same holds for the steps after it."""
    await portal.request_code(JENNY)
    await portal.request_code(NOBODY)
    attempts = {email: await portal.latest_attempt(email) for email in (JENNY, NOBODY)}
    codes = {email: await code_of(portal.settings, a) for email, a in attempts.items()}
    token = await portal.csrf()

    async def answers(email: str) -> list:
        attempt = attempts[email]
        url = portal.code_url(attempt)
        steps = [
            await portal.client.get(url),
            await portal.client.get(url, headers=HX),
            await portal.client.post(
                url, data={"code": wrong_code(codes[email]), "_csrf_token": token}
            ),
            await portal.client.post(url + "/resend", data={"_csrf_token": token}, headers=HX),
        ]
        return [_normalised(r, email, attempt) for r in steps]

    known, unknown = await answers(JENNY), await answers(NOBODY)
    for step, (a, b) in enumerate(zip(known, unknown, strict=True)):
        assert a == b, step
    assert await OutboxMessage.count() == 2  # the resends met the cooldown alike


async def _timed(call) -> float:
    started = time.perf_counter()
    await call
    return (time.perf_counter() - started) * 1000


async def test_requesting_a_code_takes_as_long_for_unknown_emails(db, shop, settings, fake_clock):
    """The request path never looks the address up: the median time of ``request_code`` for an
    email with a customer and one without differs by less than 5 ms (200 tries each, on this
    backend; interleaved, alternating which goes first)."""
    configuration = await configuration_of(shop)
    known = [f"known.{i:03d}@example.com" for i in range(TIMING_TRIES + 10)]
    unknown = [f"other.{i:03d}@example.com" for i in range(TIMING_TRIES + 10)]
    await Customer.insert(
        *(Customer(id=f"cus_timing_{i}", name="Timing", email=e) for i, e in enumerate(known))
    )
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    for i in range(TIMING_TRIES + 10):
        pair = [("known", known[i]), ("unknown", unknown[i])]
        for kind, email in pair if i % 2 else reversed(pair):
            elapsed = await _timed(passcodes.request_code(settings, configuration, email, "ip"))
            if i >= 10:  # the first ten pairs warm up
                times[kind].append(elapsed)
        fake_clock.advance(seconds=1)
    outcomes = await LoginAttempt.count()
    assert outcomes == 2 * (TIMING_TRIES + 10)  # every request was a real "sent"
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    backend = "postgresql" if "postgres" in settings.resolved_database_url else "sqlite"
    print(
        f"\nrequest_code median on {backend}: known {medians['known']:.2f} ms, "
        f"unknown {medians['unknown']:.2f} ms ({TIMING_TRIES} tries each)"
    )
    assert abs(medians["known"] - medians["unknown"]) < TIMING_LIMIT_MS, medians
