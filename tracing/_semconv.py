"""Attribute names: OpenTelemetry GenAI semantic conventions, OpenInference, and tracehouse's own."""

from __future__ import annotations

SPAN_KINDS = ("llm", "chat", "embedding", "retriever", "reranker", "tool", "chain", "agent", "function")

# tracehouse's own
KIND = "tracehouse.span.kind"
INPUT_SIZE = "tracehouse.input.size"
OUTPUT_SIZE = "tracehouse.output.size"
CONTEXT_SIZE = "tracehouse.context.size"
COST_USD = "tracehouse.cost_usd"
TTFT_MS = "tracehouse.time_to_first_token_ms"
RUN_ID = "tracehouse.run_id"
LANGCHAIN_RUN_ID = "tracehouse.langchain.run_id"
USAGE_IN_CHILD = "tracehouse.usage_in_child"  # a LangChain model span whose OpenAI child span holds the usage

# OpenInference (read by Phoenix-style tools)
INPUT_VALUE = "input.value"
OUTPUT_VALUE = "output.value"
INPUT_MIME = "input.mime_type"
OUTPUT_MIME = "output.mime_type"
OPENINFERENCE_KIND = "openinference.span.kind"
SESSION_ID = "session.id"
USER_ID = "user.id"

# OpenTelemetry GenAI semantic conventions
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
PROVIDER = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"  # the older name of the provider attribute
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
RETRIEVAL_DOCUMENTS = "gen_ai.retrieval.documents"
OPERATION = "gen_ai.operation.name"

# tracehouse kind -> OpenInference span kind
OPENINFERENCE_KINDS = {
    "llm": "LLM",
    "chat": "LLM",
    "embedding": "EMBEDDING",
    "retriever": "RETRIEVER",
    "reranker": "RERANKER",
    "tool": "TOOL",
    "chain": "CHAIN",
    "agent": "AGENT",
    "function": "CHAIN",
}
