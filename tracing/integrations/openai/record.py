"""What an OpenAI call becomes on its span: request, response and usage as GenAI attributes.

Attribute names follow the OpenTelemetry GenAI semantic conventions (messages as JSON in
`gen_ai.input.messages` / `gen_ai.output.messages` with typed parts), plus OpenInference's
`input.value` / `output.value` so Phoenix-style tools read the same spans. Content goes in a few
JSON attributes, never one attribute per message.
"""

from __future__ import annotations

from typing import Any, Optional

from tracehouse import _semconv as sc
from tracehouse.collector.store.pricing import cost_usd
from tracehouse.spans.span import TraceSpan, capture_with

PROVIDER = "openai"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"
CACHED_TOKENS = "gen_ai.usage.cache_read.input_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
FINISH_REASONS = "gen_ai.response.finish_reasons"
RESPONSE_ID = "gen_ai.response.id"

_REQUEST_NUMBERS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
}
_MAX_TOKENS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


def plain(value: Any) -> Any:
    """An OpenAI model object (pydantic) or a NotGiven as plain JSON-able data."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if _given(v)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _given(value: Any) -> bool:
    return value is not None and type(value).__name__ not in ("NotGiven", "Omit")


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def _content(span: TraceSpan, key: str, value: Any) -> None:
    """A content attribute, as the settings allow (capture on/off, size limit, redaction)."""
    text, _ = capture_with(span._runtime.settings, value)
    span.attributes[key] = text


def _parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts = []
    for part in content if isinstance(content, list) else [content]:
        kind = _field(part, "type")
        if kind in ("text", "input_text", "output_text"):
            parts.append({"type": "text", "content": _field(part, "text")})
        else:
            parts.append({"type": str(kind or "unknown"), **{k: v for k, v in plain(part).items() if k != "type"}})
    return parts


def _tool_call_parts(tool_calls: Any) -> list[dict[str, Any]]:
    parts = []
    for call in tool_calls or []:
        function = _field(call, "function") or {}
        parts.append({
            "type": "tool_call", "id": _field(call, "id"), "name": _field(function, "name"),
            "arguments": _field(function, "arguments"),
        })  # fmt: skip
    return parts


def chat_input_messages(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """OpenAI chat messages as (system instruction parts, semconv input messages)."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for message in messages or []:
        role = _field(message, "role")
        if role in ("system", "developer"):
            system.extend(_parts(_field(message, "content")))
        elif role == "tool":
            out.append({"role": "tool", "parts": [{
                "type": "tool_call_response", "id": _field(message, "tool_call_id"),
                "response": _field(message, "content"),
            }]})  # fmt: skip
        else:
            parts = _parts(_field(message, "content")) + _tool_call_parts(_field(message, "tool_calls"))
            out.append({"role": role, "parts": parts})
    return system, out


def record_request_parameters(span: TraceSpan, params: dict[str, Any]) -> None:
    """Sampling parameters (temperature, top_p, max tokens, stop sequences, ...) of a model call."""
    attrs = span.attributes
    for name, key in _REQUEST_NUMBERS.items():
        value = params.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attrs[key] = value
    limit = next((params[k] for k in _MAX_TOKENS if isinstance(params.get(k), int)), None)
    if limit is not None:
        attrs["gen_ai.request.max_tokens"] = limit
    stop = params.get("stop")
    if isinstance(stop, str):
        attrs["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, (list, tuple)):
        attrs["gen_ai.request.stop_sequences"] = [str(s) for s in stop]


def record_request(span: TraceSpan, operation: str, kwargs: dict[str, Any]) -> None:
    """Request model, parameters and input of a call."""
    attrs = span.attributes
    attrs[sc.OPERATION] = operation
    attrs[sc.PROVIDER] = PROVIDER
    attrs[sc.OPENINFERENCE_KIND] = "EMBEDDING" if operation == "embeddings" else "LLM"
    model = kwargs.get("model")
    if isinstance(model, str):
        attrs[sc.REQUEST_MODEL] = model
    record_request_parameters(span, kwargs)
    if _given(kwargs.get("stream")):
        attrs["gen_ai.request.stream"] = bool(kwargs["stream"])
    if _given(kwargs.get("tools")):
        _content(span, TOOL_DEFINITIONS, plain(kwargs["tools"]))
    response_format = kwargs.get("response_format", kwargs.get("text"))
    if _given(response_format):
        form = plain(response_format)
        kind = form.get("type") if isinstance(form, dict) else None
        kind = kind or (form.get("format", {}).get("type") if isinstance(form, dict) else None)
        attrs["gen_ai.output.type"] = "json" if kind in ("json_object", "json_schema") else "text"
        _content(span, "openai.request.response_format", form)
    _record_input(span, operation, kwargs)


def _record_input(span: TraceSpan, operation: str, kwargs: dict[str, Any]) -> None:
    if operation == "chat":
        system, messages = chat_input_messages(kwargs.get("messages"))
        payload: Any = plain(kwargs.get("messages"))
    elif operation == "responses":
        system = _parts(kwargs.get("instructions")) if _given(kwargs.get("instructions")) else []
        raw = kwargs.get("input")
        messages = [{"role": "user", "parts": _parts(raw)}] if isinstance(raw, str) else _response_items(raw)
        payload = plain(raw)
    else:  # text_completion, embeddings
        system = []
        raw = kwargs.get("prompt" if operation == "text_completion" else "input")
        messages = [{"role": "user", "parts": _parts(raw if isinstance(raw, str) else str(plain(raw)))}]
        payload = plain(raw)
    if system:
        _content(span, SYSTEM_INSTRUCTIONS, system)
    if operation != "embeddings":
        _content(span, INPUT_MESSAGES, messages)
    text, size = capture_with(span._runtime.settings, payload)
    span.attributes[sc.INPUT_VALUE] = text
    span.attributes[sc.INPUT_SIZE] = size
    span.attributes[sc.INPUT_MIME] = "text/plain" if isinstance(payload, str) else "application/json"


def _response_items(items: Any) -> list[dict[str, Any]]:
    out = []
    for item in items or []:
        kind = _field(item, "type")
        if kind == "function_call_output":
            out.append({"role": "tool", "parts": [{
                "type": "tool_call_response", "id": _field(item, "call_id"), "response": _field(item, "output"),
            }]})  # fmt: skip
        elif kind == "function_call":
            out.append({"role": "assistant", "parts": [{
                "type": "tool_call", "id": _field(item, "call_id"), "name": _field(item, "name"),
                "arguments": _field(item, "arguments"),
            }]})  # fmt: skip
        else:
            out.append({"role": _field(item, "role") or "user", "parts": _parts(_field(item, "content"))})
    return out


def record_usage(
    span: TraceSpan,
    input_tokens: Optional[int],
    output_tokens: Optional[int],
    cached: Optional[int] = None,
    reasoning: Optional[int] = None,
) -> None:
    """Token counts and the cost they come to (left empty for a model without a price)."""
    attrs = span.attributes
    for key, value in ((sc.INPUT_TOKENS, input_tokens), (sc.OUTPUT_TOKENS, output_tokens),
                       (CACHED_TOKENS, cached), (REASONING_TOKENS, reasoning)):  # fmt: skip
        if isinstance(value, int):
            attrs[key] = value
    model = attrs.get(sc.RESPONSE_MODEL) or attrs.get(sc.REQUEST_MODEL)
    cost = cost_usd(str(model), input_tokens, output_tokens) if model else None
    if cost is not None:
        attrs[sc.COST_USD] = cost


def record_output(span: TraceSpan, messages: list[dict[str, Any]], text: Any) -> None:
    """Output messages (semconv), the finish reasons, and the output text for `output.value`."""
    attrs = span.attributes
    reasons = [str(m["finish_reason"]) for m in messages if m.get("finish_reason")]
    if reasons:
        attrs[FINISH_REASONS] = reasons
    _content(span, OUTPUT_MESSAGES, messages)
    value, size = capture_with(span._runtime.settings, text)
    attrs[sc.OUTPUT_VALUE] = value
    attrs[sc.OUTPUT_SIZE] = size
    attrs[sc.OUTPUT_MIME] = "text/plain" if isinstance(text, str) else "application/json"


def _identity(span: TraceSpan, response: Any) -> None:
    model, response_id = getattr(response, "model", None), getattr(response, "id", None)
    if isinstance(model, str):
        span.attributes[sc.RESPONSE_MODEL] = model
    if isinstance(response_id, str):
        span.attributes[RESPONSE_ID] = response_id


def choice_message(content: Optional[str], tool_calls: Any, finish_reason: Any) -> dict[str, Any]:
    """One choice as a semconv output message."""
    parts = _parts(content) + _tool_call_parts(tool_calls)
    return {"role": "assistant", "parts": parts, "finish_reason": finish_reason}


def output_text(messages: list[dict[str, Any]]) -> Any:
    """What `output.value` shows: a choice's text (or its tool calls when it has no text); with several
    choices (`n>1`), the list of them in choice order."""
    if not messages:
        return ""
    if len(messages) > 1:
        return [_choice_output(m) for m in messages]
    return _choice_output(messages[0])


def _choice_output(message: dict[str, Any]) -> Any:
    parts = message["parts"]
    texts = [p["content"] for p in parts if p["type"] == "text" and p.get("content")]
    if texts:
        return "".join(texts)
    return [p for p in parts if p["type"] != "text"] or ""


def record_response(span: TraceSpan, operation: str, response: Any) -> None:
    """A whole (non-streamed) response."""
    _identity(span, response)
    usage = getattr(response, "usage", None)
    if operation == "chat":
        messages = [
            choice_message(getattr(c.message, "content", None), getattr(c.message, "tool_calls", None), c.finish_reason)
            for c in _in_order(response.choices)
        ]
        record_output(span, messages, output_text(messages))
        record_chat_usage(span, usage)
    elif operation == "text_completion":
        messages = [choice_message(c.text, None, c.finish_reason) for c in _in_order(response.choices)]
        record_output(span, messages, output_text(messages))
        record_chat_usage(span, usage)
    elif operation == "embeddings":
        data = getattr(response, "data", None) or []
        if data:
            span.attributes["gen_ai.embeddings.dimension.count"] = len(getattr(data[0], "embedding", []) or [])
        record_usage(span, getattr(usage, "prompt_tokens", None), None)
    else:
        record_responses_response(span, response)


def _in_order(choices: Any) -> list[Any]:
    return sorted(choices or [], key=lambda choice: getattr(choice, "index", 0) or 0)


def record_chat_usage(span: TraceSpan, usage: Any) -> None:
    """Usage of chat and text completions (also the usage chunk of a stream)."""
    if usage is None:
        return
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    record_usage(
        span, getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None),
        getattr(prompt_details, "cached_tokens", None), getattr(completion_details, "reasoning_tokens", None),
    )  # fmt: skip


def record_responses_response(span: TraceSpan, response: Any) -> None:
    """A Responses API response (whole, or the one a stream completes with)."""
    _identity(span, response)
    parts: list[dict[str, Any]] = []
    for item in getattr(response, "output", None) or []:
        kind = getattr(item, "type", None)
        if kind == "message":
            parts.extend(_parts(getattr(item, "content", None)))
        elif kind == "function_call":
            parts.append({"type": "tool_call", "id": item.call_id, "name": item.name, "arguments": item.arguments})
    status = getattr(response, "status", None)
    messages = [{"role": "assistant", "parts": parts, "finish_reason": status}]
    record_output(span, messages, output_text(messages))
    usage = getattr(response, "usage", None)
    if usage is not None:
        record_usage(
            span, getattr(usage, "input_tokens", None), getattr(usage, "output_tokens", None),
            getattr(getattr(usage, "input_tokens_details", None), "cached_tokens", None),
            getattr(getattr(usage, "output_tokens_details", None), "reasoning_tokens", None),
        )  # fmt: skip


def record_error(span: TraceSpan, error: BaseException) -> None:
    """The error of a failed call: status error, `error.type`, the HTTP status when there is one."""
    span.attributes["error.type"] = type(error).__qualname__
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        span.attributes["http.response.status_code"] = status
    span.fail(error)
