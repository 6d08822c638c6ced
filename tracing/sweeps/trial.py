"""The run's side of a sweep trial: the trial the next `th.init()` becomes, and how it is stopped.

An agent sets the pending trial (in-process) or passes it in a child's environment
(`TRACEHOUSE_SWEEP_ID`, `TRACEHOUSE_RUN_ID`, `TRACEHOUSE_SWEEP_PARAM_PATH`); `th.init()` takes it
and notes the run as started. A trial the sweep stops raises `RunStopped` from the run's next
`log`, or, in a child, from the SIGTERM the agent sends. This module knows nothing of runs or
agents, so both can use it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

from tracehouse._deferred import raise_or_defer
from tracehouse.spans.runtime import runtime

logger = logging.getLogger("tracehouse")


class RunStopped(Exception):
    """Raised by `run.log` in a trial the sweep stopped (hyperband, or the sweep was cancelled)."""


@dataclass(frozen=True)
class PendingTrial:
    """The trial the next `th.init()` becomes."""

    sweep_id: str
    run_id: str
    project: str
    params: dict[str, Any]


_in_process: Optional[PendingTrial] = None
_started_runs: set[str] = set()
_mark_stopped: Optional[Callable[[], None]] = None  # set by the runs module: marks the current run stopped


def run_in_process(trial: Optional[PendingTrial]) -> None:
    """The trial an in-process agent runs now (None once it returned)."""
    global _in_process
    _in_process = trial


def on_stop_signal(mark_stopped: Callable[[], None]) -> None:
    """What a SIGTERM from the agent does to the current run before `RunStopped` is raised."""
    global _mark_stopped
    _mark_stopped = mark_stopped


def pending_trial() -> Optional[PendingTrial]:
    """The trial an agent is running here: in-process, or from a child's environment (used once)."""
    if _in_process is not None:
        return _in_process
    sweep_id, run_id = os.environ.get("TRACEHOUSE_SWEEP_ID"), os.environ.get("TRACEHOUSE_RUN_ID")
    if not sweep_id or not run_id:
        return None
    try:
        with open(os.environ.get("TRACEHOUSE_SWEEP_PARAM_PATH", ""), encoding="utf-8") as handle:
            params = json.load(handle)
    except (OSError, ValueError) as error:
        logger.warning("tracehouse: the sweep's parameters could not be read (%s); the run uses its own", error)
        params = {}
    os.environ.pop("TRACEHOUSE_RUN_ID", None)  # a second init in this process is a run of its own
    if os.environ.get("TRACEHOUSE_AGENT") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
    return PendingTrial(sweep_id, run_id, runtime.settings.project, params)


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    """The agent stopped this trial: the run ends `stopped`, not crashed."""
    if _mark_stopped is not None:
        _mark_stopped()
    # not while the main thread is between taking records off a queue and writing them
    raise_or_defer(lambda: RunStopped("the sweep stopped this trial"))


def note_started(run_id: str) -> None:
    """`th.init()` became this trial's run."""
    _started_runs.add(run_id)


def started(run_id: str) -> bool:
    """Whether a trial's run was started (a trial function that never called `th.init()` did not)."""
    return run_id in _started_runs
