"""The real Portico server as a subprocess: its own SQLite database, seeded with the demo."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def portico_command() -> str:
    """The ``portico`` entry point of the interpreter running the tests (the project's venv)."""
    candidate = Path(sys.executable).parent / "portico"
    if candidate.exists():
        return str(candidate)
    return str(PROJECT_ROOT / ".venv" / "bin" / "portico")


@dataclass
class LiveServer:
    base_url: str
    login_path: str
    db_path: Path
    log_path: Path
    process: subprocess.Popen

    @property
    def login_url(self) -> str:
        return self.base_url + self.login_path

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"the Portico server exited with {self.process.returncode}:\n{self.log_tail()}"
            )


def server_env(var_dir: Path, port: int, smtp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update(
        {
            "PORTICO_DATABASE_URL": f"sqlite:///{var_dir / 'e2e.sqlite3'}",
            "PORTICO_VAR_DIR": str(var_dir),
            "PORTICO_SECRET_KEY": secrets.token_urlsafe(36),  # 48 characters
            "PORTICO_BASE_URL": f"http://{HOST}:{port}",
            "PORTICO_SMTP_HOST": HOST,
            "PORTICO_SMTP_PORT": str(smtp_port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def seed(env: dict[str, str]) -> str:
    """``portico demo --seed-only``; returns the login path printed on the ``Login link:`` line."""
    result = subprocess.run(
        [portico_command(), "demo", "--seed-only"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    match = re.search(r"^Login link: (\S+)$", result.stdout, re.MULTILINE)
    if result.returncode != 0 or match is None:
        raise RuntimeError(
            f"portico demo --seed-only failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    url = match.group(1)
    base = env["PORTICO_BASE_URL"]
    if not url.startswith(base + "/p/login/"):
        raise RuntimeError(f"unexpected login link {url!r} (base URL {base})")
    return url.removeprefix(base)


def wait_until_up(server: LiveServer, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        server.check_alive()
        try:
            with urllib.request.urlopen(server.login_url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Portico server did not answer in {timeout:.0f} s")
        time.sleep(0.1)


def start(var_dir: Path, smtp_port: int) -> LiveServer:
    port = free_port()
    env = server_env(var_dir, port, smtp_port)
    login_path = seed(env)
    log_path = var_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [portico_command(), "serve", "--host", HOST, "--port", str(port)],
            env=env,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(
        base_url=env["PORTICO_BASE_URL"],
        login_path=login_path,
        db_path=var_dir / "e2e.sqlite3",
        log_path=log_path,
        process=process,
    )
    try:
        wait_until_up(server)
    except BaseException:
        stop(server)
        raise
    return server


def stop(server: LiveServer) -> None:
    process = server.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
