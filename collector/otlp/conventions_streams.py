"""Streamed calls: the time to first token from foreign data, and one event for a stream's chunks.

Called from `conventions.normalise_span` for every span record; `tracehouse.time_to_first_token_ms`
(what tracehouse's own hooks write) is never overwritten.

- GenAI attributes in seconds: `gen_ai.response.time_to_first_chunk` (util-genai's name) and
  `gen_ai.server.time_to_first_token` (the GenAI metric's, when an instrumentation puts it on its span).
- Events: OpenInference's `First Token Stream Event`; the first of OpenLLMetry's chunk events
  (`gen_ai.content.completion.chunk`, formerly `llm.content.completion.chunk`), one per chunk.
- OpenLLMetry's chunk events are folded into one, at the first chunk's time, whose attributes are
  the first chunk's plus `chunks` (how many) and `last_chunk_time_unix_nano`.
"""

from __future__ import annotations

import math
from typing import Any

from tracehouse import _semconv as sc

TTFT_SECONDS = ("gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token")
FIRST_TOKEN_EVENTS = frozenset(("First Token Stream Event",))
CHUNK_EVENTS = frozenset(("gen_ai.content.completion.chunk", "llm.content.completion.chunk"))
_EVENTS = FIRST_TOKEN_EVENTS | CHUNK_EVENTS


def normalise_span(record: dict[str, Any]) -> None:
    """TTFT and folded chunk events of one span record (in place)."""
    attributes = record["attributes"]
    events = record.get("events")
    if sc.TTFT_MS not in attributes:
        for key in TTFT_SECONDS:
            seconds = attributes.get(key)
            number = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
            if number and math.isfinite(seconds) and seconds >= 0:
                attributes[sc.TTFT_MS] = seconds * 1000.0
                break
    if not events or not any(isinstance(e, dict) and e.get("name") in _EVENTS for e in events):
        return
    start, end = record.get("start_ns"), record.get("end_ns")
    if sc.TTFT_MS not in attributes and isinstance(start, int) and isinstance(end, int):
        first = next((e for e in events if e.get("name") in _EVENTS and isinstance(e.get("time_ns"), int)), None)
        if first is not None and start <= first["time_ns"] <= end:  # a first token outside the call is none
            attributes[sc.TTFT_MS] = (first["time_ns"] - start) / 1e6
    record["events"] = fold_chunks(events)


def fold_chunks(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events with each name of chunk events folded into one, where its first chunk was."""
    out: list[dict[str, Any]] = []
    folded: dict[str, dict[str, Any]] = {}
    for event in events:
        name = event.get("name")
        if name not in CHUNK_EVENTS:
            out.append(event)
            continue
        kept = folded.get(name)
        if kept is None:
            kept = folded[name] = {**event, "attributes": {**(event.get("attributes") or {}), "chunks": 0}}
            out.append(kept)
        kept["attributes"]["chunks"] += 1
        kept["attributes"]["last_chunk_time_unix_nano"] = event.get("time_ns")
    return out


__all__ = ["CHUNK_EVENTS", "FIRST_TOKEN_EVENTS", "TTFT_SECONDS", "fold_chunks", "normalise_span"]
