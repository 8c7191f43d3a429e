from tests.billing.sandbox_world import frozen_now, world  # noqa: F401  (fixtures)
