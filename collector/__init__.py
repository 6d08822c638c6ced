"""The one writer of the store: ClickHouse schema and migrations, inserts and queries.

Importing this package is cheap: clickhouse-connect and chDB load when a Store is opened.
"""

from ._migrations import MIGRATIONS
from ._pricing import cost_usd, model_price, set_model_price
from ._span_rows import SPAN_COLUMNS, span_columns, span_row
from ._store import Store

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
