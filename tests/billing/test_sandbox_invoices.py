"""Paying invoices in the sandbox."""

from __future__ import annotations

import pytest

from app.billing import sandbox_store
from app.billing.gateway import CardDeclined, GatewayError, PaymentResult
from app.billing.tables import Customer, Invoice, PaymentMethod, Subscription
from tests.billing.sandbox_world import NOW, build_world, card, key

pytestmark = pytest.mark.usefixtures("db")


async def _open_invoice(world, amount: int = 14500, *, latest: bool = True) -> str:
    invoice = Invoice(
        id="in_open",
        customer=world.customer,
        subscription=world.subscription,
        number="ACME-0001-0005",
        status="open",
        currency="usd",
        subtotal=amount,
        total=amount,
        amount_due=amount,
        amount_paid=0,
        amount_remaining=amount,
        created=NOW,
    )
    await Invoice.insert(invoice)
    if latest:
        await Subscription.update(
            {Subscription.latest_invoice: invoice.id, Subscription.status: "past_due"}
        ).where(Subscription.id == world.subscription)
    return invoice.id


async def _invoice(invoice_id: str) -> Invoice:
    found = await Invoice.objects().where(Invoice.id == invoice_id).first()
    assert found is not None
    return found


async def test_pay_open_invoice(world):
    invoice_id = await _open_invoice(world)
    same = key()
    result = await world.gateway.pay_invoice(invoice_id, idempotency_key=same)
    assert result == PaymentResult(status="paid")
    invoice = await _invoice(invoice_id)
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("paid", 14500, 0)
    assert invoice.status_transitions_paid_at == NOW
    assert (await world.sub()).status == "active"  # paying the latest invoice settles past_due

    # A double submit answers the same and changes nothing; a new attempt is refused.
    assert await world.gateway.pay_invoice(invoice_id, idempotency_key=same) == result
    with pytest.raises(GatewayError, match="already paid"):
        await world.gateway.pay_invoice(invoice_id, idempotency_key=key())


async def test_pay_without_payment_method(db, frozen_now):
    world = await build_world(with_card=False)
    invoice_id = await _open_invoice(world)
    with pytest.raises(GatewayError, match="Add a payment method first") as raised:
        await world.gateway.pay_invoice(invoice_id, idempotency_key=key())
    assert raised.value.code == "no_payment_method"
    assert (await _invoice(invoice_id)).status == "open"


async def test_declining_card_leaves_the_invoice_open(world):
    # 4000 0000 0000 0341 attaches fine, then every charge to it declines.
    pm_id = await world.gateway.add_card(
        world.customer,
        card("4000000000000341"),
        make_default=True,
        idempotency_key=key(),
    )
    row = await PaymentMethod.select(PaymentMethod.card_last4).where(PaymentMethod.id == pm_id)
    assert row == [{"card_last4": "0341"}]
    invoice_id = await _open_invoice(world)
    with pytest.raises(CardDeclined, match="declined"):
        await world.gateway.pay_invoice(invoice_id, idempotency_key=key())
    invoice = await _invoice(invoice_id)
    assert (invoice.status, invoice.amount_remaining) == ("open", 14500)
    assert (await world.sub()).status == "past_due"

    # Back to Visa 4242: the same invoice can be paid.
    await Customer.update({Customer.invoice_settings_default_payment_method: world.card}).where(
        Customer.id == world.customer
    )
    await world.gateway.pay_invoice(invoice_id, idempotency_key=key())
    assert (await _invoice(invoice_id)).status == "paid"


async def test_void_invoices_cannot_be_paid(world):
    invoice_id = await _open_invoice(world, latest=False)
    await Invoice.update({Invoice.status: "void"}).where(Invoice.id == invoice_id)
    with pytest.raises(GatewayError, match="can't be paid"):
        await world.gateway.pay_invoice(invoice_id, idempotency_key=key())
    with pytest.raises(GatewayError, match="couldn't find"):
        await world.gateway.pay_invoice("in_missing", idempotency_key=key())


async def test_invoice_numbers_continue_each_customers_sequence(world):
    assert await sandbox_store.next_invoice_number(world.customer) == "ACME-0001-0005"
    await Customer.insert(Customer(id="cus_new", email="new@example.com"))
    await Customer.insert(Customer(id="cus_other", email="other@example.com"))
    await Invoice.insert(
        Invoice(
            id="in_other",
            customer="cus_other",
            number="ACME-0007-0002",
            status="paid",
            currency="usd",
        )
    )
    # A first invoice takes the next unused customer prefix.
    assert await sandbox_store.next_invoice_number("cus_new") == "ACME-0008-0001"


def test_the_pdf_library_is_loaded_only_when_a_pdf_is_drawn(tmp_path):
    # fpdf2 and the fontTools it loads take some 40 MB: a worker that never draws a PDF (most
    # never do) must not hold them.
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import sys
        from app.factory import create_app
        create_app()
        print(sorted(m for m in ("fpdf", "fontTools") if m in sys.modules))
        """
    )
    env = {
        **os.environ,
        "PORTICO_SECRET_KEY": "s" * 40,
        "PORTICO_VAR_DIR": str(tmp_path),
        "PORTICO_DATABASE_URL": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
