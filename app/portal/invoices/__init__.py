"""Invoices: history, one invoice, its PDF, paying an open invoice."""
