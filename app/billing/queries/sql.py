"""SQL text for the page queries that run on every portal view, built once at import.

Piccolo builds a query's SQL anew on every call: for the overview's handful of reads (joins and
aliases included) that took longer than running them. The hot reads below are written once
as parameterised SQL (``{}`` placeholders, ``Table.raw``), from the same Piccolo columns and
the same struct fields the pages use, so names cannot drift; results are the same dicts, with the
same types on both engines (SQLite converts by declared column type, as for Piccolo's selects).
"""

from __future__ import annotations

from piccolo.columns import Column


def name(column: Column) -> str:
    return f'"{column._meta.db_column_name}"'


def selected(columns: tuple[Column, ...], prefix: str = "") -> str:
    """``"a" AS "a", "b" AS "alias"`` for Piccolo columns (``as_alias`` honoured), from one
    table (``prefix``: its alias in the query)."""
    parts = []
    for column in columns:
        alias = column._alias or column._meta.db_column_name
        parts.append(f'{prefix}{name(column)} AS "{alias}"')
    return ", ".join(parts)


def placeholders(count: int) -> str:
    return ", ".join(["{}"] * count)
