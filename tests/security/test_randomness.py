"""Every secret value comes from ``secrets`` (the OS CSPRNG), never from ``random``; passcodes are
uniform; the passcode numbers leave a guesser a negligible chance.

The passcode's format and the attempt id's size are tested in tests/login/test_passcodes.py
(``test_codes_are_six_digits_from_secrets``, ``test_attempt_ids_carry_128_bits``); session tokens
in tests/login/test_sessions.py (``test_tokens_are_long_random_and_stored_only_as_sha256``).
"""

from __future__ import annotations

import ast
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from app.configuration import service as configurations
from app.login import passcodes
from app.portal import intents

APP = Path(__file__).resolve().parents[2] / "app"
# Seeded, reproducible sample data for the demo: the only modules allowed to use ``random``.
DEMO_DATA = {"billing/demo.py", "billing/demo_data.py", "billing/demo_stories.py"}

DRAWS = 20_000
# Pearson's chi-square critical values at p = 1e-6 (so a correct generator fails about once in
# a million runs): 9 degrees of freedom (one position, ten digits) and 99 (the first two digits).
CHI2_DF9 = 45.0
CHI2_DF99 = 185.0


def _chi_square(counts: Counter, buckets: list[str], total: int) -> float:
    expected = total / len(buckets)
    return sum((counts.get(bucket, 0) - expected) ** 2 / expected for bucket in buckets)


def test_passcodes_are_uniform_in_every_position():
    codes = [passcodes.new_code() for _ in range(DRAWS)]
    assert all(re.fullmatch(r"\d{6}", code) for code in codes)
    digits = list("0123456789")
    for position in range(passcodes.CODE_DIGITS):
        counts = Counter(code[position] for code in codes)
        statistic = _chi_square(counts, digits, DRAWS)
        assert statistic < CHI2_DF9, (position, statistic, counts)
    pairs = [a + b for a in digits for b in digits]
    statistic = _chi_square(Counter(code[:2] for code in codes), pairs, DRAWS)
    assert statistic < CHI2_DF99, statistic
    # No short cycle or stuck generator: 20 000 draws from a million values repeat about 200
    # times (birthday bound); far more repeats would mean far less entropy.
    assert DRAWS - len(set(codes)) < 400


def test_no_app_module_imports_random():
    offenders = []
    for path in sorted(APP.rglob("*.py")):
        relative = path.relative_to(APP).as_posix()
        if relative in DEMO_DATA:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(name == "random" or name.startswith("random.") for name in names):
                offenders.append(relative)
    assert offenders == []


@pytest.fixture
def no_mersenne_twister(monkeypatch):
    """Break every ``random.Random`` generator (the module functions included); the OS-backed
    ``random.SystemRandom`` behind ``secrets`` overrides both methods and keeps working."""

    def refuse(*args, **kwargs):
        raise AssertionError("random.Random used for a secret")

    monkeypatch.setattr(random.Random, "random", refuse)
    monkeypatch.setattr(random.Random, "getrandbits", refuse)
    with pytest.raises(AssertionError):
        random.randint(0, 9)  # the patch bites


@pytest.mark.usefixtures("no_mersenne_twister")
def test_secret_values_do_not_come_from_random():
    from app.login import sessions  # noqa: F401  (tokens: secrets.token_urlsafe)

    assert re.fullmatch(r"\d{6}", passcodes.new_code())
    assert len(passcodes.new_attempt_id()) == 22  # 128 bits
    assert len(intents.new_intent()) == 22
    assert len(configurations.new_login_token()) == 32  # 192 bits


def test_a_guesser_s_chance_is_negligible():
    """Per email, at most 20 wrong guesses a day reach the verifier (5 per code, then the code
    burns; 20 failures lock the email for 24 h), against 10^6 equally likely codes."""
    space = 10**passcodes.CODE_DIGITS
    per_code = passcodes.WRONG_GUESSES_PER_CODE / space
    per_day = passcodes.FAILED_VERIFICATIONS_PER_DAY / space
    assert per_code <= 5e-6
    assert per_day <= 2e-5
    assert 365 * per_day < 0.01  # under 1 % a year for a determined attacker on one address
