"""Numbers as people read them: an unknown value is a dash, not 0; a cost keeps its significant digits.

Shared by the command line and the web UI, so a count or a cost reads the same everywhere.
"""

from __future__ import annotations

import math
from typing import Any

UNKNOWN = "—"


def is_unknown(value: Any) -> bool:
    """None, NaN or pandas' NA: a value the store does not have."""
    if value is None:
        return True
    try:
        return bool(value != value) or (isinstance(value, float) and math.isnan(value))
    except (TypeError, ValueError):
        return False


def count(value: Any) -> str:
    """An integer count with thousands separators; unknown as a dash."""
    if is_unknown(value):
        return UNKNOWN
    return f"{int(value):,}"


def cost(value: Any, digits: int = 3) -> str:
    """US dollars with `digits` significant digits below a cent ($0.000256), cents above ($12.35)."""
    if is_unknown(value):
        return UNKNOWN
    amount = float(value)
    if amount == 0:
        return "$0"
    if abs(amount) >= 0.01:
        return f"${amount:,.2f}"
    decimals = digits - 1 - math.floor(math.log10(abs(amount)))
    return f"${amount:.{decimals}f}"


def significant(value: Any, digits: int = 4) -> str:
    """A number as people read it: an int with thousands separators (1,234,567), a float to `digits`
    significant digits without trailing zeros (0.01235, 3.142, 12,346, 0.1), a very small or very large
    one in exponent form (1.2e-07); a bool as true / false; unknown as a dash."""
    if is_unknown(value):
        return UNKNOWN
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    number = float(value)
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    magnitude = abs(number)
    if number == 0:
        return "0"
    if magnitude >= 1e15 or magnitude < 1e-4:
        return f"{number:.{digits}g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
    text = f"{number:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def equal_bins(values: list[float], count: int) -> tuple[list[float], list[float]]:
    """`count` equal-width bins over finite `values`: (count + 1 edges, count counts), as W&B's
    Histogram bins; one value (or none) gets a bin of width 1 around it."""
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    if high == low:
        low, high = low - 0.5, high + 0.5
    width = (high - low) / count
    counts = [0.0] * count
    for value in values:
        counts[min(int((value - low) / width), count - 1)] += 1
    return [low + i * width for i in range(count + 1)], counts


__all__ = ["UNKNOWN", "cost", "count", "equal_bins", "is_unknown", "significant"]
