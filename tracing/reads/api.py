"""W&B's public API for scripts that analyse runs: `api = th.Api(); api.runs("project")`, `api.run(...)`,
`api.sweep(...)`, `api.artifact(...)`.

    import tracehouse as th
    api = th.Api()
    for run in api.runs("my-project", filters={"state": "finished"}, order="-summary_metrics.acc"):
        print(run.name, run.config["lr"], run.summary["acc"], len(run.history()))

Paths are W&B's: "entity/project/run_id" (or "entity/project/runs/run_id", as in a W&B URL),
"project/run_id", or just the id in the default project (`th.configure(project=)`, or the `project`
override). tracehouse has no entities yet: any entity is accepted and ignored, and objects report the
one given (or the `entity` override, else "tracehouse"). Unknown projects, runs, sweeps and artifacts
raise `th.NotFoundError` naming them (where W&B raises `CommError`); a malformed path `th.ConfigError`.

Every read goes through `tracing/reads/reading.py`: embedded, through the store's owner, or through
the collector at `TRACEHOUSE_ENDPOINT`, like `th.runs` and `th.history`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional, Union, overload

from tracehouse._errors import ConfigError, NotFoundError
from tracehouse.reads import reading
from tracehouse.reads.api_run import File, Run, ui_page_url

if TYPE_CHECKING:
    from tracehouse.tracking.artifacts.artifact import Artifact

__all__ = ["Api", "File", "Run", "Runs", "Sweep"]
DEFAULT_ENTITY = "tracehouse"
CRASHED_AFTER_MS = 120_000  # a running run without a heartbeat for this long shows as crashed (as th.runs)
_OVERRIDES = ("entity", "project", "base_url")
_COLUMNS = {"created_at": "created_at", "createdAt": "created_at", "updated_at": "updated_at",
            "heartbeat_at": "heartbeat_at", "heartbeatAt": "heartbeat_at", "name": "name", "display_name": "name",
            "displayName": "name", "state": "state", "id": "id", "run_id": "id", "group": "group",
            "job_type": "job_type", "jobType": "job_type"}  # fmt: skip
_MISSING = object()


def _parts(path: Any, what: str, names: str, most: int, kind: str = "") -> list[str]:
    """`path` split on "/" into 1..`most` non-empty parts (a W&B URL's `runs/` or `sweeps/` dropped)."""
    parts = path.split("/") if isinstance(path, str) else []
    if kind and len(parts) == most + 1 and parts[-2] == kind:
        parts = parts[:-2] + parts[-1:]
    if not parts or len(parts) > most or not all(p.strip() for p in parts):
        raise ConfigError(what, f"expected {names}, got {path!r}")
    return parts


def _dotted(data: Mapping[str, Any], key: str) -> Any:
    """`data[key]` for a dotted key: a flat logged key, or a path into nested dicts."""
    if key in data:
        return data[key]
    head, _, rest = key.partition(".")
    inner = data.get(head, _MISSING) if rest else _MISSING
    return _dotted(inner, rest) if isinstance(inner, Mapping) else _MISSING


def _order_key(order: Any) -> tuple[Any, bool]:
    """W&B's `order` ("+created_at", "-summary_metrics.loss", "config.lr"): a key function, descending?"""
    if not isinstance(order, str) or order.lstrip("+-") == "":
        raise ConfigError("order", f"expected a field such as '+created_at' or '-summary_metrics.loss', got {order!r}")
    descending, field = order.startswith("-"), order.lstrip("+-")
    prefix, _, key = field.partition(".")
    if prefix in ("summary_metrics", "summary") and key:
        return (lambda run: _dotted(run.summary, key)), descending
    if prefix == "config" and key:
        key = key[: -len(".value")] if key.endswith(".value") else key  # W&B's "config.lr.value"
        return (lambda run: _dotted(run.config, key)), descending
    column = _COLUMNS.get(field)
    if column is None:
        known = ", ".join(sorted(_COLUMNS))
        raise ConfigError("order", f"cannot order by {field!r}; use {known}, summary_metrics.<key> or config.<key>")
    if column in ("created_at", "updated_at", "heartbeat_at"):
        column = "_created" if column == "created_at" else column
    return (lambda run: getattr(run, column)), descending


def _sorted(runs: list[Run], order: str) -> list[Run]:
    """`runs` in W&B's `order`; runs without the value last, either way; ties oldest first."""
    key, descending = _order_key(order)
    runs = sorted(runs, key=lambda run: run._created)
    present = [(run, key(run)) for run in runs]
    missing = [run for run, value in present if value is _MISSING or value is None]
    ranked = [(run, _rank(value)) for run, value in present if value is not _MISSING and value is not None]
    ranked.sort(key=lambda pair: pair[1], reverse=descending)
    return [run for run, _ in ranked] + missing


def _rank(value: Any) -> tuple[int, Any]:
    """A sortable key: numbers before text, other values by their JSON text."""
    if isinstance(value, (int, float)):
        return (0, float(value))
    if isinstance(value, str):
        return (1, value)
    import json

    return (2, json.dumps(value, sort_keys=True, default=str))


class Runs:
    """The runs of a project matching `filters`, in `order`: iterate, `len()`, index or slice.
    Read on first use (all at once: `per_page` is accepted for W&B's sake)."""

    def __init__(self, api: Api, entity: str, project: str, filters: Optional[Mapping[str, Any]], order: str,
                 include_sweeps: bool = True, sweep: Optional[Sweep] = None) -> None:  # fmt: skip
        from tracehouse.collector.store.run_filters import check_filters

        if filters is not None:
            check_filters(filters)  # before any I/O
        _order_key(order)
        self._api, self.entity, self.project = api, entity, project
        self.filters, self.order, self._include_sweeps, self._sweep = filters, order, include_sweeps, sweep
        self._runs: Optional[list[Run]] = None

    def _loaded(self) -> list[Run]:
        if self._runs is None:
            parameters: dict[str, Any] = {"c": CRASHED_AFTER_MS}
            if self.filters:
                parameters["filters"] = dict(self.filters)
            frame = reading.read("runs", parameters, self.project)
            runs = [Run(self._api, self.entity, self.project, row, self._include_sweeps) for _, row in frame.iterrows()]
            for run in runs:
                run._sweep = self._sweep
            self._runs = _sorted(runs, self.order)
        return self._runs

    @property
    def length(self) -> int:
        return len(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def __iter__(self) -> Iterator[Run]:
        return iter(self._loaded())

    @overload
    def __getitem__(self, index: int) -> Run: ...
    @overload
    def __getitem__(self, index: slice) -> list[Run]: ...
    def __getitem__(self, index: Union[int, slice]) -> Union[Run, list[Run]]:
        return self._loaded()[index]

    def __repr__(self) -> str:
        return f"<Runs {self.entity}/{self.project}>"


class Sweep:
    """A stored sweep: `id`, `name`, `config`, `state` (W&B's upper case: "RUNNING", "FINISHED", ...),
    `method`, `metric`, `goal`, `runs`, `best_run()`, `url`, `path`."""

    def __init__(self, api: Api, entity: str, status: Mapping[str, Any]) -> None:
        self._api, self.entity, self.project = api, entity, str(status["project"])
        self.id, self.name = str(status["sweep_id"]), status.get("name") or str(status["sweep_id"])
        self.config: dict[str, Any] = dict(status.get("config") or {})
        self.state = str(status["state"]).upper()
        self.method, self.metric, self.goal = status.get("method"), status.get("metric"), status.get("goal")
        self._best = (status.get("best") or {}).get("run_id")
        self.runs = Runs(api, entity, self.project, {"sweep_id": self.id}, "+created_at", sweep=self)

    @property
    def path(self) -> list[str]:
        return [self.entity, self.project, self.id]

    @property
    def url(self) -> Optional[str]:
        return ui_page_url("sweeps", self.project, self.id)

    @property
    def order(self) -> Optional[str]:
        """The order of the sweep's metric and goal ("-summary_metrics.acc" for maximize)."""
        if not self.metric:
            return None
        return f"{'-' if self.goal == 'maximize' else '+'}summary_metrics.{self.metric}"

    def best_run(self, order: Optional[str] = None) -> Optional[Run]:
        """The best run: without `order`, the finished trial with the best logged value of the sweep's
        metric (as `th.sweep_status`'s `best`); with `order`, the first run in that order that has the
        value. None when no run qualifies."""
        if order is None and self._best:
            return next((run for run in self.runs if run.id == self._best), None)
        order = order or self.order
        if order is None:
            return None
        key, _ = _order_key(order)
        return next((run for run in _sorted(list(self.runs), order) if key(run) not in (None, _MISSING)), None)

    def __repr__(self) -> str:
        return f"<Sweep {'/'.join(self.path)} ({self.state})>"


class Api:
    """W&B's `wandb.Api()`, reading this store (see the module's docstring for paths and errors).

    `overrides`: "entity" (reported back, otherwise ignored), "project" (the default project),
    "base_url" (must be the configured endpoint: reads go where `th.configure` points). `api_key`
    must be the configured key when given (`th.configure(api_key=)` / TRACEHOUSE_API_KEY). `timeout`
    is accepted for W&B's sake; reads keep their own limits."""

    def __init__(self, overrides: Optional[Mapping[str, Any]] = None, timeout: Optional[float] = None,
                 api_key: Optional[str] = None) -> None:  # fmt: skip
        from tracehouse.spans.runtime import runtime

        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(_OVERRIDES))
        if unknown:
            raise ConfigError("overrides", f"unknown {', '.join(unknown)}; tracehouse takes {', '.join(_OVERRIDES)}")
        settings = runtime.settings
        base_url = overrides.get("base_url")
        if base_url is not None and str(base_url).rstrip("/") != (settings.endpoint or "").rstrip("/"):
            raise ConfigError("base_url", f"reads go to {settings.endpoint or 'the embedded store'}; point them at "
                              f"{base_url!r} with th.configure(endpoint=) or TRACEHOUSE_ENDPOINT")  # fmt: skip
        if api_key is not None and api_key != settings.api_key:
            raise ConfigError("api_key", "differs from the configured key; set it with th.configure(api_key=) "
                              "or TRACEHOUSE_API_KEY")  # fmt: skip
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ConfigError("timeout", f"expected a positive number of seconds, got {timeout!r}")
        self.timeout = timeout
        self.default_entity = str(overrides.get("entity") or DEFAULT_ENTITY)
        self._project = overrides.get("project")

    def _default_project(self) -> str:
        from tracehouse.collector.store.queries import check_project
        from tracehouse.spans.runtime import runtime

        return check_project(self._project or runtime.settings.project)

    def _entity_project(self, parts: list[str]) -> tuple[str, str]:
        """(entity, project) of the parts before an object's own name: [], [project] or [entity, project]."""
        from tracehouse.collector.store.queries import check_project

        entity = parts[0] if len(parts) == 2 else self.default_entity
        return entity, check_project(parts[-1]) if parts else self._default_project()

    def runs(self, path: Optional[str] = None, filters: Optional[Mapping[str, Any]] = None,
             order: str = "+created_at", per_page: int = 50, include_sweeps: bool = True) -> Runs:  # fmt: skip
        """The runs of "entity/project" or "project" (default: the default project) matching W&B's
        MongoDB-style `filters` (see `th.runs`), in `order` (default oldest first, as W&B)."""
        parts = [] if path is None else _parts(path, "path", "'entity/project' or 'project'", 2)
        if not isinstance(per_page, int) or isinstance(per_page, bool) or per_page < 1:
            raise ConfigError("per_page", f"expected a positive number, got {per_page!r}")
        entity, project = self._entity_project(parts)
        return Runs(self, entity, project, filters, order, include_sweeps)

    def run(self, path: str = "") -> Run:
        """The run at "entity/project/run_id", "project/run_id" or "run_id"; NotFoundError naming it."""
        parts = _parts(path, "path", "'entity/project/run_id', 'project/run_id' or 'run_id'", 3, "runs")
        entity, project = self._entity_project(parts[:-1])
        run_id = parts[-1]
        if len(parts) == 1:
            project = reading.run_project(run_id, None if self._project is None else project)
        frame = reading.read("runs", {"c": CRASHED_AFTER_MS, "filters": {"run_id": run_id}}, project)
        if frame.empty:
            raise NotFoundError(f"no run {run_id!r} in project {project!r}")
        return Run(self, entity, project, frame.iloc[0])

    def sweep(self, path: str = "") -> Sweep:
        """The sweep at "entity/project/sweep_id", "project/sweep_id" or "sweep_id"; NotFoundError naming it."""
        from tracehouse.sweeps.sweep import backend

        parts = _parts(path, "path", "'entity/project/sweep_id', 'project/sweep_id' or 'sweep_id'", 3, "sweeps")
        entity, project = self._entity_project(parts[:-1])
        return Sweep(self, entity, backend().status(project, parts[-1]))

    def artifact(self, name: str, type: Optional[str] = None) -> Artifact:
        """The stored version "entity/project/name:alias", "project/name:alias" or "name:alias" (alias,
        `latest` by default, or `v3`), to `download()` and `verify()`; no run records it as used."""
        from tracehouse.tracking.artifacts.store import read_artifact

        parts = _parts(name, "name", "'entity/project/name:alias', 'project/name:alias' or 'name:alias'", 3)
        _, project = self._entity_project(parts[:-1])
        return read_artifact(f"{project}/{parts[-1]}", project, type)

    def artifacts(self, type_name: str, name: str, per_page: int = 50) -> list[Artifact]:
        """Every stored version of artifact `name` ("entity/project/name", "project/name" or "name") of
        type `type_name`, newest first; NotFoundError when there is none."""
        from tracehouse.tracking.artifacts.store import read_artifact

        parts = _parts(name, "name", "'entity/project/name', 'project/name' or 'name'", 3)
        _, project = self._entity_project(parts[:-1])
        base = parts[-1].split(":", 1)[0]
        frame = reading.read("artifacts", {}, project)
        found = frame[(frame["name"] == base) & (frame["type"] == type_name)] if len(frame) else frame
        if found.empty:
            raise NotFoundError(f"no artifact {base!r} of type {type_name!r} in project {project!r}")
        versions = sorted({int(str(v)[1:]) for v in found["version"]}, reverse=True)
        return [read_artifact(f"{project}/{base}:v{v}", project, type_name) for v in versions]

    def flush(self) -> None:
        """W&B clears its cache here; tracehouse reads afresh each time (a `Runs` keeps what it read)."""

    def __repr__(self) -> str:
        return f"<Api entity={self.default_entity!r}>"
