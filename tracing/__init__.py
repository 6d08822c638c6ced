"""tracehouse: LLM tracing, prompt observability and experiment tracking in one ClickHouse store.

import tracehouse as th

@th.trace
def answer(question: str) -> str: ...

th.latency(by="name")          # p50/p95/p99, error rate, tokens and cost per span name
th.query("SELECT name, duration_ms, input, output FROM spans ORDER BY start_time DESC LIMIT 5")

The face is light: `import tracehouse` loads only this module, the errors and the version; each
name below loads its part of the package the first time it is used (`th.trace` the tracing core,
`th.init` the run tracker, `th.query` the reads, ...), so an application pays for what it uses.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from tracehouse._errors import ConfigError, ConflictError, NotFoundError, StoreError, TracehouseError
from tracehouse._version import VERSION as __version__

if _TYPE_CHECKING:
    from tracehouse.collector.store.pricing import set_model_price
    from tracehouse.integrations.langchain.instrument import (
        LangChainInstrumentation,
        instrument_langchain,
        uninstrument_langchain,
    )
    from tracehouse.integrations.openai.instrument import OpenAIInstrumentation, instrument_openai, uninstrument_openai
    from tracehouse.reads.api import Api
    from tracehouse.reads.reading import history, latency, query, runs, sync, trace_tree, traces
    from tracehouse.spans.api import configure, flush, get_settings, stats
    from tracehouse.spans.config import Settings
    from tracehouse.spans.decorator import SpanScope, current_span, span, trace
    from tracehouse.spans.feedback import score
    from tracehouse.spans.handles import ForeignSpan, NoopSpan
    from tracehouse.spans.span import TraceSpan
    from tracehouse.sweeps.agent import agent
    from tracehouse.sweeps.local_controller import Controller, controller
    from tracehouse.sweeps.sweep import param_importance, sweep, sweep_control, sweep_results, sweep_status
    from tracehouse.sweeps.trial import RunStopped
    from tracehouse.tracking import plots as plot
    from tracehouse.tracking.artifacts.artifact import Artifact, ArtifactEntry
    from tracehouse.tracking.config import Config, Summary
    from tracehouse.tracking.media import (
        Audio,
        Histogram,
        Html,
        Image,
        JoinedTable,
        Molecule,
        Object3D,
        Plotly,
        Table,
        Video,
    )
    from tracehouse.tracking.plots import plot_table
    from tracehouse.tracking.reports import Report, reports
    from tracehouse.tracking.run import Run, current_run
    from tracehouse.tracking.run_wandb import AlertLevel
    from tracehouse.tracking.session import define_metric, finish, init, log, log_artifact, restore, save, use_artifact
    from tracehouse.tracking.wandb_module import (
        errors,
        login,
        setup,
        teardown,
        termerror,
        termlog,
        termwarn,
        unwatch,
        watch,
    )

_WHERE = {  # module -> the public names it defines
    "tracehouse.collector.store.pricing": ("set_model_price",),
    "tracehouse.integrations.langchain.instrument": (
        "LangChainInstrumentation", "instrument_langchain", "uninstrument_langchain",
    ),
    "tracehouse.integrations.openai.instrument": ("OpenAIInstrumentation", "instrument_openai", "uninstrument_openai"),
    "tracehouse.reads.api": ("Api",),
    "tracehouse.tracking.plots": ("plot_table",),
    "tracehouse.tracking.reports": ("Report", "reports"),
    "tracehouse.reads.reading": ("history", "latency", "query", "runs", "sync", "trace_tree", "traces"),
    "tracehouse.spans.api": ("configure", "flush", "get_settings", "stats"),
    "tracehouse.spans.config": ("Settings",),
    "tracehouse.spans.decorator": ("SpanScope", "current_span", "span", "trace"),
    "tracehouse.spans.feedback": ("score",),
    "tracehouse.spans.handles": ("ForeignSpan", "NoopSpan"),
    "tracehouse.spans.span": ("TraceSpan",),
    "tracehouse.sweeps.agent": ("agent",),
    "tracehouse.sweeps.local_controller": ("Controller", "controller"),
    "tracehouse.sweeps.sweep": ("param_importance", "sweep", "sweep_control", "sweep_results", "sweep_status"),
    "tracehouse.sweeps.trial": ("RunStopped",),
    "tracehouse.tracking.artifacts.artifact": ("Artifact", "ArtifactEntry"),
    "tracehouse.tracking.config": ("Config", "Summary"),
    "tracehouse.tracking.media": ("Audio", "Histogram", "Html", "Image", "JoinedTable", "Molecule", "Object3D",
                                  "Plotly", "Table", "Video"),
    "tracehouse.tracking.run": ("Run", "current_run"),
    "tracehouse.tracking.run_wandb": ("AlertLevel",),
    "tracehouse.tracking.wandb_module": ("errors", "login", "setup", "teardown", "termerror", "termlog", "termwarn",
                                         "unwatch", "watch"),
    "tracehouse.tracking.session": (
        "define_metric", "finish", "init", "log", "log_artifact", "restore", "save", "use_artifact",
    ),
}  # fmt: skip
_LAZY = {name: module for module, names in _WHERE.items() for name in names}

__all__ = [
    "AlertLevel",
    "Api",
    "Artifact",
    "Audio",
    "ArtifactEntry",
    "Config",
    "ConfigError",
    "Controller",
    "ForeignSpan",
    "NoopSpan",
    "LangChainInstrumentation",
    "NotFoundError",
    "ConflictError",
    "Report",
    "OpenAIInstrumentation",
    "Run",
    "RunStopped",
    "Settings",
    "SpanScope",
    "StoreError",
    "Summary",
    "Histogram",
    "Html",
    "Image",
    "JoinedTable",
    "Molecule",
    "Object3D",
    "Plotly",
    "Table",
    "TraceSpan",
    "TracehouseError",
    "Video",
    "__version__",
    "agent",
    "configure",
    "controller",
    "current_run",
    "current_span",
    "define_metric",
    "errors",
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
    "login",
    "param_importance",
    "plot",
    "plot_table",
    "query",
    "reports",
    "restore",
    "runs",
    "save",
    "score",
    "set_model_price",
    "setup",
    "span",
    "stats",
    "sweep",
    "sweep_control",
    "sweep_results",
    "sweep_status",
    "sync",
    "teardown",
    "termerror",
    "termlog",
    "termwarn",
    "trace",
    "trace_tree",
    "traces",
    "uninstrument_langchain",
    "uninstrument_openai",
    "unwatch",
    "use_artifact",
    "watch",
]


def __getattr__(name: str) -> _Any:
    """The public names, loaded on first use; `th.run`, `th.config`, `th.summary` (the active run and
    its config and summary, W&B's names); `th.evals` (the evaluation API); `th.plot` (W&B's charts);
    `th.sklearn` (W&B's scikit-learn plots)."""
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(_importlib.import_module(module), name)
        globals()[name] = value  # the next lookup is a plain attribute
        return value
    if name == "evals":
        return _importlib.import_module("tracehouse.evals")
    if name == "plot":  # W&B's `wandb.plot.line(...)`: the module of chart functions
        return _importlib.import_module("tracehouse.tracking.plots")
    if name == "sklearn":  # W&B's `wandb.sklearn.plot_classifier(...)`
        return _importlib.import_module("tracehouse.integrations.sklearn")
    if name in ("run", "config", "summary"):
        run = _importlib.import_module("tracehouse.tracking.run").current_run()
        if name == "run" or run is None:
            return run
        return getattr(run, name)
    raise AttributeError(f"module 'tracehouse' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({name for name in globals() if not name.startswith("_") or name == "__version__"} | set(__all__))
