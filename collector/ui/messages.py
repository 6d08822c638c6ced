"""Chat messages as the trace view shows them, from every message format the store folds.

A span's input or output holds messages in one of these shapes (JSON text or already parsed):

- OpenAI chat: `{"role", "content"}` with content a string or a list of content parts
  (`{"type": "text", "text"}`, `{"type": "image_url", ...}`), `tool_calls` on assistant messages;
- OpenTelemetry GenAI "parts" (what openai-v2, OpenLLMetry 0.62, Logfire and zero-code
  instrumentation send): `{"role", "parts": [{"type": "text", "content"}, {"type": "tool_call",
  "id", "name", "arguments"}, {"type": "tool_call_response", "id", "response"}, ...]}`;
- OpenInference and OpenLLMetry as the collector folds them (`{"role", "content"}`, OpenInference's
  `contents` list of `{"message_content.type", "message_content.text"}`, flattened tool calls);
- LangChain: serialized messages (`{"lc": 1, "type": "constructor", "id": [..., "HumanMessage"],
  "kwargs": {"content", ...}}`), `{"type": "human", "data": {...}}` / `{"type": "human", "content"}`,
  and a chat model's `{"messages": [[...]]}` (one list per prompt of a batch).

Each becomes `{"role": str, "content": str}`: text parts joined, tool calls and tool results as
readable lines, other parts (images, audio) named by their type. Anything else is not a
conversation (None), and the view shows the raw value instead.
"""

from __future__ import annotations

from typing import Any, Optional

import orjson

Message = dict[str, str]
_LANGCHAIN_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "function",
                    "chat": "user", "HumanMessage": "user", "AIMessage": "assistant", "SystemMessage": "system",
                    "ToolMessage": "tool", "FunctionMessage": "function", "ChatMessage": "user",
                    "HumanMessageChunk": "user", "AIMessageChunk": "assistant"}  # fmt: skip


def parse(value: Any) -> Any:
    """JSON text parsed (objects and arrays only); other values as they are."""
    if isinstance(value, (bytes, str)):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        if text.strip()[:1] in ("[", "{"):
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                return value
    return value


def messages(value: Any) -> Optional[list[Message]]:
    """The conversation in a span's input or output, or None when it holds none."""
    value = parse(value)
    if isinstance(value, dict):
        for key in ("messages", "input_messages", "output_messages", "choices"):
            if isinstance(value.get(key), list):
                value = value[key]
                break
        else:
            one = _message(value)
            return [one] if one is not None and _looks_like_message(value) else None
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(item, list) for item in value):  # LangChain: one list of messages per prompt
        value = [message for prompt in value for message in prompt]
    found = [_message(item) for item in value]
    if not found or any(message is None for message in found):
        return None
    return [message for message in found if message is not None]


def _looks_like_message(value: dict[str, Any]) -> bool:
    return ("role" in value and ("content" in value or "parts" in value)) or value.get("lc") == 1


def _message(item: Any) -> Optional[Message]:
    """One message of any shape above, or None."""
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("message"), dict):  # an OpenAI choice: {"index", "message", "finish_reason"}
        item = item["message"]
    if item.get("lc") == 1 and isinstance(item.get("kwargs"), dict):
        kind = item.get("id", [""])[-1] if isinstance(item.get("id"), list) else ""
        return _from_fields(_LANGCHAIN_ROLES.get(str(kind), str(kind) or "message"), item["kwargs"])
    if "role" not in item and isinstance(item.get("type"), str) and item["type"] in _LANGCHAIN_ROLES:
        fields = item["data"] if isinstance(item.get("data"), dict) else item
        return _from_fields(_LANGCHAIN_ROLES[item["type"]], fields)
    if "role" not in item:
        return None
    return _from_fields(str(item.get("role")), item)


def _from_fields(role: str, fields: dict[str, Any]) -> Message:
    lines: list[str] = []
    if isinstance(fields.get("parts"), list):
        lines += [_part(part) for part in fields["parts"]]
    content = fields.get("content")
    if content is None and isinstance(fields.get("contents"), list):  # OpenInference's content list
        content = [{"type": part.get("message_content.type", "text"), "text": part.get("message_content.text")}
                   for part in fields["contents"] if isinstance(part, dict)]  # fmt: skip
    if isinstance(content, str):
        lines.append(content)
    elif isinstance(content, list):
        lines += [_part(part) for part in content]
    elif content is not None:
        lines.append(orjson.dumps(content).decode())
    for call in fields.get("tool_calls") or (fields.get("additional_kwargs") or {}).get("tool_calls") or []:
        lines.append(_tool_call(call))
    if fields.get("tool_call_id") and role == "tool":
        lines.insert(0, f"(result of call {fields['tool_call_id']})")
    return {"role": role, "content": "\n".join(line for line in lines if line)}


def _part(part: Any) -> str:
    """A content part as text: text itself, a tool call or its result as a line, other parts by type."""
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return orjson.dumps(part).decode()
    kind = str(part.get("type", "text"))
    if kind == "text":
        text = part.get("content", part.get("text"))
        return text if isinstance(text, str) else orjson.dumps(text).decode()
    if kind == "tool_call":
        return _tool_call(part)
    if kind == "tool_call_response":
        response = part.get("response", part.get("result"))
        shown = response if isinstance(response, str) else orjson.dumps(response).decode()
        return f"← result of {part.get('id') or 'tool call'}: {shown}"
    if kind in ("reasoning", "thinking"):
        return f"(reasoning) {part.get('content', '')}"
    return f"[{kind}]"


def _tool_call(call: Any) -> str:
    if not isinstance(call, dict):
        return f"→ {call}"
    if isinstance(call.get("tool_call"), dict):  # OpenInference: tool_calls.N.tool_call.function.*
        call = call["tool_call"]
    function = call.get("function") if isinstance(call.get("function"), dict) else call
    arguments = function.get("arguments", function.get("args", ""))
    shown = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
    return f"→ {function.get('name', 'tool')}({shown})"


__all__ = ["Message", "messages", "parse"]
