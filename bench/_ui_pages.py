"""The pages `ui.py` times: every page of the web UI over the seeded store, and its JSON twin.

Each entry: label, page path, JSON twin path (`/api/v1/ui/...`). Every page has the target (median
under 1 s, page and twin); pages that need an id (a trace, run, sweep, eval, dataset) are
listed when the seed made one. The report pages come from `_ui_reports.py` (the report is made
through the API once the collector runs).
"""

from __future__ import annotations

from typing import Any, Optional
from urllib.parse import quote, urlencode

from _ui_seed import PROJECT

SEARCH_WORD, ABSENT_WORD = "refund", "zeppelin"
MIN_MS = 5000  # ~12% of the seeded traces last longer
SORTED: list[tuple[str, dict[str, Any]]] = [("/traces sort=duration", {"sort": "duration"}),
    ("/traces sort=cost order=asc", {"sort": "cost", "order": "asc"}), ("/traces error=1", {"error": "1"}),
    ("/traces sort=score:helpful", {"sort": "score:helpful"})]  # fmt: skip


def url_of(path: str, **params: Any) -> str:
    """`path` with the bench project and `params` as its query string."""
    return f"{path}?{urlencode({'project': PROJECT, **params}, doseq=True)}"


def _page(label: str, path: str, api_path: Optional[str] = None, **params: Any) -> dict[str, Any]:
    api = "/api/v1/ui" + (api_path if api_path is not None else ("/dashboard" if path == "/" else path))
    return {"label": label, "page": url_of(path, **params), "json": url_of(api, **params), "list": True}


def _trace_pages(cursor: Optional[str], trace_id: Optional[str]) -> list[dict[str, Any]]:
    traces: list[tuple[str, dict[str, Any]]] = [("/traces", {}), ("/traces status=error", {"status": "error"}),
              (f"/traces text={SEARCH_WORD}", {"text": SEARCH_WORD}),
              (f"/traces text={ABSENT_WORD} (no match)", {"text": ABSENT_WORD}),
              (f"/traces min_ms={MIN_MS}", {"min_ms": MIN_MS}), *SORTED]  # fmt: skip
    if cursor:
        traces.append(("/traces page 2 (after=)", {"after": cursor}))
    pages = [_page(label, "/", range=r, by=by)
             for label, r, by in (("/ range=1h by=name", "1h", "name"), ("/ range=24h by=name", "24h", "name"),
                                  ("/ range=24h by=model", "24h", "model"))]  # fmt: skip
    pages += [_page(label, "/traces", range="24h", **params) for label, params in traces]
    pages += [_page(f"/{group}", f"/{group}", range="24h") for group in ("sessions", "users")]
    if trace_id:
        pages.append(_page("/traces/{id}", f"/traces/{trace_id}"))
    return pages


def _run_pages(seeded: dict[str, Any]) -> list[dict[str, Any]]:
    run_ids = seeded.get("run_ids") or []
    pages = [_page(f"/runs ({seeded.get('runs_in_store', 0):,} runs)", "/runs"),
             _page("/runs sort=summary.loss", "/runs", sort="summary.loss"),
             _page("/runs page 2", "/runs", page="2")]  # fmt: skip
    if run_ids:
        pages.append(_page("/runs/{id}", f"/runs/{quote(run_ids[0])}"))
        pages.append(_page("/runs/compare (2 runs)", "/runs/compare", ids=run_ids[:2]))
    pages.append(_page("/sweeps", "/sweeps"))
    if seeded.get("sweep_id"):
        pages.append(_page("/sweeps/{id}", f"/sweeps/{quote(seeded['sweep_id'])}"))
    return pages


def _eval_pages(seeded: dict[str, Any]) -> list[dict[str, Any]]:
    evals = seeded.get("eval_run_ids") or []
    pages = [_page("/evals", "/evals"), _page("/datasets", "/datasets")]
    if evals:
        pages.append(_page(f"/evals/{{id}} ({seeded.get('eval_examples', 0)} examples)", f"/evals/{quote(evals[0])}"))
    if len(evals) > 1:
        pages.append(_page("/evals/compare", "/evals/compare", a=evals[0], b=evals[1]))
    if seeded.get("dataset"):
        pages.append(_page("/datasets/{name}", f"/datasets/{quote(seeded['dataset'])}"))
    return pages


def page_list(cursor: Optional[str], trace_id: Optional[str], seeded: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page timed: its label, page path and JSON twin's path."""
    return [*_trace_pages(cursor, trace_id), *_run_pages(seeded), *_eval_pages(seeded)]  # reports: _ui_reports.py
