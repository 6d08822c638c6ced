"""The span mapping of `collector/store/rows/spans.py`, run inside ClickHouse: JSON span records in, `spans` rows out.

The embedded store's fast path. Spool frames and the collector's record batches are JSON arrays of
span records; parsing and mapping them in Python costs more than everything else on the way to the
store, so for the embedded engine the bytes go to chDB as they are: one query validates them (counts,
reasons, projects) and one `INSERT ... SELECT` maps and stores them, both without the GIL.

The SQL is generated from the key tables of `collector/store/rows/spans.py`, and tests/test_span_mapping.py checks
that both mappings give the same rows for the same records. Scalars are read as their JSON text
(`input_format_json_read_*_as_strings`), which is also how `collector/store/rows/spans.py` reads numbers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from tracehouse import _semconv as sc
from tracehouse.collector.store.pricing import price_table
from tracehouse.collector.store.rows import spans as rows
from tracehouse.collector.store.rows.runs import RUN_RECORD_TYPES

if TYPE_CHECKING:
    from tracehouse.collector.ingest.spool import JsonBody
    from tracehouse.collector.store.store import Store

_STRUCTURE = (
    "type String, project String, name String, trace_id String, span_id String, parent_span_id String, "
    "start_ns String, end_ns String, status String, status_message String, attributes Map(String, String), "
    "events Array(Tuple(name String, time_ns String, attributes Map(String, String))), "
    "span_kind String, scope String, resource Map(String, String), trace_state String, scope_version String, "
    "links Array(Tuple(trace_id String, span_id String, trace_state String, attributes Map(String, String)))"
)
JSON_SETTINGS = {
    "input_format_json_read_numbers_as_strings": 1,
    "input_format_json_read_bools_as_strings": 1,
    "input_format_json_read_arrays_as_strings": 1,
    "input_format_json_read_objects_as_strings": 1,
    "input_format_null_as_default": 1,
    "input_format_skip_unknown_fields": 1,
}
_MAX_UINT64_AS_FLOAT = "18446744073709551616."
_MAX_TIME_NS = rows._MAX_TIME_NS
_NO_PRICE = 4294967295  # above any index of the price list
_PARSE_ERRORS = (
    "InputFormat",
    "CANNOT_PARSE",
    "CANNOT_READ",
    "Cannot parse",
    "INCORRECT_DATA",
    "while reading the value",
)


def _quote(text: str) -> str:
    """A constant of the generated SQL (attribute names from the key tables, never user input)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _tuple(values: Any) -> str:
    return "(" + ", ".join(_quote(v) for v in values) + ")"


def _array(values: Any) -> str:
    return "[" + ", ".join(_quote(v) for v in values) + "]"


def _count(text: str) -> str:
    """SQL for rows/spans.py _as_count over a JSON text: Nullable(UInt64)."""
    return (
        f"multiIf(match({text}, '^[0-9]+$'), toUInt64OrNull({text}), "
        f"match({text}, '^{rows.COUNT_PATTERN}$') AND toFloat64OrZero({text}) < {_MAX_UINT64_AS_FLOAT}, "
        f"toUInt64(floor(toFloat64OrZero({text}))), NULL)"
    )


def _number(text: str) -> str:
    """SQL for rows/spans.py _as_float over a JSON text: Nullable(Float64)."""
    return f"if(match({text}, '^{rows.NUMBER_PATTERN}$'), toFloat64OrNull({text}), NULL)"


def _first(keys: tuple[str, ...], value: str = "a[{k}]", default: str = "''") -> str:
    """The value of the first key present in the attributes (present, even when empty)."""
    branches = ", ".join(f"mapContains(a, {_quote(k)}), {value.format(k=_quote(k))}" for k in keys)
    return f"multiIf({branches}, {default})"


_NONE = "'\\0'"  # no such attribute (a key no attribute has)


def _select() -> str:
    kinds = _tuple(sc.SPAN_KINDS)
    inference = f"upperUTF8(a[{_quote(sc.OPENINFERENCE_KIND)}])"
    inference_from, inference_to = (_array(side) for side in zip(*rows._OPENINFERENCE_TO_KIND.items(), strict=True))
    operation = f"a[{_quote(sc.OPERATION)}]"
    operation_from, operation_to = (_array(side) for side in zip(*rows._OPERATION_TO_KIND.items(), strict=True))
    preview = rows.PREVIEW_CHARS
    event_time = _count("e.time_ns")
    return f"""
SELECT
  if(project = '', 'default', project), trace_id, span_id, parent_span_id, name,
  multiIf(a[{_quote(sc.KIND)}] IN {kinds}, a[{_quote(sc.KIND)}],
          has({inference_from}, {inference}), transform({inference}, {inference_from}, {inference_to}, ''),
          has({operation_from}, {operation}), transform({operation}, {operation_from}, {operation_to}, ''),
          'function'),
  if(span_kind = '', 'INTERNAL', span_kind), resource['service.name'], scope,
  fromUnixTimestamp64Nano(toInt64(start_)), fromUnixTimestamp64Nano(toInt64(end_)), (end_ - start_) / 1e6,
  if(status = 'error', 'error', 'ok'), status_message,
  input_, ifNull({_count(f"a[{_quote(sc.INPUT_SIZE)}]")}, length(input_)), substringUTF8(input_, 1, {preview}),
  output_, ifNull({_count(f"a[{_quote(sc.OUTPUT_SIZE)}]")}, length(output_)), substringUTF8(output_, 1, {preview}),
  {_first(rows._CONTEXT_KEYS)},
  model_, lower(trimBoth({_first(rows._PROVIDER_KEYS)})),  -- rows.provider_name
  input_tokens_, output_tokens_,
  if(isNull(total_tokens_) AND (isNotNull(input_tokens_) OR isNotNull(output_tokens_))
       AND ifNull(input_tokens_, 0) + ifNull(output_tokens_, 0) >= ifNull(input_tokens_, 0),
     ifNull(input_tokens_, 0) + ifNull(output_tokens_, 0), total_tokens_),
  multiIf(isNotNull(cost_), cost_,
          model_ = '' OR (isNull(input_tokens_) AND isNull(output_tokens_)) OR price_ = 0, NULL,
          (ifNull(input_tokens_, 0) * {{input_prices:Array(Float64)}}[price_]
           + ifNull(output_tokens_, 0) * {{output_prices:Array(Float64)}}[price_]) / 1000000),
  {_number(f"a[{_quote(sc.TTFT_MS)}]")},
  mapFilter((k, v) -> k NOT IN {_tuple(sorted(rows._DROPPED_KEYS))}
                      AND k != input_key_ AND k != output_key_ AND k != context_key_, a),
  resource,
  arrayMap(e -> fromUnixTimestamp64Nano(toInt64(
    if(ifNull({event_time}, 0) = 0 OR {event_time} > {_MAX_TIME_NS}, start_, {event_time}))), events),
  arrayMap(e -> e.name, events), arrayMap(e -> e.attributes, events),
  a[{_quote(sc.RUN_ID)}], {_first(rows._SESSION_KEYS)}, {_first(rows._USER_KEYS)},
  multiIf(status = 'error', 'error', status = 'ok', 'ok', 'unset'), trace_state, scope_version,
  arrayMap(l -> l.trace_id, links), arrayMap(l -> l.span_id, links), arrayMap(l -> l.trace_state, links),
  arrayMap(l -> l.attributes, links),
  if(input_key_ = '\\0', '', input_key_), if(output_key_ = '\\0', '', output_key_),
  if(context_key_ = '\\0', '', context_key_)
FROM (
  SELECT *, attributes AS a,
    -- the key each text column is taken from ('\\0' when none: no attribute is removed then)
    {_first(rows._INPUT_KEYS, value="{k}", default=_NONE)} AS input_key_,
    {_first(rows._OUTPUT_KEYS, value="{k}", default=_NONE)} AS output_key_,
    {_first(rows._CONTEXT_KEYS, value="{k}", default=_NONE)} AS context_key_,
    {_first(rows._INPUT_KEYS)} AS input_, {_first(rows._OUTPUT_KEYS)} AS output_,
    {_first(rows._MODEL_KEYS)} AS model_,
    {_first(rows._INPUT_TOKEN_KEYS, value=_count("a[{k}]"), default="NULL")} AS input_tokens_,
    {_first(rows._OUTPUT_TOKEN_KEYS, value=_count("a[{k}]"), default="NULL")} AS output_tokens_,
    {_first(rows._TOTAL_TOKEN_KEYS, value=_count("a[{k}]"), default="NULL")} AS total_tokens_,
    {_number(f"a[{_quote(sc.COST_USD)}]")} AS cost_,
    arrayElement(splitByChar('/', lowerUTF8(model_)), -1) AS price_name_,
    if(indexOf({{price_models:Array(String)}}, price_name_) > 0, indexOf({{price_models:Array(String)}}, price_name_),
       -- else the longest known prefix followed by - @ : . (the list is longest first); one multi-pattern
       -- scan per row: a lambda over the list cost more than the rest of the price lookup together
       toUInt64(arrayMin(arrayConcat([{_NO_PRICE}],
                                     multiMatchAllIndices(price_name_, {{price_prefixes:Array(String)}}))))
         % {_NO_PRICE}) AS price_,
    {_VALIDITY}
  FROM {{source}}
)
WHERE type = 'span' AND reason_ = ''
"""


_ID = "(length({c}) = {n} AND match({c}, '^[0-9a-f]+$') AND {c} != repeat('0', {n}))"
_VALIDITY = f"""{_count("start_ns")} AS start_,
    if(end_ns = '', toUInt64(0), {_count("end_ns")}) AS end_raw_,
    greatest(ifNull(end_raw_, 0), ifNull(start_, 0)) AS end_,
    multiIf(NOT ({_ID.format(c="trace_id", n=32)} AND {_ID.format(c="span_id", n=16)}),
              'trace_id/span_id missing or not lowercase hex',
            isNull(start_) OR isNull(end_raw_) OR NOT (start_ > 0 AND end_ <= {_MAX_TIME_NS}),
              concat('start/end time out of range: ', start_ns, '..', end_ns, ' (ns since the epoch)'),
            '') AS reason_"""

_INSERT_COLUMNS = ", ".join(rows.SPAN_COLUMNS)
_SELECT = _select()
_RUN_TYPES = ", ".join(f"'{t}'" for t in RUN_RECORD_TYPES)
_CHECK = f"""
SELECT countIf(type = 'span'), countIf(type = 'span' AND reason_ != ''),
       groupArrayIf(20)(concat('span ', name, ': ', reason_), type = 'span' AND reason_ != ''),
       groupUniqArrayIf(20)(if(project = '', 'default', project), type = 'span'), count(),
       countIf(type IN ({_RUN_TYPES}))
FROM (SELECT type, name, project, trace_id, span_id, start_ns, end_ns, {_VALIDITY} FROM {{source}})
"""


@dataclass
class JsonBatchResult:
    """What a JSON batch held and what became of it."""

    spans: int = 0
    rejected: list[str] = field(default_factory=list)  # one reason per refused span
    unknown_types: int = 0
    projects: list[str] = field(default_factory=list)


_ready_directories: set[str] = set()
_directory_lock = threading.Lock()


def _batch_directory(store: Store) -> str:
    """Where batches wait for chDB's file() to read them; leftovers of a killed process are removed.

    Only this process can have the embedded store open, so at its first use every file there is
    an orphan.
    """
    directory = os.path.join(store.url[len("chdb://") :], "tracehouse_batches")  # not chDB's own tmp/
    if directory not in _ready_directories:
        with _directory_lock:
            if directory not in _ready_directories:
                shutil.rmtree(directory, ignore_errors=True)
                os.makedirs(directory, exist_ok=True)
                _ready_directories.add(directory)
    return directory


def _parameters() -> dict[str, Any]:
    models, input_prices, output_prices = price_table()
    prefixes = ["^" + _literal_pattern(model) + "([-@:.]|$)" for model in models]
    return {"price_models": models, "price_prefixes": prefixes, "input_prices": input_prices,
            "output_prices": output_prices}  # fmt: skip


def _literal_pattern(text: str) -> str:
    """`text` as a regular expression that matches it literally (a backslash makes any ASCII symbol literal)."""
    return "".join(c if c.isalnum() or not c.isascii() else "\\" + c for c in text)


def check_and_insert_json(
    store: Store, body: JsonBody, token: Optional[str], allowed_project: Optional[str] = None
) -> JsonBatchResult:
    """Validate and insert a JSON array of span records in the embedded store, mapped by ClickHouse.

    Raises ValueError when the body is not an array of records of the expected shape (the caller
    then maps it in Python, record by record), PermissionError when it holds a project other than
    `allowed_project`, and StoreError when the store fails.
    """
    from tracehouse._errors import StoreError

    directory = _batch_directory(store)
    handle, path = tempfile.mkstemp(suffix=".json", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            if isinstance(body, bytes):
                out.write(body)
            else:
                body.write_to(out)
        source = f"file({_quote(path)}, 'JSONEachRow', {_quote(_STRUCTURE)})"
        try:
            _, found = store.query_rows(_CHECK.replace("{source}", source), settings=JSON_SETTINGS)
        except StoreError as error:
            raise ValueError(f"not a JSON array of span records: {error}") from error
        spans, refused, reasons, projects, records, run_records = found[0]
        if run_records:
            raise ValueError("the batch holds run records: mapped in Python (see collector/store/rows/runs.py)")
        result = JsonBatchResult(
            spans=int(spans),
            rejected=list(reasons) + ["rejected (reason not kept)"] * (int(refused) - len(reasons)),
            unknown_types=int(records) - int(spans),
            projects=sorted(projects),
        )
        if allowed_project is not None and set(result.projects) - {allowed_project}:
            raise PermissionError(sorted(set(result.projects) - {allowed_project}))
        if spans > refused:
            settings: dict[str, Any] = dict(JSON_SETTINGS)
            if token:
                settings["insert_deduplication_token"] = token
            try:
                store.command(
                    f"INSERT INTO spans ({_INSERT_COLUMNS}) " + _SELECT.replace("{source}", source),
                    parameters=_parameters(),
                    settings=settings,
                )
            except StoreError as error:
                # The check read only the fields it needs; a bad shape elsewhere (attributes that are
                # not an object, say) shows here, before any row is written (one block per batch).
                if any(sign in f"{error} {error.__cause__}" for sign in _PARSE_ERRORS):
                    raise ValueError(f"not a JSON array of span records: {error}") from error
                raise
        return result
    finally:
        os.unlink(path)
