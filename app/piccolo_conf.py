"""Piccolo's configuration module (``PICCOLO_CONF=app.piccolo_conf``).

Used by Piccolo's own CLI (``piccolo migrations new portico --auto``). The running app and the tests
bind their engine explicitly through ``app.db.bind`` instead of relying on this module's ``DB``.
"""

import os

from piccolo.conf.apps import AppRegistry

from app.db import make_engine
from app.settings import Settings

DB = make_engine(
    Settings(database_url=os.environ.get("PORTICO_DATABASE_URL", "")).resolved_database_url
)

APP_REGISTRY = AppRegistry(apps=["app.piccolo_app"])
