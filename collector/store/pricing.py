"""USD prices per million tokens for well-known models; users may add or override entries."""

from __future__ import annotations

import threading
from typing import Optional

# (input, output) USD per 1M tokens, public list prices. Dated model ids match by longest prefix.
_DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.0),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.0, 30.0),
    "gpt-4": (30.0, 60.0),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.0, 60.0),
    "o1-mini": (1.10, 4.40),
    "o3": (2.0, 8.0),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    "text-embedding-ada-002": (0.10, 0.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-3-5-haiku": (0.80, 4.0),
    "claude-3-opus": (15.0, 75.0),
    "claude-3-haiku": (0.25, 1.25),
    "gemini-2.5-pro": (1.25, 10.0),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.0-flash": (0.10, 0.40),
    "gemini-1.5-pro": (1.25, 5.0),
    "gemini-1.5-flash": (0.075, 0.30),
}

_prices = dict(_DEFAULT_PRICES)
_lock = threading.Lock()
_found: dict[str, Optional[tuple[float, float]]] = {}  # model_price's answers, until prices change
_generation = [0]  # bumped by set_model_price: an answer found under an older table is not kept


def set_model_price(model: str, input_per_million: float, output_per_million: float) -> None:
    """Add or override the USD price of `model` per million input and output tokens."""
    from tracehouse._errors import ConfigError

    if not isinstance(model, str) or not model:
        raise ConfigError("model", f"expected a model name, got {model!r}")
    for option, price in (("input_per_million", input_per_million), ("output_per_million", output_per_million)):
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not price >= 0:
            raise ConfigError(option, f"expected a non-negative number of USD, got {price!r}")
    with _lock:
        _prices[model.lower()] = (float(input_per_million), float(output_per_million))
        _generation[0] += 1
        _found.clear()


def price_table() -> tuple[list[str], list[float], list[float]]:
    """(models, input prices, output prices), longest name first: what the SQL mapping matches against."""
    with _lock:
        items = sorted(_prices.items(), key=lambda item: (-len(item[0]), item[0]))
    return [name for name, _ in items], [p[0] for _, p in items], [p[1] for _, p in items]


def model_price(model: str) -> Optional[tuple[float, float]]:
    """(input, output) USD per 1M tokens for `model`, by exact name then longest known prefix."""
    if model in _found:
        return _found[model]
    generation = _generation[0]
    price = _lookup(model)
    with _lock:
        if generation == _generation[0] and len(_found) < 10_000:  # model names come from callers: bounded
            _found[model] = price
    return price


def _lookup(model: str) -> Optional[tuple[float, float]]:
    name = model.lower()
    if "/" in name:  # provider-qualified ids such as "openai/gpt-4o"
        name = name.rsplit("/", 1)[1]
    price = _prices.get(name)
    if price is not None:
        return price
    best = ""
    for known in _prices:
        if (
            name.startswith(known)
            and len(known) > len(best)
            and name[len(known) : len(known) + 1] in ("-", "@", ":", ".")
        ):
            best = known
    return _prices[best] if best else None


def cost_usd(model: Optional[str], input_tokens: Optional[int], output_tokens: Optional[int]) -> Optional[float]:
    """Cost of one call, or None when the model has no known price (unknown is not free)."""
    if not model or (input_tokens is None and output_tokens is None):
        return None
    price = model_price(model)
    if price is None:
        return None
    return ((input_tokens or 0) * price[0] + (output_tokens or 0) * price[1]) / 1_000_000
