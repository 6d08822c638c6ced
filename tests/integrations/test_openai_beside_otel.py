"""`th.instrument_openai()` beside OpenTelemetry's openai-v2 instrumentation: one chat span per call, either order."""

from __future__ import annotations

import logging
from typing import Any, Iterator

import pytest

openai = pytest.importorskip("openai")
openai_v2 = pytest.importorskip("opentelemetry.instrumentation.openai_v2")

from openai_server import OpenAIServer  # noqa: E402

import tracehouse as th  # noqa: E402
from tracehouse.integrations.openai import foreign  # noqa: E402
from tracehouse.testing import CapturedSpans  # noqa: E402

QUESTION = [{"role": "user", "content": "How often rotate keys?"}]


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    running = OpenAIServer()
    yield running
    running.stop()


@pytest.fixture
def otel_openai() -> Iterator[Any]:
    """OpenTelemetry's OpenAIInstrumentor, undone after the test."""
    instrumentor = openai_v2.OpenAIInstrumentor()
    yield instrumentor
    instrumentor.uninstrument()
    th.uninstrument_openai()


def _chat(server: OpenAIServer) -> None:
    client = openai.OpenAI(base_url=server.url, api_key="test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tracehouse" and text in r.getMessage()]


def test_openai_v2_first_then_instrument_openai_skips_with_one_warning(
    server: OpenAIServer, spans: CapturedSpans, otel_openai: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from openai.resources.chat.completions import Completions

    otel_openai.instrument()
    otel_wrapper = vars(Completions)["create"]
    caplog.set_level(logging.WARNING, logger="tracehouse")
    handle = th.instrument_openai()
    assert not handle.active and vars(Completions)["create"] is otel_wrapper, "nothing wrapped twice"
    (warning,) = _warnings(caplog, "already traced by")
    assert "openai-v2" in warning and "OpenAIInstrumentor().uninstrument()" in warning
    _chat(server)
    assert spans.names() == ["chat gpt-4o-mini"], "one call, one chat span"
    row = spans[0]
    assert row["scope_name"].startswith("opentelemetry.") and row["span_kind"] == "CLIENT"
    assert row["model"] == "gpt-4o-mini" and row["provider"] == "openai"


def test_instrument_openai_first_then_openai_v2_defers_to_its_span(
    server: OpenAIServer, spans: CapturedSpans, otel_openai: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tracehouse")
    monkey = pytest.MonkeyPatch()
    monkey.setattr(foreign, "_deferred_warned", False)
    try:
        handle = th.instrument_openai()
        assert handle.active
        otel_openai.instrument()  # wraps tracehouse's wrapper
        _chat(server)
        _chat(server)
    finally:
        monkey.undo()
    assert spans.names() == ["chat gpt-4o-mini", "chat gpt-4o-mini"], "one chat span per call"
    assert {row["scope_name"] for row in spans} == {spans[0]["scope_name"]} != {"tracehouse"}
    assert len(_warnings(caplog, "instrumented after th.instrument_openai()")) == 1


def test_uninstrument_leaves_a_later_wrapper_in_place_and_stops_recording(
    server: OpenAIServer, spans: CapturedSpans, otel_openai: Any
) -> None:
    from openai.resources.chat.completions import Completions

    handle = th.instrument_openai()
    otel_openai.instrument()
    otel_wrapper = vars(Completions)["create"]
    handle.uninstrument()
    assert vars(Completions)["create"] is otel_wrapper, "openai-v2's wrapper is not torn out"
    _chat(server)
    assert spans.names() == ["chat gpt-4o-mini"] and spans[0]["scope_name"] != "tracehouse"
