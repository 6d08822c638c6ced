"""Logfire spans: names from their message templates, and one chat call for a streamed request.

Called from `conventions.normalise_span`, for spans that carry `logfire.msg_template`.

- Logfire names a span with its message template (`Chat Completion with {request_data[model]!r}`,
  `answer {q}`). A GenAI span is named as the GenAI conventions name calls, `{operation} {model}`
  (`chat gpt-4o-mini`, as openai-v2 and tracehouse's own hook do, so one model's calls share a name);
  any other span gets its formatted message, `logfire.msg` (the template stays an attribute).
- A streamed request gives two spans: the request span, which ends when the stream is opened and
  holds no output or usage, and a `streaming response from ... took ...s` log, written when the
  stream ends, with the output, the response model and the usage. The log is the call: `chat
  {model}`, stretched back over the stream (`duration`), an error when its level is. The request
  span is not a call of its own (`function`, no model column: `request_data` keeps the model), so
  the call is counted once, by model too. A request is taken as a stream's when `request_data` says
  `stream`, or (Logfire's default `request_data` holds the model only) when a GenAI span from one
  of Logfire's LLM integrations ended with neither an error nor any response (`gen_ai.response.id`,
  output messages or usage).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import orjson

from tracehouse import _semconv as sc

TEMPLATE = "logfire.msg_template"
MESSAGE = "logfire.msg"
SPAN_TYPE = "logfire.span_type"
LEVEL = "logfire.level_num"
_STREAM_LOG = "streaming response from "
_ERROR_LEVEL = 17  # Logfire's `error`
_STREAMED = frozenset(("chat", "text_completion", "generate_content"))  # operations that stream
_RESPONSE_KEYS = (
    "gen_ai.response.id", "gen_ai.output.messages", sc.INPUT_TOKENS, sc.OUTPUT_TOKENS, "gen_ai.usage.raw",
    "response_data",
)  # fmt: skip


def normalise_span(record: dict[str, Any]) -> None:
    """Name, kind and (for a stream) times and status of a Logfire span record (in place)."""
    attributes = record["attributes"]
    template = attributes.get(TEMPLATE)
    operation = attributes.get(sc.OPERATION)
    model = attributes.get(sc.REQUEST_MODEL) or attributes.get(sc.RESPONSE_MODEL)
    is_log = attributes.get(SPAN_TYPE) == "log"
    if isinstance(template, str) and template.startswith(_STREAM_LOG) and operation:
        _stream_log(record, attributes)
    elif operation in _STREAMED and not is_log and _stream_request(record, attributes):
        attributes.setdefault(sc.KIND, "function")
        for key in (sc.REQUEST_MODEL, sc.RESPONSE_MODEL):
            attributes.pop(key, None)
        model = None  # not a call: named by its message
    if record.get("name") == template:
        if operation and isinstance(model, str) and model:
            record["name"] = f"{operation} {model}"
        elif isinstance(attributes.get(MESSAGE), str) and attributes[MESSAGE]:
            record["name"] = attributes[MESSAGE]
    level = attributes.get(LEVEL)
    if is_log and isinstance(level, int) and level >= _ERROR_LEVEL and record.get("status") != "error":
        record["status"] = "error"
        record["status_message"] = record.get("status_message") or str(attributes.get(MESSAGE, ""))


def _stream_log(record: dict[str, Any], attributes: dict[str, Any]) -> None:
    start = _stretched(record.get("start_ns"), record.get("end_ns"), attributes.get("duration"))
    if start is not None:
        record["start_ns"] = start
    output = attributes.get("gen_ai.output.messages")
    if isinstance(output, str) and '"role":null' in output:  # a stream's message has no role of its own
        attributes["gen_ai.output.messages"] = output.replace('"role":null', '"role":"assistant"')


def _stretched(start: Any, end: Any, duration: Any) -> Optional[int]:
    """The start of a log written at `end` about something that took `duration` seconds (None: keep it)."""
    if not isinstance(start, int) or not isinstance(end, int) or isinstance(duration, bool):
        return None
    if not isinstance(duration, (int, float)) or not math.isfinite(duration) or duration <= 0:
        return None
    stretched = end - int(duration * 1e9)
    return stretched if 0 < stretched < start else None


def _stream_request(record: dict[str, Any], attributes: dict[str, Any]) -> bool:
    if not str(record.get("scope", "")).startswith("logfire.") or record.get("status") == "error":
        return False
    request = attributes.get("request_data")
    if isinstance(request, str) and '"stream"' in request:
        try:
            parsed = orjson.loads(request)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict) and "stream" in parsed:
            return parsed["stream"] is True
    return not any(key in attributes for key in _RESPONSE_KEYS)


__all__ = ["normalise_span"]
