"""The sweep controller: hands out trials, tells agents which runs hyperband stops, keeps state.

It runs where the store is written (the process owning the embedded store, or the collector), one
instance per store (`controller_for`), so one lock makes "choose, record the claim" atomic for
every agent: no grid point is handed out twice and `run_cap` holds across agents. (With several
collectors on one ClickHouse server, run sweeps through one of them.)

The controller keeps each sweep's state in memory, loaded from the store on first use: the sweep
row, the claims (`sweep_trials`: parameters, agent, the sampler's point, its own verdicts
`stopped` / `cancelled`) and the agents' heartbeats (`sweep_agents`, saved at most every
`AGENT_SAVE_SECONDS`). It records every change through the spool (like every other record), so a
suggestion costs no store round trip; what it reads from the store is only what others write:
trials' runs and metrics, when a decision needs them (bayes, a target, hyperband, the end).
A trial's state is its run's, unless the controller stopped it, its agent died (`crashed`) or it
has not started yet (`pending`).
"""

from __future__ import annotations

import random
import string
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

import orjson

from tracehouse._errors import ConfigError, NotFoundError
from tracehouse.collector.sweeps.config import SweepConfig, parse_config
from tracehouse.collector.sweeps.search import ENDED, TrialInfo, grid_size, hyperband_stops, suggest

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

AGENT_DEAD_AFTER = 30.0  # seconds without an agent heartbeat (agents beat every 2 s)
AGENT_SAVE_SECONDS = 10.0  # an agent's heartbeat is written to sweep_agents at most this often
RUN_CRASHED_AFTER = 120.0  # seconds without a run heartbeat (runs beat every 30 s)
PENDING_CRASHED_AFTER = 300.0  # a claimed trial whose run never appeared
ACTIONS = {"stop": "stopped", "pause": "paused", "resume": "running", "cancel": "cancelled"}
_PAST = {"stop": "stopped", "pause": "paused", "resume": "resumed", "cancel": "cancelled"}
_ID_CHARS = string.ascii_lowercase + string.digits
Submit = Callable[[dict[str, Any]], None]

_RUNS_SQL = """
SELECT run_id, state, toUnixTimestamp64Micro(heartbeat_at), toUnixTimestamp64Micro(created_at),
       toUnixTimestamp64Micro(updated_at), JSONExtractRaw(summary, {k:String})
FROM runs FINAL WHERE project = {p:String} AND run_id IN {ids:Array(String)}
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
    """A claimed trial: what the store says of its run, and what the controller recorded."""

    index: int
    agent_id: str
    claimed_us: int
    verdict: str  # the controller's own: claimed, stopped, cancelled
    run_state: str  # from `runs` at the last refresh ("" before its run appeared)
    run_beat_us: int
    runtime: Optional[float]
    settled: bool  # its run ended and its metric was read: nothing about it changes any more


@dataclass
class _Sweep:
    """One sweep's state, as the controller keeps it."""

    project: str
    sweep_id: str
    config: SweepConfig
    state: str
    created_us: int
    trials: list[Trial] = field(default_factory=list)
    beats: dict[str, int] = field(default_factory=dict)  # agent -> last heartbeat (µs)
    saved: dict[str, float] = field(default_factory=dict)  # agent -> when its beat was last written (monotonic)


def _trial(run_id: str, params: dict[str, Any], internal: dict[str, Any], index: int, agent: str, claimed: int,
           verdict: str) -> Trial:  # fmt: skip
    trial = Trial(run_id, params, internal, "pending")
    trial.index, trial.agent_id, trial.claimed_us, trial.verdict = index, agent, claimed, verdict
    trial.run_state, trial.run_beat_us, trial.runtime, trial.settled = "", 0, None, False
    return trial


class SweepController:
    """Sweeps in one store: create, next trial, heartbeats (hyperband), control, status."""

    def __init__(self, store: Store, submit: Submit) -> None:
        self.store = store
        self._submit = submit
        self._rng = random.Random()
        self._sweeps: dict[tuple[str, str], _Sweep] = {}
        self._lock = threading.RLock()

    def _record(self, record: dict[str, Any]) -> None:
        self._submit(record)

    # --- sweeps -----------------------------------------------------------------------------------
    def create(self, project: str, raw: Any) -> str:
        """Validate a W&B sweep config and record the sweep; returns its id."""
        config = parse_config(raw)
        with self._lock:
            sweep_id = "".join(self._rng.choice(_ID_CHARS) for _ in range(8))
            now = _now_us()
            sweep = _Sweep(project, sweep_id, config, "running", now)
            self._sweeps[(project, sweep_id)] = sweep
            self._save_sweep(sweep)
        return sweep_id

    def _save_sweep(self, sweep: _Sweep) -> None:
        self._record({"type": "sweep", "project": sweep.project, "sweep_id": sweep.sweep_id,
                      "name": sweep.config.name, "method": sweep.config.method, "config": sweep.config.raw,
                      "state": sweep.state, "created_at": sweep.created_us, "updated_at": _now_us(),
                      "version": time.time_ns()})  # fmt: skip

    def _save_trial(self, sweep: _Sweep, trial: Trial) -> None:
        self._record({"type": "sweep_trial", "project": sweep.project, "sweep_id": sweep.sweep_id,
                      "run_id": trial.run_id, "trial_index": trial.index, "params": trial.params,
                      "internal": trial.internal, "agent_id": trial.agent_id, "state": trial.verdict,
                      "claimed_at": trial.claimed_us, "version": time.time_ns()})  # fmt: skip

    def _sweep(self, project: str, sweep_id: str) -> _Sweep:
        """The sweep's state (loaded from the store on first use); NotFoundError for an unknown id."""
        known = self._sweeps.get((project, sweep_id))
        if known is not None:
            return known
        bound = {"p": project, "s": sweep_id}
        _, rows = self.store.query_rows(
            "SELECT state, config, toUnixTimestamp64Micro(created_at) FROM sweeps FINAL "
            "WHERE project = {p:String} AND sweep_id = {s:String}",
            bound,
        )
        if not rows:
            raise NotFoundError(f"no sweep {sweep_id!r} in project {project!r}")
        state, raw, created = rows[0]
        sweep = _Sweep(project, sweep_id, parse_config(orjson.loads(raw)), str(state), int(created))
        _, claims = self.store.query_rows(
            "SELECT run_id, params, internal, trial_index, agent_id, toUnixTimestamp64Micro(claimed_at), state "
            "FROM sweep_trials FINAL WHERE project = {p:String} AND sweep_id = {s:String} ORDER BY trial_index",
            bound,
        )
        sweep.trials = [_trial(r, orjson.loads(p), orjson.loads(i), int(n), a, int(c), v)
                        for r, p, i, n, a, c, v in claims]  # fmt: skip
        _, agents = self.store.query_rows(
            "SELECT agent_id, toUnixTimestamp64Micro(heartbeat_at) FROM sweep_agents FINAL "
            "WHERE project = {p:String} AND sweep_id = {s:String}",
            bound,
        )
        sweep.beats = {str(agent): int(beat) for agent, beat in agents}
        self._sweeps[(project, sweep_id)] = sweep
        return sweep

    def sweep(self, project: str, sweep_id: str) -> tuple[dict[str, Any], SweepConfig]:
        """The sweep's state and config; NotFoundError for an unknown id."""
        with self._lock:
            sweep = self._sweep(project, sweep_id)
            return {"state": sweep.state, "created_us": sweep.created_us}, sweep.config

    def control(self, project: str, sweep_id: str, action: str) -> str:
        """stop (no new trials), pause, resume, cancel (no new trials, running ones are stopped)."""
        if action not in ACTIONS:
            raise ConfigError("action", f"expected one of {', '.join(ACTIONS)}, got {action!r}")
        with self._lock:
            sweep = self._sweep(project, sweep_id)
            if sweep.state == "cancelled" or (sweep.state == "finished" and action != "resume"):
                raise ConfigError("action", f"sweep {sweep_id} is {sweep.state}; it cannot be {_PAST[action]}")
            sweep.state = ACTIONS[action]
            self._save_sweep(sweep)
            return sweep.state

    # --- what others write: runs and metrics --------------------------------------------------------
    def _refresh(self, sweep: _Sweep) -> list[Trial]:
        """Read the runs and metric histories of the trials not settled yet; resolve every state."""
        open_trials = [t for t in sweep.trials if not t.settled]
        metric = sweep.config.metric_name or ""
        if open_trials:
            ids = [t.run_id for t in open_trials]
            bound = {"p": sweep.project, "k": metric, "ids": ids}
            _, runs = self.store.query_rows(_RUNS_SQL, bound)
            by_run = {r[0]: r for r in runs}
            histories: dict[str, list[float]] = {}
            if metric:
                _, found = self.store.query_rows(_HISTORY_SQL, bound)
                histories = {run_id: [float(v) for v in values] for run_id, values in found}
            for trial in open_trials:
                row = by_run.get(trial.run_id)
                if row is not None:
                    _, trial.run_state, beat, created, updated, summary = row
                    trial.run_beat_us = int(beat)
                    trial.runtime = (int(updated) - int(created)) / 1e6
                    trial.summary = _summary_number(summary)
                trial.history = histories.get(trial.run_id, trial.history)
        now = _now_us()
        for trial in sweep.trials:
            if trial.settled:
                continue
            agent_alive = now - sweep.beats.get(trial.agent_id, 0) < AGENT_DEAD_AFTER * 1e6
            if trial.verdict in ("stopped", "cancelled") and trial.run_state != "finished":
                trial.state = trial.verdict
            elif trial.run_state in ("finished", "failed", "stopped"):
                trial.state = trial.run_state
                trial.settled = True
            elif trial.run_state == "running":
                dead = now - trial.run_beat_us > RUN_CRASHED_AFTER * 1e6 or not agent_alive
                trial.state = "crashed" if dead else "running"
            elif not agent_alive or now - trial.claimed_us > PENDING_CRASHED_AFTER * 1e6:
                trial.state = "crashed"  # its agent died before the run started
            else:
                trial.state = "pending"
        return sweep.trials

    def trials(self, project: str, sweep_id: str) -> list[Trial]:
        """Every trial with its resolved state and the metric's logged values."""
        with self._lock:
            return list(self._refresh(self._sweep(project, sweep_id)))

    # --- agents -----------------------------------------------------------------------------------
    def _beat(self, sweep: _Sweep, agent_id: str, host: str, pid: int) -> None:
        now = _now_us()
        sweep.beats[agent_id] = now
        if time.monotonic() - sweep.saved.get(agent_id, -1e9) >= AGENT_SAVE_SECONDS:
            sweep.saved[agent_id] = time.monotonic()
            self._record({"type": "sweep_agent", "project": sweep.project, "sweep_id": sweep.sweep_id,
                          "agent_id": agent_id, "host": host, "pid": pid, "started_at": now, "heartbeat_at": now,
                          "version": time.time_ns()})  # fmt: skip

    def next_trial(self, project: str, sweep_id: str, agent_id: str, host: str = "", pid: int = 0) -> dict[str, Any]:
        """`{"action": "run", "run_id", "params", "trial_index"}`, `{"action": "wait"}` (paused) or
        `{"action": "done", "reason"}`."""
        with self._lock:
            sweep = self._sweep(project, sweep_id)
            self._beat(sweep, agent_id, host, pid)
            if sweep.state == "paused":
                return {"action": "wait", "reason": f"sweep {sweep_id} is paused"}
            if sweep.state != "running":
                return {"action": "done", "reason": f"sweep {sweep_id} is {sweep.state}"}
            config = sweep.config
            needs_results = config.method == "bayes" or config.target is not None
            trials = self._refresh(sweep) if needs_results else sweep.trials
            done = self._finished_reason(config, trials)
            suggestion = None if done else suggest(config, trials, self._rng)
            if done or suggestion is None:
                self._finish_if_all_ended(sweep)
                return {"action": "done", "reason": done or f"grid search handed out all {grid_size(config)} points"}
            params, internal = suggestion
            run_id = "".join(self._rng.choice(_ID_CHARS) for _ in range(8))
            trial = _trial(run_id, params, internal, len(sweep.trials), agent_id, _now_us(), "claimed")
            sweep.trials.append(trial)
            self._save_trial(sweep, trial)
            return {"action": "run", "run_id": run_id, "params": config.nest(params), "trial_index": trial.index}

    def _finished_reason(self, config: SweepConfig, trials: list[Trial]) -> Optional[str]:
        if config.run_cap is not None and len(trials) >= config.run_cap:
            return f"run_cap {config.run_cap} reached"
        if config.target is not None:
            for trial in trials:
                best = trial.best(config.goal)
                if best is not None and (best >= config.target if config.goal == "maximize" else best <= config.target):
                    return f"trial {trial.run_id} reached the target {config.metric_name} = {config.target}"
        return None

    def _finish_if_all_ended(self, sweep: _Sweep) -> None:
        """A sweep with nothing left to hand out is finished once its last trial ended."""
        trials = self._refresh(sweep)
        exhausted = sweep.config.method == "grid" and len(trials) >= grid_size(sweep.config)
        if (exhausted or self._finished_reason(sweep.config, trials)) and all(t.state in ENDED for t in trials):
            sweep.state = "finished"
            self._save_sweep(sweep)

    def heartbeat(
        self, project: str, sweep_id: str, agent_id: str, running: list[str], host: str = "", pid: int = 0
    ) -> dict[str, Any]:
        """An agent's heartbeat: `{"stop": [run ids of `running` to stop], "state": the sweep's}`."""
        with self._lock:
            sweep = self._sweep(project, sweep_id)
            self._beat(sweep, agent_id, host, pid)
            mine = {t.run_id: t for t in sweep.trials if t.run_id in set(running)}
            if not mine:
                return {"stop": [], "state": sweep.state}
            if sweep.state == "cancelled":
                stops, verdict = list(mine), "cancelled"
            elif sweep.config.hyperband is not None:
                stops, verdict = (
                    [r for r in hyperband_stops(sweep.config, self._refresh(sweep)) if r in mine],
                    "stopped",
                )
            else:
                stops, verdict = [], ""
            for run_id in stops:
                if mine[run_id].verdict != verdict:
                    mine[run_id].verdict = verdict
                    self._save_trial(sweep, mine[run_id])
            return {"stop": stops, "state": sweep.state}

    def status(self, project: str, sweep_id: str) -> dict[str, Any]:
        """The sweep, its trials (parameters, state, metric, runtime) and the best trial so far."""
        with self._lock:
            sweep = self._sweep(project, sweep_id)
            if sweep.state == "running" and sweep.trials:
                self._finish_if_all_ended(sweep)
            trials = self._refresh(sweep)
            config = sweep.config
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
            "state": sweep.state, "metric": config.metric_name, "goal": config.goal, "config": config.raw,
            "trials": listed, "best": best,
        }  # fmt: skip


_controllers: dict[tuple[str, str], SweepController] = {}
_controllers_lock = threading.Lock()


def controller_for(store: Store, submit: Submit) -> SweepController:
    """The one controller of a store in this process (its in-memory state must not be split);
    `submit` records its claims (an SDK process: through its spool)."""
    key = (store.url, store.database)
    with _controllers_lock:
        if key not in _controllers:
            _controllers[key] = SweepController(store, submit)
        return _controllers[key]
