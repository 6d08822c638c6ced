"""Choosing a sweep's next trial (grid, random, bayes) and the trials hyperband stops.

Bayes search asks Optuna's TPE sampler, warm-started on every trial of the sweep in the store:
finished trials with their best logged metric value, failed, crashed and stopped ones with the
worst value any ended trial reached (W&B's default "worst" imputation, so the search stays away
from them), running ones as pending points. Searchable parameters live in [0, 1] (each value is the
inverse CDF of its point, as in W&B's bayes search); categorical ones by index; integers as they are.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Sequence, cast

from tracehouse._errors import ConfigError
from tracehouse.collector.sweeps.config import SweepConfig

ENDED = ("finished", "failed", "crashed", "stopped", "cancelled")


@dataclass
class TrialInfo:
    """What a suggestion needs to know of one trial of the sweep."""

    run_id: str
    params: dict[str, Any]  # flat: "optimizer.lr" -> value
    internal: dict[str, Any]  # grid index, or the sampler's point
    state: str
    history: list[float] = field(default_factory=list)  # the metric's logged values, in step order
    summary: Optional[float] = None  # the run's summary value of the metric (set by hand, say)

    def best(self, goal: str) -> Optional[float]:
        """The best logged value of the metric (W&B's); the summary's when nothing was logged."""
        values = [v for v in self.history if math.isfinite(v)]
        if not values:
            return self.summary
        return max(values) if goal == "maximize" else min(values)


def grid_size(config: SweepConfig) -> int:
    """How many points grid search has."""
    return math.prod(len(p.grid_values()) for p in config.params)


def suggest(
    config: SweepConfig, trials: Sequence[TrialInfo], rng: random.Random
) -> Optional[tuple[dict[str, Any], dict[str, Any]]]:
    """The next trial's (flat parameters, internal point), or None when grid search has run every point."""
    if config.method == "grid":
        return _grid(config, trials)
    if config.method == "random":
        return {p.name: p.sample(rng) for p in config.params}, {}
    return _bayes(config, trials, rng)


def _grid(config: SweepConfig, trials: Sequence[TrialInfo]) -> Optional[tuple[dict[str, Any], dict[str, Any]]]:
    taken = {int(t.internal["grid"]) for t in trials if "grid" in t.internal}
    axes = [p.grid_values() for p in config.params]
    for index, point in enumerate(itertools.product(*axes)):
        if index not in taken:
            return {p.name: value for p, value in zip(config.params, point, strict=True)}, {"grid": index}
    return None


def _bayes(
    config: SweepConfig, trials: Sequence[TrialInfo], rng: random.Random
) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        import optuna
    except ImportError:
        raise ConfigError("method", "bayes search needs Optuna: pip install 'tracehouse[sweeps]'") from None
    from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions: dict[str, BaseDistribution] = {}
    for param in config.searchable:
        if param.distribution == "categorical":
            distributions[param.name] = CategoricalDistribution(list(range(len(param.args["values"]))))
        elif param.distribution == "int_uniform":
            distributions[param.name] = IntDistribution(param.args["min"], param.args["max"])
        else:
            distributions[param.name] = FloatDistribution(0.0, 1.0)
    goal = config.goal
    ended = [b for t in trials if t.state in ENDED and (b := t.best(goal)) is not None]
    worst = (min(ended) if goal == "maximize" else max(ended)) if ended else 0.0
    study = optuna.create_study(
        direction=cast(Literal["minimize", "maximize"], goal),
        sampler=optuna.samplers.TPESampler(seed=rng.randrange(2**31), constant_liar=True),
    )
    for trial in trials:
        point = trial.internal.get("point")
        if not isinstance(point, dict) or set(point) != set(distributions):
            continue  # a trial of another shape (the config changed): not evidence for this search
        try:
            if trial.state in ENDED:
                best = trial.best(goal) if trial.state == "finished" else None
                study.add_trial(create_trial(params=point, distributions=distributions, value=worst if best is None
                                             else best))  # fmt: skip
            else:
                study.add_trial(create_trial(params=point, distributions=distributions, state=TrialState.RUNNING))
        except ValueError:
            continue  # a stored point outside today's bounds
    asked = study.ask(distributions)
    params = {}
    for param in config.params:
        if param.distribution == "constant":
            params[param.name] = param.args["value"]
        elif param.distribution == "categorical":
            params[param.name] = param.args["values"][asked.params[param.name]]
        elif param.distribution == "int_uniform":
            params[param.name] = asked.params[param.name]
        else:
            params[param.name] = param.ppf(asked.params[param.name])
    return params, {"point": dict(asked.params)}


def hyperband_stops(config: SweepConfig, trials: Sequence[TrialInfo]) -> list[str]:
    """Run ids of running trials whose metric falls behind at a band (W&B's hyperband stopping).

    A band is an iteration count (the n-th logged value of the metric). At each band the threshold
    is the value that the best 1/eta of the trials that reached it beat; a running trial is stopped
    when its value at the last band it passed is worse than that band's threshold (`strict`: at any
    band it passed)."""
    assert config.hyperband is not None
    bands, eta, strict = config.hyperband["bands"], config.hyperband["eta"], config.hyperband["strict"]
    sign = -1.0 if config.goal == "maximize" else 1.0  # compared as a loss: lower is better
    histories = {t.run_id: [sign * v for v in t.history if math.isfinite(v)] for t in trials}
    thresholds = []
    for band in bands:
        reached = sorted(h[band] for h in histories.values() if len(h) > band)
        thresholds.append(reached[int(len(reached) / eta)] if reached else math.inf)
    stops = []
    for trial in trials:
        if trial.state != "running":
            continue
        history = histories[trial.run_id]
        passed = [(band, limit) for band, limit in zip(bands, thresholds, strict=True) if band < len(history)]
        checked = passed if strict else passed[-1:]
        if any(history[band] > limit for band, limit in checked):
            stops.append(trial.run_id)
    return stops
