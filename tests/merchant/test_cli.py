"""``portico create-admin`` and the demo's merchant account, run as the real command."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from app.settings import PROJECT_ROOT

PASSWORD = "a-long-admin-password"


def portico() -> str:
    candidate = Path(sys.executable).parent / "portico"
    return str(candidate if candidate.exists() else PROJECT_ROOT / ".venv" / "bin" / "portico")


def run(
    tmp_path: Path, *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update(
        {
            "PORTICO_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
            "PORTICO_VAR_DIR": str(tmp_path / "var"),
        }
    )
    return subprocess.run(
        [portico(), *args],
        env=env,
        cwd=PROJECT_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        # No controlling terminal: the hidden password prompt reads standard input.
        start_new_session=True,
    )


def accounts_in(tmp_path: Path) -> dict[str, str]:
    with sqlite3.connect(tmp_path / "cli.sqlite3") as connection:
        rows = connection.execute("SELECT email, password_hash FROM merchant_account").fetchall()
    return dict(rows)


@pytest.fixture
def migrated(tmp_path: Path) -> Path:
    result = run(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    return tmp_path


def test_create_admin_with_flags(migrated: Path):
    result = run(migrated, "create-admin", "--email", "Ops@Example.com", "--password", PASSWORD)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Merchant account created: ops@example.com"
    [(email, password_hash)] = accounts_in(migrated).items()
    assert email == "ops@example.com"
    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in password_hash
    assert PasswordHasher().verify(password_hash, PASSWORD)

    again = run(migrated, "create-admin", "--email", "OPS@example.com", "--password", PASSWORD)
    assert again.returncode == 1
    assert "An account with this email address already exists." in again.stderr


def test_create_admin_refuses_short_passwords_and_bad_emails(migrated: Path):
    short = run(migrated, "create-admin", "--email", "ops@example.com", "--password", "too-short")
    assert short.returncode == 2
    assert "at least 12 characters" in short.stderr
    bad = run(migrated, "create-admin", "--email", "not-an-email", "--password", PASSWORD)
    assert bad.returncode == 2
    assert "Enter an email address like name@example.com." in bad.stderr
    assert accounts_in(migrated) == {}


def test_create_admin_prompts_when_flags_are_missing(migrated: Path):
    answers = f"ops@example.com\nshort\nshort\n{PASSWORD}\n{PASSWORD}\n"
    result = run(migrated, "create-admin", stdin=answers)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Merchant account created: ops@example.com" in result.stdout
    assert "at least 12 characters" in result.stdout + result.stderr  # asked again
    assert PASSWORD not in result.stdout  # hidden input is not echoed
    [password_hash] = accounts_in(migrated).values()
    assert PasswordHasher().verify(password_hash, PASSWORD)


def test_create_admin_can_reset_a_password(migrated: Path):
    created = run(migrated, "create-admin", "--email", "ops@example.com", "--password", PASSWORD)
    assert created.returncode == 0, created.stderr
    result = run(
        migrated,
        "create-admin",
        "--email",
        "ops@example.com",
        "--password",
        "another-long-password",
        "--reset-password",
    )
    assert result.returncode == 0, result.stderr
    [password_hash] = accounts_in(migrated).values()
    assert PasswordHasher().verify(password_hash, "another-long-password")


def test_create_admin_needs_a_migrated_database(tmp_path: Path):
    result = run(tmp_path, "create-admin", "--email", "ops@example.com", "--password", PASSWORD)
    assert result.returncode == 1
    assert "run `portico migrate`" in result.stderr


def test_the_demo_prints_a_working_merchant_sign_in(tmp_path: Path):
    first = run(tmp_path, "demo", "--seed-only")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith("Login link: http://127.0.0.1:8000/p/login/")
    assert lines[1] == "Mail inbox: http://127.0.0.1:8000/_dev/mail"
    match = re.fullmatch(
        r"Merchant sign-in: http://127\.0\.0\.1:8000/merchant/sign-in "
        r"\((admin@acme\.example) / (\S{12,})\)",
        lines[2],
    )
    assert match, lines
    email, password = match.groups()
    [(stored_email, password_hash)] = accounts_in(tmp_path).items()
    assert stored_email == email
    assert PasswordHasher().verify(password_hash, password)
    kept = tmp_path / "var" / "merchant_password"
    assert kept.read_text().strip() == password
    assert kept.stat().st_mode & 0o777 == 0o600
    # A second run prints the same, still working, credentials.
    second = run(tmp_path, "demo", "--seed-only")
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[2] == lines[2]
