"""A stateful fake of Stripe's v1 HTTP API for tests that drive the real ``stripe`` SDK.

Start it with ``StripeAPIServer()`` (a context manager) or the ``stripe_api`` pytest fixture
from :mod:`.fixtures`; point ``stripe.StripeClient(..., base_addresses={"api": url})`` at
``server.url``.  Each module's docstring states which Stripe behaviours it models and what
it simplifies.
"""

from . import resources as _resources  # noqa: F401 - registers the routes
from .app import RecordedRequest
from .errors import StripeError
from .faults import Fault
from .server import StripeAPIServer
from .webhooks import sign as sign_event

__all__ = ["Fault", "RecordedRequest", "StripeAPIServer", "StripeError", "sign_event"]
