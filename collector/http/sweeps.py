"""The collector's sweep endpoints: agents on many machines share one controller.

`POST /api/v1/sweeps` `{"project", "config"}` -> `{"sweep_id"}`; `GET /api/v1/sweeps/{id}?project=`
(status: trials, best); `POST /api/v1/sweeps/{id}/next` `{"project", "agent_id", "host", "pid"}`;
`POST /api/v1/sweeps/{id}/heartbeat` `{..., "running": [run ids]}`; `POST /api/v1/sweeps/{id}/control`
`{"project", "action"}`. A project key works on its project's sweeps.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from tracehouse._errors import ConfigError
from tracehouse.collector.http.guard import read_json
from tracehouse.collector.sweeps.controller import SweepController

if TYPE_CHECKING:
    from tracehouse.collector.store.keys import Principal


def add_sweep_routes(
    app: FastAPI,
    controller: SweepController,
    principal: Callable[[Request], Awaitable[Principal]],
    bind_project: Callable[[Principal, Optional[str]], str],
    caught_up: Callable[[], Awaitable[None]],
) -> None:
    """Register the sweep endpoints on `app`."""

    async def body(request: Request) -> tuple[dict[str, Any], str]:
        payload = await read_json(request, default={})
        if not isinstance(payload, dict):
            raise ConfigError("body", "expected a JSON object")
        project = bind_project(await principal(request), payload.get("project"))
        await caught_up()  # finished trials' runs and metrics count
        return payload, project

    def answer(value: Any) -> Response:
        return Response(orjson.dumps(value, default=str), media_type="application/json")

    @app.post("/api/v1/sweeps")
    async def create(request: Request) -> Response:
        payload, project = await body(request)
        return answer({"sweep_id": await asyncio.to_thread(controller.create, project, payload.get("config"))})

    @app.get("/api/v1/sweeps/{sweep_id}")
    async def status(request: Request, sweep_id: str, project: Optional[str] = None) -> Response:
        bound = bind_project(await principal(request), project)
        await caught_up()
        return answer(await asyncio.to_thread(controller.status, bound, sweep_id))

    @app.post("/api/v1/sweeps/{sweep_id}/next")
    async def next_trial(request: Request, sweep_id: str) -> Response:
        payload, project = await body(request)
        return answer(await asyncio.to_thread(controller.next_trial, project, sweep_id, str(payload.get("agent_id")),
                                              str(payload.get("host", "")), _pid(payload)))  # fmt: skip

    @app.post("/api/v1/sweeps/{sweep_id}/heartbeat")
    async def heartbeat(request: Request, sweep_id: str) -> Response:
        payload, project = await body(request)
        running = payload.get("running") or []
        if not isinstance(running, list):
            raise ConfigError("running", "expected a list of run ids")
        return answer(await asyncio.to_thread(controller.heartbeat, project, sweep_id, str(payload.get("agent_id")),
                                              [str(r) for r in running], str(payload.get("host", "")),
                                              _pid(payload)))  # fmt: skip

    @app.post("/api/v1/sweeps/{sweep_id}/control")
    async def control(request: Request, sweep_id: str) -> Response:
        payload, project = await body(request)
        return answer({"state": await asyncio.to_thread(controller.control, project, sweep_id,
                                                        str(payload.get("action")))})  # fmt: skip


def _pid(payload: dict[str, Any]) -> int:
    """The agent's pid: a non-negative integer (ConfigError otherwise)."""
    pid = payload.get("pid") or 0
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 <= pid < 2**31:
        raise ConfigError("pid", f"expected the agent's process id (an integer), got {pid!r}")
    return pid
