"""``/healthz`` and ``/readyz``, in-process and on the real ``portico serve`` (two workers, JSON
logs, graceful stop on SIGTERM)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import httpx

from app import db as database
from app.web import health
from tests.conftest import TEST_SECRET
from tests.web.test_security import _assert_security_headers

PORTICO = Path(sys.executable).parent / "portico"


def _assert_probe_headers(response) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers  # no session, no CSRF cookie
    _assert_security_headers(response)


async def test_healthz_answers_without_the_database(portal, monkeypatch):
    def no_database():
        raise AssertionError("/healthz must not touch the database")

    monkeypatch.setattr(database, "current", no_database)
    response = await portal.client.get("/healthz")
    assert response.status_code == 200
    assert response.text == "ok"
    assert response.headers["content-type"].startswith("text/plain")
    _assert_probe_headers(response)


async def test_readyz_when_the_database_answers(portal):
    response = await portal.client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert response.headers["content-type"].startswith("application/json")
    _assert_probe_headers(response)


async def test_readyz_when_the_database_is_unreachable(portal, caplog, tmp_path):
    # A real engine that cannot open its database (the "file" is a directory).
    previous = database.current()
    database.bind(database.make_engine(f"sqlite:///{tmp_path}"))
    try:
        response = await portal.client.get("/readyz")
    finally:
        database.bind(previous)
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unavailable"}
    _assert_probe_headers(response)
    assert str(tmp_path) not in response.text
    assert any("readiness" in r.getMessage() for r in caplog.records)


async def test_readyz_gives_up_after_its_timeout(portal, monkeypatch):
    assert health.READY_TIMEOUT == 2.0

    async def hangs() -> None:
        await asyncio.sleep(30)

    monkeypatch.setattr(health, "READY_TIMEOUT", 0.05)
    monkeypatch.setattr(health, "ping_database", hangs)
    response = await portal.client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "timeout"}


async def test_probes_are_get_only(portal):
    for path in ("/healthz", "/readyz"):
        assert (await portal.client.post(path)).status_code in (403, 405)


# --- the real server ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _wait_until_up(url: str, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient() as client:
        async with asyncio.timeout(45):
            while True:
                assert process.returncode is None, "the server stopped"
                try:
                    if (await client.get(url)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)


async def test_portico_serve_with_two_workers(tmp_path):
    # Its own SQLite file, migrated (the workers' mail loop reads the outbox table).
    url = f"sqlite:///{tmp_path / 'serve.sqlite3'}"
    engine = database.make_engine(url)
    previous = database._engine
    await database.start(engine)
    try:
        await database.migrate(engine)
    finally:
        if previous is not None:
            database.bind(previous)
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PORTICO_SECRET_KEY": TEST_SECRET,
        "PORTICO_DATABASE_URL": url,
        "PORTICO_VAR_DIR": str(tmp_path),
        "PORTICO_SMTP_HOST": "127.0.0.1",
        "PORTICO_SMTP_PORT": "1",
    }
    process = await asyncio.create_subprocess_exec(
        str(PORTICO),
        *("serve", "--port", str(port), "--workers", "2"),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_until_up(f"{base}/healthz", process)
        async with httpx.AsyncClient(base_url=base) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {"status": "ok", "database": "ok"}
            assert "server" not in ready.headers
            await client.get("/p/login/lpt_NotARealToken/code/att_secret?prefilled_email=a%40b.c")
        started = asyncio.get_running_loop().time()
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(40):
            _out, err = await process.communicate()
        stopped_in = asyncio.get_running_loop().time() - started
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()[-2000:]
    assert stopped_in < 35
    lines = err.decode().splitlines()
    records = [json.loads(line) for line in lines]  # JSON, one object per line, by default
    messages = [r["message"] for r in records]
    assert sum(m.startswith("Finished server process") for m in messages) == 2
    access = [r for r in records if r["logger"] == "portico.access"]
    assert [r["path"] for r in access if r["status"] == 404] == ["/p/login/…/code/…"]
    assert not any(r["path"] in ("/healthz", "/readyz") for r in access)  # DEBUG, not shown
    for secret in ("lpt_NotARealToken", "att_secret", "a%40b.c", TEST_SECRET):
        assert secret not in err.decode()


async def test_serve_refuses_a_bad_worker_count(tmp_path):
    process = await asyncio.create_subprocess_exec(
        str(PORTICO),
        *("serve", "--workers", "0"),
        env={"PATH": os.environ.get("PATH", ""), "PORTICO_SECRET_KEY": TEST_SECRET},
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        _out, err = await process.communicate()
    assert process.returncode == 2
    assert "--workers" in err.decode()
