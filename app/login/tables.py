"""Passcode attempts and server-side sessions."""

from piccolo.columns import JSON, Integer, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class LoginAttempt(Table, tablename="login_attempt"):
    """One passcode sent (or, for an unknown email, pretended to be sent).

    ``code_hash`` is HMAC-SHA256(secret key, id ‖ code): the code itself is never stored.
    """

    id = Varchar(length=64, primary_key=True)  # 128-bit random, URL-safe
    configuration = Varchar(length=64)
    email = Varchar(length=320, index=True)  # normalised: stripped, lower-case
    code_hash = Varchar(length=64)
    status = Varchar(length=16, default="live")  # live | used | burned | superseded
    failed_attempts = Integer(default=0)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    ip = Varchar(length=64, default="")


class WebSession(Table, tablename="web_session"):
    """A signed-in browser. ``id`` is SHA-256 of the cookie value, so a database leak gives no
    usable session."""

    id = Varchar(length=64, primary_key=True)
    kind = Varchar(length=16)  # customer | merchant
    subject = Varchar(length=64, index=True)  # customer id or merchant account id
    configuration = Varchar(length=64, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    last_seen_at = Timestamptz(default=TimestamptzNow())
    absolute_expires_at = Timestamptz()
    data = JSON(default={})
    ip = Varchar(length=64, default="")
    user_agent = Varchar(length=512, default="")
