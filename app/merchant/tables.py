"""Merchant accounts (people who sign in to the settings pages) and per-email sign-in limits."""

from piccolo.columns import Integer, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class MerchantAccount(Table, tablename="merchant_account"):
    """``email`` is stored normalised (stripped, lower-case), so its unique constraint is
    case-insensitive. ``password_hash`` is an argon2id PHC string."""

    id = Varchar(length=64, primary_key=True)  # macct_…
    email = Varchar(length=320, unique=True)
    password_hash = Varchar(length=512)
    created_at = Timestamptz(default=TimestamptzNow())
    last_sign_in_at = Timestamptz(null=True, default=None)


class MerchantSignInLimit(Table, tablename="merchant_sign_in_limit"):
    """Failed sign-ins per email address, kept for known and unknown addresses alike (so a lockout
    reveals nothing about which addresses have accounts). ``failures`` counts within the window
    that began at ``window_started_at``; reaching the limit sets ``locked_until``."""

    email = Varchar(length=320, primary_key=True)
    failures = Integer(default=0)
    window_started_at = Timestamptz(default=TimestamptzNow())
    locked_until = Timestamptz(null=True, default=None)
