"""`th.evals.evaluate`: run a target on every example of a dataset, trace it, score it, store it as a run.

The evaluation is a run (`job_type="eval"`): each example's call is a trace (an `example` span with
the target's own spans, LLM calls included, under it), each scorer's verdict a row of `scores`, the
per-example rows a logged table (`examples`), the aggregates (mean, and pass rate for pass/fail
scorers) the run's summary and a logged step. Examples run concurrently up to `max_concurrency`
(async targets on the event loop, sync ones in a thread pool). A target that raises, a scorer that
raises or times out, a row missing a field: an error on that example, the rest goes on.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import math
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, cast

from tracehouse._errors import ConfigError
from tracehouse.evals._dataset import Dataset
from tracehouse.evals._scorers import Scorer, as_scorer

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class EvalResult:
    """What an evaluation found: per-example rows, aggregates, and the run that holds them."""

    run_id: str
    name: str
    dataset: str
    dataset_version: Optional[str]
    rows: list[dict[str, Any]]
    aggregates: dict[str, float] = field(default_factory=dict)

    @property
    def examples(self) -> pd.DataFrame:
        """One row per example and trial: example, trial, output, error, latency_ms, one column per score."""
        import pandas as pd

        return cast("pd.DataFrame", pd.DataFrame(self.rows))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.3f}" for k, v in sorted(self.aggregates.items()))
        return f"EvalResult(run_id={self.run_id!r}, examples={len(self.rows)}, {shown})"


Arguments = Callable[[dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]


def _target_name(target: Any) -> str:
    return str(getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or repr(target))


def _caller(target: Callable[..., Any], input_field: str, expected_field: str = "expected") -> Arguments:
    """How to call the target with a row: by parameter names matching fields, else the input field;
    a `**kwargs` target gets the example's fields (all but the expected one) as keyword arguments.
    ConfigError naming the target when it takes no parameters at all."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # a builtin without a signature: the input field, positionally
        return lambda row: ((_input(row, input_field),), {})
    every = list(signature.parameters.values())
    parameters = [p for p in every if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY)]
    names = [p.name for p in parameters]
    var_keyword = any(p.kind is p.VAR_KEYWORD for p in every)
    var_positional = any(p.kind is p.VAR_POSITIONAL for p in every)
    if not every:
        raise ConfigError("target", f"{_target_name(target)} takes no parameters; give it one (it gets the "
                                    f"example's {input_field!r}), parameters named after the example's fields, "
                                    "or **kwargs (it gets every field)")  # fmt: skip

    def arguments(row: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        fields = {k: v for k, v in row.items() if k != expected_field}
        if names and all(n in row or p.default is not p.empty for n, p in zip(names, parameters, strict=True)):
            named = {n: row[n] for n in names if n in row}
            rest = {k: v for k, v in fields.items() if k not in named} if var_keyword else {}
            return (), {**named, **rest}
        if names or (var_positional and not var_keyword):
            rest = {k: v for k, v in fields.items() if k != input_field and k not in names} if var_keyword else {}
            return (_input(row, input_field),), rest
        return (), fields  # **kwargs only

    return arguments


def _input(row: dict[str, Any], input_field: str) -> Any:
    if input_field not in row:
        raise KeyError(f"the example has no field {input_field!r} to pass to the target")
    return row[input_field]


def _value(result: Any) -> Optional[float]:
    if isinstance(result, bool):
        return 1.0 if result else 0.0
    if isinstance(result, (int, float)) and math.isfinite(float(result)):
        return float(result)
    return None


def _flatten_score(name: str, result: Any) -> dict[str, Any]:
    if isinstance(result, dict):
        return {f"{name}.{k}": v for k, v in result.items() if _value(v) is not None}
    if _value(result) is None:
        raise ValueError(f"{name} returned {type(result).__name__}; return a number, a bool or a dict of them")
    return {name: result}


class _Progress:
    """A one-line progress bar on stderr (when it is a terminal, or asked for)."""

    def __init__(self, total: int, label: str, enabled: Optional[bool]) -> None:
        self.total, self.label, self.done, self.errors = total, label, 0, 0
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._shown = 0.0

    def step(self, failed: bool) -> None:
        self.done += 1
        self.errors += failed
        if self.enabled and (time.monotonic() - self._shown > 0.2 or self.done == self.total):
            self._shown = time.monotonic()
            width = 30
            filled = int(width * self.done / max(1, self.total))
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
                             f"{f', {self.errors} errors' if self.errors else ''}")  # fmt: skip
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def evaluate(
    target: Callable[..., Any],
    dataset: Any,
    scorers: Sequence[Any],
    name: Optional[str] = None,
    max_concurrency: int = 8,
    trials: int = 1,
    project: Optional[str] = None,
    input_field: str = "input",
    expected_field: str = "expected",
    progress: Optional[bool] = None,
) -> EvalResult:
    """Evaluate `target` on `dataset` (a Dataset, a list of dicts, a JSONL/CSV path or a DataFrame)
    with `scorers`; returns the result and stores it as a run (`job_type="eval"`).

    The target gets the fields its parameters name, else the example's `input_field`; scorers get
    `output`, `expected` (the example's `expected_field`) and the other fields by name. The
    evaluation starts its run with `th.init` (so inside a sweep agent it is the trial). Called while a
    run is active (a training run evaluating), the eval run is its child: its config holds
    `parent_run_id`, the parent stays the active run, and the parent gets the aggregates on its
    current step (`evals/<name>/<score>`) and the eval run's id in its summary.
    """
    if _loop_running():
        raise ConfigError("evaluate", "an event loop is running here: use `await th.evals.evaluate_async(...)`")
    return asyncio.run(evaluate_async(target, dataset, scorers, name, max_concurrency, trials, project, input_field,
                                      expected_field, progress))  # fmt: skip


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _checked_inputs(target: Any, dataset: Any, scorers: Sequence[Any], name: Optional[str], max_concurrency: Any,
                    trials: Any) -> tuple[list[Scorer], Dataset]:  # fmt: skip
    """The scorers and the dataset of an evaluation, or ConfigError naming what is wrong (before any I/O)."""
    if not callable(target):
        raise ConfigError("target", f"expected a function (sync or async), got {target!r}")
    _caller(target, "input")  # a target that takes no parameters fails here, before any I/O
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
        raise ConfigError("max_concurrency", f"expected a positive integer, got {max_concurrency!r}")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError("trials", f"expected a positive integer, got {trials!r}")
    checked: list[Scorer] = [as_scorer(s) for s in scorers]
    if not isinstance(dataset, Dataset):
        named = re.sub(r"[^A-Za-z0-9_.\-]+", "-", str(name or getattr(target, "__name__", ""))).strip("-")
        dataset = Dataset(named[:128] or "eval", dataset)
    if not dataset.rows:
        raise ConfigError("dataset", f"dataset {dataset.name} has no examples")
    if len({s.name for s in checked}) != len(checked):
        raise ConfigError("scorers", f"scorer names must be distinct, got {[s.name for s in checked]}")
    return checked, dataset


async def evaluate_async(
    target: Callable[..., Any],
    dataset: Any,
    scorers: Sequence[Any],
    name: Optional[str] = None,
    max_concurrency: int = 8,
    trials: int = 1,
    project: Optional[str] = None,
    input_field: str = "input",
    expected_field: str = "expected",
    progress: Optional[bool] = None,
) -> EvalResult:
    """`evaluate` for code already inside an event loop."""
    import tracehouse as th

    checked, dataset = _checked_inputs(target, dataset, scorers, name, max_concurrency, trials)
    dataset.push(project)
    label = name or f"{getattr(target, '__name__', 'target')}-on-{dataset.name}"
    config = {
        "dataset": dataset.name, "dataset_digest": dataset.digest, "scorers": [s.name for s in checked],
        "target": getattr(target, "__qualname__", repr(target)), "trials": trials, "max_concurrency": max_concurrency,
        "input_field": input_field, "expected_field": expected_field,
    }  # fmt: skip
    run, outer = _start_run(project, label, config)
    arguments = _caller(target, input_field, expected_field)
    is_async = inspect.iscoroutinefunction(target)
    pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="tracehouse-eval") if not is_async else None
    limit = asyncio.Semaphore(max_concurrency)
    bar = _Progress(len(dataset.rows) * trials, f"eval {label}", progress)
    loop = asyncio.get_running_loop()

    async def call(row: dict[str, Any]) -> Any:
        args, kwargs = arguments(row)
        if is_async:
            return await target(*args, **kwargs)
        context = contextvars.copy_context()  # the example span is the parent of the target's spans
        return await loop.run_in_executor(pool, lambda: context.run(target, *args, **kwargs))

    async def one(index: int, row: dict[str, Any], trial: int) -> dict[str, Any]:
        example = str(row.get("id", index))
        record: dict[str, Any] = {"example": example, "trial": trial, "output": None, "error": None}
        async with limit:
            with th.span("example", kind="chain", input=row) as span:
                span.set_attribute("tracehouse.eval.example", example)
                started = time.perf_counter()
                try:
                    record["output"] = await call(row)
                    span.set_output(record["output"])
                except Exception as error:  # the example fails, the evaluation goes on
                    record["error"] = f"{type(error).__name__}: {error}"
                    span.fail(error)
                record["latency_ms"] = (time.perf_counter() - started) * 1000
                context = span.get_span_context()
                record.update(_trace_ids(context))
            fields = {k: v for k, v in row.items() if k != expected_field}
            if record["error"] is None:
                outcomes = await asyncio.gather(
                    *(s.score(record["output"], row.get(expected_field), fields) for s in checked),
                    return_exceptions=True,
                )
                for scorer_, outcome in zip(checked, outcomes, strict=True):
                    _record_score(run, scorer_, outcome, record, example, context)
        bar.step(record["error"] is not None or any(k.endswith(".error") for k in record))
        return record

    try:
        rows = await asyncio.gather(*(one(i, row, t) for t in range(trials) for i, row in enumerate(dataset.rows)))
    finally:
        if pool is not None:
            pool.shutdown(wait=False)
    aggregates = _aggregates(rows, checked)
    run.log({**aggregates, "examples_table": _table(rows)})
    run.summary.update({**aggregates, "examples": len(rows), "errors": sum(r["error"] is not None for r in rows)})
    run.finish()
    if outer is not None and outer.state == "running":
        _report_to_parent(outer, label, run.id, aggregates)
    return EvalResult(run.id, label, dataset.name, _stored_version(run, dataset), rows, aggregates)


def _trace_ids(context: Any) -> dict[str, str]:
    """The example's trace and span ids (for a link from the eval's pages); none when not traced."""
    if not context.trace_id:
        return {}
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}


def _stored_version(run: Any, dataset: Dataset) -> Optional[str]:
    if run.disabled or run.offline:  # no store holds the dataset's version (yet)
        return None
    try:
        return dataset.wait().version
    except Exception:
        return None


def _start_run(project: Optional[str], label: str, config: dict[str, Any]) -> tuple[Any, Any]:
    """The eval's run, and the run that was active (None if none): a training run evaluating gets the
    eval run as its child (`parent_run_id` in its config) and stays the active run."""
    import tracehouse as th

    outer = th.run if th.run is not None and th.run.state == "running" else None
    if outer is not None:
        config["parent_run_id"] = outer.id
    run = th.init(project=project, name=label, job_type="eval", config=config,
                  reinit="create_new" if outer is not None else None)  # fmt: skip
    return run, outer


def _report_to_parent(parent: Any, label: str, run_id: str, aggregates: dict[str, Any]) -> None:
    """The eval's aggregates on the parent run's current step (`evals/<label>/<score>`), and its run
    id in the parent's summary (`evals/<label>/run_id`)."""
    numbers = {k: v for k, v in aggregates.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    parent.log({f"evals/{label}/{key}": value for key, value in numbers.items()}, commit=False)
    parent.summary[f"evals/{label}/run_id"] = run_id


def _record_score(run: Any, scorer_: Scorer, outcome: Any, record: dict[str, Any], example: str, context: Any) -> None:
    from tracehouse.spans.runtime import runtime

    base = {"type": "score", "project": run.project, "target_type": "example", "run_id": run.id, "source": "eval",
            "trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x"),
            "example": example, "time_ns": time.time_ns()}  # fmt: skip
    # a disabled run stores nothing; an offline one keeps its scores with its other records
    submit = None if run.disabled else (runtime.offline_sink() if run.offline else runtime.sink()).submit
    try:
        if isinstance(outcome, BaseException):
            raise outcome
        values = _flatten_score(scorer_.name, outcome)
    except BaseException as error:
        message = f"{type(error).__name__}: {error}"
        record[f"{scorer_.name}.error"] = message
        if submit is not None:
            submit({**base, "name": scorer_.name, "value": None, "error": message})
        return
    for key, value in values.items():
        record[key] = value
        if submit is not None:
            submit({**base, "name": key, "value": _value(value)})


def _aggregates(rows: list[dict[str, Any]], scorers: list[Scorer]) -> dict[str, float]:
    out: dict[str, float] = {}
    keys = sorted({k for r in rows for k in r if any(k == s.name or k.startswith(f"{s.name}.") for s in scorers)
                   and not k.endswith(".error")})  # fmt: skip
    for key in keys:
        values = [r[key] for r in rows if key in r]
        numbers = [v for v in (_value(x) for x in values) if v is not None]
        if not numbers:
            continue
        out[f"{key}.mean"] = sum(numbers) / len(numbers)
        if all(isinstance(v, bool) for v in values):
            out[f"{key}.pass_rate"] = out[f"{key}.mean"]
    latencies = [r["latency_ms"] for r in rows]
    out["latency_ms.mean"] = sum(latencies) / len(latencies)
    out["error_rate"] = sum(r["error"] is not None for r in rows) / len(rows)
    return out


def _table(rows: list[dict[str, Any]]) -> Any:
    from tracehouse.tracking.media import Table

    columns = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("example", "trial"), k))
    return Table(columns=columns, data=[[_cell(r.get(c)) for c in columns] for r in rows])


def _cell(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else repr(value)
