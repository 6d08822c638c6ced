"""`th.agent(sweep_id, function=, count=)` and `tracehouse agent`: run a sweep's trials.

Each trial is an ordinary run. In-process (`function=`), `th.init()` inside the function picks up
the trial: its run id, the sweep's project and the trial's parameters in `th.config` (they win over
the script's defaults, with a warning). Otherwise the sweep's `command` runs as a child process per
trial with the parameters as arguments, the run id in `TRACEHOUSE_RUN_ID` and the parameters in
the JSON file `TRACEHOUSE_SWEEP_PARAM_PATH`. A heartbeat thread tells the controller the agent is
alive and learns which trial hyperband (or a cancel) stops: an in-process run then raises
`th.RunStopped` from its next `log`, a child process gets SIGTERM. A trial that raises or exits
non-zero is `failed`; the sweep goes on.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Optional

from tracehouse._errors import ConfigError
from tracehouse.spans.runtime import runtime
from tracehouse.sweeps import trial as trials
from tracehouse.sweeps.sweep import SweepBackend, _project, backend, sweep_path
from tracehouse.sweeps.trial import PendingTrial, RunStopped, started

logger = logging.getLogger("tracehouse")
HEARTBEAT_SECONDS = 2.0
WAIT_SECONDS = 2.0  # a paused sweep is asked again this often
DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]


class _Heartbeat(threading.Thread):
    """Beats every HEARTBEAT_SECONDS; calls `on_stop(run_id, verdict)` for trials the controller stops."""

    def __init__(self, sweeps: SweepBackend, project: str, sweep_id: str, agent_id: str,
                 on_stop: Callable[[str], None]) -> None:  # fmt: skip
        super().__init__(name=f"tracehouse-agent-{agent_id}", daemon=True)
        self.sweeps, self.project, self.sweep_id, self.agent_id = sweeps, project, sweep_id, agent_id
        self.on_stop = on_stop
        self.running: list[str] = []
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(HEARTBEAT_SECONDS):
            try:
                answer = self.sweeps.heartbeat(self.project, self.sweep_id, self.agent_id, list(self.running),
                                               socket.gethostname(), os.getpid())  # fmt: skip
            except Exception as error:  # the collector is down for a moment: the trial goes on
                logger.warning("tracehouse: agent heartbeat failed: %s", error)
                continue
            for run_id in answer.get("stop", []):
                if run_id in self.running:
                    self.on_stop(run_id)

    def stop(self) -> None:
        self._stopped.set()


def agent(
    sweep_id: str,
    function: Optional[Callable[[], Any]] = None,
    count: Optional[int] = None,
    project: Optional[str] = None,
    entity: Optional[str] = None,
) -> int:
    """Run trials of a sweep until it is done (or `count` trials); returns how many ran.

    With `function`, each trial calls it in this process (it calls `th.init()` and logs the
    metric); without, each trial runs the sweep's `command` (default `${env} ${interpreter}
    ${program} ${args}`) as a child process. `sweep_id` may be W&B's "entity/project/id" path.
    """
    sweep_id, project = sweep_path(sweep_id, project)
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ConfigError("count", f"expected a positive number of trials, got {count!r}")
    if function is not None and not callable(function):
        raise ConfigError("function", f"expected a callable taking no arguments, got {function!r}")
    project = _project(project)
    sweeps = backend()
    status = sweeps.status(project, sweep_id)  # an unknown sweep fails here, before anything runs
    runner = _InProcess(function) if function is not None else _Subprocess(status["config"])
    agent_id = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    beat = _Heartbeat(sweeps, project, sweep_id, agent_id, runner.stop)
    beat.start()
    ran = 0
    try:
        while count is None or ran < count:
            answer = sweeps.next_trial(project, sweep_id, agent_id, socket.gethostname(), os.getpid())
            if answer["action"] == "wait":
                time.sleep(WAIT_SECONDS)
                continue
            if answer["action"] != "run":
                logger.info("tracehouse: agent %s done: %s", agent_id, answer.get("reason"))
                break
            trial = PendingTrial(sweep_id, answer["run_id"], project, answer["params"])
            beat.running = [trial.run_id]
            try:
                runner.run(trial)
            finally:
                beat.running = []
            ran += 1
    finally:
        beat.stop()
    return ran


class _InProcess:
    def __init__(self, function: Callable[[], Any]) -> None:
        self.function = function

    def run(self, trial: PendingTrial) -> None:
        from tracehouse.tracking.run import current_run
        from tracehouse.tracking.session import finish

        exit_code = 0
        trials.run_in_process(trial)
        try:
            self.function()
        except RunStopped:
            pass
        except Exception:
            logger.exception("tracehouse: trial %s raised; it is failed and the sweep goes on", trial.run_id)
            exit_code = 1
        finally:
            trials.run_in_process(None)
        run = current_run()
        if run is not None and run.id == trial.run_id:
            finish(exit_code)
        elif exit_code == 0 and not started(trial.run_id):
            logger.warning("tracehouse: the function of trial %s did not call th.init(); nothing was logged",
                           trial.run_id)  # fmt: skip

    def stop(self, run_id: str) -> None:
        from tracehouse.tracking.run import current_run

        run = current_run()
        if run is not None and run.id == run_id:
            run._stop_requested = "stopped"


class _Subprocess:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.stopping: Optional[str] = None
        command = config.get("command") or DEFAULT_COMMAND
        if any("${program}" in part for part in command) and not config.get("program"):
            raise ConfigError("program", "the sweep has no `program` (or a `command` without ${program})")

    def run(self, trial: PendingTrial) -> None:
        settings = runtime.settings
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="tracehouse-trial-", delete=False) as handle:
            json.dump(trial.params, handle)
        env = {**os.environ, "TRACEHOUSE_SWEEP_ID": trial.sweep_id, "TRACEHOUSE_RUN_ID": trial.run_id,
               "TRACEHOUSE_SWEEP_PARAM_PATH": handle.name, "TRACEHOUSE_PROJECT": trial.project,
               "TRACEHOUSE_DIR": str(settings.data_dir), "TRACEHOUSE_AGENT": "1"}  # fmt: skip
        for name, value in (("TRACEHOUSE_ENDPOINT", settings.endpoint), ("TRACEHOUSE_API_KEY", settings.api_key)):
            if value:
                env[name] = value
        try:
            command = build_command(self.config, trial.params, handle.name)
            self.stopping = None
            self.process = subprocess.Popen(command, env=env)
            code = self.process.wait()
            if code != 0 and self.stopping is None:
                logger.warning("tracehouse: trial %s exited with %d; it is failed and the sweep goes on",
                               trial.run_id, code)  # fmt: skip
        finally:
            self.process = None
            os.unlink(handle.name)

    def stop(self, run_id: str) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            self.stopping = run_id
            process.terminate()
            threading.Timer(10.0, _kill_if_running, (process,)).start()


def _kill_if_running(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()


def _format(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def build_command(config: dict[str, Any], params: dict[str, Any], params_path: str) -> list[str]:
    """The trial's command line, W&B's macros expanded."""
    macros: dict[str, list[str]] = {
        "${env}": ["/usr/bin/env"] if os.name != "nt" else [],
        "${interpreter}": [sys.executable],
        "${program}": [str(config.get("program") or "")],
        "${args}": [f"--{k}={_format(v)}" for k, v in params.items()],
        "${args_no_equals}": [part for k, v in params.items() for part in (f"--{k}", _format(v))],
        "${args_no_hyphens}": [f"{k}={_format(v)}" for k, v in params.items()],
        "${args_json}": [json.dumps(params)],
        "${args_json_file}": [params_path],
    }
    command: list[str] = []
    for part in config.get("command") or DEFAULT_COMMAND:
        if part in macros:
            command.extend(macros[part])
        elif part.startswith("${envvar:") and part.endswith("}"):
            name = part[len("${envvar:") : -1]
            if name not in os.environ:
                raise ConfigError("command", f"{part} names the environment variable {name}, which is not set")
            command.append(os.environ[name])
        else:
            command.append(part)
    return command
