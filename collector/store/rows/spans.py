"""Map OpenTelemetry-shaped span records to `spans` columns.

One mapping for every source: tracehouse's own spans, any OTel SDK's spans, and (through the
collector) OTLP from other languages. GenAI semantic conventions and OpenInference attributes land
in the same columns as tracehouse's own.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Optional

import orjson

from tracehouse import _semconv as sc
from tracehouse.collector.store.pricing import cost_usd

PREVIEW_CHARS = 200

SPAN_COLUMNS = (
    "project", "trace_id", "span_id", "parent_span_id", "name", "kind", "span_kind", "service_name",
    "scope_name", "start_time", "end_time", "duration_ms", "status", "status_message", "input",
    "input_size", "input_preview", "output", "output_size", "output_preview", "context", "model",
    "provider", "input_tokens", "output_tokens", "total_tokens", "cost_usd", "time_to_first_token_ms",
    "attributes", "resource_attributes", "event_times", "event_names", "event_attributes", "run_id",
    "session_id", "user_id", "status_code", "trace_state", "scope_version", "link_trace_ids", "link_span_ids",
    "link_trace_states", "link_attributes", "input_key", "output_key", "context_key",
)  # fmt: skip

_OPENINFERENCE_TO_KIND = {
    "LLM": "llm", "EMBEDDING": "embedding", "RETRIEVER": "retriever", "RERANKER": "reranker",
    "TOOL": "tool", "CHAIN": "chain", "AGENT": "agent",
}  # fmt: skip
_OPERATION_TO_KIND = {
    "chat": "chat", "text_completion": "llm", "generate_content": "llm", "embeddings": "embedding",
    "execute_tool": "tool", "invoke_agent": "agent", "create_agent": "agent", "retrieval": "retriever",
}  # fmt: skip
_INPUT_KEYS = (sc.INPUT_VALUE, "gen_ai.input.messages", "gen_ai.prompt", "traceloop.entity.input")
_OUTPUT_KEYS = (sc.OUTPUT_VALUE, "gen_ai.output.messages", "gen_ai.completion", "traceloop.entity.output")
_CONTEXT_KEYS = (sc.RETRIEVAL_DOCUMENTS, "retrieval.documents")
_INPUT_TOKEN_KEYS = (sc.INPUT_TOKENS, "gen_ai.usage.prompt_tokens", "llm.token_count.prompt", "llm.usage.prompt_tokens")
_OUTPUT_TOKEN_KEYS = (
    sc.OUTPUT_TOKENS, "gen_ai.usage.completion_tokens", "llm.token_count.completion", "llm.usage.completion_tokens",
)  # fmt: skip
_TOTAL_TOKEN_KEYS = ("llm.token_count.total", "llm.usage.total_tokens", "gen_ai.usage.total_tokens")
_MODEL_KEYS = (sc.REQUEST_MODEL, sc.RESPONSE_MODEL, "llm.model_name")
_PROVIDER_KEYS = (sc.PROVIDER, sc.SYSTEM, "llm.provider", "llm.system")
_SESSION_KEYS = (sc.SESSION_ID, "langfuse.session.id")
_USER_KEYS = (sc.USER_ID, "langfuse.user.id")
# Numbers are read from their JSON text, whatever its JSON type ("180" and 180 alike), so this
# mapping and the one ClickHouse runs (rows/span_sql.py) agree: counts are non-negative, fractions cut.
COUNT_PATTERN = r"[0-9]+([.][0-9]*)?([eE][+-]?[0-9]+)?"
NUMBER_PATTERN = r"-?[0-9]+([.][0-9]*)?([eE][+-]?[0-9]+)?"
_COUNT_TEXT = re.compile(COUNT_PATTERN)
_NUMBER_TEXT = re.compile(NUMBER_PATTERN)
_MAX_UINT64 = 2**64 - 1
_MAX_TIME_NS = 2**63 - 1  # DateTime64(9) ends in 2262
_EMPTY: list[Any] = []  # shared by rows without events; never mutated
_DROPPED_KEYS = frozenset((sc.KIND, sc.INPUT_SIZE, sc.OUTPUT_SIZE, sc.CONTEXT_SIZE, sc.COST_USD, sc.TTFT_MS, sc.RUN_ID))


def _first(attributes: dict[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        if key in attributes:
            return attributes[key]
    return None


def _take(attributes: dict[str, Any], keys: Iterable[str]) -> tuple[str, str]:
    """(the first of `keys` present, its value as text), removed from the attributes; ("", "") when none."""
    for key in keys:
        if key in attributes:
            return key, _as_text(attributes.pop(key))
    return "", ""


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def provider_name(value: str) -> str:
    """A provider as one spelling: `OpenAI`, ` openai` and `openai` split no breakdown (ASCII lower
    case, spaces trimmed: what ClickHouse's lower() and trimBoth() do in the SQL mapping)."""
    return value.strip(" ").translate(_ASCII_LOWER)


def _as_text(value: Any) -> str:
    """A value as stored in a text column: strings as they are, null as "", anything else as its JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=repr).decode("utf-8")


def _as_count(value: Any) -> Optional[int]:
    """A token count or size: a non-negative number (or its text) within UInt64, fractions cut."""
    if type(value) is int:
        return value if 0 <= value <= _MAX_UINT64 else None
    if value is None or isinstance(value, bool):
        return None
    text = _as_text(value)
    if text.isdigit() and text.isascii():
        number = int(text)
    elif _COUNT_TEXT.fullmatch(text):
        as_float = float(text)
        if not as_float < 2.0**64:
            return None
        number = int(as_float)
    else:
        return None
    return number if number <= _MAX_UINT64 else None


def _as_float(value: Any) -> Optional[float]:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    text = _as_text(value)
    return float(text) if _NUMBER_TEXT.fullmatch(text) else None


def _as_ns(value: Any) -> Optional[int]:
    """A time in ns since the epoch: 0 when absent, None when present but not a count."""
    if value is None or value == "":
        return 0
    return _as_count(value)


def _event_time(value: Any, start_ns: int) -> int:
    """An event's time; the span's start when it has none, or none that a DateTime64(9) holds."""
    time_ns = _as_count(value)
    return time_ns if time_ns and time_ns <= _MAX_TIME_NS else start_ns


def _attribute_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # only in-process: JSON has no NaN or infinity
    return _as_text(value)  # numbers as their JSON text (what ClickHouse reads from the spool too)


def _mapping(record: dict[str, Any], key: str) -> dict[str, Any]:
    """An object-valued field; null or absent is empty, anything else but an object is an error."""
    value = record.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{key}: expected an object, got {type(value).__name__}")
    return value


def _string_map(attributes: dict[str, Any]) -> dict[str, str]:
    return {str(key): _attribute_text(value) for key, value in attributes.items()}


_KINDS = frozenset(sc.SPAN_KINDS)


def _kind(attributes: dict[str, Any]) -> str:
    kind = attributes.get(sc.KIND)
    if isinstance(kind, str) and kind in _KINDS:
        return kind
    inference = attributes.get(sc.OPENINFERENCE_KIND)
    if isinstance(inference, str) and inference.upper() in _OPENINFERENCE_TO_KIND:
        return _OPENINFERENCE_TO_KIND[inference.upper()]
    operation = attributes.get(sc.OPERATION)
    if isinstance(operation, str) and operation in _OPERATION_TO_KIND:
        return _OPERATION_TO_KIND[operation]
    return "function"


def _usage(attributes: dict[str, Any]) -> tuple[str, Optional[int], Optional[int], Optional[int], Optional[float]]:
    """Model, token counts (the total from the parts when absent) and cost (from the price table when absent)."""
    model = _as_text(_first(attributes, _MODEL_KEYS))
    input_tokens = _as_count(_first(attributes, _INPUT_TOKEN_KEYS))
    output_tokens = _as_count(_first(attributes, _OUTPUT_TOKEN_KEYS))
    total_tokens = _as_count(_first(attributes, _TOTAL_TOKEN_KEYS))
    if total_tokens is None and (input_tokens is not None or output_tokens is not None):
        total_tokens = (input_tokens or 0) + (output_tokens or 0)
        if total_tokens > _MAX_UINT64:
            total_tokens = None
    cost = _as_float(attributes.get(sc.COST_USD))
    if cost is None and model:
        cost = cost_usd(model, input_tokens, output_tokens)
    return model, input_tokens, output_tokens, total_tokens, cost


def _times(record: dict[str, Any]) -> tuple[int, int]:
    """(start, end) in ns since the epoch; an end before the start is the start."""
    start_ns = _as_ns(record.get("start_ns"))
    end_ns = _as_ns(record.get("end_ns"))
    if start_ns is None or end_ns is None or not 0 < start_ns <= max(end_ns, start_ns) <= _MAX_TIME_NS:
        start, end = record.get("start_ns"), record.get("end_ns")
        raise ValueError(f"start/end time out of range: {start}..{end} (ns since the epoch)")
    return start_ns, max(end_ns, start_ns)


def _events(events: Any, start_ns: int) -> tuple[Any, Any, Any]:
    """The events' times, names and attributes (three parallel lists)."""
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ValueError("events: expected an array of event objects")
    if not events:
        return _EMPTY, _EMPTY, _EMPTY
    return (
        [_event_time(e.get("time_ns"), start_ns) for e in events],
        [_as_text(e.get("name")) for e in events],
        [_string_map(_mapping(e, "attributes")) for e in events],
    )


def _links(links: Any) -> tuple[Any, Any, Any, Any]:
    """The links' trace ids, span ids, trace states and attributes (four parallel lists)."""
    if not isinstance(links, list) or not all(isinstance(link, dict) for link in links):
        raise ValueError("links: expected an array of link objects")
    if not links:
        return _EMPTY, _EMPTY, _EMPTY, _EMPTY
    return (
        [_as_text(link.get("trace_id")) for link in links],
        [_as_text(link.get("span_id")) for link in links],
        [_as_text(link.get("trace_state")) for link in links],
        [_string_map(_mapping(link, "attributes")) for link in links],
    )


def _status_code(status: Any) -> str:
    """The OTLP status as recorded: `unset`, `ok` or `error` (`status` itself folds unset into ok)."""
    return status if status == "error" or status == "ok" else "unset"


def span_values(record: dict[str, Any]) -> tuple[Any, ...]:
    """One `spans` row as a tuple in SPAN_COLUMNS order, from a spool/OTLP-shaped span record.

    rows/span_sql.py runs the same mapping inside ClickHouse; tests/test_span_mapping.py keeps them equal.
    """
    attributes = dict(_mapping(record, "attributes"))
    kind = _kind(attributes)
    input_key, input_text = _take(attributes, _INPUT_KEYS)
    output_key, output_text = _take(attributes, _OUTPUT_KEYS)
    context_key, context_text = _take(attributes, _CONTEXT_KEYS)
    input_size = _as_count(attributes.get(sc.INPUT_SIZE))
    output_size = _as_count(attributes.get(sc.OUTPUT_SIZE))
    model, input_tokens, output_tokens, total_tokens, cost = _usage(attributes)
    resource = _mapping(record, "resource")
    start_ns, end_ns = _times(record)
    event_times, event_names, event_attributes = _events(record.get("events") or [], start_ns)
    link_trace_ids, link_span_ids, link_trace_states, link_attributes = _links(record.get("links") or [])
    provider = provider_name(_as_text(_first(attributes, _PROVIDER_KEYS)))
    ttft = _as_float(attributes.get(sc.TTFT_MS))
    run_id = _as_text(attributes.get(sc.RUN_ID))
    session_id = _as_text(_first(attributes, _SESSION_KEYS))
    user_id = _as_text(_first(attributes, _USER_KEYS))
    for key in _DROPPED_KEYS:
        attributes.pop(key, None)
    return (
        _as_text(record.get("project")) or "default",
        _as_text(record.get("trace_id")),
        _as_text(record.get("span_id")),
        _as_text(record.get("parent_span_id")),
        _as_text(record.get("name")),
        kind,
        _as_text(record.get("span_kind")) or "INTERNAL",
        _as_text(resource.get("service.name")),
        _as_text(record.get("scope")),
        start_ns,
        end_ns,
        (end_ns - start_ns) / 1e6,
        "error" if record.get("status") == "error" else "ok",
        _as_text(record.get("status_message")),
        input_text,
        input_size if input_size is not None else len(input_text.encode("utf-8", errors="replace")),
        input_text[:PREVIEW_CHARS],
        output_text,
        output_size if output_size is not None else len(output_text.encode("utf-8", errors="replace")),
        output_text[:PREVIEW_CHARS],
        context_text,
        model,
        provider,
        input_tokens,
        output_tokens,
        total_tokens,
        cost,
        ttft,
        _string_map(attributes),
        _string_map(resource),
        event_times,
        event_names,
        event_attributes,
        run_id,
        session_id,
        user_id,
        _status_code(record.get("status")),
        _as_text(record.get("trace_state")),
        _as_text(record.get("scope_version")),
        link_trace_ids,
        link_span_ids,
        link_trace_states,
        link_attributes,
        input_key,
        output_key,
        context_key,
    )


def span_row(record: dict[str, Any]) -> dict[str, Any]:
    """One `spans` row (column name -> value) from a spool/OTLP-shaped span record."""
    return dict(zip(SPAN_COLUMNS, span_values(record), strict=True))


def _valid_id(value: Any, digits: int) -> bool:
    return (
        isinstance(value, str)
        and len(value) == digits
        and value.strip("0123456789abcdef") == ""
        and value != "0" * digits
    )


def span_columns(records: Iterable[dict[str, Any]]) -> tuple[dict[str, list[Any]], list[str]]:
    """Column-oriented `spans` data for one insert, and the reasons records were rejected."""
    rows: list[tuple[Any, ...]] = []
    rejected: list[str] = []
    for record in records:
        if not _valid_id(_as_text(record.get("trace_id")), 32) or not _valid_id(_as_text(record.get("span_id")), 16):
            rejected.append(f"span {record.get('name')!r}: trace_id/span_id missing or not lowercase hex")
            continue
        try:
            rows.append(span_values(record))
        except Exception as error:  # a malformed field: reject this record, keep the batch
            rejected.append(f"span {record.get('name')!r}: {type(error).__name__}: {error}")
    if not rows:
        return {name: [] for name in SPAN_COLUMNS}, rejected
    return dict(zip(SPAN_COLUMNS, map(list, zip(*rows, strict=True)), strict=True)), rejected
