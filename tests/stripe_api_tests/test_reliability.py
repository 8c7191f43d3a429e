"""Idempotency and fault injection, observed through the SDK's own retry logic."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import stripe

from tests.stripe_api import StripeAPIServer
from tests.stripe_api.sdk import HTTPXClient


async def test_idempotent_replay_and_conflict(stripe_api: StripeAPIServer, stripe_client) -> None:
    options = {"idempotency_key": "signup-42"}
    first = await stripe_client.v1.customers.create_async({"email": "x@example.test"}, options)
    again = await stripe_client.v1.customers.create_async({"email": "x@example.test"}, options)
    assert again.id == first.id
    assert len(stripe_api.state.table("customer")) == 1
    replay = stripe_api.requests[-1]
    assert replay.replayed
    assert replay.idempotency_key == "signup-42"
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError) as caught:
        await stripe_client.v1.customers.create_async({"email": "y@example.test"}, options)
    assert caught.value.http_status == 400
    assert caught.value.error.type == "idempotency_error"


async def test_sdk_sends_an_idempotency_key_on_every_post(stripe_api, stripe_client) -> None:
    await stripe_client.v1.customers.create_async({"name": "A"})
    await stripe_client.v1.customers.list_async()
    post, get = stripe_api.requests[-2:]
    assert post.method == "POST"
    assert post.idempotency_key
    assert post.params == {"name": "A"}
    assert post.headers["Authorization"] == f"Bearer {stripe_api.api_key}"
    assert get.method == "GET"
    assert get.idempotency_key is None
    assert get.status == 200


async def test_500_is_retried_by_the_sdk(stripe_api, stripe_client) -> None:
    stripe_api.inject_fault("/v1/customers", status=500, times=1, method="POST")
    customer = await stripe_client.v1.customers.create_async({"email": "retry@example.test"})
    attempts = [r for r in stripe_api.requests if r.path == "/v1/customers"]
    assert [r.status for r in attempts] == [500, 200]
    assert attempts[0].fault
    assert attempts[0].idempotency_key == attempts[1].idempotency_key
    assert [c["id"] for c in stripe_api.state.all("customer")] == [customer.id]


async def test_429_with_should_retry_is_retried(stripe_api, stripe_client) -> None:
    stripe_api.inject_fault("/v1/customers*", status=429, times=2)
    listed = await stripe_client.v1.customers.list_async()
    assert listed.data == []
    assert [r.status for r in stripe_api.requests] == [429, 429, 200]


async def test_429_without_retry_surfaces_as_rate_limit_error(stripe_api, stripe_client) -> None:
    stripe_api.inject_fault("/v1/customers", status=429, should_retry=False)
    with pytest.raises(stripe.RateLimitError) as caught:
        await stripe_client.v1.customers.list_async()
    assert caught.value.http_status == 429
    assert caught.value.error.code == "rate_limit"
    assert len(stripe_api.requests) == 1


async def test_delay_longer_than_the_client_timeout(stripe_api: StripeAPIServer) -> None:
    stripe_api.inject_fault("/v1/customers", delay_seconds=3, times=1)
    http_client = HTTPXClient(timeout=0.3)
    client = stripe_api.client(http_client=http_client, max_network_retries=0)
    started = time.monotonic()
    try:
        with pytest.raises(stripe.APIConnectionError) as caught:
            await client.v1.customers.list_async()
        assert "ReadTimeout" in str(caught.value)
        assert time.monotonic() - started < 2
        listed = await client.v1.customers.list_async()  # the fault is used up
        assert listed.data == []
    finally:
        await http_client.close_async()


@pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning"
)
async def test_stock_sdk_httpx_client(stripe_api: StripeAPIServer) -> None:
    """The unmodified ``stripe.HTTPXClient`` works too (httpx warns about its ``data=``)."""
    http_client = stripe.HTTPXClient(allow_sync_methods=True)
    client = stripe.StripeClient(
        stripe_api.api_key, base_addresses={"api": stripe_api.url}, http_client=http_client
    )
    try:
        created = await client.v1.customers.create_async({"email": "stock@example.test"})
        fetched = client.v1.customers.retrieve(created.id)  # a synchronous call
        assert fetched.email == "stock@example.test"
    finally:
        http_client.close()
        await http_client.close_async()


def test_server_stops_cleanly_with_a_request_in_flight() -> None:
    with StripeAPIServer() as server:
        server.inject_fault("/v1/account", delay_seconds=30)
        with (
            httpx.Client(base_url=server.url, timeout=0.2) as http,
            pytest.raises(httpx.ReadTimeout),
        ):
            http.get("/v1/account", auth=(server.api_key, ""))
        started = time.monotonic()
    assert time.monotonic() - started < 5
    assert not server.errors


def test_a_key_in_use_answers_409_and_the_request_runs_once(stripe_api: StripeAPIServer) -> None:
    """A second request with the key of one still in progress is not run: Stripe answers 409
    ``idempotency_key_in_use`` (and keeps nothing for it); once the first finished, the key
    replays its answer."""
    headers = {"Authorization": f"Bearer {stripe_api.api_key}", "Idempotency-Key": "double-1"}
    body = {"email": "double@example.test"}
    with httpx.Client(base_url=stripe_api.url, headers=headers, timeout=10) as http:
        with stripe_api.slow_processing(0.5), ThreadPoolExecutor(2) as pool:
            first = pool.submit(http.post, "/v1/customers", data=body)
            time.sleep(0.1)
            second = pool.submit(http.post, "/v1/customers", data=body)
            answers = sorted((first.result(), second.result()), key=lambda r: r.status_code)
        ok, busy = answers
        assert (ok.status_code, busy.status_code) == (200, 409)
        error = busy.json()["error"]
        assert (error["type"], error["code"]) == ("idempotency_error", "idempotency_key_in_use")
        assert len(stripe_api.state.table("customer")) == 1
        again = http.post("/v1/customers", data=body)
    assert again.json()["id"] == ok.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(stripe_api.state.table("customer")) == 1


async def test_the_sdk_retries_a_key_in_use_into_the_replay(
    stripe_api: StripeAPIServer, stripe_client
) -> None:
    """A double submit that reaches Stripe twice at once (two form posts with the same intent):
    one customer, and both calls get it (the SDK retries the 409 until the first finished)."""
    options = {"idempotency_key": "double-2"}
    params = {"email": "twice@example.test"}
    with stripe_api.slow_processing(0.3):
        first, second = await asyncio.gather(
            stripe_client.v1.customers.create_async(params, options),
            stripe_client.v1.customers.create_async(params, options),
        )
    assert first.id == second.id
    assert len(stripe_api.state.table("customer")) == 1
    statuses = sorted(r.status for r in stripe_api.requests if r.path == "/v1/customers")
    assert statuses.count(200) == 2  # the first, and the retry's replay
    assert 409 in statuses
