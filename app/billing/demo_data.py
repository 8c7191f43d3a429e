"""Builds the demo merchant's billing rows (not yet inserted): products, prices, customers, cards,
tax ids, subscriptions with their items, and invoices with their lines.

Everything comes from one seeded ``random.Random`` and a fixed ``now``, so the same inputs give the
same rows. Subscription periods follow Stripe's billing-cycle anchor (a period starting on the 31st
ends on the last day of a shorter month); live subscriptions' current periods contain ``now``.
"""

from __future__ import annotations

import calendar
import random
import string
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.billing import demo_people as people
from app.billing.demo_people import Address
from app.billing.tables import (
    Customer,
    Invoice,
    InvoiceLine,
    PaymentMethod,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
    TaxId,
)
from app.web.formatting import money

CURRENCY = "usd"
ALPHANUMERIC = string.ascii_letters + string.digits
TIMES = "\N{MULTIPLICATION SIGN}"  # Stripe line descriptions: "5 <TIMES> Team (at $29.00 / month)"


@dataclass
class DemoRows:
    products: list[Product] = field(default_factory=list)
    prices: list[Price] = field(default_factory=list)
    customers: list[Customer] = field(default_factory=list)
    payment_methods: list[PaymentMethod] = field(default_factory=list)
    tax_ids: list[TaxId] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    items: list[SubscriptionItem] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    lines: list[InvoiceLine] = field(default_factory=list)
    # product key → (product, {"month": price, "year": price})
    catalogue: dict[str, tuple[Product, dict[str, Price]]] = field(default_factory=dict)

    def tables(self) -> list[list]:
        """Row lists in foreign-key order."""
        return [
            self.products,
            self.prices,
            self.customers,
            self.payment_methods,
            self.tax_ids,
            self.subscriptions,
            self.items,
            self.invoices,
            self.lines,
        ]


def add_months(anchor: datetime, months: int) -> datetime:
    """``anchor`` moved by whole months, the day clamped to the month's length."""
    years, month0 = divmod(anchor.month - 1 + months, 12)
    year = anchor.year + years
    day = min(anchor.day, calendar.monthrange(year, month0 + 1)[1])
    return anchor.replace(year=year, month=month0 + 1, day=day)


def periods(start: datetime, interval: str, until: datetime) -> list[tuple[datetime, datetime]]:
    """Billing periods from ``start`` up to and including the one that contains ``until``."""
    step = 12 if interval == "year" else 1
    out: list[tuple[datetime, datetime]] = []
    k = 0
    while True:
        period = (add_months(start, k * step), add_months(start, (k + 1) * step))
        out.append(period)
        if period[1] > until:
            return out
        k += 1


def slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return ".".join(
        "".join(ch for ch in part if ch.isalnum()) for part in ascii_name.lower().split()
    )


class Builder:
    def __init__(self, now: datetime, rng: random.Random) -> None:
        self.now = now
        self.rng = rng
        self.rows = DemoRows()
        self._ids: set[str] = set()
        self._invoices_by_customer: dict[str, list[Invoice]] = {}

    # --- helpers ------------------------------------------------------------------------------

    def new_id(self, prefix: str, length: int = 24) -> str:
        while True:
            value = f"{prefix}_{''.join(self.rng.choices(ALPHANUMERIC, k=length))}"
            if value not in self._ids:
                self._ids.add(value)
                return value

    def ago(self, low_days: float, high_days: float) -> datetime:
        seconds = self.rng.randint(int(low_days * 86400), int(high_days * 86400))
        return self.now - timedelta(seconds=seconds)

    # --- catalogue ----------------------------------------------------------------------------

    def catalogue(self) -> None:
        created = self.now - timedelta(days=800)
        for plan in people.PLANS:
            product = Product(
                id=self.new_id("prod", 14),
                name=plan.name,
                description=plan.description,
                unit_label=plan.unit_label,
                created=created,
                metadata={},
            )
            self.rows.products.append(product)
            prices = {}
            for interval, amount in (("month", plan.monthly), ("year", plan.yearly)):
                price = Price(
                    id=self.new_id("price"),
                    product=product.id,
                    currency=CURRENCY,
                    unit_amount=amount,
                    type="recurring",
                    recurring_interval=interval,
                    recurring_interval_count=1,
                    recurring_usage_type="licensed",
                    tax_behavior="exclusive",
                    nickname=f"{plan.name} {interval}ly",
                    lookup_key=f"{plan.key}_{interval}ly",
                    created=created,
                    metadata={},
                )
                self.rows.prices.append(price)
                prices[interval] = price
            self.rows.catalogue[plan.key] = (product, prices)

    # --- customers ----------------------------------------------------------------------------

    def customer(
        self,
        name: str,
        email: str,
        created: datetime,
        address: Address,
        *,
        card: str | None = "random",
        last4: str | None = None,
        shipping: bool = False,
    ) -> Customer:
        rng = self.rng
        customer = Customer(
            id=self.new_id("cus", 14),
            email=email,
            name=name,
            phone=f"{address.phone_prefix} 555 01{rng.randint(0, 99):02d}"
            if rng.random() < 0.6
            else None,
            address_line1=address.line1,
            address_line2=f"Suite {rng.randint(100, 950)}" if rng.random() < 0.3 else None,
            address_city=address.city,
            address_state=address.state,
            address_postal_code=address.postal_code,
            address_country=address.country,
            currency=CURRENCY,
            preferred_locales=["en"],
            time_zone=address.time_zone,
            created=created,
            metadata={},
        )
        if shipping:
            customer.shipping_name = name
            customer.shipping_address_line1 = address.line1
            customer.shipping_address_city = address.city
            customer.shipping_address_state = address.state
            customer.shipping_address_postal_code = address.postal_code
            customer.shipping_address_country = address.country
        self.rows.customers.append(customer)
        self._invoices_by_customer[customer.id] = []
        if card is not None:
            brand = card if card != "random" else rng.choice(("visa", "visa", "mastercard", "amex"))
            pm = self.card(customer, brand, created + timedelta(minutes=rng.randint(1, 30)), last4)
            customer.invoice_settings_default_payment_method = pm.id
        if address.country in people.EU_VAT:
            self.rows.tax_ids.append(
                TaxId(
                    id=self.new_id("txi"),
                    customer=customer.id,
                    type="eu_vat",
                    value=people.EU_VAT[address.country],
                    country=address.country,
                    verification_status="verified",
                    created=created + timedelta(minutes=5),
                )
            )
        return customer

    def card(
        self, customer: Customer, brand: str, created: datetime, last4: str | None = None
    ) -> PaymentMethod:
        rng = self.rng
        pm = PaymentMethod(
            id=self.new_id("pm"),
            customer=customer.id,
            type="card",
            card_brand=brand,
            card_last4=last4 or f"{rng.randint(0, 9999):04d}",
            card_exp_month=rng.randint(1, 12),
            card_exp_year=self.now.year + rng.randint(1, 4),
            card_funding=rng.choice(("credit", "credit", "debit")),
            card_country=customer.address_country,
            billing_details_name=customer.name,
            created=created,
            metadata={},
        )
        self.rows.payment_methods.append(pm)
        return pm

    def address(self, country: str) -> Address:
        if country == "US":
            return self.rng.choice(people.US_ADDRESSES)
        return people.ABROAD[country]

    # --- invoices -----------------------------------------------------------------------------

    def invoice(
        self,
        customer: Customer,
        created: datetime,
        lines: list[dict],
        *,
        status: str = "paid",
        subscription: Subscription | None = None,
        billing_reason: str = "manual",
        due_date: datetime | None = None,
    ) -> Invoice:
        total = sum(line["amount"] for line in lines)
        paid = status == "paid"
        owed = status in ("open", "uncollectible")
        invoice = Invoice(
            id=self.new_id("in"),
            customer=customer.id,
            subscription=subscription.id if subscription else None,
            status=status,
            currency=CURRENCY,
            subtotal=total,
            tax=0,
            total=total,
            amount_due=total,
            amount_paid=total if paid else 0,
            amount_remaining=total if owed else 0,
            collection_method="send_invoice" if due_date else "charge_automatically",
            billing_reason=billing_reason,
            description=None,
            created=created,
            due_date=due_date,
            period_start=lines[0].get("period_start", created),
            period_end=lines[0].get("period_end", created),
            status_transitions_paid_at=created + timedelta(minutes=self.rng.randint(1, 59))
            if paid
            else None,
            metadata={},
        )
        for position, line in enumerate(lines):
            self.rows.lines.append(
                InvoiceLine(
                    id=self.new_id("il"),
                    invoice=invoice.id,
                    currency=CURRENCY,
                    position=position,
                    **line,
                )
            )
        self.rows.invoices.append(invoice)
        self._invoices_by_customer[customer.id].append(invoice)
        if subscription is not None:
            subscription.latest_invoice = invoice.id
        return invoice

    def one_off(
        self, customer: Customer, created: datetime, *, status: str = "paid", item: int = -1
    ) -> Invoice:
        description, amount = people.ONE_OFF[item] if item >= 0 else self.rng.choice(people.ONE_OFF)
        line = {"description": description, "amount": amount, "quantity": 1}
        return self.invoice(
            customer, created, [line], status=status, due_date=created + timedelta(days=30)
        )

    def number_invoices(self) -> None:
        """Stripe-style numbers: a per-customer prefix and a per-customer sequence."""
        ordered = sorted(self.rows.customers, key=lambda c: (c.created, c.id))
        for position, customer in enumerate(ordered, start=1):
            invoices = sorted(self._invoices_by_customer[customer.id], key=lambda i: i.created)
            for sequence, invoice in enumerate(invoices, start=1):
                invoice.number = f"ACME-{position:04d}-{sequence:04d}"
        self.rows.invoices.sort(key=lambda i: (i.created, i.id))

    # --- subscriptions ------------------------------------------------------------------------

    def subscribe(
        self,
        customer: Customer,
        plan_key: str,
        interval: str,
        start: datetime,
        *,
        quantity: int = 1,
        status: str = "active",
        trial_days: int = 0,
        ended_at: datetime | None = None,
        last_invoice: str = "paid",
    ) -> Subscription:
        """A subscription started at ``start`` with one invoice per period. ``ended_at`` (for
        canceled ones) ends the history; ``last_invoice`` is the status of the newest invoice."""
        product, prices = self.rows.catalogue[plan_key]
        price = prices[interval]
        trial_end = start + timedelta(days=trial_days) if trial_days else None
        billing_start = trial_end or start
        until = (ended_at - timedelta(seconds=1)) if ended_at else self.now
        cycle = periods(billing_start, interval, until) if billing_start <= until else []
        current = cycle[-1] if cycle else (start, trial_end)
        sub = Subscription(
            id=self.new_id("sub"),
            customer=customer.id,
            status=status,
            currency=CURRENCY,
            created=start,
            start_date=start,
            current_period_start=current[0],
            current_period_end=current[1],
            billing_cycle_anchor=billing_start,
            trial_start=start if trial_days else None,
            trial_end=trial_end,
            ended_at=ended_at,
            canceled_at=ended_at,
            metadata={},
        )
        self.rows.subscriptions.append(sub)
        self.rows.items.append(
            SubscriptionItem(
                id=self.new_id("si", 14),
                subscription=sub.id,
                price=price.id,
                quantity=quantity,
                current_period_start=current[0],
                current_period_end=current[1],
                created=start,
                metadata={},
            )
        )
        unit = money(price.unit_amount, CURRENCY)
        if trial_days:
            trial_line = {
                "description": f"Trial period for {product.name}",
                "amount": 0,
                "quantity": quantity,
                "price": price.id,
                "period_start": start,
                "period_end": trial_end,
            }
            self.invoice(
                customer,
                start,
                [trial_line],
                subscription=sub,
                billing_reason="subscription_create",
            )
        for index, (period_start, period_end) in enumerate(cycle):
            line = {
                "description": f"{quantity} {TIMES} {product.name} (at {unit} / {interval})",
                "amount": price.unit_amount * quantity,
                "quantity": quantity,
                "price": price.id,
                "period_start": period_start,
                "period_end": period_end,
            }
            first = index == 0 and not trial_days
            self.invoice(
                customer,
                period_start,
                [line],
                status=last_invoice if index == len(cycle) - 1 else "paid",
                subscription=sub,
                billing_reason="subscription_create" if first else "subscription_cycle",
            )
        return sub
