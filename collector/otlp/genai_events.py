"""GenAI events (OTLP log records) folded into their span's input and output, when a trace is read.

OpenTelemetry's GenAI instrumentations in event mode (openai-v2 and others) keep prompts and
completions out of the span and emit them as log events linked to it by trace and span id:

- older conventions (v1.30, openai-v2's default): one event per message, `gen_ai.system.message`,
  `gen_ai.user.message`, `gen_ai.assistant.message`, `gen_ai.tool.message` with a body
  `{"content": ..., "tool_calls": [...], "id": ...}`, and one `gen_ai.choice` per choice with a body
  `{"index", "finish_reason", "message": {"role", "content", "tool_calls"}}`;
- current conventions: one `gen_ai.client.inference.operation.details` event whose attributes hold
  `gen_ai.input.messages`, `gen_ai.output.messages` and `gen_ai.system_instructions` (the "parts" format).

Spans are written once and never rewritten, and an event may arrive before or after its span, so
the events are stored in `otel_logs` and folded here, at read time: a span without input (output)
gets the conversation (the choices) its events carry. Input becomes a JSON list of `{role, content}`
messages (what the trace view shows as a conversation); output is the text of a single choice, else
a JSON list of every choice.
"""

from __future__ import annotations

from typing import Any, Optional

import orjson

MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CHOICE_EVENT = "gen_ai.choice"
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
GENAI_EVENTS = frozenset((*MESSAGE_EVENTS, CHOICE_EVENT, DETAILS_EVENT))


def is_genai_event(name: str) -> bool:
    """True for the GenAI events folded into spans (they are not listed as the span's logs)."""
    return name in GENAI_EVENTS


def _json(text: Any) -> Any:
    if not isinstance(text, str) or text.strip()[:1] not in ("[", "{"):
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _message(role: str, body: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"role": role}
    if isinstance(body, dict):
        message["content"] = body.get("content", "")
        if body.get("tool_calls"):
            message["tool_calls"] = body["tool_calls"]
        if body.get("id"):
            message["tool_call_id"] = body["id"]
    else:
        message["content"] = "" if body is None else body
    return message


def _from_parts(messages: Any) -> list[dict[str, Any]]:
    """Current-convention messages (`{"role", "parts": [...]}`) as `{role, content}` (text parts joined)."""
    if not isinstance(messages, list):
        return []
    out = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        found = message.get("parts")
        parts: list[Any] = found if isinstance(found, list) else []
        texts = [p.get("content") for p in parts if isinstance(p, dict) and p.get("type") == "text"]
        others = [p for p in parts if not (isinstance(p, dict) and p.get("type") == "text")]
        content: Any = "".join(str(t) for t in texts if t is not None)
        if others:
            content = content or orjson.dumps(parts).decode()
        item = {"role": str(message.get("role", "")), "content": content}
        if message.get("finish_reason"):
            item["finish_reason"] = message["finish_reason"]
        out.append(item)
    return out


def _output_text(choices: list[dict[str, Any]]) -> str:
    if len(choices) == 1 and isinstance(choices[0].get("content"), str) and choices[0]["content"]:
        return str(choices[0]["content"])
    return orjson.dumps(choices).decode() if choices else ""


def fold(events: list[dict[str, Any]]) -> tuple[Optional[str], Optional[str]]:
    """(input, output) JSON/text from one span's GenAI events, in time order; None for a side with none."""
    inputs: list[dict[str, Any]] = []
    choices: list[tuple[int, dict[str, Any]]] = []
    for event in events:
        name, body, attributes = event["EventName"], _json(event.get("Body", "")), event.get("LogAttributes") or {}
        if name in MESSAGE_EVENTS:
            inputs.append(_message(MESSAGE_EVENTS[name], body))
        elif name == CHOICE_EVENT and isinstance(body, dict):
            found = body.get("message")
            message: dict[str, Any] = found if isinstance(found, dict) else {}
            choice = _message(str(message.get("role") or "assistant"), message)
            if body.get("finish_reason"):
                choice["finish_reason"] = body["finish_reason"]
            index = body.get("index")
            choices.append((index if isinstance(index, int) else len(choices), choice))
        elif name == DETAILS_EVENT:
            system = _json(attributes.get("gen_ai.system_instructions", ""))
            if isinstance(system, list) and system:
                inputs.extend(_from_parts([{"role": "system", "parts": system}]))
            inputs.extend(_from_parts(_json(attributes.get("gen_ai.input.messages", ""))))
            choices.extend(enumerate(_from_parts(_json(attributes.get("gen_ai.output.messages", ""))), len(choices)))
    ordered = [choice for _, choice in sorted(choices, key=lambda item: item[0])]
    return (orjson.dumps(inputs).decode() if inputs else None), (_output_text(ordered) if ordered else None)


__all__ = ["CHOICE_EVENT", "DETAILS_EVENT", "GENAI_EVENTS", "MESSAGE_EVENTS", "fold", "is_genai_event"]
