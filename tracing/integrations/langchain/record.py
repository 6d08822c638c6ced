"""What a LangChain run puts on its span: names, kinds, messages, usage, documents."""

from __future__ import annotations

import time
from typing import Any, Optional

from tracehouse import _semconv as sc
from tracehouse.integrations.openai import record as rec
from tracehouse.spans.span import TraceSpan, capture_with

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool"}
_MIN_DOCUMENT_CHARS = 256


def run_name(serialized: Any, kwargs: dict[str, Any]) -> str:
    """The run's name as LangChain shows it (`name=` of the run, else the class of the runnable)."""
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        return name
    if isinstance(serialized, dict):
        if isinstance(serialized.get("name"), str):
            return str(serialized["name"])
        ids = serialized.get("id")
        if isinstance(ids, list) and ids:
            return str(ids[-1])
    return "langchain"


def chain_kind(name: str, serialized: Any, tags: Any) -> str:
    """`agent` for agent executors and runs tagged as agents, else `chain` (parsers and lambdas too)."""
    if "agent" in name.lower() or (isinstance(tags, list) and any("agent" in str(t).lower() for t in tags)):
        return "agent"
    return "chain"


def model_name(serialized: Any, metadata: Any, kwargs: dict[str, Any]) -> Optional[str]:
    """The model a chat model or LLM run calls, from LangChain's metadata or the invocation params."""
    params = kwargs.get("invocation_params") or {}
    for value in (
        (metadata or {}).get("ls_model_name"), params.get("model"), params.get("model_name"),
        ((serialized or {}).get("kwargs") or {}).get("model_name") if isinstance(serialized, dict) else None,
    ):  # fmt: skip
        if isinstance(value, str) and value:
            return value
    return None


def _message_dict(message: Any) -> dict[str, Any]:
    kind = getattr(message, "type", None)
    out: dict[str, Any] = {"role": _ROLES.get(str(kind), str(kind)), "content": getattr(message, "content", "")}
    calls = getattr(message, "tool_calls", None)
    if calls:
        out["tool_calls"] = [
            {"id": c.get("id"), "type": "function", "function": {"name": c.get("name"), "arguments": c.get("args")}}
            for c in calls
        ]
    if kind == "tool":
        out["tool_call_id"] = getattr(message, "tool_call_id", None)
    return out


def record_model_request(
    span: TraceSpan, kind: str, model: Optional[str], payload: Any, metadata: Any, kwargs: dict[str, Any]
) -> None:
    """Model, provider, parameters and input of a chat model or LLM run."""
    attrs = span.attributes
    attrs[sc.OPERATION] = "chat" if kind == "chat" else "text_completion"
    attrs[sc.OPENINFERENCE_KIND] = "LLM"
    if model:
        attrs[sc.REQUEST_MODEL] = model
    provider = (metadata or {}).get("ls_provider")
    if isinstance(provider, str):
        attrs[sc.PROVIDER] = provider
    params = {**(kwargs.get("invocation_params") or {})}
    for key, name in (("ls_temperature", "temperature"), ("ls_max_tokens", "max_tokens")):
        if (metadata or {}).get(key) is not None:
            params.setdefault(name, metadata[key])
    rec.record_request_parameters(span, params)
    if kind == "chat":
        messages = [_message_dict(m) for m in (payload[0] if payload else [])]
        system, semconv = rec.chat_input_messages(messages)
        if system:
            rec._content(span, rec.SYSTEM_INSTRUCTIONS, system)
        rec._content(span, rec.INPUT_MESSAGES, semconv)
        span.set_input(messages)
    else:
        prompts = list(payload or [])
        rec._content(span, rec.INPUT_MESSAGES, [{"role": "user", "parts": rec._parts(p)} for p in prompts])
        span.set_input(prompts[0] if len(prompts) == 1 else prompts)


def first_token(span: TraceSpan) -> None:
    """The time to the first streamed token."""
    span.attributes[sc.TTFT_MS] = (time.time_ns() - span.start_ns) / 1e6


def record_model_response(span: TraceSpan, response: Any, usage: bool) -> None:
    """Output messages, response model and (unless a child OpenAI span has them) tokens and cost."""
    generations = getattr(response, "generations", None) or []
    first = generations[0] if generations else []
    messages = []
    for generation in first:
        message = getattr(generation, "message", None)
        info = getattr(generation, "generation_info", None) or {}
        meta = getattr(message, "response_metadata", None) or {}
        reason = info.get("finish_reason") or meta.get("finish_reason")
        if message is not None:
            data = _message_dict(message)
            messages.append(rec.choice_message(data["content"] or None, data.get("tool_calls"), reason))
            model = meta.get("model_name") or meta.get("model")
            if isinstance(model, str) and model:
                span.attributes[sc.RESPONSE_MODEL] = model
        else:
            messages.append(rec.choice_message(getattr(generation, "text", ""), None, reason))
    rec.record_output(span, messages, rec.output_text(messages))
    if usage:
        _record_usage(span, response, first)


def _record_usage(span: TraceSpan, response: Any, first: list[Any]) -> None:
    message = getattr(first[0], "message", None) if first else None
    metadata = getattr(message, "usage_metadata", None)
    if metadata:
        rec.record_usage(
            span, metadata.get("input_tokens"), metadata.get("output_tokens"),
            (metadata.get("input_token_details") or {}).get("cache_read"),
            (metadata.get("output_token_details") or {}).get("reasoning"),
        )  # fmt: skip
        return
    token_usage = (getattr(response, "llm_output", None) or {}).get("token_usage") or {}
    if token_usage:
        rec.record_usage(span, token_usage.get("prompt_tokens"), token_usage.get("completion_tokens"))


def record_documents(span: TraceSpan, documents: Any) -> None:
    """Retrieved documents as the span's context; each document's text is cut on its own, so one long
    document does not push the others out of the payload limit."""
    docs = list(documents or [])
    limit = max(_MIN_DOCUMENT_CHARS, span._runtime.settings.max_payload_bytes // max(1, len(docs)))
    context = []
    for doc in docs:
        text = str(getattr(doc, "page_content", doc))
        metadata = dict(getattr(doc, "metadata", None) or {})
        entry: dict[str, Any] = {"text": text if len(text) <= limit else text[:limit] + "…"}
        doc_id = getattr(doc, "id", None) or metadata.get("id")
        if doc_id is not None:
            entry["id"] = doc_id
        score = metadata.get("score", metadata.get("relevance_score"))
        if isinstance(score, (int, float)):
            entry["score"] = score
        if metadata:
            entry["metadata"] = metadata
        context.append(entry)
    span.set_context(context)
    text, size = capture_with(span._runtime.settings, [c.get("id", i) for i, c in enumerate(context)])
    span.attributes[sc.OUTPUT_VALUE] = text
    span.attributes[sc.OUTPUT_SIZE] = size


def agent_event(span: Optional[TraceSpan], name: str, item: Any) -> None:
    """An agent's action or finish as an event of its run's span."""
    if span is None:
        return
    fields = {k: getattr(item, k) for k in ("tool", "tool_input", "log", "return_values") if hasattr(item, k)}
    span.add_event(name, {k: capture_with(span._runtime.settings, v)[0] for k, v in fields.items()})


def plain_output(output: Any) -> Any:
    """A tool's output: a ToolMessage's content, else the value itself."""
    content = getattr(output, "content", None)
    return content if content is not None and getattr(output, "type", None) == "tool" else output
