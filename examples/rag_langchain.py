"""The RAG app of rag_openai.py as an LCEL chain, traced with `th.instrument_langchain()`.

    OPENAI_API_KEY=sk-... python examples/rag_langchain.py
    OPENAI_BASE_URL=http://localhost:8000/v1 OPENAI_API_KEY=x python examples/rag_langchain.py

retriever | prompt | chat model | parser: every step is a span nested as LangChain nests it, the
retriever's documents are the retriever span's context, and with `th.instrument_openai()` too the
OpenAI call is a child of the chat model span (which then leaves tokens and cost to it). The chat
model is a small adapter over the `openai` client, as `langchain-openai` is, so this example needs
only langchain-core.
"""

from __future__ import annotations

import os
import re
from typing import Any

import openai
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

import tracehouse as th
from tracehouse.cli.main import format_tree

DOCUMENTS = [
    Document(page_content="API keys rotate every 90 days; the old key is revoked a day after.", id="doc-1"),
    Document(page_content="Traces are kept for 30 days in the hot store, then in object storage.", id="doc-2"),
    Document(page_content="On-call engineers answer pages within 15 minutes.", id="doc-3"),
]
_ROLES = {"human": "user", "ai": "assistant", "system": "system"}

th.instrument_langchain()
th.instrument_openai()


class KeywordRetriever(BaseRetriever):
    """The two documents sharing most words with the question."""

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        words = set(re.findall(r"\w+", query.lower()))
        return sorted(DOCUMENTS, key=lambda d: -len(words & set(re.findall(r"\w+", d.page_content.lower()))))[:2]


class OpenAIChat(BaseChatModel):
    """A chat model over the openai client (what langchain-openai's ChatOpenAI does, in a few lines)."""

    model: str = os.environ.get("RAG_MODEL", "gpt-4o-mini")

    @property
    def _llm_type(self) -> str:
        return "openai-chat"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:  # fmt: skip
        client = openai.OpenAI(max_retries=1)
        wire = [{"role": _ROLES.get(m.type, m.type), "content": str(m.content)} for m in messages]
        reply = client.chat.completions.create(model=self.model, messages=wire, temperature=0)
        usage = reply.usage
        message = AIMessage(
            content=reply.choices[0].message.content or "",
            usage_metadata={"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
                            "total_tokens": usage.total_tokens} if usage else None,
            response_metadata={"model_name": reply.model},
        )  # fmt: skip
        return ChatResult(generations=[ChatGeneration(message=message)])


prompt = ChatPromptTemplate.from_messages(
    [("system", "Answer in one sentence from this context:\n{context}"), ("human", "{question}")]
)
join = RunnableLambda(lambda docs: "\n".join(d.page_content for d in docs), name="join_documents")
chain = (
    {"context": KeywordRetriever() | join, "question": RunnablePassthrough()}
    | prompt
    | OpenAIChat()
    | StrOutputParser()
)


@th.trace(kind="chain")
def answer(question: str) -> str:
    return str(chain.invoke(question))


def main() -> None:
    for question in ["How often do API keys rotate?", "How long are traces kept?"]:
        print(f"Q: {question}\nA: {answer(question)}\n")
    th.flush()
    print("\n".join(format_tree(th.trace_tree(str(th.traces(limit=1)["trace_id"][0])))))


if __name__ == "__main__":
    main()
