"""`run.define_metric(...)`: how a logged key is summarised (W&B's summary rules).

`summary` is one or more of "min", "max", "mean", "last", "best" (with `goal`), "first", or "none",
comma-separated. With one rule other than "last" the summary holds `{rule: value}` for the key, as
W&B does (`run.summary["loss"] == {"min": 0.12}`); "none" leaves the key out of the summary. Names
may be glob patterns ("val/*"); an exact name wins over a pattern, then the first pattern defined.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from tracehouse._errors import ConfigError

RULES = ("min", "max", "mean", "last", "best", "first", "none")
GOALS = ("minimize", "maximize")


@dataclass
class MetricRule:
    """One define_metric call."""

    name: str
    summary: tuple[str, ...]
    goal: Optional[str] = None
    step_metric: Optional[str] = None
    step_sync: bool = True  # W&B: the step metric's last value is filled in on rows that lack it
    hidden: bool = False  # W&B: not shown in the UI's default charts

    def as_value(self) -> dict[str, Any]:
        """The stored form (a `run_values` row `_type: "metric_definition"`)."""
        return {"_type": "metric_definition", "name": self.name, "summary": list(self.summary), "goal": self.goal,
                "step_metric": self.step_metric, "step_sync": self.step_sync, "hidden": self.hidden}  # fmt: skip


@dataclass
class _Stats:
    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    first: Any = None
    last: Any = None

    def add(self, value: float) -> None:
        if self.count == 0:
            self.first = value
        self.count += 1
        self.last = value
        if not math.isnan(value):
            self.total += value
            self.low = min(self.low, value)
            self.high = max(self.high, value)


@dataclass
class MetricRules:
    """The run's define_metric rules and the running statistics they need."""

    exact: dict[str, MetricRule] = field(default_factory=dict)
    patterns: list[MetricRule] = field(default_factory=list)
    stats: dict[str, _Stats] = field(default_factory=dict)

    def define(self, name: str, summary: Optional[str], goal: Optional[str], step_metric: Optional[str],
               step_sync: Optional[bool] = None, hidden: Optional[bool] = None) -> MetricRule:  # fmt: skip
        """Add or replace the rule for `name` (checked as W&B checks it)."""
        if not isinstance(name, str) or not name:
            raise ConfigError("name", f"expected a metric name or glob pattern, got {name!r}")
        rules = tuple(part.strip() for part in (summary or "last").split(",") if part.strip())
        unknown = [r for r in rules if r not in RULES]
        if unknown or not rules:
            raise ConfigError("summary", f"unknown summary {', '.join(unknown)!s}: use {', '.join(RULES)}")
        if goal is not None and goal not in GOALS:
            raise ConfigError("goal", f"expected 'minimize' or 'maximize', got {goal!r}")
        if "best" in rules and goal is None:
            raise ConfigError("goal", "summary='best' needs goal='minimize' or goal='maximize'")
        if step_metric is not None and (not isinstance(step_metric, str) or not step_metric):
            raise ConfigError("step_metric", f"expected a metric name, got {step_metric!r}")
        rule = MetricRule(name, rules, goal, step_metric, True if step_sync is None else bool(step_sync), bool(hidden))
        if any(ch in name for ch in "*?["):
            self.patterns = [p for p in self.patterns if p.name != name] + [rule]
        else:
            self.exact[name] = rule
        return rule

    def rule_for(self, key: str) -> Optional[MetricRule]:
        """The rule that applies to `key`, if any."""
        rule = self.exact.get(key)
        if rule is not None:
            return rule
        return next((p for p in self.patterns if fnmatch.fnmatchcase(key, p.name)), None)

    def summarise(self, values: dict[str, Any], numbers: dict[str, Any]) -> dict[str, Any]:
        """The summary updates for one committed step; keys under "none" map to a removal marker."""
        if not self.exact and not self.patterns:
            return values
        out: dict[str, Any] = {}
        for key, value in values.items():
            rule = self.rule_for(key)
            if rule is None or key not in numbers or rule.summary == ("last",):
                out[key] = value
                continue
            if "none" in rule.summary:
                out[key] = _REMOVE
                continue
            stats = self.stats.setdefault(key, _Stats())
            stats.add(float(numbers[key]))  # numbers are floats or 'nan' / 'inf' / '-inf'
            out[key] = {r: _stat(stats, r, rule.goal) for r in rule.summary}
        return out


def _stat(stats: _Stats, rule: str, goal: Optional[str]) -> Any:
    if rule == "best":
        rule = "min" if goal == "minimize" else "max"
    return {
        "min": stats.low, "max": stats.high, "mean": stats.total / stats.count if stats.count else None,
        "last": stats.last, "first": stats.first,
    }[rule]  # fmt: skip


_REMOVE = object()  # a summary key that define_metric(summary="none") keeps out


def is_removal(value: Any) -> bool:
    """True for the marker of a key to keep out of the summary."""
    return value is _REMOVE
