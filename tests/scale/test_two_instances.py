"""Scale-out acceptance: two real ``portico serve`` processes on different ports share one fresh
PostgreSQL database (and, in the ``redis`` run, one Redis), with a real SMTP server (aiosmtpd)
in the test's event loop and both mail workers running.

One browser (one cookie jar: cookies ignore ports, as they would behind a load balancer that
sends each request to either instance) is driven with httpx, CSRF token and cookie included:

- a passcode requested on the first instance is accepted on the second;
- the per-email limits (resend cooldown, sends per hour) hold across both instances;
- signing out on one ends the session on the other (the old cookie gets the signed-out page);
- a portal page kept by one (its page cache) shows at once a change made through the other, and
  is no longer served once the session is ended on the other;
- the merchant sign-in lock holds across both instances (wrong passwords at once on both);
- every outbox message is delivered exactly once with two workers claiming;
- neither instance logs a passcode or a session token.

Runs only with PostgreSQL (``PORTICO_TEST_POSTGRES_URL``, as CI sets); the ``redis`` run needs
Redis (``tests/fixtures/redis.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from app.merchant.accounts import DEMO_EMAIL, MAX_FAILURES
from tests.conftest import POSTGRES_URL
from tests.fixtures.redis import (
    REDIS_REQUIRED,
    REDIS_URL,
    delete_prefix,
    new_prefix,
    redis_reachable,
)
from tests.fixtures.smtp import body_text
from tests.helpers import JENNY, LEE, MAX, PAT, csrf_token
from tests.scale.cluster import (
    CODE_LINE,
    Cluster,
    Instance,
    attempt_path,
    mail_to,
    notice_of,
    running_cluster,
)

pytestmark = pytest.mark.skipif(
    not POSTGRES_URL, reason="needs PostgreSQL (set PORTICO_TEST_POSTGRES_URL)"
)


@pytest.fixture(scope="module", params=["postgres", "postgres+redis"])
async def cluster(request, tmp_path_factory) -> AsyncIterator[Cluster]:
    with_redis = request.param.endswith("redis")
    if with_redis and not redis_reachable():
        if REDIS_REQUIRED:
            pytest.fail(f"PORTICO_TEST_REDIS_URL is set but Redis does not answer at {REDIS_URL}")
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    prefix = new_prefix()
    var_dir = Path(tmp_path_factory.mktemp("scale"))
    try:
        async with running_cluster(
            var_dir, redis_url=REDIS_URL if with_redis else "", redis_prefix=prefix
        ) as cluster:
            yield cluster
            for instance in (cluster.a, cluster.b):
                assert "Redis is unavailable" not in instance.log_text()
    finally:
        if with_redis:
            await delete_prefix(REDIS_URL, prefix)


async def test_a_passcode_requested_on_one_is_accepted_on_the_other_and_sign_out_ends_it_on_both(
    cluster: Cluster,
):
    a, b = cluster.a, cluster.b
    before = len(cluster.inbox.to(JENNY))
    requested = await cluster.request_code(a, JENNY)
    assert notice_of(requested) == "sent"
    code = await cluster.code_for(JENNY, before + 1)

    # The browser lands on the code page of the other instance and submits the code there.
    code_page = attempt_path(requested)
    signed_in = await cluster.post(b, code_page, {"code": code}, token_from=code_page)
    assert signed_in.status_code == 303, signed_in.text
    assert signed_in.headers["location"] == "/portal"
    session = cluster.client.cookies.get("portico_session")
    assert session
    cluster.tokens_seen.append(session)

    # Signed in on both (and, with Redis, now cached by both).
    for instance in (a, b, a, b):
        page = await cluster.page(instance, "/portal")
        assert page.status_code == 200, (instance.name, page.status_code)
        assert "Jenny Rosen" in page.text

    # The code was used: a second use fails on either instance.
    again = await cluster.post(a, code_page, {"code": code}, token_from=code_page)
    assert again.status_code == 422

    # Sign out on B; the browser forgets the cookie...
    signed_out = await cluster.post(b, "/portal/sign-out", {}, token_from="/portal")
    assert signed_out.status_code == 303
    assert "reason=signed_out" in signed_out.headers["location"]
    assert not cluster.client.cookies.get("portico_session")
    # ...and the old cookie, replayed on A (which had just served it), gets the signed-out answer.
    async with httpx.AsyncClient(headers={"Cookie": f"portico_session={session}"}) as stolen:
        for instance in (a, b):
            response = await stolen.get(instance.url + "/portal")
            assert response.status_code == 401, (instance.name, response.status_code)
            assert "You are signed out" in response.text
    rows = await cluster.database.fetchval("SELECT count(*) FROM web_session")
    assert rows == 0
    if cluster.redis:  # the cached copy both instances read was replaced by the 'ended' marker
        digest = hashlib.sha256(session.encode()).hexdigest()
        assert await cluster.redis_get(f"session:{digest}") == b"ended"


class _Form(HTMLParser):
    """The values a browser would submit with the form posting to ``action``."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.inside = False
        self.select: str | None = None
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.inside = found.get("action") == self.action
        elif not self.inside:
            return
        elif tag == "input" and found.get("name"):
            kind = found.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in found:
                return
            if kind not in ("submit", "button"):
                self.values[found["name"]] = found.get("value", "")
        elif tag == "select":
            self.select = found.get("name")
        elif tag == "option" and self.select and "selected" in found:
            self.values[self.select] = found.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None


def form_values(html: str, action: str) -> dict[str, str]:
    parser = _Form(action)
    parser.feed(html)
    assert "_csrf_token" in parser.values, f"no form posting to {action}"
    return parser.values


async def test_a_page_kept_on_one_shows_a_change_made_on_the_other_and_none_after_sign_out(
    cluster: Cluster,
):
    """Each instance keeps rendered portal pages in its own memory (``app.portal.page_cache``),
    checked against change counters the database's triggers move: a change made through B is on
    A's kept overview at once, and A stops serving it once B has ended the session."""
    a, b = cluster.a, cluster.b
    before = len(cluster.inbox.to(MAX))
    requested = await cluster.request_code(a, MAX)
    code_page = attempt_path(requested)
    code = await cluster.code_for(MAX, before + 1)
    signed_in = await cluster.post(a, code_page, {"code": code}, token_from=code_page)
    assert signed_in.status_code == 303, signed_in.text
    session = cluster.client.cookies.get("portico_session")
    assert session
    cluster.tokens_seen.append(session)
    customer = await cluster.database.fetchval(
        "SELECT subject FROM web_session WHERE id = $1",
        hashlib.sha256(session.encode()).hexdigest(),
    )
    assert customer

    async def overview(instance: Instance) -> str:
        page = await cluster.page(instance, "/portal")
        assert page.status_code == 200, (instance.name, page.status_code)
        return page.text

    await overview(a)  # shows (and pops) the sign-in message: not kept
    await overview(a)  # rendered and kept
    await overview(a)  # served kept
    # It is really kept: a write that slips past the triggers (disabled for it) is not seen.
    async with cluster.database.transaction():
        await cluster.database.execute("ALTER TABLE billing_customer DISABLE TRIGGER portal_stamp")
        await cluster.database.execute(
            "UPDATE billing_customer SET name = 'Unseen Name' WHERE id = $1", customer
        )
        await cluster.database.execute("ALTER TABLE billing_customer ENABLE TRIGGER portal_stamp")
    assert "Unseen Name" not in await overview(a)

    # The customer changes their billing name on B's details page (the form as B shows it)...
    details = await cluster.page(b, "/portal/details")
    assert details.status_code == 200
    values = form_values(details.text, "/portal/details")
    assert values["name"] == "Unseen Name"
    saved = await cluster.client.post(
        b.url + "/portal/details", data={**values, "name": "Max Renamed On B"}
    )
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == "/portal/details"
    shown = await cluster.page(b, "/portal/details")  # B shows (and pops) the saved message
    assert "Your billing details were saved." in shown.text
    # ...and A's kept overview has it at once.
    for _ in range(2):
        assert "Max Renamed On B" in await overview(a)

    # Signing out on B: the old cookie, replayed on A (which keeps the overview), is signed out.
    cookies = "; ".join(f"{cookie.name}={cookie.value}" for cookie in cluster.client.cookies.jar)
    signed_out = await cluster.post(b, "/portal/sign-out", {}, token_from="/portal")
    assert signed_out.status_code == 303
    async with httpx.AsyncClient(headers={"Cookie": cookies}) as replayed:
        response = await replayed.get(a.url + "/portal")
    assert response.status_code == 401, response.status_code
    assert "You are signed out" in response.text
    assert "Max Renamed On B" not in response.text


async def test_the_per_email_limits_hold_across_both_instances(cluster: Cluster):
    a, b = cluster.a, cluster.b
    email = PAT
    backdate = (
        "UPDATE login_attempt SET created_at = created_at - interval '61 seconds' WHERE email = $1"
    )
    notices: list[tuple[str, str]] = []

    async def request(instance: Instance) -> None:
        before = len(cluster.inbox.to(email))
        notice = notice_of(await cluster.request_code(instance, email))
        notices.append((instance.name, notice))
        if notice == "sent":
            # As a person would, wait for the email before asking again (a code superseded
            # before its turn in the outbox is not sent at all).
            await mail_to(cluster.inbox, email, before + 1)

    # Resend cooldown: a request on A, then at once on B.
    await request(a)
    await request(b)
    assert notices == [("a", "sent"), ("b", "cooldown")]

    # Sends per hour: past each cooldown (moved back in the database), alternate instances.
    for instance in (b, a, b, a):
        await cluster.database.execute(backdate, email)
        await request(instance)
    await cluster.database.execute(backdate, email)
    await request(b)
    await request(a)
    assert notices == [
        ("a", "sent"),
        ("b", "cooldown"),
        ("b", "sent"),
        ("a", "sent"),
        ("b", "sent"),
        ("a", "sent"),
        ("b", "hourly_limit"),
        ("a", "hourly_limit"),
    ]
    sent = await cluster.database.fetchval(
        "SELECT count(*) FROM login_attempt WHERE email = $1", email
    )
    assert sent == 5
    # Exactly five emails reached the mailbox: the limit is the total over both instances.
    await asyncio.sleep(2.5)  # a worker's poll interval: nothing more arrives
    assert len(cluster.inbox.to(email)) == 5
    for message in cluster.inbox.to(email):
        found = CODE_LINE.search(body_text(message))
        assert found
        cluster.tokens_seen.append(found.group(1))


async def test_simultaneous_requests_on_both_instances_send_one_code(cluster: Cluster):
    """Ten requests for one email at the same moment, half on each instance: the cooldown is
    checked and the attempt written under one lock per email, so exactly one code is sent."""
    email = LEE
    pages = {
        instance.name: await cluster.page(instance, cluster.login_path)
        for instance in (cluster.a, cluster.b)
    }
    tokens = {name: csrf_token(page.text) for name, page in pages.items()}
    responses = await asyncio.gather(
        *(
            cluster.client.post(
                instance.url + cluster.login_path,
                data={"email": email, "_csrf_token": tokens[instance.name]},
            )
            for instance in [cluster.a, cluster.b] * 5
        )
    )
    assert all(response.status_code == 303 for response in responses)
    assert sorted(notice_of(response) for response in responses) == ["cooldown"] * 9 + ["sent"]
    rows = await cluster.database.fetch("SELECT status FROM login_attempt WHERE email = $1", email)
    assert [row["status"] for row in rows] == ["live"]
    await mail_to(cluster.inbox, email, 1)
    found = CODE_LINE.search(body_text(cluster.inbox.to(email)[0]))
    assert found
    cluster.tokens_seen.append(found.group(1))


async def test_the_merchant_sign_in_lock_holds_across_both_instances(cluster: Cluster):
    """Wrong passwords for the demo merchant at the same moment, half on each instance, when three
    guesses are left before the lock: each attempt is counted under one lock per email before its
    password is hashed, so exactly three are checked (the third starts the lock) and the rest are
    refused; the right password is then refused too."""
    a, b = cluster.a, cluster.b
    # ``portico demo --seed-only`` keeps the demo merchant's password in the shared var dir.
    password = (a.log_path.parent / "merchant_password").read_text().strip()
    cluster.tokens_seen.append(password)
    tokens = {
        instance.name: csrf_token((await cluster.page(instance, "/merchant/sign-in")).text)
        for instance in (a, b)
    }
    simultaneous = 16  # with the right password after them, within 20 sign-ins a minute per IP
    left = 3  # guesses (each a production-cost argon2id hash): fewer keep the suite quick
    await cluster.database.execute(
        "INSERT INTO merchant_sign_in_limit (email, failures, window_started_at, locked_until)"
        " VALUES ($1, $2, now(), NULL)",
        DEMO_EMAIL,
        MAX_FAILURES - left,
    )

    def sign_in(instance: Instance, attempt: str):
        return cluster.client.post(
            instance.url + "/merchant/sign-in",
            data={"email": DEMO_EMAIL, "password": attempt, "_csrf_token": tokens[instance.name]},
        )

    responses = await asyncio.gather(
        *(sign_in(instance, "not the password") for instance in [a, b] * (simultaneous // 2))
    )
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {422: left - 1, 429: simultaneous - left + 1}, statuses
    checked = await cluster.database.fetch(
        "SELECT action FROM audit_event WHERE actor_email = $1 AND action LIKE 'merchant.%'",
        DEMO_EMAIL,
    )
    assert Counter(row["action"] for row in checked) == {
        "merchant.sign_in_failed": left - 1,
        "merchant.sign_in_locked": 1,
    }
    right = await sign_in(b, password)
    assert right.status_code == 429
    assert not cluster.client.cookies.get("portico_merchant")


async def test_the_outbox_is_delivered_once_by_two_workers(cluster: Cluster):
    batch = secrets.token_hex(4)
    count = 60
    await cluster.database.executemany(
        """
        INSERT INTO mail_outbox (kind, to_address, subject, template, context, status, attempts,
                                 next_attempt_at, created_at, reference)
        VALUES ('test', $1, $2, 'test', $3::json, 'queued', 0, now(), now(), $4)
        """,
        [
            (
                f"delivery-{i}@example.com",
                f"Delivery {batch} #{i}",
                json.dumps({"sent_by": "the scale test", "requested_at": "now"}),
                f"scale-{batch}",
            )
            for i in range(count)
        ],
    )
    async with asyncio.timeout(60):
        while True:
            waiting = await cluster.database.fetchval(
                "SELECT count(*) FROM mail_outbox WHERE reference = $1 AND status <> 'sent'",
                f"scale-{batch}",
            )
            if waiting == 0:
                break
            await asyncio.sleep(0.1)
    await asyncio.sleep(2.5)  # a worker's poll interval: no second copy arrives
    subjects = [str(m["Subject"]) for m in cluster.inbox.messages if batch in str(m["Subject"])]
    assert len(subjects) == count
    assert sorted(subjects) == sorted(f"Delivery {batch} #{i}" for i in range(count))
    attempts = await cluster.database.fetch(
        "SELECT attempts FROM mail_outbox WHERE reference = $1", f"scale-{batch}"
    )
    assert {row["attempts"] for row in attempts} == {1}  # each claimed once, by one worker


async def test_redis_holds_the_throttle_and_sessions_only_when_configured(cluster: Cluster):
    keys = await cluster.redis_keys()
    if not cluster.redis:
        assert keys == []  # without PORTICO_REDIS_URL nothing goes to Redis
        return
    assert any(key.startswith(cluster.redis_prefix + "throttle:login:") for key in keys), keys
    assert any(key.startswith(cluster.redis_prefix + "session:") for key in keys), keys
