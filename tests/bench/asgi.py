"""What each worker process imports when the bench server runs with ``--workers`` > 1 (as
``app.asgi`` is for ``portico serve``)."""

from app.factory import create_app
from tests.bench.server import with_ceiling

app = with_ceiling(create_app())
