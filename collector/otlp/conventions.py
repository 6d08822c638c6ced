"""Bring the attributes of the ecosystems we accept to one shape (OpenInference, OpenLLMetry).

Both OTLP decoders pass every span's attributes through `_normalise`, so that
`collector/store/rows/spans.py span_row` puts them in the same columns as tracehouse's own:

- OpenTelemetry GenAI conventions: kept as they are.
- OpenInference: flattened `retrieval.documents.N.document.*` become one JSON list under
  `gen_ai.retrieval.documents` (documents as {"text", "id", "score", "metadata"}, what
  `Span.set_context` writes; a reranker's `reranker.output_documents.N.*` when there are none,
  its input documents under `reranker.input_documents`); flattened `llm.input_messages.N.message.*` /
  `llm.output_messages.N.message.*` become `gen_ai.input.messages` / `gen_ai.output.messages`
  (when `input.value` / `output.value` are absent; dropped as duplicates when present).
- OpenLLMetry (Traceloop): flattened `gen_ai.prompt.N.*` / `gen_ai.completion.N.*` become
  `gen_ai.input.messages` / `gen_ai.output.messages`; `traceloop.span.kind` and
  `llm.request.type` give `tracehouse.span.kind`.

The flattened keys are removed once folded; every other attribute is kept. The folding runs only
for spans that carry one of the flattened prefixes.

Each further ecosystem has its module, called from here:

- `conventions_openinference`: the kinds `PROMPT`, `GUARDRAIL`, `EVALUATOR`, `DECISION`; an
  embedding's model; `llm.cost.*`;
- `conventions_langchain`: LangChain's serialized constructors (OpenInference's and OpenLLMetry's
  LangChain instrumentations) as messages and plain values;
- `conventions_langfuse`: the Langfuse SDK's `langfuse.observation.*` (kind, input, output, model,
  usage and cost details, completion start time, level);
- `conventions_logfire`: Logfire's span names (message templates) and its two spans of a stream;
- `conventions_streams`: the time to first token from foreign attributes and events, and
  OpenLLMetry's one event per chunk folded into one.

`_normalise` maps what attributes alone tell; `normalise_span`, which both decoders call on every
span record, runs it and then what also needs the span's name, times, status or events.
"""

from __future__ import annotations

import re
from itertools import repeat
from typing import Any

import orjson

from tracehouse import _semconv as sc
from tracehouse.collector.otlp import (
    conventions_langchain,
    conventions_langfuse,
    conventions_logfire,
    conventions_openinference,
    conventions_streams,
)

_DOCUMENTS = "retrieval.documents."
_RERANKER_OUTPUT = "reranker.output_documents."
_RERANKER_INPUT = "reranker.input_documents."
_OI_INPUT_MESSAGES = "llm.input_messages."
_OI_OUTPUT_MESSAGES = "llm.output_messages."
_TL_PROMPT = "gen_ai.prompt."
_TL_COMPLETION = "gen_ai.completion."
_FOLD_PREFIXES = (
    _DOCUMENTS,
    _RERANKER_OUTPUT,
    _RERANKER_INPUT,
    _OI_INPUT_MESSAGES,
    _OI_OUTPUT_MESSAGES,
    _TL_PROMPT,
    _TL_COMPLETION,
)
# attributes of the ecosystems with a module of their own (one set lookup keeps every other span fast)
_ECOSYSTEM_KEYS = frozenset((
    sc.OPENINFERENCE_KIND, "embedding.model_name", "llm.cost.total", "langfuse.observation.type",
    "traceloop.entity.input", "traceloop.entity.output", "gen_ai.prompt", "gen_ai.completion",
))  # fmt: skip
# what only a span record (not its attributes alone) maps, beside its events
_SPAN_KEYS = frozenset((
    conventions_langfuse.COMPLETION_START, conventions_langfuse.LEVEL, conventions_logfire.TEMPLATE,
    *conventions_streams.TTFT_SECONDS,
))  # fmt: skip
_INPUT_MESSAGES = "gen_ai.input.messages"
_OUTPUT_MESSAGES = "gen_ai.output.messages"
_TRACELOOP_KIND = "traceloop.span.kind"
_TRACELOOP_REQUEST_TYPE = "llm.request.type"
_TRACELOOP_TO_KIND = {"workflow": "chain", "task": "chain", "agent": "agent", "tool": "tool"}
_REQUEST_TYPE_TO_KIND = {"chat": "chat", "completion": "llm", "embedding": "embedding", "rerank": "reranker"}
_DOCUMENT_FIELDS = {"content": "text"}
_DOCUMENT_PREFIXES = frozenset((_DOCUMENTS, _RERANKER_INPUT, _RERANKER_OUTPUT))
# prefix (with its dot), item index, item field (OpenInference's `document.` / `message.` level dropped)
_FLATTENED = re.compile(
    r"((?:retrieval\.documents|reranker\.(?:input|output)_documents|llm\.(?:input|output)_messages"
    r"|gen_ai\.(?:prompt|completion))\.)([0-9]+)\.(?:document\.|message\.)?(.+)",
    re.DOTALL,
)


def _normalise(attributes: dict[str, Any]) -> dict[str, Any]:
    """Fold the flattened OpenInference / OpenLLMetry keys of a span; map Traceloop kinds (in place)."""
    if any(map(str.startswith, attributes, repeat(_FOLD_PREFIXES))):
        _fold(attributes)
    if (_TRACELOOP_KIND in attributes or _TRACELOOP_REQUEST_TYPE in attributes) and sc.KIND not in attributes:
        kind = _TRACELOOP_TO_KIND.get(str(attributes.get(_TRACELOOP_KIND)))
        if kind is None and sc.OPENINFERENCE_KIND not in attributes and sc.OPERATION not in attributes:
            kind = _REQUEST_TYPE_TO_KIND.get(str(attributes.get(_TRACELOOP_REQUEST_TYPE)))
        if kind is not None:
            attributes[sc.KIND] = kind
    if not attributes.keys().isdisjoint(_ECOSYSTEM_KEYS):
        _ecosystems(attributes)
    return attributes


def normalise_span(record: dict[str, Any]) -> dict[str, Any]:
    """A decoded span record with the conventions of its ecosystem mapped (in place): its attributes
    (`_normalise`), then what needs the record too (Langfuse's times and level, Logfire's names and
    streams, first-token times and chunk events)."""
    attributes = _normalise(record["attributes"])
    if record["events"] or not attributes.keys().isdisjoint(_SPAN_KEYS):
        if conventions_langfuse.COMPLETION_START in attributes or conventions_langfuse.LEVEL in attributes:
            conventions_langfuse.normalise_span(record)
        if conventions_logfire.TEMPLATE in attributes:
            conventions_logfire.normalise_span(record)
        conventions_streams.normalise_span(record)
    return record


def _ecosystems(attributes: dict[str, Any]) -> None:
    if conventions_langfuse.TYPE in attributes:
        conventions_langfuse.normalise(attributes)
    if (
        sc.OPENINFERENCE_KIND in attributes
        or conventions_openinference.EMBEDDING_MODEL in attributes
        or conventions_openinference.COST_TOTAL in attributes
    ):
        conventions_openinference.normalise(attributes)
    conventions_langchain.normalise(attributes)


def _fold(attributes: dict[str, Any]) -> None:
    groups: dict[str, dict[int, dict[str, Any]]] = {}
    for key in [k for k in attributes if k.startswith(_FOLD_PREFIXES)]:
        match = _FLATTENED.fullmatch(key)
        if match is None:
            continue  # not a flattened list item (e.g. `gen_ai.prompt.template`): leave it alone
        prefix, index, rest = match.groups()
        if prefix in _DOCUMENT_PREFIXES:
            rest = _DOCUMENT_FIELDS.get(rest, rest)
        groups.setdefault(prefix, {}).setdefault(int(index), {})[rest] = attributes.pop(key)

    if _RERANKER_OUTPUT in groups and _DOCUMENTS not in groups and sc.RETRIEVAL_DOCUMENTS not in attributes:
        groups[_DOCUMENTS] = groups.pop(_RERANKER_OUTPUT)  # a reranker's context is what it kept
    for prefix, target in (
        (_DOCUMENTS, sc.RETRIEVAL_DOCUMENTS),
        (_RERANKER_OUTPUT, "reranker.output_documents"),
        (_RERANKER_INPUT, "reranker.input_documents"),
    ):
        if prefix in groups and target not in attributes:
            attributes[target] = _json_text([_document(d) for d in _items(groups[prefix])])
    for target, source, preferred in (
        (_INPUT_MESSAGES, (_OI_INPUT_MESSAGES, _TL_PROMPT), sc.INPUT_VALUE),
        (_OUTPUT_MESSAGES, (_OI_OUTPUT_MESSAGES, _TL_COMPLETION), sc.OUTPUT_VALUE),
    ):
        found = [groups[prefix] for prefix in source if prefix in groups]
        if found and target not in attributes and preferred not in attributes:
            # `input.value` / `output.value` already carry the content: the flattened copy is dropped
            attributes[target] = _json_text([_message(m) for m in _items(found[0])])


def _items(indexed: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    return [_unflatten(indexed[i]) for i in sorted(indexed)]


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """{"a.0.b": 1, "c": 2} -> {"a": [{"b": 1}], "c": 2} (numeric parts become list positions)."""
    if "." not in "".join(flat):
        return flat
    root: dict[str, Any] = {}
    for key, value in sorted(flat.items(), key=lambda item: item[0].count(".")):  # shallow keys first
        node = root
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # `a` holds a value and `a.b` another: keep `b` flat
                parts = [*parts[:depth], ".".join(parts[depth:])]
                break
            node = child
        node[parts[-1]] = value
    unflattened: dict[str, Any] = _lists(root)
    return unflattened


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _lists(value) for key, value in node.items()}
    if converted and all(key.isdecimal() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def _document(document: dict[str, Any]) -> dict[str, Any]:
    """A document as tracehouse writes them: text, id, score, metadata (parsed when it is JSON) first."""
    out: dict[str, Any] = {key: document[key] for key in ("text", "id", "score", "metadata") if key in document}
    metadata = out.get("metadata")
    if isinstance(metadata, str) and metadata.startswith("{"):
        try:
            out["metadata"] = orjson.loads(metadata)
        except orjson.JSONDecodeError:
            pass
    for key, value in document.items():
        out.setdefault(key, value)
    return out


def _message(message: dict[str, Any]) -> dict[str, Any]:
    """A message with role and content first; OpenInference multi-part `contents` give the text."""
    out: dict[str, Any] = {"role": message.get("role", ""), "content": message.get("content")}
    if out["content"] is None:
        parts = message.get("contents")
        texts = [
            p["message_content"].get("text")
            for p in parts or ()
            if isinstance(p, dict) and isinstance(p.get("message_content"), dict)
        ]
        texts = [t for t in texts if isinstance(t, str)]
        out["content"] = "\n".join(texts) if texts else ""
    for key, value in message.items():
        if key not in out:
            out[key] = value
    return out


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=repr).decode("utf-8")
