"""The outbox: every email Portico sends is a row here first, delivered by the worker."""

from piccolo.columns import JSON, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class OutboxMessage(Table, tablename="mail_outbox"):
    kind = Varchar(length=32)  # passcode | test | …
    configuration = Varchar(length=64, null=True, default=None)
    to_address = Varchar(length=320)
    subject = Varchar(length=256)
    template = Varchar(length=128)
    context = JSON(default={})
    # Secrets needed only to render the message (the passcode), encrypted with a key derived from
    # PORTICO_SECRET_KEY, and erased once the message is delivered or expired.
    sealed = Text(null=True, default=None)
    status = Varchar(
        length=16, default="queued", index=True
    )  # queued|sending|sent|failed|skipped|expired
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(null=True, default=None)
    last_error = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    sent_at = Timestamptz(null=True, default=None)
    reference = Varchar(length=64, null=True, default=None)  # e.g. the login attempt id


class MailSettings(Table, tablename="mail_settings"):
    """The SMTP server and sender the merchant stored on the email delivery page: one row
    (``id = "smtp"``). ``PORTICO_SMTP_*`` / ``PORTICO_MAIL_FROM`` take precedence over it.
    ``password_sealed`` is the password encrypted with a key derived from PORTICO_SECRET_KEY
    (``app.mail.settings``); it is never shown back."""

    id = Varchar(length=16, primary_key=True)
    host = Varchar(length=253, default="")
    port = Integer(default=587)
    security = Varchar(length=16, default="starttls")  # none | starttls | tls
    username = Varchar(length=320, default="")
    password_sealed = Text(null=True, default=None)
    sender_name = Varchar(length=128, default="")
    sender_address = Varchar(length=320, default="")
    updated_at = Timestamptz(default=TimestamptzNow())
    updated_by = Varchar(length=64, default="")  # the merchant account id
