"""The one writer of the store: ClickHouse schema and migrations, inserts and queries.

Importing this package is cheap: each name loads its module on first use, and clickhouse-connect
and chDB load when a Store is opened.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracehouse.collector.store.migrations import MIGRATIONS
    from tracehouse.collector.store.pricing import cost_usd, model_price, set_model_price
    from tracehouse.collector.store.rows.spans import SPAN_COLUMNS, span_columns, span_row
    from tracehouse.collector.store.store import Store

_LAZY = {
    "MIGRATIONS": "tracehouse.collector.store.migrations",
    "cost_usd": "tracehouse.collector.store.pricing",
    "model_price": "tracehouse.collector.store.pricing",
    "set_model_price": "tracehouse.collector.store.pricing",
    "SPAN_COLUMNS": "tracehouse.collector.store.rows.spans",
    "span_columns": "tracehouse.collector.store.rows.spans",
    "span_row": "tracehouse.collector.store.rows.spans",
    "Store": "tracehouse.collector.store.store",
}

__all__ = [
    "MIGRATIONS",
    "SPAN_COLUMNS",
    "Store",
    "cost_usd",
    "model_price",
    "set_model_price",
    "span_columns",
    "span_row",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tracehouse.collector' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
