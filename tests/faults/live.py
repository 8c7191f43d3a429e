"""The real server (``portico serve``, one uvicorn process) as a subprocess for the fault tests,
and the HTTP steps they take against it (sign in with a passcode read from a real SMTP server)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.fixtures.smtp import Inbox, body_text
from tests.portico_process import HOST, spawn_serve, stop, wait_until_answers

CSRF_RE = re.compile(r'name="_csrf_token" value="([^"]+)"')
CODE_RE = re.compile(r"#(\d{6})\b")


def environment(database_url: str, var_dir: Path, port: int, smtp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update(
        {
            "PORTICO_DATABASE_URL": database_url,
            "PORTICO_VAR_DIR": str(var_dir),
            "PORTICO_SECRET_KEY": "faults-" + "k" * 40,
            "PORTICO_BASE_URL": f"http://{HOST}:{port}",
            "PORTICO_SMTP_HOST": HOST,
            "PORTICO_SMTP_PORT": str(smtp_port),
            "PORTICO_LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass
class Server:
    """One ``portico serve`` process; ``start`` may be called again after ``kill``/``stop``."""

    env: dict[str, str]
    port: int
    log_path: Path
    login_path: str = ""
    database_url: str = ""  # straight to PostgreSQL (the server's may go through a proxy)
    process: subprocess.Popen | None = None
    starts: int = field(default=0)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def spawn(self) -> subprocess.Popen:
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} =====\n".encode())
            log.flush()
            self.process = spawn_serve(self.env, self.port, log)
        return self.process

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"portico serve exited:\n{self.log_tail()}")

    async def start(self, seconds: float = 30.0) -> None:
        """Spawn and wait until ``/healthz`` answers."""
        self.spawn()
        await wait_until_answers(
            self.base_url + "/healthz", self.check_alive, seconds, self.log_tail
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no finally block, no flush runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, 15)

    def log_tail(self, lines: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


async def arrival(inbox: Inbox, email: str, count: int, seconds: float = 20.0) -> None:
    """Wait until ``email`` has received ``count`` messages."""
    async with asyncio.timeout(seconds):
        while len(inbox.to(email)) < count:
            inbox.arrived.clear()
            await inbox.arrived.wait()


async def csrf(client: httpx.AsyncClient, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    found = CSRF_RE.search(response.text)
    assert found, "no CSRF token"
    return found.group(1)


async def request_code(client: httpx.AsyncClient, login_path: str, email: str) -> httpx.Response:
    token = await csrf(client, login_path)
    return await client.post(login_path, data={"email": email, "_csrf_token": token})


def code_in(inbox: Inbox, email: str, index: int = -1) -> str:
    found = CODE_RE.search(body_text(inbox.to(email)[index]))
    assert found, "no passcode in the email"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, login_path: str, email: str, inbox: Inbox) -> None:
    """Email → passcode (from the real SMTP server) → signed in (the client keeps the cookie)."""
    before = len(inbox.to(email))
    response = await request_code(client, login_path, email)
    assert response.status_code == 303, response.text
    code_path = response.headers["location"]
    await arrival(inbox, email, before + 1)
    token = await csrf(client, code_path)
    response = await client.post(
        code_path, data={"code": code_in(inbox, email), "_csrf_token": token}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/portal"
