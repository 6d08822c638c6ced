"""Langfuse SDK spans (v3 and later, OpenTelemetry-based): `langfuse.observation.*` in tracehouse's columns.

Called from `conventions._normalise` (attributes) and `conventions.normalise_span` (times, status).

- `langfuse.observation.type` gives the kind: `generation` is an LLM call (`chat` when its input is
  a list of messages, else `llm`), `embedding`, `agent`, `tool`, `chain` and `retriever` are
  tracehouse's own kinds, `evaluator` and `guardrail` are steps of a chain, `span` and `event` stay
  `function`;
- `langfuse.observation.input` / `.output` are the input and output (JSON, as the SDK serialized
  them); a generation's output message `{"role": "assistant", "content": "..."}` is its text;
- `langfuse.observation.model.name` is the model;
- `langfuse.observation.usage_details` (`{"input", "output", "total"}`, or OpenAI's
  `prompt_tokens` / `completion_tokens` / `total_tokens` and `*_details`, or `input_tokens` /
  `output_tokens`) gives the token counts; `langfuse.observation.cost_details` (`{"total"}` else the
  sum of its parts) the cost, in USD; without cost details the price table prices the tokens;
- `langfuse.observation.completion_start_time` (ISO 8601) less the span's start is the time to first token;
- `langfuse.observation.level` `ERROR` marks a span that is not already an error as one, its
  `status_message` the message.

The input and output attributes are moved (not copied) to the columns; the rest are kept.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Optional

import orjson

from tracehouse import _semconv as sc

TYPE = "langfuse.observation.type"
INPUT = "langfuse.observation.input"
OUTPUT = "langfuse.observation.output"
MODEL = "langfuse.observation.model.name"
USAGE = "langfuse.observation.usage_details"
COST = "langfuse.observation.cost_details"
COMPLETION_START = "langfuse.observation.completion_start_time"
LEVEL = "langfuse.observation.level"
STATUS_MESSAGE = "langfuse.observation.status_message"

_KINDS = {
    "embedding": "embedding", "agent": "agent", "tool": "tool", "chain": "chain", "retriever": "retriever",
    "evaluator": "chain", "guardrail": "chain", "span": "function", "event": "function",
}  # fmt: skip
_MODEL_KEYS = (sc.REQUEST_MODEL, sc.RESPONSE_MODEL, "llm.model_name")
_INPUT_TOKENS = ("input", "prompt_tokens", "input_tokens", "promptTokens")
_OUTPUT_TOKENS = ("output", "completion_tokens", "output_tokens", "completionTokens")
_TOTAL_TOKENS = ("total", "total_tokens", "totalTokens")
_CACHED = (("prompt_tokens_details", "cached_tokens"), ("input_tokens_details", "cached_tokens"))
_REASONING = (("completion_tokens_details", "reasoning_tokens"), ("output_tokens_details", "reasoning_tokens"))
_CACHED_KEYS = ("input_cached_tokens", "cache_read_input_tokens", "input_cache_read")
_REASONING_KEYS = ("output_reasoning_tokens", "output_reasoning")
CACHED_TOKENS = "gen_ai.usage.cache_read.input_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
TOTAL_TOKENS = "gen_ai.usage.total_tokens"


def normalise(attributes: dict[str, Any]) -> None:
    """Kind, input, output, model, tokens and cost of a Langfuse observation (in place)."""
    observation = str(attributes.get(TYPE, "")).lower()
    if INPUT in attributes and sc.INPUT_VALUE not in attributes:
        attributes[sc.INPUT_VALUE] = attributes.pop(INPUT)
    if OUTPUT in attributes and sc.OUTPUT_VALUE not in attributes:
        output = attributes.pop(OUTPUT)
        attributes[sc.OUTPUT_VALUE] = _message_text(output) if observation == "generation" else output
    if sc.KIND not in attributes:
        kind = _KINDS.get(observation)
        if observation == "generation":
            kind = "chat" if _is_messages(attributes.get(sc.INPUT_VALUE)) else "llm"
        if kind is not None:
            attributes[sc.KIND] = kind
    model = attributes.get(MODEL)
    if isinstance(model, str) and model and not any(key in attributes for key in _MODEL_KEYS):
        attributes[sc.REQUEST_MODEL] = model
    usage = _object(attributes.get(USAGE))
    if usage:
        _usage(attributes, usage)
    cost = _object(attributes.get(COST))
    if cost and sc.COST_USD not in attributes:
        total = _number(cost.get("total"))
        if total is None:
            parts = [n for n in map(_number, cost.values()) if n is not None]
            total = sum(parts) if parts else None
        if total is not None:
            attributes[sc.COST_USD] = total


def normalise_span(record: dict[str, Any]) -> None:
    """Time to first token and error level of a Langfuse observation's span record (in place)."""
    attributes = record["attributes"]
    start, end = record.get("start_ns"), record.get("end_ns")
    first = attributes.get(COMPLETION_START)
    if first is not None and sc.TTFT_MS not in attributes and isinstance(start, int) and isinstance(end, int):
        first_ns = _time_ns(first)
        if first_ns is not None and start <= first_ns <= end:  # a completion that starts outside the call: none
            attributes[sc.TTFT_MS] = (first_ns - start) / 1e6
    if str(attributes.get(LEVEL, "")).upper() == "ERROR" and record.get("status") != "error":
        record["status"] = "error"
        message = attributes.get(STATUS_MESSAGE)
        if isinstance(message, str) and not record.get("status_message"):
            record["status_message"] = message


def _usage(attributes: dict[str, Any], usage: dict[str, Any]) -> None:
    for target, keys in ((sc.INPUT_TOKENS, _INPUT_TOKENS), (sc.OUTPUT_TOKENS, _OUTPUT_TOKENS),
                         (TOTAL_TOKENS, _TOTAL_TOKENS)):  # fmt: skip
        if target in attributes:
            continue
        count = next((c for c in (_count(usage.get(key)) for key in keys) if c is not None), None)
        if count is not None:
            attributes[target] = count
    for target, nested, flat in ((CACHED_TOKENS, _CACHED, _CACHED_KEYS),
                                 (REASONING_TOKENS, _REASONING, _REASONING_KEYS)):  # fmt: skip
        if target in attributes:
            continue
        found = [_count(usage.get(key)) for key in flat]
        for outer, inner in nested:
            details = usage.get(outer)
            if isinstance(details, dict):
                found.append(_count(details.get(inner)))
        count = next((c for c in found if c is not None), None)
        if count is not None:
            attributes[target] = count


def _message_text(output: Any) -> Any:
    """A generation's single output message as its text; anything else as it is."""
    if not isinstance(output, str) or not output.startswith("{"):
        return output
    parsed = _loads(output)
    if isinstance(parsed, dict) and isinstance(parsed.get("content"), str) and parsed["content"]:
        if set(parsed) - {"role", "content", "refusal", "annotations", "audio", "function_call", "tool_calls"}:
            return output
        if not parsed.get("tool_calls") and not parsed.get("function_call"):
            return parsed["content"]
    return output


def _is_messages(value: Any) -> bool:
    if not isinstance(value, str) or not value.startswith("["):
        return False
    parsed = _loads(value)
    return isinstance(parsed, list) and bool(parsed) and all(isinstance(m, dict) and "role" in m for m in parsed)


def _time_ns(value: Any) -> Optional[int]:
    """An ISO 8601 time (JSON-quoted, as the SDK serializes it, or bare) as ns since the epoch."""
    text = value.strip().strip('"') if isinstance(value, str) else None
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    whole = int(moment.replace(microsecond=0).timestamp())
    return whole * 1_000_000_000 + moment.microsecond * 1000


def _object(value: Any) -> Optional[dict[str, Any]]:
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value.startswith("{"):
        return None
    parsed = _loads(value)
    return parsed if isinstance(parsed, dict) else None


def _count(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and math.isfinite(value) and value >= 0:
        return int(value)
    return None


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


__all__ = ["normalise", "normalise_span"]
