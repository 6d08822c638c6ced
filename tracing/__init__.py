"""tracehouse: LLM tracing, prompt observability and experiment tracking in one ClickHouse store.

import tracehouse as th

@th.trace
def answer(question: str) -> str: ...

th.latency(by="name")          # p50/p95/p99, error rate, tokens and cost per span name
th.query("SELECT name, duration_ms, input, output FROM spans ORDER BY start_time DESC LIMIT 5")
"""

from tracehouse.collector._pricing import set_model_price

from ._api import configure, flush, get_settings
from ._artifact import Artifact, ArtifactEntry
from ._config import Settings
from ._decorator import SpanScope, current_span, span, trace
from ._errors import ConfigError, NotFoundError, StoreError, TracehouseError
from ._feedback import score
from ._handles import ForeignSpan, NoopSpan
from ._langchain import LangChainInstrumentation, instrument_langchain, uninstrument_langchain
from ._media import Histogram, Image, Table
from ._openai import OpenAIInstrumentation, instrument_openai, uninstrument_openai
from ._reading import history, latency, query, runs, sync, trace_tree, traces
from ._run import Run, current_run, define_metric, finish, init, log, log_artifact, restore, save, use_artifact
from ._run_config import Config, Summary
from ._span import TraceSpan
from ._sweep import param_importance, sweep, sweep_control, sweep_results, sweep_status
from ._sweep_agent import RunStopped, agent
from ._version import VERSION as __version__

__all__ = [
    "Artifact",
    "ArtifactEntry",
    "Config",
    "ConfigError",
    "ForeignSpan",
    "NoopSpan",
    "LangChainInstrumentation",
    "NotFoundError",
    "OpenAIInstrumentation",
    "Run",
    "RunStopped",
    "Settings",
    "SpanScope",
    "StoreError",
    "Summary",
    "Histogram",
    "Image",
    "Table",
    "TraceSpan",
    "TracehouseError",
    "__version__",
    "agent",
    "configure",
    "current_run",
    "current_span",
    "define_metric",
    "finish",
    "flush",
    "get_settings",
    "history",
    "init",
    "instrument_langchain",
    "instrument_openai",
    "latency",
    "log",
    "log_artifact",
    "param_importance",
    "query",
    "restore",
    "runs",
    "save",
    "score",
    "set_model_price",
    "span",
    "sweep",
    "sweep_control",
    "sweep_results",
    "sweep_status",
    "sync",
    "trace",
    "trace_tree",
    "traces",
    "uninstrument_langchain",
    "uninstrument_openai",
    "use_artifact",
]


def __getattr__(name: str) -> object:
    """`th.run`, `th.config`, `th.summary`: the active run and its config and summary (W&B's names)."""
    if name == "evals":  # the evaluation API: `th.evals.evaluate(...)`
        import importlib

        return importlib.import_module("tracehouse.evals")
    if name in ("run", "config", "summary"):
        from ._run import current_run as _current_run

        run = _current_run()
        if name == "run" or run is None:
            return run
        return getattr(run, name)
    raise AttributeError(f"module 'tracehouse' has no attribute {name!r}")
