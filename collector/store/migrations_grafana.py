"""What Grafana's ClickHouse plugin reads in OTel mode: `otel_traces` and `otel_traces_trace_id_ts`.

Both are views over `spans` and `trace_times` in the OpenTelemetry Collector ClickHouse exporter's
shapes, so the plugin's trace search, its trace-by-id query (which narrows the time range through
`<table>_trace_id_ts`) and its links, trace state, scope version and status come back as the
exporter would have written them:

- `spans` gains what the exporter keeps and we did not: `status_code` (`unset` / `ok` / `error`;
  `status` stays `ok` / `error`, what the UI and the error filters read), `trace_state`,
  `scope_version`, the links (`link_trace_ids`, `link_span_ids`, `link_trace_states`,
  `link_attributes`, parallel arrays like the events') and the attribute each content column
  was taken from (`input_key`, `output_key`, `context_key`). Rows written before keep their old
  meaning: status `ok` or `error`, no links, content under `input.value` / `output.value` /
  `gen_ai.retrieval.documents`.
- `otel_traces.SpanAttributes` holds the span's attributes as sent: content (moved to the `input`,
  `output` and `context` columns when stored) is back under the key it came in, with the keys the
  mapping drops (`tracehouse.cost_usd`, sizes, time to first token, run id), plus
  `tracehouse.project`, `tracehouse.span.kind`, the model and the token counts as semantic-convention
  keys (`gen_ai.request.model`, `gen_ai.usage.input_tokens` / `output_tokens`) when the span
  carried them under another convention's name.
- `otel_traces_trace_id_ts` is the exporter's trace-id -> time lookup (`TraceId`, `Start`, `End`,
  seconds) read from `trace_times`; its `End` is the trace's end, not its last span's start, which
  bounds the same spans.

Plain ClickHouse SQL: valid on a server as on chDB.
"""

from __future__ import annotations

from tracehouse import _semconv as sc

_MAP = "Map(LowCardinality(String), String)"

_SPAN_COLUMNS = [
    "ALTER TABLE {db}.spans ADD COLUMN IF NOT EXISTS status_code LowCardinality(String)"
    " DEFAULT if(status = 'error', 'error', 'ok')",
    "ALTER TABLE {db}.spans ADD COLUMN IF NOT EXISTS trace_state String DEFAULT ''",
    "ALTER TABLE {db}.spans ADD COLUMN IF NOT EXISTS scope_version LowCardinality(String) DEFAULT ''",
    "ALTER TABLE {db}.spans ADD COLUMN IF NOT EXISTS link_trace_ids Array(String)",
    "ALTER TABLE {db}.spans ADD COLUMN IF NOT EXISTS link_span_ids Array(String)",
    "ALTER TABLE {db}.spans ADD COLUMN IF NOT EXISTS link_trace_states Array(String)",
    f"ALTER TABLE {{db}}.spans ADD COLUMN IF NOT EXISTS link_attributes Array({_MAP}) CODEC(ZSTD(1))",
    "ALTER TABLE {db}.spans ADD COLUMN IF NOT EXISTS input_key LowCardinality(String) DEFAULT ''",
    "ALTER TABLE {db}.spans ADD COLUMN IF NOT EXISTS output_key LowCardinality(String) DEFAULT ''",
    "ALTER TABLE {db}.spans ADD COLUMN IF NOT EXISTS context_key LowCardinality(String) DEFAULT ''",
]


def _key(name: str) -> str:
    return "'" + name + "'"  # attribute names of _semconv: no quotes or backslashes in them


def _entries(*entries: tuple[str, str, str]) -> str:
    """A map of the (condition, key, value) entries whose condition holds (SQL expressions all)."""
    body = ", ".join(f"if({condition}, {key}, ''), {value}" for condition, key, value in entries)
    return f"mapFilter((k, v) -> k != '', map({body}))"


def _content(column: str, default_key: str) -> tuple[str, str, str]:
    """A content column back under the attribute it came from (rows written before: `default_key`)."""
    key_column = f"{column}_key"
    return (
        f"({key_column} != '' OR {column} != '')",
        f"if({key_column} = '', {_key(default_key)}, toString({key_column}))",
        column,
    )


def _span_attributes() -> str:
    # derived keys the span's own attributes win over (a token count under another convention's name)
    derived = _entries(
        ("isNotNull(input_tokens)", _key(sc.INPUT_TOKENS), "toString(assumeNotNull(input_tokens))"),
        ("isNotNull(output_tokens)", _key(sc.OUTPUT_TOKENS), "toString(assumeNotNull(output_tokens))"),
    )
    has_input, has_output = "(input_key != '' OR input != '')", "(output_key != '' OR output != '')"
    # what the mapping moved out of the attributes, and tracehouse's own keys
    moved = _entries(
        ("1", _key("tracehouse.project"), "toString(project)"),
        ("1", _key(sc.KIND), "toString(kind)"),
        ("model != ''", _key(sc.REQUEST_MODEL), "toString(model)"),
        (has_input, _key(sc.INPUT_SIZE), "toString(input_size)"),
        (has_output, _key(sc.OUTPUT_SIZE), "toString(output_size)"),
        ("isNotNull(cost_usd)", _key(sc.COST_USD), "toString(assumeNotNull(cost_usd))"),
        ("isNotNull(time_to_first_token_ms)", _key(sc.TTFT_MS), "toString(assumeNotNull(time_to_first_token_ms))"),
        ("run_id != ''", _key(sc.RUN_ID), "run_id"),
        _content("input", sc.INPUT_VALUE),
        _content("output", sc.OUTPUT_VALUE),
        _content("context", sc.RETRIEVAL_DOCUMENTS),
    )
    return f"CAST(mapUpdate(mapUpdate({derived}, attributes), {moved}), '{_MAP}')"


_OTEL_TRACES = f"""
CREATE OR REPLACE VIEW {{db}}.otel_traces AS
SELECT
    start_time AS Timestamp,
    trace_id AS TraceId,
    span_id AS SpanId,
    parent_span_id AS ParentSpanId,
    trace_state AS TraceState,
    name AS SpanName,
    multiIf(span_kind = 'SERVER', 'Server', span_kind = 'CLIENT', 'Client', span_kind = 'PRODUCER', 'Producer',
            span_kind = 'CONSUMER', 'Consumer', 'Internal')::LowCardinality(String) AS SpanKind,
    service_name AS ServiceName,
    resource_attributes AS ResourceAttributes,
    CAST(scope_name, 'String') AS ScopeName,
    CAST(scope_version, 'String') AS ScopeVersion,
    {_span_attributes()} AS SpanAttributes,
    toUInt64(greatest(0, dateDiff('nanosecond', start_time, end_time))) AS Duration,
    multiIf(status_code = 'error', 'Error', status_code = 'ok', 'Ok', 'Unset')::LowCardinality(String) AS StatusCode,
    status_message AS StatusMessage,
    event_times AS `Events.Timestamp`,
    event_names AS `Events.Name`,
    event_attributes AS `Events.Attributes`,
    link_trace_ids AS `Links.TraceId`,
    link_span_ids AS `Links.SpanId`,
    link_trace_states AS `Links.TraceState`,
    link_attributes AS `Links.Attributes`,
    project
FROM {{db}}.spans
"""

_TRACE_ID_TS = """
CREATE OR REPLACE VIEW {db}.otel_traces_trace_id_ts AS
SELECT trace_id AS TraceId, toDateTime(start_time, 'UTC') AS Start, toDateTime(end_time, 'UTC') AS End, project
FROM {db}.trace_times
"""

GRAFANA_MIGRATIONS: list[tuple[str, list[str]]] = [
    ("grafana_0001_span_links_state_scope_status", _SPAN_COLUMNS),
    ("grafana_0002_otel_traces_faithful", [_OTEL_TRACES]),
    ("grafana_0003_otel_traces_trace_id_ts", [_TRACE_ID_TS]),
]

__all__ = ["GRAFANA_MIGRATIONS"]
