from tests.helpers import demo, demo_portal, fake_clock, portal, shared_app, shop  # noqa: F401
