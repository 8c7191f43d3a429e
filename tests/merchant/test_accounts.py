"""Merchant accounts: creation, passwords and the sign-in rules, without HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from app.audit.service import Actor
from app.login import sessions
from app.login.tables import WebSession
from app.merchant import accounts
from app.merchant.tables import MerchantAccount, MerchantSignInLimit

ACTOR = Actor(type="merchant", ip="198.51.100.9", user_agent="pytest")
PASSWORD = "correct horse battery staple"


def test_the_merchant_session_policy():
    assert accounts.MERCHANT.kind == "merchant"
    assert accounts.MERCHANT.idle == timedelta(minutes=15)
    assert accounts.MERCHANT.absolute == timedelta(hours=12)
    assert accounts.MERCHANT.kind != sessions.CUSTOMER.kind
    assert accounts.MERCHANT.cookie != sessions.CUSTOMER.cookie


async def test_create_stores_a_normalised_email_and_an_argon2id_hash(db, real_hashing):
    account = await accounts.create("  Owner@Acme.Example ", PASSWORD)
    assert account.id.startswith("macct_")
    row = await MerchantAccount.select().where(MerchantAccount.id == account.id).first()
    assert row["email"] == "owner@acme.example"
    assert row["password_hash"].startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PasswordHasher().verify(row["password_hash"], PASSWORD)
    with pytest.raises(accounts.AccountError, match="already exists"):
        await accounts.create("OWNER@acme.example", PASSWORD)
    assert await MerchantAccount.count() == 1


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("owner@acme.example", "x" * 11, "at least 12 characters"),
        ("owner@acme.example", "x" * 257, "at most 256 characters"),
        ("owner", PASSWORD, "like name@example.com"),
        ("", PASSWORD, "Enter an email address."),
    ],
)
async def test_create_refuses_bad_input(db, email, password, message):
    with pytest.raises(accounts.AccountError, match=message):
        await accounts.create(email, password)


async def test_authenticate(db):
    account = await accounts.create("owner@acme.example", PASSWORD)
    ok = await accounts.authenticate("Owner@acme.example", PASSWORD, actor=ACTOR)
    assert ok.verdict == "ok"
    assert ok.account is not None
    assert ok.account.id == account.id
    assert (await accounts.authenticate("owner@acme.example", "nope", actor=ACTOR)).verdict == (
        "wrong"
    )
    unknown = await accounts.authenticate("nobody@acme.example", PASSWORD, actor=ACTOR)
    assert unknown.verdict == "wrong"
    assert unknown.account is None


async def test_the_lock_is_per_email_and_reports_when_it_ends(db, fake_clock):
    await accounts.create("owner@acme.example", PASSWORD)
    for _ in range(accounts.MAX_FAILURES - 1):
        await accounts.authenticate("owner@acme.example", "nope", actor=ACTOR)
    locked = await accounts.authenticate("owner@acme.example", "nope", actor=ACTOR)
    assert locked.verdict == "locked"
    assert locked.retry_after == 15 * 60
    fake_clock.advance(minutes=5)
    again = await accounts.authenticate("owner@acme.example", PASSWORD, actor=ACTOR)
    assert again.verdict == "locked"
    assert again.retry_after == 10 * 60
    # Another address is not affected.
    await accounts.create("other@acme.example", PASSWORD)
    assert (await accounts.authenticate("other@acme.example", PASSWORD, actor=ACTOR)).verdict == (
        "ok"
    )


async def test_stale_limit_rows_are_forgotten(db, fake_clock):
    for email in ("a@acme.example", "b@acme.example"):
        await accounts.authenticate(email, "nope", actor=ACTOR)
    assert await MerchantSignInLimit.count() == 2
    fake_clock.advance(days=2)
    await accounts.authenticate("c@acme.example", "nope", actor=ACTOR)
    rows = await MerchantSignInLimit.select(MerchantSignInLimit.email)
    assert [row["email"] for row in rows] == ["c@acme.example"]


async def test_a_weaker_stored_hash_is_upgraded_at_sign_in(db, monkeypatch):
    account = await accounts.create("owner@acme.example", PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    await MerchantAccount.update({MerchantAccount.password_hash: weak}).where(
        MerchantAccount.id == account.id
    )
    assert (await accounts.authenticate("owner@acme.example", PASSWORD, actor=ACTOR)).verdict == (
        "ok"
    )
    row = await MerchantAccount.select().where(MerchantAccount.id == account.id).first()
    assert row["password_hash"] != weak
    assert not accounts.HASHER.check_needs_rehash(row["password_hash"])


async def test_set_password_ends_every_session_of_the_account(db):
    account = await accounts.create("owner@acme.example", PASSWORD)
    await sessions.start(accounts.MERCHANT, account.id)
    await sessions.start(accounts.MERCHANT, account.id)
    await sessions.start(sessions.CUSTOMER, "cus_jenny", configuration="bpc_1")
    await accounts.set_password("owner@acme.example", "a brand new password")
    assert await WebSession.count().where(WebSession.kind == "merchant") == 0
    assert await WebSession.count().where(WebSession.kind == "customer") == 1
    assert (
        await accounts.authenticate("owner@acme.example", "a brand new password", actor=ACTOR)
    ).verdict == "ok"
    with pytest.raises(accounts.AccountError, match="no account"):
        await accounts.set_password("nobody@acme.example", "a brand new password")


async def test_the_demo_account_follows_the_kept_password(db):
    first = await accounts.ensure_demo_account("demo-password-one")
    assert first.email == accounts.DEMO_EMAIL
    same = await accounts.ensure_demo_account("demo-password-one")
    assert same.id == first.id
    changed = await accounts.ensure_demo_account("demo-password-two")
    assert changed.id == first.id
    assert await MerchantAccount.count() == 1
    outcome = await accounts.authenticate(accounts.DEMO_EMAIL, "demo-password-two", actor=ACTOR)
    assert outcome.verdict == "ok"


def test_the_dummy_hash_matches_the_hasher(real_hashing):
    dummy = accounts._dummy_hash()
    assert dummy == accounts._DUMMY_HASH  # the precomputed one: no hashing at start-up
    assert not accounts.HASHER.check_needs_rehash(dummy)
    assert dummy.startswith("$argon2id$")
