"""`GET /healthz` (the process answers), `GET /readyz` (the store answers), `GET /metrics` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from tracehouse.collector.http.deps import CollectorDep, error_response, json_response

router = APIRouter()


@router.get("/healthz")
def healthz() -> Response:
    """The collector is up."""
    return json_response({"status": "ok"})


@router.get("/readyz")
def readyz(collector: CollectorDep) -> Response:
    """The store answers; how many rows wait to be inserted."""
    if not collector.store.ping():
        return error_response(503, "the store does not answer", retry_after=5)
    return json_response({"status": "ready", "queued_rows": collector.writer.queued_rows + collector.backlog()})


@router.get("/metrics")
def metrics(collector: CollectorDep) -> Response:
    """Prometheus text: received, written, rejected, queue depth, inserts and their time."""
    stats, counters, follower = collector.writer.stats, collector.counters, collector.follower
    queued = collector.writer.queued_rows + collector.backlog()
    lines = [
        ("tracehouse_records_received_total", "counter", "Records accepted into the write queue", stats.received),
        ("tracehouse_records_written_total", "counter", "Records stored", stats.written),
        ("tracehouse_records_rejected_total", "counter", "Records refused (bad values)",
         stats.rejected + counters["spans_rejected_at_decode"]),
        ("tracehouse_requests_rejected_total", "counter", "Requests refused whole", counters["requests_rejected"]),
        ("tracehouse_overloaded_total", "counter", "Submissions refused with 503", stats.overloaded),
        ("tracehouse_queue_rows", "gauge", "Records accepted, not yet inserted", queued),
        ("tracehouse_inserts_total", "counter", "Inserts into the store", stats.inserts),
        ("tracehouse_insert_failures_total", "counter", "Inserts that failed", stats.failed_inserts),
        ("tracehouse_insert_seconds_total", "counter", "Time spent inserting", round(stats.insert_seconds, 6)),
        ("tracehouse_spool_damaged_bytes_total", "counter", "Unreadable spool bytes skipped",
         follower.damaged_bytes if follower else 0),
        ("tracehouse_spool_set_aside_total", "counter", "Spool ranges refused for good, kept in quarantine/",
         follower.set_aside if follower else 0),
    ]  # fmt: skip
    forwarder = collector.forwarder
    if forwarder is not None:  # `serve --forward-otlp`
        lines += [
            ("tracehouse_forward_sent_total", "counter", "OTLP requests forwarded", forwarder.sent),
            ("tracehouse_forward_failed_total", "counter", "OTLP requests the forward endpoint refused for good (4xx)",
             forwarder.failed),
            ("tracehouse_forward_retries_total", "counter", "Forward sends that failed for now and were retried",
             forwarder.retries),
            ("tracehouse_forward_dropped_total", "counter", "OTLP requests not forwarded: the queue on disk was full",
             forwarder.dropped),
            ("tracehouse_forward_queue", "gauge", "OTLP requests waiting to be forwarded", forwarder.queued),
            ("tracehouse_forward_queue_bytes", "gauge", "Bytes on disk of the OTLP requests waiting to be forwarded",
             forwarder.queued_bytes),
        ]  # fmt: skip
    text = "".join(f"# HELP {n} {h}\n# TYPE {n} {t}\n{n} {v}\n" for n, t, h, v in lines)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


__all__ = ["router"]
