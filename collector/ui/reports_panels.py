"""A report's blocks as markup, each drawn from the store when the report is shown (or exported).

Panels reuse the pages' own reads: the dashboard's per-group latency query (`ui/queries.groups`), the
runs table (`ui/runs_table.table`), the evaluations' aggregates (`ui/evals_data.aggregates`), the
uPlot charts (`reports_chart.py`). Every query is bounded by project and id, a time window or a LIMIT.
A panel whose run, trace or evaluation is unknown, or whose settings no longer fit the data, shows the
reason inside itself (`.panel-error`); the rest of the report is drawn as usual. Every value is escaped.
With `links=False` (the exported file) nothing points back at the collector.
"""

from __future__ import annotations

import logging
from html import escape
from typing import TYPE_CHECKING, Any, Callable, Optional
from urllib.parse import quote

import orjson

from tracehouse import _numbers
from tracehouse._errors import ConfigError, NotFoundError
from tracehouse.collector.store.usage import COUNTED
from tracehouse.collector.ui import queries as uq
from tracehouse.collector.ui import runs_table
from tracehouse.collector.ui.evals_data import aggregates
from tracehouse.collector.ui.reports_blocks import PANELS
from tracehouse.collector.ui.reports_chart import run_chart
from tracehouse.collector.ui.reports_markdown import render as markdown
from tracehouse.collector.ui.runs_cells import is_number, json_dict, label
from tracehouse.collector.ui.runs_form import FilterForm, RunsView

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

logger = logging.getLogger("tracehouse")
Link = Callable[[str, str], str]
_TRACE_BOUNDS = (
    "SELECT toUnixTimestamp64Nano(min(start_time)), toUnixTimestamp64Nano(max(end_time)), count() FROM trace_times "
    "WHERE project = {project:String} AND trace_id = {trace_id:String}"
)
_TRACE_CARD = (
    "SELECT argMin(name, (parent_span_id != '', start_time)), count(), countIf(status = 'error'), "
    f"sumOrNullIf(total_tokens, {COUNTED}), sumOrNullIf(cost_usd, {COUNTED}), "
    "argMin(status_message, (status != 'error', start_time)) FROM spans WHERE project = {project:String} "
    "AND trace_id = {trace_id:String} AND start_time BETWEEN fromUnixTimestamp64Nano({lo:Int64}, 'UTC') "
    "AND fromUnixTimestamp64Nano({hi:Int64}, 'UTC')"
)
_EVAL = (
    "SELECT name, state, job_type, config, summary FROM runs FINAL WHERE project = {p:String} AND run_id = {r:String}"
)


def linker(links: bool) -> Link:
    """`link(href, text)`: an escaped link, or just the text when the markup leaves the collector."""

    def link(href: str, text: str) -> str:
        return f'<a href="{escape(href)}">{escape(text)}</a>' if links else f"<span>{escape(text)}</span>"

    return link


def _q(project: str) -> str:
    return f"?project={quote(project, safe='')}"


def latency_table(store: Store, project: str, settings: dict[str, Any], link: Link) -> str:
    """Per span name, model, kind or service over the panel's window: calls, p50 / p95, errors, tokens, cost."""
    if settings["start"]:
        window = uq.time_range("custom", settings["start"], settings["end"] or None)
    else:
        window = uq.time_range(settings["range"] or "24h")
    rows = uq.groups(store, project, window, settings["by"])
    span = f"{window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC"
    head = (f'<p class="muted window">{escape(span)} ({escape(window.label)})</p><table class="latency">'
            f"<tr><th>{escape(settings['by'])}</th><th>calls</th><th>p50 ms</th><th>p95 ms</th><th>errors</th>"
            "<th>tokens</th><th>cost</th></tr>")  # fmt: skip
    if not rows:
        return head + '<tr><td colspan="7" class="empty">no calls in this window</td></tr></table>'
    body = "".join(
        f'<tr class="latency-row"><td>{escape(r["group"] or "(none)")}</td><td class="num">{_numbers.count(r["count"])}'
        f'</td><td class="num">{r["p50_ms"]:.1f}</td><td class="num">{r["p95_ms"]:.1f}</td>'
        f'<td class="num">{round(r["error_rate"] * r["count"])}</td><td class="num">{_numbers.count(r["tokens"])}</td>'
        f'<td class="num">{escape(_numbers.cost(r["cost_usd"]))}</td></tr>'
        for r in rows
    )
    return head + body + "</table>"


def runs_panel(store: Store, project: str, settings: dict[str, Any], link: Link) -> str:
    """The runs a filter keeps, with the chosen columns (none: the runs page's defaults), sorted."""
    advanced = orjson.dumps(settings["filter"]).decode() if settings["filter"] else ""
    view = RunsView(form=FilterForm(advanced=advanced), columns=tuple(settings["columns"]) or None,
                    sort=settings["sort"] or None, desc=settings["desc"], per_page=settings["limit"])  # fmt: skip
    result = runs_table.table(store, project, view)
    columns = result["columns"]
    head = "".join(f"<th>{escape(label(c))}</th>" for c in columns)
    rows = []
    for run in result["runs"]:
        cells = []
        for column in columns:
            text = run["cells"][column]
            if column == "name":
                shown = link(f"/runs/{quote(run['run_id'], safe='')}{_q(project)}", text or run["run_id"])
                cells.append(f"<td>{shown}</td>")
            else:
                align = ' class="num"' if is_number(run.get(column)) else ""
                cells.append(f"<td{align}>{escape(text)}</td>")
        rows.append(f'<tr class="run-row" data-run="{escape(run["run_id"])}">{"".join(cells)}</tr>')
    shown = f"{len(result['runs'])} of {result['total']} runs"
    empty = f'<tr><td colspan="{len(columns)}" class="empty">no runs match</td></tr>' if not rows else ""
    return (f'<p class="muted">{escape(shown)}</p><table class="runs"><tr>{head}</tr>{"".join(rows)}{empty}'
            "</table>")  # fmt: skip


def trace_card(store: Store, project: str, settings: dict[str, Any], link: Link) -> str:
    """A trace as a card: its root's name, duration, status, spans, tokens, cost, and a link to it."""
    trace_id = settings["trace_id"]
    if not trace_id:
        raise ConfigError("trace_id", "choose the trace this panel shows (its 32-digit id)")
    params = {"project": project, "trace_id": trace_id}
    _, bounds = store.query_rows(_TRACE_BOUNDS, params)
    if not bounds or not bounds[0][2]:
        raise NotFoundError(f"no trace {trace_id} in project {project!r}")
    lo, hi, _ = bounds[0]
    _, ((name, spans, errors, tokens, cost, message),) = store.query_rows(_TRACE_CARD, {**params, "lo": lo, "hi": hi})
    status = "error" if errors else "ok"
    cards = [("name", escape(str(name))), ("duration", f"{(hi - lo) / 1e6:,.1f} ms"),
             ("status", f'<span class="{"status-error" if errors else ""}">{status}</span>'),
             ("spans", _numbers.count(spans)), ("tokens", _numbers.count(tokens)),
             ("cost", escape(_numbers.cost(cost)))]  # fmt: skip
    body = "".join(f'<div class="card" data-field="{k}">{k}<b>{v}</b></div>' for k, v in cards)
    error = f'<p class="status-error">{escape(str(message))}</p>' if errors and message else ""
    target = link(f"/traces/{trace_id}{_q(project)}", f"trace {trace_id}")
    return f'<div class="cards trace-card">{body}</div>{error}<p class="trace-link">{target}</p>'


def eval_summary(store: Store, project: str, settings: dict[str, Any], link: Link) -> str:
    """An evaluation's aggregate scores (means, pass rates, error rate), its dataset, and a link to it."""
    run_id = settings["run_id"]
    if not run_id:
        raise ConfigError("run_id", "choose the evaluation this panel shows (its run id)")
    _, rows = store.query_rows(_EVAL, {"p": project, "r": run_id})
    if not rows:
        raise NotFoundError(f"no evaluation run {run_id!r} in project {project!r}")
    name, state, job_type, config_text, summary_text = rows[0]
    if job_type != "eval":
        raise NotFoundError(f"run {run_id!r} is not an evaluation (its job type is {job_type or 'none'!r})")
    config, summary = json_dict(config_text), json_dict(summary_text)
    scores = aggregates(summary)
    body = "".join(f'<tr class="score-row"><th>{escape(k)}</th><td class="num">{v:.4g}</td></tr>'
                   for k, v in scores.items()) or '<tr><td class="empty">no aggregate scores yet</td></tr>'  # fmt: skip
    facts = (f"{name} · {state} · dataset {config.get('dataset') or '?'} · {summary.get('examples', '?')} examples, "
             f"{summary.get('errors', 0)} errors")  # fmt: skip
    target = link(f"/evals/{quote(run_id, safe='')}{_q(project)}", f"evaluation {run_id}")
    return f'<p class="muted">{escape(facts)}</p><table class="eval-scores">{body}</table><p>{target}</p>'


_TABLES: dict[str, Callable[[Store, str, dict[str, Any], Link], str]] = {
    "latency_table": latency_table, "runs_table": runs_panel, "trace_link": trace_card, "eval_summary": eval_summary,
}  # fmt: skip


def panel_body(store: Store, project: str, block: dict[str, Any], index: int, links: bool) -> str:
    """A panel's content, or its error as a message inside it."""
    kind, settings = block["panel"], block["settings"]
    try:
        if kind == "run_chart":
            markup, note = run_chart(store, project, settings, f"report-chart-{index}")
            return markup + (f'<p class="muted panel-note">{escape(note)}</p>' if note else "")
        return _TABLES[kind](store, project, settings, linker(links))
    except (ConfigError, NotFoundError) as error:
        return f'<p class="error panel-error">{escape(str(error))}</p>'
    except Exception:
        logger.exception("tracehouse reports: a %s panel failed", kind)
        return '<p class="error panel-error">this panel could not be drawn; the collector\'s log says why</p>'


def block_markup(store: Store, project: str, block: dict[str, Any], index: int, links: bool = True) -> str:
    """One block as it shows in the report: markdown as safe HTML, a panel with its title and content."""
    if block["type"] == "markdown":
        return f'<section class="block markdown" id="block-{index}">{markdown(block["text"])}</section>'
    kind = block["panel"]
    title: Optional[str] = block["settings"].get("title") or PANELS[kind][0]
    body = panel_body(store, project, block, index, links)
    return (f'<section class="block panel panel-{kind}" id="block-{index}" data-panel="{kind}">'
            f"<h3>{escape(str(title))}</h3>{body}</section>")  # fmt: skip


__all__ = ["block_markup", "eval_summary", "latency_table", "linker", "panel_body", "runs_panel", "trace_card"]
