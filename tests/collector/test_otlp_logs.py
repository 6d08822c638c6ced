"""OTLP logs and metrics over HTTP and gRPC against a real `tracehouse serve`: GenAI events fold into
their span's input and output whichever arrives first, other logs show on their span (escaped)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Iterator

import grpc
import pytest
from servers import Collector, free_port

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN_A, SPAN_B, SPAN_C = "eee19b7ec3c1b174", "eee19b7ec3c1b175", "eee19b7ec3c1b176"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Collector, int]]:
    grpc_port = free_port()
    collector = Collector(tmp_path_factory.mktemp("logs"), free_port(), "--grpc-port", str(grpc_port))
    collector.start()
    yield collector, grpc_port
    assert collector.stop() == 0


def _post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": _value(v)} for k, v in value.items()]}}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    if isinstance(value, int):
        return {"intValue": str(value)}
    return {"stringValue": value}


def _log(event: str, body: Any, span_id: str, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "timeUnixNano": str(time.time_ns()),
        "eventName": event,
        "traceId": TRACE,
        "spanId": span_id,
        "body": _value(body),
        "attributes": [{"key": k, "value": _value(v)} for k, v in (attributes or {}).items()],
    }


def _logs_body(*records: dict[str, Any]) -> bytes:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "chat-app"}}]}
    return json.dumps(
        {
            "resourceLogs": [
                {"resource": resource, "scopeLogs": [{"scope": {"name": "openai-v2"}, "logRecords": list(records)}]}
            ]
        }
    ).encode()


def _span(span_id: str, name: str, attributes: dict[str, Any] | None = None) -> bytes:
    now = time.time_ns()
    span = {
        "traceId": TRACE,
        "spanId": span_id,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": str(now - 10**9),
        "endTimeUnixNano": str(now),
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            *({"key": k, "value": _value(v)} for k, v in (attributes or {}).items()),
        ],
    }
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


def _grpc_logs(port: int, records: list[dict[str, Any]]) -> None:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub

    from tracehouse.collector.otlp.signals import _ids_to_base64

    request = json_format.ParseDict(_ids_to_base64(json.loads(_logs_body(*records))), ExportLogsServiceRequest())
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        response = LogsServiceStub(channel).Export(request, timeout=30)  # type: ignore[no-untyped-call]
    assert not response.partial_success.rejected_log_records


def _trace(collector: Collector) -> dict[str, dict[str, Any]]:
    with urllib.request.urlopen(f"{collector.url}/api/v1/traces/{TRACE}", timeout=30) as answer:
        tree = json.loads(answer.read())
    spans: dict[str, dict[str, Any]] = {}

    def walk(node: dict[str, Any]) -> None:
        if node.get("span_id"):
            spans[node["span_id"]] = node
        for child in node.get("children", []):
            walk(child)

    walk(tree)
    return spans


def test_genai_events_fold_into_their_span_whether_before_or_after_it(served: tuple[Collector, int]) -> None:
    collector, port = served
    # A: its events (older conventions, n=2) arrive over HTTP JSON before the span
    events_a = [
        _log("gen_ai.system.message", {"content": "You are terse."}, SPAN_A, {"gen_ai.system": "openai"}),
        _log("gen_ai.user.message", {"content": "Rotate keys?"}, SPAN_A),
        _log(
            "gen_ai.choice",
            {"index": 1, "finish_reason": "stop", "message": {"role": "assistant", "content": "No."}},
            SPAN_A,
        ),
        _log(
            "gen_ai.choice",
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Yes."}},
            SPAN_A,
        ),
    ]
    assert _post(f"{collector.url}/v1/logs", _logs_body(*events_a)) == (200, b"{}")
    assert _post(f"{collector.url}/v1/traces", _span(SPAN_A, "chat gpt-4o"))[0] == 200
    # B: the span first, then one current-convention event over gRPC
    assert _post(f"{collector.url}/v1/traces", _span(SPAN_B, "chat gpt-4o-mini"))[0] == 200
    parts_in = [{"role": "user", "parts": [{"type": "text", "content": "Summarise <b>this</b>"}]}]
    parts_out = [{"role": "assistant", "parts": [{"type": "text", "content": "Short."}], "finish_reason": "stop"}]
    _grpc_logs(
        port,
        [
            _log(
                "gen_ai.client.inference.operation.details",
                None,
                SPAN_B,
                {"gen_ai.input.messages": json.dumps(parts_in), "gen_ai.output.messages": json.dumps(parts_out)},
            )
        ],
    )
    # C: a span with its own input keeps it
    assert _post(f"{collector.url}/v1/traces", _span(SPAN_C, "chat own", {"input.value": "mine"}))[0] == 200
    _grpc_logs(port, [_log("gen_ai.user.message", {"content": "not this"}, SPAN_C)])

    spans = _trace(collector)
    assert json.loads(spans[SPAN_A]["input"]) == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Rotate keys?"},
    ]
    assert json.loads(spans[SPAN_A]["output"]) == [
        {"role": "assistant", "content": "Yes.", "finish_reason": "stop"},
        {"role": "assistant", "content": "No.", "finish_reason": "stop"},
    ]
    assert spans[SPAN_A]["logs"] == []  # folded events are not listed again
    assert json.loads(spans[SPAN_B]["input"]) == [{"role": "user", "content": "Summarise <b>this</b>"}]
    assert spans[SPAN_B]["output"] == "Short."
    assert spans[SPAN_C]["input"] == "mine"

    with urllib.request.urlopen(f"{collector.url}/traces/{TRACE}?span={SPAN_A}", timeout=30) as answer:
        page = answer.read().decode()
    assert 'id="conversation"' in page and "Rotate keys?" in page and "You are terse." in page


def test_other_logs_show_on_their_span_escaped(served: tuple[Collector, int]) -> None:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    collector, _ = served
    request = ExportLogsServiceRequest()
    record = (
        request.resource_logs.add()
        .scope_logs.add()
        .log_records.add(
            time_unix_nano=time.time_ns(),
            severity_text="ERROR",
            severity_number=17,
            trace_id=bytes.fromhex(TRACE),
            span_id=bytes.fromhex(SPAN_B),
        )
    )
    record.body.string_value = "<script>alert(1)</script>"
    attribute = record.attributes.add(key="<img src=x onerror=alert(2)>")
    attribute.value.string_value = "v"
    status, answer = _post(f"{collector.url}/v1/logs", request.SerializeToString(), "application/x-protobuf")
    assert status == 200 and answer == b""  # an ExportLogsServiceResponse without partial_success
    logs = _trace(collector)[SPAN_B]["logs"]
    assert [(log["severity"], log["body"]) for log in logs] == [("ERROR", "<script>alert(1)</script>")]
    with urllib.request.urlopen(f"{collector.url}/traces/{TRACE}?span={SPAN_B}", timeout=30) as page_answer:
        page = page_answer.read().decode()
    assert 'id="span-logs"' in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page and "<img src=x" not in page


def test_bad_log_and_metric_requests_get_clear_answers(served: tuple[Collector, int]) -> None:
    collector, _ = served
    assert _post(f"{collector.url}/v1/logs", b"{}", "text/plain")[0] == 415
    status, body = _post(f"{collector.url}/v1/logs", b'{"resourceLogs": [')
    assert status == 400 and b"malformed OTLP JSON" in body
    status, body = _post(f"{collector.url}/v1/metrics", b'{"resourceMetrics": {"x": 1}}')
    assert status == 400 and b"malformed OTLP JSON" in body
    bad_id = {**_log("app.event", "x", SPAN_A), "traceId": "abcd"}
    old = {**_log("app.event", "y", SPAN_A), "timeUnixNano": "5"}
    status, body = _post(f"{collector.url}/v1/logs", _logs_body(bad_id, old))
    answer = json.loads(body)
    assert status == 200 and answer["partialSuccess"]["rejectedLogRecords"] == 2
    assert "trace_id is 2 bytes" in answer["partialSuccess"]["errorMessage"]
    assert "before the year 2000" in answer["partialSuccess"]["errorMessage"]


def test_otlp_json_metrics_over_http_sit_beside_spans_in_sql(served: tuple[Collector, int]) -> None:
    collector, _ = served
    now = str(time.time_ns())
    body = {
        "resourceMetrics": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "m"}}]},
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "gen_ai.client.operation.duration",
                                "unit": "s",
                                "histogram": {
                                    "aggregationTemporality": 2,
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": now,
                                            "count": "2",
                                            "sum": 1.5,
                                            "bucketCounts": ["1", "1"],
                                            "explicitBounds": [1.0],
                                            "min": 0.5,
                                            "max": 1.0,
                                            "attributes": [
                                                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}
                                            ],
                                            "exemplars": [
                                                {
                                                    "timeUnixNano": now,
                                                    "asDouble": 1.0,
                                                    "traceId": TRACE,
                                                    "spanId": SPAN_A,
                                                }
                                            ],
                                        }
                                    ],
                                },
                            },
                            {
                                "name": "calls",
                                "sum": {
                                    "isMonotonic": True,
                                    "aggregationTemporality": 1,
                                    "dataPoints": [{"timeUnixNano": now, "asInt": "5"}],
                                },
                            },
                        ]
                    }
                ],
            }
        ]
    }
    assert _post(f"{collector.url}/v1/metrics", json.dumps(body).encode()) == (200, b"{}")
    rows = collector.query(  # the metric's exemplar leads to its span: one SQL over both
        "SELECT h.Attributes['gen_ai.request.model'], h.Count, h.Sum, h.BucketCounts, s.name, "
        "(SELECT Value FROM otel_metrics_sum WHERE MetricName = 'calls') "
        "FROM otel_metrics_histogram AS h ARRAY JOIN h.`Exemplars.SpanId` AS exemplar_span "
        "LEFT JOIN spans AS s ON s.span_id = exemplar_span WHERE h.MetricName = 'gen_ai.client.operation.duration'"
    )
    assert rows == [["gpt-4o", 2, 1.5, [1, 1], "chat gpt-4o", 5.0]]
