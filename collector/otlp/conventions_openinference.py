"""OpenInference attributes beyond the flattened lists (called from `conventions._normalise`).

- Span kinds that have no tracehouse kind of their own: `PROMPT` (a template rendered), `GUARDRAIL`,
  `EVALUATOR` and `DECISION` are steps of a chain, so `chain` (`openinference.span.kind` is kept);
  `LLM`, `EMBEDDING`, `RETRIEVER`, `RERANKER`, `TOOL`, `CHAIN` and `AGENT` are mapped by
  `rows/spans.py` itself, `UNKNOWN` stays `function`.
- An embedding span's `embedding.model_name` is its model (so the price table gives its cost).
- `llm.cost.total` (else `llm.cost.prompt` + `llm.cost.completion`) is the span's cost, in USD.
"""

from __future__ import annotations

import math
from typing import Any

from tracehouse import _semconv as sc

_STEP_KINDS = {"PROMPT": "chain", "GUARDRAIL": "chain", "EVALUATOR": "chain", "DECISION": "chain"}
_MODEL_KEYS = (sc.REQUEST_MODEL, sc.RESPONSE_MODEL, "llm.model_name")
EMBEDDING_MODEL = "embedding.model_name"
COST_TOTAL = "llm.cost.total"
_COST_PARTS = ("llm.cost.prompt", "llm.cost.completion")


def normalise(attributes: dict[str, Any]) -> None:
    """Kinds, embedding model and cost of an OpenInference span (in place)."""
    kind = attributes.get(sc.OPENINFERENCE_KIND)
    if isinstance(kind, str) and sc.KIND not in attributes:
        step = _STEP_KINDS.get(kind.upper())
        if step is not None:
            attributes[sc.KIND] = step
    model = attributes.get(EMBEDDING_MODEL)
    if isinstance(model, str) and model and not any(key in attributes for key in _MODEL_KEYS):
        attributes[sc.REQUEST_MODEL] = model
    if sc.COST_USD not in attributes:
        cost = _usd(attributes.get(COST_TOTAL))
        if cost is None:
            parts = [_usd(attributes.get(key)) for key in _COST_PARTS]
            found = [part for part in parts if part is not None]
            cost = sum(found) if found else None
        if cost is not None:
            attributes[sc.COST_USD] = cost


def _usd(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


__all__ = ["normalise"]
