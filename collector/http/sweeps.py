"""The collector's sweep endpoints: agents on many machines share one controller.

`POST /api/v1/sweeps` `{"project", "config"}` -> `{"sweep_id"}`; `GET /api/v1/sweeps/{id}?project=`
(status: trials, best); `POST /api/v1/sweeps/{id}/next` `{"project", "agent_id", "host", "pid"}`;
`POST /api/v1/sweeps/{id}/heartbeat` `{..., "running": [run ids]}`; `POST /api/v1/sweeps/{id}/control`
`{"project", "action"}`. A project key works on its project's sweeps.
"""

from __future__ import annotations

from typing import Any, Optional

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tracehouse._errors import ConfigError
from tracehouse.collector.http.deps import Caller, Collector, CollectorDep, json_response
from tracehouse.collector.http.guard import read_json
from tracehouse.collector.store.keys import Principal
from tracehouse.collector.sweeps.controller import SweepController

router = APIRouter()


def _controller(collector: Collector) -> SweepController:
    assert collector.sweeps is not None
    return collector.sweeps


async def _body(request: Request, collector: Collector, who: Principal) -> tuple[dict[str, Any], str]:
    payload = await read_json(request, default={})
    if not isinstance(payload, dict):
        raise ConfigError("body", "expected a JSON object")
    project = collector.bind_project(who, payload.get("project"))
    await collector.caught_up()  # finished trials' runs and metrics count
    return payload, project


def _pid(payload: dict[str, Any]) -> int:
    """The agent's pid: a non-negative integer (ConfigError otherwise)."""
    pid = payload.get("pid") or 0
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 <= pid < 2**31:
        raise ConfigError("pid", f"expected the agent's process id (an integer), got {pid!r}")
    return pid


@router.post("/api/v1/sweeps")
async def create(request: Request, collector: CollectorDep, who: Caller) -> Response:
    """Create a sweep from a W&B sweep config."""
    payload, project = await _body(request, collector, who)
    sweep_id = await collector.read(_controller(collector).create, project, payload.get("config"))
    return json_response({"sweep_id": sweep_id})


@router.get("/api/v1/sweeps/{sweep_id}")
async def status(sweep_id: str, collector: CollectorDep, who: Caller, project: Optional[str] = None) -> Response:
    """A sweep's state, trials and best trial."""
    bound = collector.bind_project(who, project)
    await collector.caught_up()
    return json_response(await collector.read(_controller(collector).status, bound, sweep_id))


@router.post("/api/v1/sweeps/{sweep_id}/next")
async def next_trial(request: Request, sweep_id: str, collector: CollectorDep, who: Caller) -> Response:
    """The next trial for an agent (or why there is none)."""
    payload, project = await _body(request, collector, who)
    agent, host = str(payload.get("agent_id")), str(payload.get("host", ""))
    answer = await collector.read(_controller(collector).next_trial, project, sweep_id, agent, host, _pid(payload))
    return json_response(answer)


@router.post("/api/v1/sweeps/{sweep_id}/heartbeat")
async def heartbeat(request: Request, sweep_id: str, collector: CollectorDep, who: Caller) -> Response:
    """An agent is alive; the trials it should stop."""
    payload, project = await _body(request, collector, who)
    running = payload.get("running") or []
    if not isinstance(running, list):
        raise ConfigError("running", "expected a list of run ids")
    agent, host, runs = str(payload.get("agent_id")), str(payload.get("host", "")), [str(r) for r in running]
    answer = await collector.read(_controller(collector).heartbeat, project, sweep_id, agent, runs, host, _pid(payload))
    return json_response(answer)


@router.post("/api/v1/sweeps/{sweep_id}/control")
async def control(request: Request, sweep_id: str, collector: CollectorDep, who: Caller) -> Response:
    """stop, pause, resume or cancel a sweep."""
    payload, project = await _body(request, collector, who)
    state = await collector.read(_controller(collector).control, project, sweep_id, str(payload.get("action")))
    return json_response({"state": state})


__all__ = ["router"]
