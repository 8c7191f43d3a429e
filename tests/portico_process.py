"""The real ``portico`` command as a subprocess, for the tests that run the server as production
runs it (``e2e``, ``tests/scale``, ``tests/faults``, ``tests/bench``): a free loopback port, the
project venv's ``portico`` entry point, ``portico serve`` with its output in a log file, waiting
until it answers, stopping it, and the login path ``portico demo --seed-only`` prints."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def portico_command() -> str:
    """The ``portico`` entry point of the interpreter running the tests (the project's venv)."""
    candidate = Path(sys.executable).parent / "portico"
    return str(candidate if candidate.exists() else PROJECT_ROOT / ".venv" / "bin" / "portico")


def spawn_serve(env: dict[str, str], port: int, log: IO[bytes]) -> subprocess.Popen:
    """``portico serve`` on ``HOST:port``, its output (stdout and stderr) to ``log``."""
    return subprocess.Popen(
        [portico_command(), "serve", "--host", HOST, "--port", str(port)],
        env=env,
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen, seconds: float) -> None:
    """SIGTERM, and SIGKILL if it has not exited after ``seconds``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def wait_until_answers(
    url: str,
    check_alive: Callable[[], None],
    seconds: float,
    log_tail: Callable[[], str] = str,
    interval: float = 0.1,
) -> None:
    """Until ``url`` answers 200; ``check_alive`` raises if the server exited meanwhile. After
    ``seconds``, a ``RuntimeError`` with the server's ``log_tail()``."""
    try:
        async with httpx.AsyncClient(timeout=2) as client, asyncio.timeout(seconds):
            while True:
                check_alive()
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(url)).status_code == 200:
                        return
                await asyncio.sleep(interval)
    except TimeoutError:
        raise RuntimeError(f"{url} did not answer in {seconds:.0f} s:\n{log_tail()}") from None


async def seed_demo(env: dict[str, str]) -> str:
    """``portico demo --seed-only`` (migrations and the demo merchant); the path of the login
    link it prints."""
    process = await asyncio.create_subprocess_exec(
        portico_command(),
        "demo",
        "--seed-only",
        env=env,
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 180)
    text = output.decode(errors="replace")
    found = re.search(r"^Login link: (\S+)$", text, re.MULTILINE)
    if process.returncode != 0 or found is None:
        raise RuntimeError(f"portico demo --seed-only failed ({process.returncode}):\n{text}")
    return urlsplit(found.group(1)).path
