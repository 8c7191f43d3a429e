from tests.helpers import fake_clock  # noqa: F401  (fixture)
