"""Sweep configurations in W&B's format: validation, and each parameter's distribution.

A config is a dict (or YAML file) with `method` (grid, random, bayes), `metric` (`name`, `goal`,
`target`), `parameters`, and optionally `early_terminate` (hyperband), `run_cap`, `program`,
`command`, `name`, `description`. Errors are ConfigErrors naming the offending key
(`parameters.lr.min: ...`) and what is allowed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Optional

from tracehouse._errors import ConfigError

METHODS = ("grid", "random", "bayes")
GOALS = ("minimize", "maximize")
# distribution -> (required keys, optional keys with defaults)
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "constant": (("value",), {}),
    "categorical": (("values",), {"probabilities": None}),
    "int_uniform": (("min", "max"), {}),
    "uniform": (("min", "max"), {}),
    "q_uniform": (("min", "max"), {"q": 1.0}),
    "log_uniform": (("min", "max"), {}),  # bounds are natural-log exponents
    "log_uniform_values": (("min", "max"), {}),
    "q_log_uniform": (("min", "max"), {"q": 1.0}),
    "q_log_uniform_values": (("min", "max"), {"q": 1.0}),
    "inv_log_uniform": (("min", "max"), {}),
    "inv_log_uniform_values": (("min", "max"), {}),
    "normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "log_normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_log_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "beta": ((), {"a": 1.0, "b": 1.0}),
}
_TOP_KEYS = {"name", "description", "method", "metric", "parameters", "early_terminate", "run_cap", "program",
             "command", "project", "entity", "controller"}  # fmt: skip
_EPS = 1e-9


@dataclass(frozen=True)
class Param:
    """One searchable (or constant) parameter at `path` (nested parameters have longer paths)."""

    path: tuple[str, ...]
    distribution: str
    args: dict[str, Any]

    @property
    def name(self) -> str:
        return ".".join(self.path)

    # --- random search ----------------------------------------------------------------------------
    def sample(self, rng: random.Random) -> Any:
        """A value drawn from the distribution."""
        d, a = self.distribution, self.args
        if d == "constant":
            return a["value"]
        if d == "categorical":
            return rng.choices(a["values"], weights=a["probabilities"])[0]
        if d == "int_uniform":
            return rng.randint(a["min"], a["max"])
        if d == "beta":
            return rng.betavariate(a["a"], a["b"])
        if d in ("normal", "q_normal", "log_normal", "q_log_normal"):
            x = rng.gauss(a["mu"], a["sigma"])
            return self._quantize(math.exp(x) if "log" in d else x)
        return self.ppf(rng.random())

    # --- bayes: values from a point of [0, 1] (the inverse CDF, as W&B's bayes search) ---------------
    def ppf(self, u: float) -> Any:
        """The value at quantile `u` of the distribution (categorical: index `u` * count)."""
        d, a = self.distribution, self.args
        u = min(max(u, _EPS), 1 - _EPS)
        if d == "constant":
            return a["value"]
        if d == "categorical":
            return a["values"][min(int(u * len(a["values"])), len(a["values"]) - 1)]
        if d == "int_uniform":
            return min(a["max"], a["min"] + math.floor(u * (a["max"] - a["min"] + 1)))
        if d in ("uniform", "q_uniform"):
            x = a["min"] + u * (a["max"] - a["min"])
        elif d in ("log_uniform", "q_log_uniform"):
            x = math.exp(a["min"] + u * (a["max"] - a["min"]))
        elif d in ("log_uniform_values", "q_log_uniform_values"):
            low, high = math.log(a["min"]), math.log(a["max"])
            x = math.exp(low + u * (high - low))
        elif d == "inv_log_uniform":
            x = math.exp(-(a["min"] + u * (a["max"] - a["min"])))
        elif d == "inv_log_uniform_values":
            low, high = math.log(1 / a["max"]), math.log(1 / a["min"])
            x = 1 / math.exp(low + u * (high - low))
        elif d in ("normal", "q_normal", "log_normal", "q_log_normal"):
            x = NormalDist(a["mu"], a["sigma"]).inv_cdf(u)
            x = math.exp(x) if "log" in d else x
        else:  # beta: searched over its support [0, 1]
            x = u
        return self._quantize(x)

    def _quantize(self, x: float) -> Any:
        if not self.distribution.startswith("q_"):
            return x
        q = self.args["q"]
        value = round(x / q) * q
        return round(value) if isinstance(q, int) else value

    # --- grid -------------------------------------------------------------------------------------
    def grid_values(self) -> list[Any]:
        """Every value grid search tries; ConfigError for a continuous distribution."""
        d, a = self.distribution, self.args
        if d == "constant":
            return [a["value"]]
        if d == "categorical":
            return list(a["values"])
        if d == "int_uniform":
            return list(range(a["min"], a["max"] + 1))
        if d == "q_uniform":
            count = math.floor((a["max"] - a["min"]) / a["q"] + _EPS) + 1
            return [self._quantize(a["min"] + i * a["q"]) for i in range(count)]
        raise ConfigError(
            f"parameters.{self.name}",
            f"grid search needs `values`, `value`, int_uniform or q_uniform, not distribution {d!r}",
        )


@dataclass
class SweepConfig:
    """A validated sweep configuration."""

    method: str
    params: list[Param]
    metric_name: Optional[str] = None
    goal: str = "minimize"
    target: Optional[float] = None
    run_cap: Optional[int] = None
    hyperband: Optional[dict[str, Any]] = None
    program: Optional[str] = None
    command: Optional[list[str]] = None
    name: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def searchable(self) -> list[Param]:
        return [p for p in self.params if p.distribution != "constant"]

    def nest(self, flat: dict[str, Any]) -> dict[str, Any]:
        """{"optimizer.lr": 0.1} -> {"optimizer": {"lr": 0.1}} following the parameter paths."""
        out: dict[str, Any] = {}
        for param in self.params:
            node = out
            for part in param.path[:-1]:
                node = node.setdefault(part, {})
            node[param.path[-1]] = flat[param.name]
        return out


def _number(key: str, value: Any, integer: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise ConfigError(key, f"expected {'an integer' if integer else 'a number'}, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(key, f"expected a finite number, got {value!r}")
    return value


def _param(path: tuple[str, ...], spec: Any) -> list[Param]:
    key = "parameters." + ".".join(path)
    if not isinstance(spec, dict) or not spec:
        raise ConfigError(key, "expected a dict with `value`, `values`, `min`/`max`, `distribution` or `parameters`")
    if "parameters" in spec:
        nested = spec["parameters"]
        if not isinstance(nested, dict) or not nested or len(spec) > 1:
            raise ConfigError(key, "nested `parameters` must be a non-empty dict and the only key")
        return [p for name, sub in nested.items() for p in _param((*path, str(name)), sub)]
    distribution = spec.get("distribution")
    if distribution is None:  # W&B infers the distribution from the keys given
        if "value" in spec:
            distribution = "constant"
        elif "values" in spec:
            distribution = "categorical"
        elif "min" in spec and "max" in spec:
            both_int = all(isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("min", "max"))
            distribution = "int_uniform" if both_int else "uniform"
        else:
            raise ConfigError(key, "give `value`, `values`, `min` and `max`, or a `distribution`")
    if distribution not in DISTRIBUTIONS:
        raise ConfigError(f"{key}.distribution", f"unknown {distribution!r}; one of {', '.join(DISTRIBUTIONS)}")
    required, optional = DISTRIBUTIONS[distribution]
    unknown = set(spec) - {"distribution", *required, *optional}
    if unknown:
        allowed = ", ".join(["distribution", *required, *optional])
        raise ConfigError(f"{key}.{sorted(unknown)[0]}", f"not a key of {distribution}; allowed: {allowed}")
    missing = [k for k in required if k not in spec]
    if missing:
        raise ConfigError(f"{key}.{missing[0]}", f"{distribution} needs {', '.join(required)}")
    args = {**optional, **{k: spec[k] for k in spec if k != "distribution"}}
    _check_args(key, distribution, args)
    return [Param(path, distribution, args)]


def _check_args(key: str, distribution: str, args: dict[str, Any]) -> None:
    if distribution == "categorical":
        values, probabilities = args["values"], args["probabilities"]
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{key}.values", f"expected a non-empty list, got {values!r}")
        if probabilities is not None:
            if not isinstance(probabilities, list) or len(probabilities) != len(values):
                raise ConfigError(f"{key}.probabilities", "expected one probability per value")
            for p in probabilities:
                _number(f"{key}.probabilities", p)
            if abs(sum(probabilities) - 1.0) > 1e-6 or min(probabilities) < 0:
                raise ConfigError(f"{key}.probabilities", f"must be non-negative and sum to 1, got {probabilities}")
        return
    if distribution == "constant":
        return
    for name in ("min", "max", "mu", "q", "a", "b"):
        if name in args:
            _number(f"{key}.{name}", args[name], integer=distribution == "int_uniform" and name in ("min", "max"))
    if "sigma" in args and _number(f"{key}.sigma", args["sigma"]) <= 0:
        raise ConfigError(f"{key}.sigma", f"must be positive, got {args['sigma']!r}")
    if "q" in args and args["q"] <= 0:
        raise ConfigError(f"{key}.q", f"must be positive, got {args['q']!r}")
    for name in ("a", "b"):
        if distribution == "beta" and args[name] <= 0:
            raise ConfigError(f"{key}.{name}", f"must be positive, got {args[name]!r}")
    if "min" in args:
        if args["min"] > args["max"]:
            raise ConfigError(f"{key}.min", f"min {args['min']!r} is above max {args['max']!r}")
        if distribution.endswith("_values") and args["min"] <= 0:
            raise ConfigError(f"{key}.min", f"{distribution} needs min > 0, got {args['min']!r}")


def parse_config(raw: Any) -> SweepConfig:
    """Validate a W&B sweep configuration (a dict); ConfigError naming the first problem."""
    if not isinstance(raw, dict):
        raise ConfigError("config", f"expected a dict (or a YAML file of one), got {type(raw).__name__}")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise ConfigError(sorted(unknown)[0], f"not a sweep config key; allowed: {', '.join(sorted(_TOP_KEYS))}")
    method = raw.get("method")
    if method not in METHODS:
        raise ConfigError("method", f"expected one of {', '.join(METHODS)}, got {method!r}")
    parameters = raw.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise ConfigError("parameters", "expected a non-empty dict of parameter name -> spec")
    params = [p for name, spec in parameters.items() for p in _param((str(name),), spec)]
    config = SweepConfig(method=method, params=params, raw=raw, name=str(raw.get("name") or ""))
    metric = raw.get("metric")
    if metric is not None:
        if not isinstance(metric, dict) or not isinstance(metric.get("name"), str) or not metric["name"]:
            raise ConfigError("metric.name", "expected the name of a logged metric")
        extra = set(metric) - {"name", "goal", "target", "impute", "impute_while_running"}
        if extra:
            raise ConfigError(f"metric.{sorted(extra)[0]}", "not a metric key; allowed: name, goal, target")
        config.metric_name = metric["name"]
        config.goal = metric.get("goal", "minimize")
        if config.goal not in GOALS:
            raise ConfigError("metric.goal", f"expected minimize or maximize, got {config.goal!r}")
        if metric.get("target") is not None:
            config.target = float(_number("metric.target", metric["target"]))
    if method == "bayes":
        if config.metric_name is None:
            raise ConfigError("metric", "bayes search needs a metric (name and goal) to optimise")
        if not config.searchable:
            raise ConfigError("parameters", "bayes search needs at least one parameter that is not constant")
    if method == "grid":
        for param in params:
            param.grid_values()
    if raw.get("run_cap") is not None:
        config.run_cap = int(_number("run_cap", raw["run_cap"], integer=True))
        if config.run_cap < 1:
            raise ConfigError("run_cap", f"must be at least 1, got {raw['run_cap']!r}")
    if raw.get("early_terminate") is not None:
        config.hyperband = _hyperband(raw["early_terminate"], config)
    if raw.get("program") is not None and (not isinstance(raw["program"], str) or not raw["program"]):
        raise ConfigError("program", f"expected a script path, got {raw['program']!r}")
    config.program = raw.get("program")
    command = raw.get("command")
    if command is not None and (not isinstance(command, list) or not all(isinstance(c, str) for c in command)):
        raise ConfigError("command", f"expected a list of strings (with macros such as ${{args}}), got {command!r}")
    config.command = command
    return config


def _hyperband(spec: Any, config: SweepConfig) -> dict[str, Any]:
    if not isinstance(spec, dict) or spec.get("type") != "hyperband":
        raise ConfigError("early_terminate.type", "only hyperband is supported: {type: hyperband, min_iter: 3}")
    extra = set(spec) - {"type", "min_iter", "max_iter", "s", "eta", "strict"}
    if extra:
        raise ConfigError(f"early_terminate.{sorted(extra)[0]}", "allowed: type, min_iter, max_iter, s, eta, strict")
    if config.metric_name is None:
        raise ConfigError("metric", "hyperband needs a metric (name and goal)")
    eta = _number("early_terminate.eta", spec.get("eta", 3))
    if eta <= 1:
        raise ConfigError("early_terminate.eta", f"must be above 1, got {eta!r}")
    if "min_iter" in spec:
        min_iter = _number("early_terminate.min_iter", spec["min_iter"], integer=True)
        if min_iter < 1:
            raise ConfigError("early_terminate.min_iter", f"must be at least 1, got {min_iter!r}")
        bands: list[int] = []
        band = float(min_iter)
        while band < 1e9 and len(bands) < 100:
            bands.append(int(band))
            band *= eta
    elif "max_iter" in spec:
        max_iter = _number("early_terminate.max_iter", spec["max_iter"], integer=True)
        s = _number("early_terminate.s", spec.get("s", 0), integer=True)
        bands = []
        band = float(max_iter)
        for _ in range(s):
            band /= eta
            if band < 1:
                break
            bands.append(int(band))
        if not bands:
            raise ConfigError("early_terminate.s", "no band: give s >= 1 with max_iter / eta >= 1")
        bands.sort()
    else:
        raise ConfigError("early_terminate", "hyperband needs min_iter, or max_iter and s")
    return {"bands": bands, "eta": eta, "strict": bool(spec.get("strict", False))}
