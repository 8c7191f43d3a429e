"""PostgreSQL restarted under load: the real server (``portico serve``) against a private
cluster, steady requests (a signed-in customer's overview, the login page), the database stopped
and started again.

While it is down every request fails fast with the friendly 503 page (``Retry-After``, security
headers, no stack trace) and ``/readyz`` answers 503; once it is back the same process serves
again by itself within 10 s.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from tests.faults.live import sign_in
from tests.faults.postgres import PrivatePostgres

JENNY = "jenny.rosen@example.com"
FAST = 5.0  # seconds: "fail fast" while the database is down (a few seconds at most)
RECOVERY = 10.0  # seconds: the bound for recovering after the database is back
WORKERS = 4  # concurrent request loops


@dataclass
class Answer:
    at: float
    path: str
    status: int  # 0: no HTTP answer at all
    seconds: float
    response: httpx.Response | None


async def drive(client: httpx.AsyncClient, path: str, answers: list[Answer], stop: asyncio.Event):
    while not stop.is_set():
        started = time.monotonic()
        try:
            response = await client.get(path)
            status = response.status_code
        except httpx.TransportError:
            response, status = None, 0
        answers.append(Answer(started, path, status, time.monotonic() - started, response))
        await asyncio.sleep(0.02)


def assert_friendly_503(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    html = response.text
    assert html.lower().startswith("<!doctype html>")
    assert "We are having trouble right now" in html
    assert html.count("<h1") == 1
    assert '<main id="main-content"' in html
    assert '<html lang="en">' in html
    for leak in ("Traceback", "asyncpg", "Error:", "ConnectionRefused", "postgresql://"):
        assert leak not in html


async def test_requests_fail_fast_with_a_503_page_and_recover_by_themselves(
    private_postgres: PrivatePostgres, make_server, smtp_server
) -> None:
    server = await make_server(smtp_server.port)
    customer = httpx.AsyncClient(base_url=server.base_url, timeout=30)
    visitor = httpx.AsyncClient(base_url=server.base_url, timeout=30)
    probe = httpx.AsyncClient(base_url=server.base_url, timeout=30)
    answers: list[Answer] = []
    stop = asyncio.Event()
    loops: list[asyncio.Task] = []
    try:
        await sign_in(customer, server.login_path, JENNY, smtp_server.inbox)
        assert (await customer.get("/portal")).status_code == 200
        for n in range(WORKERS):
            client, path = (customer, "/portal") if n % 2 == 0 else (visitor, server.login_path)
            loops.append(asyncio.create_task(drive(client, path, answers, stop)))
        await asyncio.sleep(1.0)
        healthy = list(answers)
        assert healthy
        assert {a.status for a in healthy} == {200}

        # -- the database goes away -----------------------------------------------------------
        await asyncio.to_thread(private_postgres.stop)
        down_at = time.monotonic()
        await asyncio.sleep(3.0)
        ready = await probe.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "database": "unavailable"}
        assert (await probe.get("/healthz")).status_code == 200  # the process itself is fine
        # Started after the stop had completed, so the outage is all they could see.
        during = [a for a in answers if a.at > down_at]
        assert len(during) >= 20, "requests stalled while the database was down"
        assert {a.status for a in during} == {503}, sorted({a.status for a in during})
        slowest = max(a.seconds for a in during)
        assert slowest < FAST, f"a request took {slowest:.1f} s to fail"
        for path in ("/portal", server.login_path):
            assert_friendly_503(next(a.response for a in during if a.path == path))

        # -- the database comes back (the server is not restarted) --------------------------
        await asyncio.to_thread(private_postgres.start)
        up_at = time.monotonic()
        recovered_at: dict[str, float] = {}
        while len(recovered_at) < 2 and time.monotonic() - up_at < RECOVERY + 5:
            await asyncio.sleep(0.1)
            for a in answers:
                if a.at > up_at and a.status == 200:
                    recovered_at.setdefault(a.path, a.at + a.seconds)
        assert set(recovered_at) == {"/portal", server.login_path}, server.log_tail()
        assert max(recovered_at.values()) - up_at < RECOVERY
        settled = time.monotonic()
        await asyncio.sleep(1.0)
        after = [a for a in answers if a.at > settled]
        assert after
        assert {a.status for a in after} == {200}
        assert (await probe.get("/readyz")).status_code == 200
        assert server.process is not None
        assert server.process.poll() is None  # the same process throughout
        assert server.starts == 1
    finally:
        stop.set()
        await asyncio.gather(*loops, return_exceptions=True)
        for client in (customer, visitor, probe):
            await client.aclose()
        if private_postgres.data.joinpath("postmaster.pid").exists() is False:
            await asyncio.to_thread(private_postgres.start)
