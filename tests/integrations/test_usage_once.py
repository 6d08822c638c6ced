"""The usage-once rule: a LangChain chat model that calls the real OpenAI client, both instrumented,
reports the same call twice (model span and OpenAI span); sums, latency tables, trace totals and
the `llm_usage` view count it once, the spans keep what each reported, in either arrival order."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

pytest.importorskip("langchain_core")
openai = pytest.importorskip("openai")

from langchain_core.language_models.chat_models import BaseChatModel  # noqa: E402
from langchain_core.messages import AIMessage, BaseMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402
from openai_server import OpenAIServer  # noqa: E402

import tracehouse as th  # noqa: E402
from tracehouse.collector.ingest.writer import write_records  # noqa: E402
from tracehouse.collector.store.store import Store  # noqa: E402
from tracehouse.testing import CapturedSpans  # noqa: E402


class OpenAIBackedChat(BaseChatModel):
    """A LangChain chat model whose every call is a real `openai` chat completion (as ChatOpenAI does)."""

    base_url: str

    @property
    def _llm_type(self) -> str:
        return "openai-backed"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:  # fmt: skip
        client = openai.OpenAI(base_url=self.base_url, api_key="test", max_retries=0)
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": str(m.content)} for m in messages]
        )
        usage = reply.usage
        message = AIMessage(
            content=str(reply.choices[0].message.content),
            usage_metadata={"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
                            "total_tokens": usage.total_tokens},
            response_metadata={"model_name": "gpt-4o-mini"},
        )  # fmt: skip
        return ChatResult(generations=[ChatGeneration(message=message)])


@pytest.fixture
def both(spans: CapturedSpans) -> Iterator[CapturedSpans]:
    openai_hook, langchain_hook = th.instrument_openai(), th.instrument_langchain()
    yield spans
    langchain_hook.uninstrument()
    openai_hook.uninstrument()


def test_langchain_over_openai_reports_usage_on_the_openai_span_only(both: CapturedSpans) -> None:
    server = OpenAIServer()
    try:
        model = OpenAIBackedChat(base_url=server.url)

        @th.trace(kind="chain")
        def ask(question: str) -> str:
            return str(model.invoke(question).content)

        ask("one?")
    finally:
        server.stop()
    outer, inner = both.by_name("OpenAIBackedChat"), both.by_name("chat gpt-4o-mini")
    assert inner["parent_span_id"] == outer["span_id"]  # the OpenAI call nests under the model span
    assert inner["total_tokens"] and outer["total_tokens"] is None


def test_a_traced_llm_wrapper_over_the_openai_hook_counts_each_call_once(both: CapturedSpans) -> None:
    server = OpenAIServer()
    client = openai.OpenAI(base_url=server.url, api_key="test", max_retries=0)

    @th.trace(kind="llm")
    def complete(question: str) -> str:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
        usage = reply.usage  # the wrapper reports the call's usage too, as hand-written LLM spans do
        th.current_span().set_usage("gpt-4o-mini", usage.prompt_tokens, usage.completion_tokens, provider="openai")
        return str(reply.choices[0].message.content)

    try:
        for question in ("one?", "two?"):
            complete(question)
    finally:
        server.stop()
    inner = [s for s in both if s["name"] == "chat gpt-4o-mini"]
    outer = [s for s in both if s["name"] == "complete"]
    assert len(inner) == len(outer) == 2 and {s["parent_span_id"] for s in inner} == {s["span_id"] for s in outer}
    per_call = inner[0]["total_tokens"]
    assert per_call and all(s["total_tokens"] == per_call for s in inner + outer)  # both levels report it

    th.sync()
    assert sorted(th.traces(limit=10)["total_tokens"].tolist()) == [per_call, per_call]
    by_model = th.latency(by="model", since="1h")
    assert by_model["count"].tolist() == [2]
    assert by_model["input_tokens"].tolist() == [2 * inner[0]["input_tokens"]]
    assert th.latency(by="name", since="1h")["input_tokens"].fillna(0).sum() == 2 * inner[0]["input_tokens"]
    assert th.query("SELECT sum(total_tokens) AS t FROM llm_usage WHERE project = 'test'")["t"][0] == 2 * per_call
    stored = th.query("SELECT total_tokens FROM spans WHERE total_tokens IS NOT NULL")
    assert stored["total_tokens"].tolist() == [per_call] * 4  # the trace view still shows what each span said


def _span(span_id: str, parent: str, tokens: int, project: str) -> dict[str, Any]:
    now = 1_780_000_000_000_000_000
    return {"type": "span", "project": project, "name": f"llm-{span_id}", "trace_id": "ab" * 16, "span_id": span_id,
            "parent_span_id": parent, "start_ns": now, "end_ns": now + 5_000_000, "status": "ok",
            "status_message": "", "span_kind": "CLIENT", "scope": "s", "resource": {}, "events": [],
            "attributes": {"tracehouse.span.kind": "llm", "gen_ai.request.model": "m1",
                           "gen_ai.usage.input_tokens": tokens, "gen_ai.usage.output_tokens": 1}}  # fmt: skip


@pytest.mark.parametrize("parent_first", [True, False])
def test_the_rule_holds_whichever_span_arrives_first(th_env: th.Settings, parent_first: bool) -> None:
    store = Store(th_env.clickhouse_url, th_env.database)
    project = f"order{int(parent_first)}"
    parent = _span("00000000000000a1", "", 40, project)
    child = _span("00000000000000b2", "00000000000000a1", 40, project)
    for batch in ([parent], [child]) if parent_first else ([child], [parent]):
        write_records(store, batch, None)  # two inserts: the rule cannot rely on one batch holding both
    _, rows = store.query_rows(
        "SELECT sumIf(input_tokens, (trace_id, span_id) NOT IN (SELECT trace_id, span_id FROM usage_shadows "
        "WHERE project = {p:String})), sum(input_tokens) FROM spans WHERE project = {p:String}",
        {"p": project},
    )
    assert rows[0] == (40, 80)
    _, usage = store.query_rows("SELECT span_id FROM llm_usage WHERE project = {p:String}", {"p": project})
    assert usage == [("00000000000000b2",)]


def _timed(span_id: str, parent: str, tokens: int, project: str, start_ms: float, end_ms: float) -> dict[str, Any]:
    span = _span(span_id, parent, tokens, project)
    base = span["start_ns"]
    span["start_ns"], span["end_ns"] = base + int(start_ms * 1e6), base + int(end_ms * 1e6)
    return span


def _counted(store: Store, project: str) -> tuple[int, list[str]]:
    _, usage = store.query_rows("SELECT span_id FROM llm_usage WHERE project = {p:String} ORDER BY span_id",
                                {"p": project})  # fmt: skip
    _, summed = store.query_rows("SELECT sum(input_tokens) FROM llm_usage WHERE project = {p:String}", {"p": project})
    return int(summed[0][0] or 0), [row[0] for row in usage]


@pytest.mark.parametrize("framework_first", [True, False])
@pytest.mark.parametrize("path", ["records", "json"])
def test_sibling_reports_of_one_call_count_once_in_either_order(th_env: th.Settings, framework_first: bool,
                                                                 path: str) -> None:  # fmt: skip
    """langgraph / OpenInference: the OpenAI span lands beside the model span, under the node, inside its time.
    Both write paths: records mapped here, and a JSON batch the embedded store maps itself."""
    import orjson

    from tracehouse.collector.ingest.writer import write_body

    store = Store(th_env.clickhouse_url, th_env.database)
    project = f"siblings{int(framework_first)}{path}"
    node = _timed("00000000000000a0", "", 0, project, 0, 100)
    node["attributes"] = {"tracehouse.span.kind": "chain"}
    framework = _timed("00000000000000f1", "00000000000000a0", 62, project, 10, 90)  # LangChain's model span
    provider = _timed("00000000000000c2", "00000000000000a0", 62, project, 12, 88)  # the OpenAI call inside it
    batches = [[node, framework], [provider]] if framework_first else [[node, provider], [framework]]
    for batch in batches:
        if path == "json":
            assert write_body(store, orjson.dumps(batch), None).rows == len(batch)
        else:
            write_records(store, batch, None)
    assert _counted(store, project) == (62, ["00000000000000c2"])
    _, stored = store.query_rows("SELECT count() FROM spans WHERE project = {p:String} AND input_tokens = 62",
                                 {"p": project})  # fmt: skip
    assert stored[0][0] == 2  # both spans keep what they reported


def test_siblings_that_are_separate_calls_both_count(th_env: th.Settings) -> None:
    """Two calls in a row with the same token counts are two calls; so are overlapping calls of other sizes."""
    store = Store(th_env.clickhouse_url, th_env.database)
    project = "separate"
    root = "00000000000000a0"
    write_records(
        store,
        [
            _timed("00000000000000a1", root, 30, project, 0, 40),
            _timed("00000000000000a2", root, 30, project, 50, 90),  # after it: a second call
            _timed("00000000000000a3", root, 31, project, 5, 35),
        ],
        None,
    )  # inside, other tokens
    assert _counted(store, project) == (91, ["00000000000000a1", "00000000000000a2", "00000000000000a3"])


def test_three_reports_of_one_call_and_equal_times_count_once(th_env: th.Settings) -> None:
    store = Store(th_env.clickhouse_url, th_env.database)
    project = "triple"
    root = "00000000000000a0"
    for span_id in ("00000000000000b1", "00000000000000b3", "00000000000000b2"):  # three writers, one batch each
        write_records(store, [_timed(span_id, root, 48, project, 10, 60)], None)
    assert _counted(store, project) == (48, ["00000000000000b3"])  # equal times: the greatest id is counted


def test_a_pass_pairs_what_a_concurrent_writer_wrote_during_its_write(th_env: th.Settings) -> None:
    """A pass looks at every row written since just before its own write (the store's clock), so a sibling
    another writer wrote meanwhile, and whose own pass did not pair them (it ran first, or failed), is paired."""
    from tracehouse.collector.store.isolate import store_isolating
    from tracehouse.collector.store.rows.spans import span_columns
    from tracehouse.collector.store.usage_siblings import server_now, shadow_new_siblings

    store = Store(th_env.clickhouse_url, th_env.database)
    project = "concurrent"
    root = "00000000000000a0"
    since = server_now(store)
    other, _ = span_columns([_timed("00000000000000f1", root, 55, project, 10, 90)])
    store_isolating(store, "spans", other, None)  # the other writer: inserted, never paired
    assert _counted(store, project) == (55, ["00000000000000f1"])
    ours, _ = span_columns([_timed("00000000000000c2", root, 55, project, 12, 88)])
    store_isolating(store, "spans", ours, None)
    shadow_new_siblings(store, since)
    assert _counted(store, project) == (55, ["00000000000000c2"])


def _root(span_id: str, trace: str, scope: str, tokens: int, project: str, start_ms: float,
          end_ms: float) -> dict[str, Any]:  # fmt: skip
    span = _timed(span_id, "", tokens, project, start_ms, end_ms)
    span["trace_id"], span["scope"] = trace * 16, scope
    return span


@pytest.mark.parametrize("framework_first", [True, False])
@pytest.mark.parametrize("path", ["records", "json"])
def test_root_reports_of_one_call_in_two_traces_count_once(th_env: th.Settings, framework_first: bool,
                                                           path: str) -> None:  # fmt: skip
    """OpenInference with no app span around the call: LangChain's model span and the OpenAI call inside its
    time are roots of two traces, from two instrumentation scopes."""
    import orjson

    from tracehouse.collector.ingest.writer import write_body

    store = Store(th_env.clickhouse_url, th_env.database)
    project = f"roots{int(framework_first)}{path}"
    framework = _root("00000000000000f1", "f1", "openinference.instrumentation.langchain", 48, project, 0, 90)
    provider = _root("00000000000000c2", "c2", "openinference.instrumentation.openai", 48, project, 5, 85)
    for span in [framework, provider] if framework_first else [provider, framework]:  # one batch each
        if path == "json":
            assert write_body(store, orjson.dumps([span]), None).rows == 1
        else:
            write_records(store, [span], None)
    assert _counted(store, project) == (48, ["00000000000000c2"])


def test_root_spans_that_are_separate_calls_all_count(th_env: th.Settings) -> None:
    """Two calls of one scope (one inside the other), other counts, or not inside the other's time: all count."""
    store = Store(th_env.clickhouse_url, th_env.database)
    project = "separate-roots"
    write_records(
        store,
        [
            _root("00000000000000a1", "a1", "openai", 30, project, 0, 100),
            _root("00000000000000a2", "a2", "openai", 30, project, 10, 90),  # same scope: a second call
            _root("00000000000000a3", "a3", "langchain", 31, project, 0, 100),  # around a2, other counts
            _root("00000000000000a4", "a4", "langchain", 30, project, 50, 200),  # a2 is not inside it
        ],
        None,
    )
    assert _counted(store, project) == (121, ["00000000000000a1", "00000000000000a2", "00000000000000a3",
                                              "00000000000000a4"])  # fmt: skip
