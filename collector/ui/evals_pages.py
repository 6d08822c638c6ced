"""The evaluation and dataset pages and their JSON twins under `/api/v1/ui/`.

`/evals` (every evaluation: dataset, when, aggregate scores, examples, errors), `/evals/{run_id}`
(aggregates and the examples: input, output, expected, every score, error, latency, a link to the
example's trace; sortable, paged), `/evals/compare?a=&b=` (verdict changes, score and aggregate
deltas), `/datasets` and `/datasets/{name}?version=` (versions, a version's rows, paged). State is in
the query string; the data comes from `ui/evals_data.py` and `ui/datasets_data.py`.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Mapping, Optional
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tracehouse._errors import ConfigError
from tracehouse.collector.http.deps import Collector
from tracehouse.collector.ui import datasets_data, evals_data
from tracehouse.collector.ui.render import api, page

router = APIRouter()
Data = Callable[[Request, Collector, str], Awaitable[dict[str, Any]]]


def _page_number(params: Mapping[str, str]) -> int:
    raw = params.get("page") or "0"
    if not raw.isascii() or not raw.isdigit():
        raise ConfigError("page", f"expected a page number from 0, got {raw!r}")
    return int(raw)


def _text(params: Mapping[str, str], name: str) -> Optional[str]:
    value = params.get(name)
    return value.strip() or None if isinstance(value, str) else None


def show(value: Any) -> str:
    """A value as a cell shows it: text as it is, anything else as JSON (the template escapes both)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.4g}"
    return orjson.dumps(value, default=str).decode()


def _url(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None: removed)."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    return f"{request.url.path}?{urlencode([*kept, *((k, v) for k, v in changes.items() if v is not None)])}"


# --- the data of each page --------------------------------------------------------------------------
async def evals_list_data(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    return await collector.read(evals_data.eval_list, collector.store, project)


async def eval_data(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    params = request.query_params
    return await collector.read(evals_data.eval_detail, collector.store, project, request.path_params["run_id"],
                                _text(params, "sort"), params.get("desc") == "1", _page_number(params))  # fmt: skip


async def compare_data(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    params = request.query_params
    a, b = _text(params, "a") or "", _text(params, "b") or ""
    return await collector.read(evals_data.compare, collector.store, project, a, b, params.get("only") == "changed",
                                _page_number(params))  # fmt: skip


async def datasets_list_data(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    return await collector.read(datasets_data.dataset_list, collector.store, project)


async def dataset_data(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    params = request.query_params
    version = datasets_data.version_number(_text(params, "version"))
    return await collector.read(datasets_data.dataset_detail, collector.store, project, request.path_params["name"],
                                version, _page_number(params))  # fmt: skip


# --- what each page adds ------------------------------------------------------------------------------
def _paging(request: Request, result: dict[str, Any]) -> dict[str, Any]:
    page_number, pages = result["page"], result["pages"]
    return {"prev_url": _url(request, page=page_number - 1) if page_number > 0 else None,
            "next_url": _url(request, page=page_number + 1) if page_number + 1 < pages else None}  # fmt: skip


async def evals_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    return {"data": await evals_list_data(request, collector, project), "show": show}


async def eval_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    result = await eval_data(request, collector, project)

    def sort_url(column: str) -> str:
        desc = "0" if result["sort"] == column and result["desc"] else "1"
        return _url(request, sort=column, desc=desc, page=None)

    return {"data": result, "show": show, "sort_url": sort_url, **_paging(request, result)}


async def compare_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    result = await compare_data(request, collector, project)
    toggle = _url(request, only=None if result["only_changed"] else "changed", page=None)
    return {"data": result, "show": show, "toggle_url": toggle, **_paging(request, result)}


async def datasets_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    return {"data": await datasets_list_data(request, collector, project)}


async def dataset_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    result = await dataset_data(request, collector, project)
    version_url = {v["version"]: _url(request, version=f"v{v['version']}", page=None) for v in result["versions"]}
    return {"data": result, "show": show, "version_url": version_url, **_paging(request, result)}


# (page path, JSON twin path under /api/v1/ui/, template, navigation tab, page values, data)
PAGES: tuple[tuple[str, str, str, str, Data, Data], ...] = (
    ("/evals", "evals", "evals.html", "evals", evals_page, evals_list_data),
    ("/evals/compare", "evals/compare", "eval_compare.html", "evals", compare_page, compare_data),
    ("/evals/{run_id}", "evals/{run_id}", "eval.html", "evals", eval_page, eval_data),
    ("/datasets", "datasets", "datasets.html", "datasets", datasets_page, datasets_list_data),
    ("/datasets/{name}", "datasets/{name}", "dataset.html", "datasets", dataset_page, dataset_data),
)
for _path, _api_path, _template, _tab, _values, _data in PAGES:
    router.add_api_route(f"/api/v1/ui/{_api_path}", api(_data), methods=["GET"])
    router.add_api_route(
        _path, page(_template, _tab, _values), methods=["GET"], response_class=HTMLResponse, include_in_schema=False
    )


__all__ = ["PAGES", "router", "show"]
