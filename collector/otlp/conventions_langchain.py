"""LangChain's serialized objects, as OpenInference's and OpenLLMetry's LangChain instrumentations send
them, turned into plain values (called from `conventions._normalise`).

Both instrumentations write what LangChain's `dumpd` gives: every message (and a prompt value) as a
constructor, `{"lc": 1, "type": "constructor", "id": [..., "HumanMessage"], "kwargs": {...}}`.

- a message becomes `{"role", "content"}` (plus `tool_calls`, `tool_call_id`, `name` when it has
  them), the shape tracehouse's own LangChain hook writes; any other constructor becomes its kwargs
  (a `ChatPromptValue` its `{"messages": [...]}`);
- an OpenInference chat model span's `input.value` (`{"messages": [[...]]}`, one list per prompt in
  the batch) becomes the list of messages of its one prompt; its `output.value`
  (`{"generations": [[...]], "llm_output": ...}`) the text of its one generation (its tool calls when
  it has no text; every generation as a list when there are several);
- OpenLLMetry's `traceloop.entity.input` / `.output` (`{"inputs": ..., "tags", "metadata",
  "kwargs"}` / `{"outputs": ..., "kwargs"}`) become what the run took and gave.

Values that are not LangChain's are left as they are.
"""

from __future__ import annotations

from typing import Any, Optional

import orjson

_ROLES = {
    "human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool", "chat": "user",
    "HumanMessage": "user", "AIMessage": "assistant", "SystemMessage": "system", "ToolMessage": "tool",
    "FunctionMessage": "tool", "ChatMessage": "user",
}  # fmt: skip
_KEYS = ("input.value", "output.value", "gen_ai.prompt", "gen_ai.completion")
_TRACELOOP = (("traceloop.entity.input", "inputs"), ("traceloop.entity.output", "outputs"))
_TRACELOOP_WRAPPER = frozenset(("inputs", "outputs", "tags", "metadata", "kwargs"))


def normalise(attributes: dict[str, Any]) -> None:
    """Turn LangChain's serialized values of a span into plain ones (in place)."""
    for key in _KEYS:
        value = attributes.get(key)
        output = key in ("output.value", "gen_ai.completion")
        if isinstance(value, str) and ('"constructor"' in value or (output and value.startswith('{"generations"'))):
            text = _plain_text(value, output)
            if text is not None:
                attributes[key] = text
    for key, field in _TRACELOOP:
        value = attributes.get(key)
        if isinstance(value, str) and value.startswith('{"' + field + '"'):
            parsed = _loads(value)
            if isinstance(parsed, dict) and field in parsed and set(parsed) <= _TRACELOOP_WRAPPER:
                try:
                    unwrapped = plain(parsed[field])
                except RecursionError:
                    continue
                attributes[key] = unwrapped if isinstance(unwrapped, str) else _dumps(unwrapped)


def _plain_text(text: str, output: bool) -> Optional[str]:
    parsed = _loads(text)
    if parsed is None:
        return None
    try:
        return _converted(parsed, output)
    except RecursionError:  # nested deeper than Python recurses (orjson reads 1024 levels): left as sent
        return None


def _converted(parsed: Any, output: bool) -> Optional[str]:
    if isinstance(parsed, dict) and output and isinstance(parsed.get("generations"), list):
        value: Any = _generations(parsed["generations"])
    else:
        value = plain(parsed)
        if value == parsed:
            return None  # no constructor in it: not LangChain's, left as it is
        if isinstance(value, dict) and set(value) == {"messages"} and isinstance(value["messages"], list):
            batches = value["messages"]  # a chat model's input: one list of messages per prompt
            value = batches[0] if len(batches) == 1 and isinstance(batches[0], list) else batches
    return value if isinstance(value, str) else _dumps(value)


def plain(node: Any) -> Any:
    """A JSON value with LangChain's constructors replaced: messages as `{role, content}`, others by their kwargs."""
    if isinstance(node, list):
        return [plain(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("lc") == 1 and node.get("type") == "constructor" and isinstance(node.get("kwargs"), dict):
        ids = node.get("id")
        name = str(ids[-1]) if isinstance(ids, list) and ids else ""
        kwargs = node["kwargs"]
        if name.endswith(("Message", "MessageChunk")):
            return message(name.removesuffix("Chunk"), kwargs)
        return plain(kwargs)
    return {key: plain(value) for key, value in node.items()}


def message(class_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """One LangChain message (its constructor's kwargs) as tracehouse writes messages."""
    kind = kwargs.get("type")
    role = _ROLES.get(str(kind)) or _ROLES.get(class_name) or str(kwargs.get("role") or kind or "user")
    if class_name == "ChatMessage" and kwargs.get("role"):
        role = str(kwargs["role"])
    out: dict[str, Any] = {"role": role, "content": plain(kwargs.get("content", ""))}
    calls = kwargs.get("tool_calls")
    if isinstance(calls, list) and calls:
        out["tool_calls"] = [_tool_call(call) for call in calls if isinstance(call, dict)]
    for key in ("tool_call_id", "name"):
        if kwargs.get(key):
            out[key] = kwargs[key]
    return out


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    return {"id": call.get("id"), "type": "function",
            "function": {"name": call.get("name"), "arguments": call.get("args")}}  # fmt: skip


def _generations(generations: list[Any]) -> Any:
    """The output of a chat model or LLM run: one generation's text (or tool calls), else all of them."""
    first = generations[0] if generations and isinstance(generations[0], list) else generations
    outputs = [_generation(g) for g in first if isinstance(g, dict)]
    if len(outputs) == 1:
        return outputs[0]
    return outputs


def _generation(generation: dict[str, Any]) -> Any:
    found = plain(generation.get("message"))
    text = generation.get("text")
    if isinstance(text, str) and text:
        return text
    if isinstance(found, dict):
        if isinstance(found.get("content"), str) and found["content"]:
            return found["content"]
        if found.get("tool_calls"):
            return found["tool_calls"]
        return found.get("content", "")
    return text if text is not None else ""


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=repr).decode("utf-8")


__all__ = ["message", "normalise", "plain"]
