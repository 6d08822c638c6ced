"""The sweep controller: hands out trials, tells agents which runs hyperband stops, keeps state.

It runs where the store is written (the process owning the embedded store, or the collector), so
one lock makes "read the trials, choose, record the claim" atomic for every agent: no grid point
is handed out twice and `run_cap` holds across agents. A trial is an ordinary run (`runs.sweep_id`);
`sweep_trials` records the claim (parameters, the agent, the sampler's point) and the controller's
own verdicts (`stopped`, `cancelled`); `sweep_agents` the agents' heartbeats. A trial's state is
its run's, unless the controller stopped it, its agent died (`crashed`) or it has not started yet
(`pending`).
"""

from __future__ import annotations

import random
import string
import threading
import time
from typing import TYPE_CHECKING, Any, Optional

import orjson

from tracehouse._errors import ConfigError, NotFoundError

from ._sweep_config import SweepConfig, parse_config
from ._sweep_search import ENDED, TrialInfo, grid_size, hyperband_stops, suggest

if TYPE_CHECKING:
    from ._store import Store

AGENT_DEAD_AFTER = 30.0  # seconds without an agent heartbeat (agents beat every 2 s)
RUN_CRASHED_AFTER = 120.0  # seconds without a run heartbeat (runs beat every 30 s)
PENDING_CRASHED_AFTER = 300.0  # a claimed trial whose run never appeared
ACTIONS = {"stop": "stopped", "pause": "paused", "resume": "running", "cancel": "cancelled"}
_PAST = {"stop": "stopped", "pause": "paused", "resume": "resumed", "cancel": "cancelled"}
_ID_CHARS = string.ascii_lowercase + string.digits
_lock = threading.RLock()

_TRIALS_SQL = """
SELECT t.run_id, t.trial_index, t.params, t.internal, t.agent_id, t.state, toUnixTimestamp64Micro(t.claimed_at),
       r.state, toUnixTimestamp64Micro(r.heartbeat_at), toUnixTimestamp64Micro(r.created_at),
       toUnixTimestamp64Micro(r.updated_at), JSONExtractRaw(r.summary, {k:String})
FROM sweep_trials AS t FINAL
LEFT JOIN (SELECT run_id, state, heartbeat_at, created_at, updated_at, summary FROM runs FINAL
           WHERE project = {p:String})
    AS r ON r.run_id = t.run_id
WHERE t.project = {p:String} AND t.sweep_id = {s:String}
ORDER BY t.trial_index
"""
_HISTORY_SQL = """
SELECT run_id, arrayMap(x -> x.2, arraySort(groupArray((step, value)))) FROM metrics FINAL
WHERE project = {p:String} AND key = {k:String} AND run_id IN {ids:Array(String)} GROUP BY run_id
"""


def _summary_number(raw: str) -> Optional[float]:
    """The metric's summary value when it is a number (a summary rule's dict or text is not)."""
    try:
        value = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _now_us() -> int:
    return time.time_ns() // 1000


class Trial(TrialInfo):
    """A trial as stored, with what the controller needs to rewrite its row."""

    index: int
    agent_id: str
    claimed_us: int
    verdict: str  # the controller's own: claimed, stopped, cancelled
    runtime: Optional[float]


class SweepController:
    """Sweeps in one store: create, next trial, heartbeats (hyperband), control, status."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._rng = random.Random()

    # --- sweeps -----------------------------------------------------------------------------------
    def create(self, project: str, raw: Any) -> str:
        """Validate a W&B sweep config and store the sweep; returns its id."""
        config = parse_config(raw)
        sweep_id = "".join(self._rng.choice(_ID_CHARS) for _ in range(8))
        now = _now_us()
        self._write_sweep(project, sweep_id, config, "running", now, now)
        return sweep_id

    def _write_sweep(
        self, project: str, sweep_id: str, config: SweepConfig, state: str, created: int, now: int
    ) -> None:
        self.store.insert(
            "sweeps",
            {
                "project": [project],
                "sweep_id": [sweep_id],
                "name": [config.name],
                "method": [config.method],
                "config": [orjson.dumps(config.raw).decode()],
                "state": [state],
                "created_at": [created],
                "updated_at": [now],
                "version": [time.time_ns()],
            },
        )

    def sweep(self, project: str, sweep_id: str) -> tuple[dict[str, Any], SweepConfig]:
        """The stored sweep row and its config; NotFoundError for an unknown id."""
        _, rows = self.store.query_rows(
            "SELECT state, config, toUnixTimestamp64Micro(created_at) FROM sweeps FINAL "
            "WHERE project = {p:String} AND sweep_id = {s:String}",
            {"p": project, "s": sweep_id},
        )
        if not rows:
            raise NotFoundError(f"no sweep {sweep_id!r} in project {project!r}")
        state, raw, created = rows[0]
        return {"state": state, "created_us": int(created)}, parse_config(orjson.loads(raw))

    def control(self, project: str, sweep_id: str, action: str) -> str:
        """stop (no new trials), pause, resume, cancel (no new trials, running ones are stopped)."""
        if action not in ACTIONS:
            raise ConfigError("action", f"expected one of {', '.join(ACTIONS)}, got {action!r}")
        with _lock:
            row, config = self.sweep(project, sweep_id)
            if row["state"] == "cancelled" or (row["state"] == "finished" and action != "resume"):
                raise ConfigError("action", f"sweep {sweep_id} is {row['state']}; it cannot be {_PAST[action]}")
            state = ACTIONS[action]
            self._write_sweep(project, sweep_id, config, state, row["created_us"], _now_us())
            return state

    # --- trials -----------------------------------------------------------------------------------
    def trials(self, project: str, sweep_id: str, config: SweepConfig) -> list[Trial]:
        """Every trial with its resolved state and the metric's logged values."""
        _, rows = self.store.query_rows(_TRIALS_SQL, {"p": project, "s": sweep_id, "k": config.metric_name or ""})
        _, agents = self.store.query_rows(
            "SELECT agent_id, toUnixTimestamp64Micro(heartbeat_at) FROM sweep_agents FINAL "
            "WHERE project = {p:String} AND sweep_id = {s:String}",
            {"p": project, "s": sweep_id},
        )
        now = _now_us()
        alive = {agent for agent, beat in agents if now - int(beat) < AGENT_DEAD_AFTER * 1e6}
        trials = []
        for (
            run_id,
            index,
            params,
            internal,
            agent,
            verdict,
            claimed,
            run_state,
            beat,
            created,
            updated,
            summary,
        ) in rows:
            trial = Trial(run_id, orjson.loads(params), orjson.loads(internal), "pending")
            trial.summary = _summary_number(summary)
            trial.index, trial.agent_id, trial.claimed_us, trial.verdict = int(index), agent, int(claimed), verdict
            trial.runtime = (int(updated) - int(created)) / 1e6 if run_state else None
            if verdict in ("stopped", "cancelled") and run_state != "finished":
                trial.state = verdict
            elif run_state in ("finished", "failed", "stopped"):
                trial.state = run_state
            elif run_state == "running":
                dead = now - int(beat) > RUN_CRASHED_AFTER * 1e6 or agent not in alive
                trial.state = "crashed" if dead else "running"
            elif agent not in alive or now - int(claimed) > PENDING_CRASHED_AFTER * 1e6:
                trial.state = "crashed"  # its agent died before the run started
            trials.append(trial)
        if config.metric_name and trials:
            _, histories = self.store.query_rows(
                _HISTORY_SQL, {"p": project, "k": config.metric_name, "ids": [t.run_id for t in trials]}
            )
            by_run = {run_id: [float(v) for v in values] for run_id, values in histories}
            for trial in trials:
                trial.history = by_run.get(trial.run_id, [])
        return trials

    def _write_trial(self, project: str, sweep_id: str, trial: Trial, verdict: str) -> None:
        self.store.insert(
            "sweep_trials",
            {
                "project": [project],
                "sweep_id": [sweep_id],
                "run_id": [trial.run_id],
                "trial_index": [trial.index],
                "params": [orjson.dumps(trial.params).decode()],
                "internal": [orjson.dumps(trial.internal).decode()],
                "agent_id": [trial.agent_id],
                "state": [verdict],
                "claimed_at": [trial.claimed_us],
                "version": [time.time_ns()],
            },
        )

    def _beat(self, project: str, sweep_id: str, agent_id: str, host: str, pid: int) -> None:
        now = _now_us()
        self.store.insert(
            "sweep_agents",
            {
                "project": [project],
                "sweep_id": [sweep_id],
                "agent_id": [agent_id],
                "host": [host],
                "pid": [pid],
                "started_at": [now],
                "heartbeat_at": [now],
                "version": [time.time_ns()],
            },
        )

    def next_trial(self, project: str, sweep_id: str, agent_id: str, host: str = "", pid: int = 0) -> dict[str, Any]:
        """`{"action": "run", "run_id", "params", "trial_index"}`, `{"action": "wait"}` (paused) or
        `{"action": "done", "reason"}`."""
        with _lock:
            row, config = self.sweep(project, sweep_id)
            self._beat(project, sweep_id, agent_id, host, pid)
            if row["state"] == "paused":
                return {"action": "wait", "reason": f"sweep {sweep_id} is paused"}
            if row["state"] != "running":
                return {"action": "done", "reason": f"sweep {sweep_id} is {row['state']}"}
            trials = self.trials(project, sweep_id, config)
            done = self._finished_reason(config, trials)
            suggestion = None if done else suggest(config, trials, self._rng)
            if done or suggestion is None:
                reason = done or f"grid search handed out all {grid_size(config)} points"
                if all(t.state in ENDED for t in trials):
                    self._write_sweep(project, sweep_id, config, "finished", row["created_us"], _now_us())
                return {"action": "done", "reason": reason}
            params, internal = suggestion
            trial = Trial("".join(self._rng.choice(_ID_CHARS) for _ in range(8)), params, internal, "pending")
            trial.index, trial.agent_id, trial.claimed_us = len(trials), agent_id, _now_us()
            self._write_trial(project, sweep_id, trial, "claimed")
            return {"action": "run", "run_id": trial.run_id, "params": config.nest(params), "trial_index": trial.index}

    def _finished_reason(self, config: SweepConfig, trials: list[Trial]) -> Optional[str]:
        if config.run_cap is not None and len(trials) >= config.run_cap:
            return f"run_cap {config.run_cap} reached"
        if config.target is not None:
            for trial in trials:
                best = trial.best(config.goal)
                if best is not None and (best >= config.target if config.goal == "maximize" else best <= config.target):
                    return f"trial {trial.run_id} reached the target {config.metric_name} = {config.target}"
        return None

    def heartbeat(
        self, project: str, sweep_id: str, agent_id: str, running: list[str], host: str = "", pid: int = 0
    ) -> dict[str, Any]:
        """An agent's heartbeat: `{"stop": [run ids of `running` to stop], "state": the sweep's}`."""
        with _lock:
            row, config = self.sweep(project, sweep_id)
            self._beat(project, sweep_id, agent_id, host, pid)
            if not running:
                return {"stop": [], "state": row["state"]}
            trials = self.trials(project, sweep_id, config)
            mine = {t.run_id: t for t in trials if t.run_id in set(running)}
            if row["state"] == "cancelled":
                stops, verdict = list(mine), "cancelled"
            elif config.hyperband is not None:
                stops, verdict = [r for r in hyperband_stops(config, trials) if r in mine], "stopped"
            else:
                stops, verdict = [], ""
            for run_id in stops:
                if mine[run_id].verdict != verdict:
                    self._write_trial(project, sweep_id, mine[run_id], verdict)
            return {"stop": stops, "state": row["state"]}

    def status(self, project: str, sweep_id: str) -> dict[str, Any]:
        """The sweep, its trials (parameters, state, metric, runtime) and the best trial so far."""
        with _lock:
            row, config = self.sweep(project, sweep_id)
            trials = self.trials(project, sweep_id, config)
            if row["state"] == "running" and trials and all(t.state in ENDED for t in trials):
                exhausted = config.method == "grid" and len(trials) >= grid_size(config)
                if exhausted or self._finished_reason(config, trials):  # the last trial ended since
                    row["state"] = "finished"
                    self._write_sweep(project, sweep_id, config, "finished", row["created_us"], _now_us())
        listed: list[dict[str, Any]] = [
            {
                "run_id": t.run_id,
                "trial": t.index,
                "state": t.state,
                "metric": t.best(config.goal),
                "runtime": t.runtime,
                "agent_id": t.agent_id,
                "params": t.params,
            }
            for t in trials
        ]
        scored = [t for t in listed if t["metric"] is not None and t["state"] == "finished"]
        best = (max if config.goal == "maximize" else min)(scored, key=lambda t: t["metric"]) if scored else None
        return {
            "sweep_id": sweep_id, "project": project, "name": config.name, "method": config.method,
            "state": row["state"], "metric": config.metric_name, "goal": config.goal, "config": config.raw,
            "trials": listed, "best": best,
        }  # fmt: skip
