"""What both OTLP decoders share: the errors, the result of one request and the per-span checks.

`OtlpError` refuses a request as a whole, with the HTTP status to answer; `_SpanError` refuses one
span, which `DecodedSpans.reject` counts (for OTLP `partial_success`). The OTLP enum tables (span
kinds, status codes) and the limits on ids and timestamps are the same for protobuf and JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tracehouse._errors import TracehouseError

MAX_ERRORS = 20
_PROJECT_KEY = "tracehouse.project"
_MIN_TIME_NS = 946_684_800 * 10**9  # 2000-01-01T00:00:00Z
_MAX_TIME_NS = 2**63 - 1
_FUTURE_SLACK_NS = 86_400 * 10**9  # one day ahead of the collector's clock
_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)
_SPAN_KINDS = ("INTERNAL", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")  # by OTLP number
_SPAN_KIND_NAMES = {f"SPAN_KIND_{name}": number for number, name in enumerate(_SPAN_KINDS)}
_SPAN_KIND_NAMES["SPAN_KIND_UNSPECIFIED"] = 0
_STATUSES = ("unset", "ok", "error")  # by OTLP number
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


class OtlpError(TracehouseError):
    """A payload the collector must refuse as a whole; `status` is the HTTP status to answer with.

    400: malformed protobuf or JSON; 413: too large (after decompression); 415: unsupported
    content type or content encoding.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class DecodedSpans:
    """The span records of one request, and the spans refused individually."""

    records: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)  # one short reason per rejected span, at most MAX_ERRORS

    def reject(self, name: Any, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(f"span {str(name)[:100]!r}: {reason}")


class _SpanError(ValueError):
    """One span cannot be accepted (the others can)."""


# -- per-span checks ------------------------------------------------------------------------------


def _project(resource: dict[str, Any], default_project: str) -> str:
    project = resource.get(_PROJECT_KEY)
    return project if isinstance(project, str) and project else default_project


def _bad_times(start_ns: int, end_ns: int, max_ns: int) -> str:
    """Why a span's start/end times are refused ("" when they are fine)."""
    if start_ns < _MIN_TIME_NS:
        return f"start time {start_ns} ns is missing or before the year 2000"
    if end_ns < start_ns:
        return f"end time {end_ns} ns is before the start time {start_ns} ns"
    if end_ns > max_ns:
        return f"end time {end_ns} ns is more than a day in the future"
    return ""
