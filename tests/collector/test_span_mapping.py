"""The two span mappings agree: Python's (`store/rows/spans.py`) and the one ClickHouse runs (`rows/span_sql.py`).

The embedded store maps JSON batches inside chDB; `capture_spans`, a ClickHouse server and malformed
batches use the Python mapping. Every column of every row must come out the same either way, for
hand-picked records and for records hypothesis makes up from the attribute names the mapping reads.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracehouse as th
from tracehouse import _semconv as sc
from tracehouse.collector.store.rows import spans as rows
from tracehouse.collector.store.rows.span_sql import check_and_insert_json
from tracehouse.collector.store.rows.spans import SPAN_COLUMNS, span_columns
from tracehouse.reads.reading import get_store

_ids = itertools.count(1)
_NOW = time.time_ns()

_SELECT_BACK = ", ".join(
    f"arrayMap(t -> toUnixTimestamp64Nano(t), {c})" if c == "event_times"
    else f"toUnixTimestamp64Nano({c})" if c in ("start_time", "end_time")
    else c
    for c in SPAN_COLUMNS
)  # fmt: skip


def _record(**overrides: Any) -> dict[str, Any]:
    n = next(_ids)
    record = {
        "type": "span", "project": "map", "name": "op", "trace_id": format(n, "032x"), "span_id": format(n, "016x"),
        "parent_span_id": "", "start_ns": _NOW + n, "end_ns": _NOW + n + 1_500_000, "status": "ok",
        "status_message": "", "attributes": {}, "events": [], "span_kind": "INTERNAL", "scope": "s",
        "resource": {"service.name": "svc"},
    }  # fmt: skip
    record.update(overrides)
    return record


def _python(records: list[dict[str, Any]]) -> tuple[dict[str, tuple[Any, ...]], int]:
    spans = [r for r in records if r.get("type") == "span"]
    columns, rejected = span_columns(spans)
    by_id = {values[2]: values for values in zip(*columns.values(), strict=True)} if columns["span_id"] else {}
    return by_id, len(rejected)


def _sql(records: list[dict[str, Any]]) -> tuple[dict[str, tuple[Any, ...]], int]:
    store = get_store()
    store.command("TRUNCATE TABLE spans")
    result = check_and_insert_json(store, orjson.dumps(records), token=None)
    _, found = store.query_rows(f"SELECT {_SELECT_BACK} FROM spans")
    return {values[2]: tuple(values) for values in found}, len(result.rejected)


def _assert_same(records: list[dict[str, Any]]) -> None:
    records = orjson.loads(orjson.dumps(records))  # what the store receives: the records after JSON
    expected, expected_rejected = _python(records)
    got, got_rejected = _sql(records)
    assert got_rejected == expected_rejected
    assert sorted(got) == sorted(expected)
    for span_id, want in expected.items():
        have = got[span_id]
        for column, a, b in zip(SPAN_COLUMNS, want, have, strict=True):
            assert a == b, f"{column}: python {a!r} != sql {b!r}"


def test_hand_picked_records_map_the_same(th_env: th.Settings) -> None:
    _assert_same([
        _record(attributes={sc.KIND: "llm", sc.INPUT_VALUE: "question", sc.OUTPUT_VALUE: {"answer": [1, 2.5, None]},
                            sc.REQUEST_MODEL: "gpt-4o-mini-2024-07-18", sc.INPUT_TOKENS: 1000, sc.OUTPUT_TOKENS: "500",
                            "custom.flag": True, "custom.ratio": 1e20, "custom.small": 1e-7, "custom.none": None}),
        _record(attributes={"openinference.span.kind": "retriever", "retrieval.documents": [{"id": 1}],
                            "llm.token_count.prompt": 12.9, "llm.token_count.total": 20,
                            "llm.model_name": "claude-3-haiku"}),
        _record(attributes={sc.OPERATION: "embeddings", sc.RESPONSE_MODEL: "openai/text-embedding-3-small",
                            "gen_ai.usage.prompt_tokens": "1e3", sc.COST_USD: "0.25", sc.TTFT_MS: 12.5}),
        _record(attributes={"gen_ai.prompt": "p", sc.INPUT_VALUE: "wins", "gen_ai.input.messages": "stays",
                            sc.INPUT_SIZE: 99, sc.OUTPUT_SIZE: "-1", sc.RUN_ID: "run-1", "langfuse.session.id": 7,
                            sc.USER_ID: "ü", "": "empty key"}),
        _record(attributes={sc.INPUT_TOKENS: 2**64 - 1, sc.OUTPUT_TOKENS: 1, sc.REQUEST_MODEL: "unknown-model"}),
        _record(attributes={sc.INPUT_VALUE: "é" * 300 + "\u2028\"'\\"}, status="error", status_message="boom",
                events=[{"name": "exception", "time_ns": _NOW, "attributes": {"a": 1, "b": "s", "c": None, "d": [1]}},
                        {"name": 5, "time_ns": "0"}, {"name": None, "time_ns": 1.5e18, "attributes": {"e": 0.0}}]),
        _record(project="", span_kind="", name=None, parent_span_id=None, resource={"service.name": 3}),
        _record(status="unset", trace_state="k=v,x=y", scope_version="1.2.3",
                links=[{"trace_id": "ab" * 16, "span_id": "cd" * 8, "trace_state": "a=b", "attributes": {"n": 1}},
                       {"trace_id": "", "span_id": None, "attributes": {"f": 1.5, "l": [1, "a"], "b": True}}]),
        _record(trace_state=None, scope_version=7, links=None),
        _record(start_ns=str(_NOW), end_ns=float(_NOW)),
        _record(end_ns=None),
        _record(start_ns=0),
        _record(start_ns="soon"),
        _record(end_ns=2**63),
        _record(trace_id="ABC"),
        _record(span_id="0" * 16),
        {"type": "metric", "name": "not a span"},
    ])  # fmt: skip


def test_prices_set_at_run_time_apply_to_both(th_env: th.Settings) -> None:
    th.set_model_price("house-model", 3.0, 7.0)
    _assert_same([_record(attributes={sc.REQUEST_MODEL: "House-Model-v2", sc.INPUT_TOKENS: 10, sc.OUTPUT_TOKENS: 3})])


def test_model_names_with_pattern_symbols_are_matched_literally(th_env: th.Settings) -> None:
    """The store matches price prefixes as patterns: a name's symbols must stay literal there."""
    th.set_model_price("acme+pro(x).*", 2.0, 4.0)
    usage = {sc.INPUT_TOKENS: 1_000, sc.OUTPUT_TOKENS: 10}
    models = ("acme+pro(x).*-2025", "acme+pro(x).*", "acmeepro(x).*-1", "acme+pro(x)ab-1", "ACME+PRO(X).*@b")
    records = [_record(attributes={sc.REQUEST_MODEL: model, **usage}) for model in models]
    _assert_same(records)
    got, _ = _sql(records)
    cost = SPAN_COLUMNS.index("cost_usd")
    costs = [got[r["span_id"]][cost] for r in records]
    assert [None if c is None else round(c, 8) for c in costs] == [0.00204, 0.00204, None, None, 0.00204]


_KEYS = sorted({
    sc.KIND, sc.OPENINFERENCE_KIND, sc.OPERATION, sc.INPUT_SIZE, sc.OUTPUT_SIZE, sc.COST_USD, sc.TTFT_MS, sc.RUN_ID,
    *rows._INPUT_KEYS, *rows._OUTPUT_KEYS, *rows._CONTEXT_KEYS, *rows._MODEL_KEYS, *rows._INPUT_TOKEN_KEYS,
    *rows._OUTPUT_TOKEN_KEYS, *rows._TOTAL_TOKEN_KEYS, *rows._PROVIDER_KEYS, *rows._SESSION_KEYS, *rows._USER_KEYS,
    "custom.a", "custom.b",
})  # fmt: skip
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_scalar = st.one_of(
    _text,
    st.sampled_from([*sc.SPAN_KINDS, "LLM", "Tool", "chat", "gpt-4o", "o1-mini", "180", "1e3", "12.5", "-3", " 5", ""]),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
_value = st.one_of(_scalar, st.lists(_scalar, max_size=3), st.dictionaries(_text, _scalar, max_size=3))
_event = st.fixed_dictionaries(
    {"name": _value, "time_ns": _value, "attributes": st.dictionaries(_text, _value, max_size=3)}
)
_link = st.fixed_dictionaries(
    {
        "trace_id": _scalar,
        "span_id": _scalar,
        "trace_state": _scalar,
        "attributes": st.dictionaries(_text, _value, max_size=3),
    }
)
_records = st.lists(
    st.builds(
        lambda attributes, events, links, name, status, start: _record(
            attributes=attributes,
            events=events,
            links=links,
            name=name,
            status=status,
            **({"start_ns": start} if start else {}),
        ),
        st.dictionaries(st.sampled_from(_KEYS), _value, max_size=8),
        st.lists(_event, max_size=2),
        st.lists(_link, max_size=2),
        _value,
        st.sampled_from(["ok", "error", "unset", 1]),
        st.one_of(st.none(), st.none(), _scalar),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=_records)
def test_made_up_records_map_the_same(th_env: th.Settings, records: list[dict[str, Any]]) -> None:
    _assert_same(records)


def test_a_batch_of_another_shape_is_left_to_the_python_mapping(th_env: th.Settings) -> None:
    """Records ClickHouse cannot read in the expected shape raise ValueError: the caller maps that
    batch in Python instead, which keeps the good records and rejects the bad ones one by one."""
    odd = [
        _record(attributes=[1, 2]),
        _record(events=["not an event"]),
        _record(events={"name": "not a list"}),
        _record(events=[{"attributes": ["not", "a", "map"]}]),
        _record(resource="svc"),
    ]
    for body in [orjson.dumps([r]) for r in odd] + [b"[1, 2]", b"not json", b'[{"type": "span"}']:
        with pytest.raises(ValueError):
            check_and_insert_json(get_store(), body, token=None)
    assert get_store().query_rows("SELECT count() FROM spans")[1] == [(0,)]


def test_batches_left_by_a_killed_process_are_removed_at_first_use(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from tracehouse.collector.store.rows.span_sql import _batch_directory

    leftover = tmp_path / "tracehouse_batches" / "tmp1234.json"
    leftover.parent.mkdir()
    leftover.write_bytes(b"[]")
    directory = _batch_directory(SimpleNamespace(url=f"chdb://{tmp_path}"))  # type: ignore[arg-type]
    assert directory == str(leftover.parent) and not leftover.exists() and leftover.parent.is_dir()


def test_provider_spellings_become_one_in_both_mappings(th_env: th.Settings) -> None:
    spellings = ["OpenAI", " openai", "openai", "OPENAI "]
    records = [_record(attributes={sc.SYSTEM: name, sc.REQUEST_MODEL: "gpt-4o-mini"}) for name in spellings]
    records.append(_record(attributes={"llm.provider": "Anthropic"}))
    _assert_same(records)  # the SQL fast path and the Python mapping agree
    got, _ = _python(orjson.loads(orjson.dumps(records)))
    providers = sorted(values[SPAN_COLUMNS.index("provider")] for values in got.values())
    assert providers == ["anthropic", "openai", "openai", "openai", "openai"]
