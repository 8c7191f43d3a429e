"""The billing mirror: a local copy of Stripe objects, one table per object type.

Columns follow Stripe's field names (nested objects are flattened with ``_``: ``address.city`` →
``address_city``, ``recurring.interval`` → ``recurring_interval``) and primary keys are Stripe's
ids (``cus_…``, ``sub_…``), so a Stripe object maps onto a row one to one. Amounts are integers in
the currency's minor unit, as in Stripe. Timestamps are UTC-aware datetimes (Stripe's unix times).
"""

from piccolo.columns import (
    JSON,
    BigInt,
    Boolean,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


def _id() -> Varchar:
    return Varchar(length=64, primary_key=True)


class Customer(Table, tablename="billing_customer"):
    id = _id()
    email = Varchar(length=320, null=True, default=None)  # index on lower(email): see migrations
    name = Varchar(length=256, null=True, default=None)
    phone = Varchar(length=64, null=True, default=None)
    address_line1 = Varchar(length=256, null=True, default=None)
    address_line2 = Varchar(length=256, null=True, default=None)
    address_city = Varchar(length=128, null=True, default=None)
    address_state = Varchar(length=128, null=True, default=None)
    address_postal_code = Varchar(length=32, null=True, default=None)
    address_country = Varchar(length=2, null=True, default=None)
    shipping_name = Varchar(length=256, null=True, default=None)
    shipping_phone = Varchar(length=64, null=True, default=None)
    shipping_address_line1 = Varchar(length=256, null=True, default=None)
    shipping_address_line2 = Varchar(length=256, null=True, default=None)
    shipping_address_city = Varchar(length=128, null=True, default=None)
    shipping_address_state = Varchar(length=128, null=True, default=None)
    shipping_address_postal_code = Varchar(length=32, null=True, default=None)
    shipping_address_country = Varchar(length=2, null=True, default=None)
    # invoice_settings.default_payment_method
    invoice_settings_default_payment_method = Varchar(length=64, null=True, default=None)
    currency = Varchar(length=3, null=True, default=None)
    preferred_locales = JSON(default=[])
    # Not a Stripe field: an IANA zone name when the merchant or customer told us one.
    time_zone = Varchar(length=64, null=True, default=None)
    created = Timestamptz(default=TimestamptzNow())
    livemode = Boolean(default=False)
    deleted = Boolean(default=False)
    metadata = JSON(default={})


class Product(Table, tablename="billing_product"):
    id = _id()
    name = Varchar(length=256)
    description = Text(null=True, default=None)
    active = Boolean(default=True)
    unit_label = Varchar(length=64, null=True, default=None)
    created = Timestamptz(default=TimestamptzNow())
    livemode = Boolean(default=False)
    metadata = JSON(default={})


class Price(Table, tablename="billing_price"):
    id = _id()
    product = ForeignKey(references=Product, index=True)
    active = Boolean(default=True)
    currency = Varchar(length=3)
    unit_amount = BigInt(null=True, default=None)
    type = Varchar(length=16, default="recurring")  # one_time | recurring
    recurring_interval = Varchar(length=8, null=True, default=None)  # day|week|month|year
    recurring_interval_count = Integer(default=1)
    recurring_usage_type = Varchar(length=16, null=True, default=None)  # licensed | metered
    tax_behavior = Varchar(length=16, default="unspecified")
    nickname = Varchar(length=256, null=True, default=None)
    lookup_key = Varchar(length=256, null=True, default=None)
    created = Timestamptz(default=TimestamptzNow())
    livemode = Boolean(default=False)
    metadata = JSON(default={})


class PaymentMethod(Table, tablename="billing_payment_method"):
    id = _id()
    customer = ForeignKey(references=Customer, null=True, index=True)  # null once detached
    type = Varchar(length=32, default="card")
    card_brand = Varchar(length=32, null=True, default=None)
    card_last4 = Varchar(length=4, null=True, default=None)
    card_exp_month = Integer(null=True, default=None)
    card_exp_year = Integer(null=True, default=None)
    card_funding = Varchar(length=16, null=True, default=None)
    card_country = Varchar(length=2, null=True, default=None)
    billing_details_name = Varchar(length=256, null=True, default=None)
    created = Timestamptz(default=TimestamptzNow())
    livemode = Boolean(default=False)
    metadata = JSON(default={})


class Subscription(Table, tablename="billing_subscription"):
    id = _id()
    customer = ForeignKey(references=Customer, index=True)
    status = Varchar(
        length=24
    )  # incomplete|incomplete_expired|trialing|active|past_due|canceled|unpaid|paused
    currency = Varchar(length=3)
    collection_method = Varchar(length=24, default="charge_automatically")
    created = Timestamptz(default=TimestamptzNow())
    start_date = Timestamptz(default=TimestamptzNow())
    current_period_start = Timestamptz(default=TimestamptzNow())
    current_period_end = Timestamptz(default=TimestamptzNow())
    billing_cycle_anchor = Timestamptz(null=True, default=None)
    cancel_at_period_end = Boolean(default=False)
    cancel_at = Timestamptz(null=True, default=None)
    canceled_at = Timestamptz(null=True, default=None)
    ended_at = Timestamptz(null=True, default=None)
    trial_start = Timestamptz(null=True, default=None)
    trial_end = Timestamptz(null=True, default=None)
    # pause_collection.behavior / pause_collection.resumes_at
    pause_collection_behavior = Varchar(length=24, null=True, default=None)
    pause_collection_resumes_at = Timestamptz(null=True, default=None)
    default_payment_method = Varchar(length=64, null=True, default=None)
    schedule = Varchar(length=64, null=True, default=None)
    latest_invoice = Varchar(length=64, null=True, default=None)
    # cancellation_details.reason / .feedback / .comment
    cancellation_details_reason = Varchar(length=32, null=True, default=None)
    cancellation_details_feedback = Varchar(length=32, null=True, default=None)
    cancellation_details_comment = Text(null=True, default=None)
    # discount.coupon.id (one discount per subscription in the portal's model)
    discount_coupon = Varchar(length=64, null=True, default=None)
    livemode = Boolean(default=False)
    metadata = JSON(default={})


class SubscriptionItem(Table, tablename="billing_subscription_item"):
    id = _id()
    subscription = ForeignKey(references=Subscription, index=True)
    price = ForeignKey(references=Price)
    quantity = Integer(default=1)
    current_period_start = Timestamptz(default=TimestamptzNow())
    current_period_end = Timestamptz(default=TimestamptzNow())
    created = Timestamptz(default=TimestamptzNow())
    metadata = JSON(default={})


class Invoice(Table, tablename="billing_invoice"):
    id = _id()
    customer = ForeignKey(references=Customer, index=True)
    subscription = Varchar(length=64, null=True, default=None)
    number = Varchar(length=64, null=True, default=None)
    status = Varchar(length=16)  # draft|open|paid|uncollectible|void
    currency = Varchar(length=3)
    subtotal = BigInt(default=0)
    tax = BigInt(default=0)
    total = BigInt(default=0)
    amount_due = BigInt(default=0)
    amount_paid = BigInt(default=0)
    amount_remaining = BigInt(default=0)
    collection_method = Varchar(length=24, default="charge_automatically")
    billing_reason = Varchar(length=32, null=True, default=None)
    description = Text(null=True, default=None)
    created = Timestamptz(default=TimestamptzNow(), index=True)
    due_date = Timestamptz(null=True, default=None)
    period_start = Timestamptz(null=True, default=None)
    period_end = Timestamptz(null=True, default=None)
    status_transitions_paid_at = Timestamptz(null=True, default=None)
    hosted_invoice_url = Varchar(length=2048, null=True, default=None)
    invoice_pdf = Varchar(length=2048, null=True, default=None)
    livemode = Boolean(default=False)
    metadata = JSON(default={})


class InvoiceLine(Table, tablename="billing_invoice_line"):
    id = _id()
    invoice = ForeignKey(references=Invoice, index=True)
    description = Text(null=True, default=None)
    amount = BigInt(default=0)
    currency = Varchar(length=3)
    quantity = Integer(null=True, default=None)
    price = Varchar(length=64, null=True, default=None)
    proration = Boolean(default=False)
    period_start = Timestamptz(null=True, default=None)
    period_end = Timestamptz(null=True, default=None)
    position = Integer(default=0)


class TaxId(Table, tablename="billing_tax_id"):
    id = _id()
    customer = ForeignKey(references=Customer, index=True)
    type = Varchar(length=16)  # eu_vat, gb_vat, us_ein, ...
    value = Varchar(length=64)
    country = Varchar(length=2, null=True, default=None)
    verification_status = Varchar(length=16, default="unverified")
    created = Timestamptz(default=TimestamptzNow())
    livemode = Boolean(default=False)


class Coupon(Table, tablename="billing_coupon"):
    id = _id()
    name = Varchar(length=256, null=True, default=None)
    percent_off = Integer(null=True, default=None)  # whole percent, e.g. 20
    amount_off = BigInt(null=True, default=None)  # minor units, with currency
    currency = Varchar(length=3, null=True, default=None)
    duration = Varchar(length=16, default="once")  # once | repeating | forever
    duration_in_months = Integer(null=True, default=None)
    valid = Boolean(default=True)
    created = Timestamptz(default=TimestamptzNow())
    livemode = Boolean(default=False)
    metadata = JSON(default={})


class PromotionCode(Table, tablename="billing_promotion_code"):
    id = _id()
    code = Varchar(length=64, index=True)  # what customers type (case-insensitive)
    coupon = ForeignKey(references=Coupon)
    active = Boolean(default=True)
    expires_at = Timestamptz(null=True, default=None)
    max_redemptions = Integer(null=True, default=None)
    times_redeemed = Integer(default=0)
    created = Timestamptz(default=TimestamptzNow())
    livemode = Boolean(default=False)


class InvoiceItem(Table, tablename="billing_invoice_item"):
    """A pending charge or credit (prorations) that goes on the customer's next invoice; ``invoice``
    is set once it has been invoiced."""

    id = _id()
    customer = ForeignKey(references=Customer, index=True)
    subscription = Varchar(length=64, null=True, default=None)
    invoice = Varchar(length=64, null=True, default=None)
    amount = BigInt(default=0)
    currency = Varchar(length=3)
    description = Text(null=True, default=None)
    price = Varchar(length=64, null=True, default=None)
    quantity = Integer(null=True, default=None)
    proration = Boolean(default=False)
    period_start = Timestamptz(null=True, default=None)
    period_end = Timestamptz(null=True, default=None)
    created = Timestamptz(default=TimestamptzNow())
    livemode = Boolean(default=False)


class SubscriptionSchedule(Table, tablename="billing_subscription_schedule"):
    """A change scheduled for a subscription's period end (the portal's downgrades). Stripe's
    schedules have phases; the portal only ever creates the current phase plus one next phase,
    flattened here as ``next_phase_*``."""

    id = _id()
    customer = ForeignKey(references=Customer, index=True)
    subscription = Varchar(length=64, index=True)
    status = Varchar(length=16, default="active")  # not_started|active|completed|released|canceled
    end_behavior = Varchar(length=16, default="release")
    next_phase_start = Timestamptz()
    next_phase_price = Varchar(length=64)
    next_phase_quantity = Integer(default=1)
    created = Timestamptz(default=TimestamptzNow())
    released_at = Timestamptz(null=True, default=None)
    livemode = Boolean(default=False)


class IdempotencyRecord(Table, tablename="billing_idempotency"):
    """One customer intent (the one-time key of a submitted form) and what it produced, so a
    double submit or a retry changes billing once and answers the same."""

    id = Varchar(length=128, primary_key=True)  # the idempotency key
    customer = Varchar(length=64, index=True)
    action = Varchar(length=64)
    request_hash = Varchar(length=64)
    result = JSON(default={})
    created = Timestamptz(default=TimestamptzNow(), index=True)
