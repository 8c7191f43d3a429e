import pytest
from argon2 import PasswordHasher

from app.merchant import accounts
from tests.helpers import demo, fake_clock, shop  # noqa: F401  (fixtures)
from tests.merchant.support import account, merchant  # noqa: F401  (fixtures)

# argon2id at the production cost (64 MiB, 3 passes) takes ~0.1 s a hash; most tests only need
# the rules around it. Tests that ask for ``real_hashing`` keep the production parameters.
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def real_hashing() -> None:
    """Keep the production argon2id parameters in this test."""


@pytest.fixture(autouse=True)
def cheap_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    if "real_hashing" in request.fixturenames:
        yield
        return
    monkeypatch.setattr(accounts, "HASHER", CHEAP)
    accounts._dummy_hash.cache_clear()
    yield
    accounts._dummy_hash.cache_clear()
