"""The peers of `llm_hooks.py` and both ends of the lockstep protocol that drives them.

A child holds one peer in a fresh interpreter. It sets the peer up, warms up, then answers one command
per line on stdin with one marked JSON line on stdout (`_common.emit`): ``start SHAPE`` (flush, then
open a timed phase), ``call SHAPE N`` (N calls in a row, timed by the child itself), ``stop SHAPE`` (the final
flush, timed; returns the phase's figures) and ``quit`` (one marked probe call per shape to see what its
span recorded; returns that and the peak RSS). Standard library at import time, like `_common`: each peer
imports what it instruments when it is set up.
"""

from __future__ import annotations

import gc
import json
import os
import select
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from _common import RESULT_MARKER, emit, own_peak_rss_mb

PEERS = ("bare", "tracehouse", "otel-openai-v2", "openllmetry")
SHAPES = ("plain", "stream", "stream-usage")
MODEL = "gpt-4o-mini"
PROMPT = "How often should the API keys of the billing service be rotated?"
ANSWER = "Rotate keys every 90 days."  # what tests/openai_server.py answers to any chat request, streamed or not

Call = Callable[[str], str]  # prompt -> the answer's text


# ---------------------------------------------------------------------------------------------
# the peers
# ---------------------------------------------------------------------------------------------
@dataclass
class Hooks:
    """What a peer installed: flush what it buffered, count the spans it delivered, find one it recorded."""

    flush: Callable[[], object]
    delivered: Callable[[], int]
    find: Callable[[str], Optional[str]]  # the delivered span whose text holds the marker, as text


def _bare(data_dir: Path) -> Hooks:
    return Hooks(flush=lambda: None, delivered=lambda: 0, find=lambda marker: None)


def _tracehouse(data_dir: Path) -> Hooks:
    import tracehouse as th
    from tracehouse.collector.ingest.spool import list_segments, scan_segment
    from tracehouse.spans.runtime import runtime

    th.configure(data_dir=data_dir, project="bench")
    th.instrument_openai()

    def delivered() -> int:
        sink = runtime._sink  # the spool writer: `written` counts the records appended to the spool
        return sink.written if sink is not None else 0

    def find(marker: str) -> Optional[str]:
        segments, _ = list_segments(th.get_settings().spool_dir)
        for segment in reversed(segments):
            for frame in reversed(scan_segment(segment).frames):
                for record in reversed(json.loads(frame.payload)):
                    text = json.dumps(record)
                    if marker in text:
                        return text
        return None

    return Hooks(flush=lambda: th.flush(timeout=60), delivered=delivered, find=find)


def _otel(instrument: Callable[[Any], object]) -> Hooks:
    """An SDK TracerProvider with a default BatchSpanProcessor and a counting exporter, given to `instrument`."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class CountingExporter(SpanExporter):
        """Counts the spans it is given and discards them, keeping only the last batch (for the probe)."""

        def __init__(self) -> None:
            self.count = 0
            self.last: Sequence[Any] = ()

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            self.count += len(spans)
            self.last = spans
            return SpanExportResult.SUCCESS

    exporter = CountingExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    instrument(provider)

    def find(marker: str) -> Optional[str]:
        for span in exporter.last:
            events = [dict(event.attributes or {}) for event in span.events]
            text = json.dumps({"name": span.name, "attributes": dict(span.attributes or {}), "events": events},
                              default=str)  # fmt: skip
            if marker in text:
                return text
        return None

    return Hooks(flush=provider.force_flush, delivered=lambda: exporter.count, find=find)


def _otel_openai_v2(data_dir: Path) -> Hooks:
    # With opentelemetry-util-genai >= 1.0 the instrumentation always follows the latest GenAI conventions,
    # where the content mode is span_only / event_only / span_and_event ("true" is refused with a warning).
    os.environ.update(
        OTEL_SEMCONV_STABILITY_OPT_IN="gen_ai_latest_experimental",
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="span_only",
    )
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    return _otel(lambda provider: OpenAIInstrumentor().instrument(tracer_provider=provider))  # type: ignore[no-untyped-call]


def _openllmetry(data_dir: Path) -> Hooks:
    os.environ["TRACELOOP_TRACE_CONTENT"] = "true"  # its default, said out loud
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    return _otel(lambda provider: OpenAIInstrumentor().instrument(tracer_provider=provider))


PEER_SETUP: dict[str, Callable[[Path], Hooks]] = {
    "bare": _bare,
    "tracehouse": _tracehouse,
    "otel-openai-v2": _otel_openai_v2,
    "openllmetry": _openllmetry,
}


def _calls(url: str) -> dict[str, Call]:
    """One chat completion per shape with the real client; streams are read to the end."""
    import openai

    client = openai.OpenAI(base_url=url, api_key="sk-bench", max_retries=0)

    def plain(prompt: str) -> str:
        response = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}])
        return response.choices[0].message.content or ""

    def stream(prompt: str, include_usage: bool = False) -> str:
        messages: list[Any] = [{"role": "user", "content": prompt}]
        if include_usage:
            chunks = client.chat.completions.create(
                model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
            )
        else:
            chunks = client.chat.completions.create(model=MODEL, messages=messages, stream=True)
        parts = []
        for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        return "".join(parts)

    return {"plain": plain, "stream": stream, "stream-usage": lambda prompt: stream(prompt, include_usage=True)}


# ---------------------------------------------------------------------------------------------
# the child's end
# ---------------------------------------------------------------------------------------------
class _Phase:
    """The timed calls of one shape.

    Wall time: the calls themselves plus the final flush. CPU time: the whole process (all its threads) from
    the start to the end of that flush, waits for the next turn included.
    """

    def __init__(self, hooks: Hooks) -> None:
        self.hooks = hooks
        hooks.flush()
        self.before = hooks.delivered()
        self.calls = 0
        self.wall = 0.0
        gc.collect()
        self.cpu0 = time.process_time()

    def calls_in_a_row(self, call: Call, count: int) -> None:
        start = time.perf_counter()
        for _ in range(count):
            call(PROMPT)
        self.wall += time.perf_counter() - start
        self.calls += count

    def stop(self) -> dict[str, Any]:
        start = time.perf_counter()
        self.hooks.flush()
        flush = time.perf_counter() - start
        cpu = time.process_time() - self.cpu0
        return {
            "us_per_call": (self.wall + flush) / self.calls * 1e6,
            "cpu_us_per_call": cpu / self.calls * 1e6,
            "flush_ms": flush * 1e3,
            "spans": self.hooks.delivered() - self.before,
        }


def _probe(call: Call, hooks: Hooks, shape: str) -> list[str]:
    """One more call with a marked prompt: what did its span record?"""
    marker = f"probe-{shape}-{os.getpid()}"
    answer = call(f"{PROMPT} ({marker})")
    if answer != ANSWER:
        raise RuntimeError(f"{shape} call answered {answer!r}, expected {ANSWER!r}")
    hooks.flush()
    text = hooks.find(marker) or ""
    found = [("prompt", marker in text), ("completion", ANSWER in text), ("usage", "input_tokens" in text)]
    return [name for name, present in found if present]


def child_main(peer: str, url: str, warmup: int, data_dir: Path) -> int:
    """Set up `peer`, warm up every shape, then answer the parent's commands until `quit`."""
    try:
        hooks = PEER_SETUP[peer](data_dir)
        calls = _calls(url)
        for call in calls.values():
            for _ in range(warmup):
                call(PROMPT)
        emit({"ready": True})
        phases: dict[str, _Phase] = {}
        for line in sys.stdin:
            command, shape, count = [*line.split(), "", "", "0"][:3]
            if command == "call":
                phases[shape].calls_in_a_row(calls[shape], int(count))
                emit({})
            elif command == "start":
                phases[shape] = _Phase(hooks)
                emit({})
            elif command == "stop":
                emit(phases.pop(shape).stop())
            elif command == "quit":
                recorded = {shape: _probe(call, hooks, shape) for shape, call in calls.items()}
                emit({"recorded": recorded, "peak_rss_mb": own_peak_rss_mb()})
                return 0
        raise RuntimeError("stdin closed before quit")
    except Exception as error:
        traceback.print_exc()
        emit({"skipped": f"{type(error).__name__}: {error}".splitlines()[0][:300]})
        return 1


# ---------------------------------------------------------------------------------------------
# the parent's end
# ---------------------------------------------------------------------------------------------
class ChildFailed(Exception):
    """A child that crashed, timed out or reported that it cannot run; the message says why."""


class LockstepChild:
    """One peer's child: `ask` sends a command line and waits for the child's marked JSON answer."""

    def __init__(self, peer: str, argv: Sequence[str], log: Path) -> None:
        self.peer = peer
        self._log = log
        with open(log, "wb") as stderr:
            self._proc = subprocess.Popen([sys.executable, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=stderr)  # fmt: skip
        self._pending = b""

    def ask(self, command: Optional[str], timeout: float = 120.0) -> dict[str, Any]:
        """Send `command` (None: only read) and return the answer; raises ChildFailed."""
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None
        try:
            if command is not None:
                stdin.write(command.encode() + b"\n")
                stdin.flush()
            deadline = time.monotonic() + timeout
            while True:
                line = self._line(stdout.fileno(), deadline)
                if line.startswith(RESULT_MARKER):
                    answer: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
                    if "skipped" in answer:
                        raise ChildFailed(answer["skipped"])
                    return answer
        except (OSError, EOFError, TimeoutError) as error:
            raise ChildFailed(self._reason(error)) from None

    def _line(self, fd: int, deadline: float) -> str:
        while b"\n" not in self._pending:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("no answer in time (child still running: ended)")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError(f"exited with code {self._proc.wait()}")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode(errors="replace")

    def _reason(self, error: BaseException) -> str:
        """Why the child failed: for a crash, the last line it wrote on stderr (its error)."""
        if isinstance(error, TimeoutError):
            return str(error)
        lines = [line for line in self._log.read_text(errors="replace").splitlines() if line.strip()]
        return (lines[-1].strip() if lines else str(error) or type(error).__name__)[:300]

    def close(self) -> None:
        """End the child if it is still running, and reap it."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                pipe.close()
