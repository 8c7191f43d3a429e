"""Billing details: name, addresses, phone, tax IDs."""
