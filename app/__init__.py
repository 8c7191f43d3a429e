"""Portico: a self-hosted, no-code customer billing portal."""
