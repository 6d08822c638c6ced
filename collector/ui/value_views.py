"""A run's logged values as page markup: charts from their specs, tables, media, histograms, text.

Every string from the store is escaped; media are `<img>` / `<audio>` / `<video>` elements whose
`src` is the run's media route (which serves only a blob the run logged, with a type chosen from
a fixed list); HTML values are shown as source, never rendered; SVG images are offered as a
download, not drawn inline. A chart's kind picks the drawing (line, line_series, roc and pr:
lines; scatter: points; bar and histogram: bars; confusion_matrix: a heatmap); a custom Vega spec
(`plot_table`) shows its table.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any, Callable, Mapping
from urllib.parse import quote

import orjson

from tracehouse._numbers import equal_bins
from tracehouse.collector.ui.svg import Series, line_chart
from tracehouse.collector.ui.svg_more import bar_chart, heatmap_table, histogram_chart

Url = Callable[[Mapping[str, Any]], str]  # the page's URL with some query parameters changed
Body = Callable[[dict[str, Any], Any, Callable[[str], str], Url], str]
INLINE_IMAGES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
                 "webp": "image/webp", "bmp": "image/bmp"}  # fmt: skip


def render(entry: dict[str, Any], media_url: Callable[[str], str], url: Url) -> str:
    """One logged key: a heading with its step picker, then its value at that step."""
    key, value = entry["key"], entry["value"]
    kind = value.get("_type") if isinstance(value, dict) else None
    draw: Body = _BODIES.get(str(kind), _json_body)
    body = draw(entry, value, media_url, url)
    return (f'<section class="value" data-key="{escape(key)}" data-type="{escape(str(kind or entry["type"]))}">'
            f"<h3>{escape(key)} {_step_picker(entry, url)}</h3>{body}</section>")  # fmt: skip


def _step_picker(entry: dict[str, Any], url: Url) -> str:
    steps = entry["steps"]
    if len(steps) <= 1:
        return f'<span class="muted">step {entry["step"]}</span>'
    position = steps.index(entry["step"])
    links = []
    for label, index in (("first", 0), ("previous", position - 1), ("next", position + 1), ("last", len(steps) - 1)):
        if 0 <= index < len(steps) and index != position:
            href = url({f"at.{entry['key']}": steps[index], f"page.{entry['key']}": None})
            links.append(f'<a class="step-{label}" href="{escape(href)}">{label}</a>')
    more = f", {entry['logged']} in all" if entry["logged"] > len(steps) else ""
    template = url({f"at.{entry['key']}": "STEP", f"page.{entry['key']}": None})
    slider = (f'<input type="range" class="step-slider" min="0" max="{len(steps) - 1}" value="{position}" '
              f'aria-label="step of {escape(entry["key"])}" data-steps="{escape(orjson.dumps(steps).decode())}" '
              f'data-href="{escape(template)}">')  # fmt: skip
    return (f'<span class="muted step">step <b class="step-shown">{entry["step"]}</b> ({position + 1} of '
            f"{len(steps)}{more}) {slider} {' '.join(links)}</span>")  # fmt: skip


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _chart(entry: dict[str, Any], value: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    spec = value["chart"]
    kind, title = spec.get("kind"), spec.get("title") or entry["key"]
    fields: dict[str, str] = {k: str(v) for k, v in (spec.get("fields") or {}).items() if v is not None}
    ident = f"chart-{entry['key']}"
    if kind in ("line", "scatter", "roc", "pr", "line_series"):
        x, y, group = fields.get("x", ""), fields.get("y", ""), fields.get("stroke") or fields.get("class")
        if kind == "line_series":
            x, y, group = "step", "lineVal", "lineKey"
        series: dict[str, list[tuple[float, float]]] = {}
        for row in rows:
            px, py = _number(row.get(x)), _number(row.get(y))
            if px is not None and py is not None:
                series.setdefault(str(row.get(group, "")) if group else str(y), []).append((px, py))
        lines = [Series(name, sorted(points)) for name, points in series.items()]
        return line_chart(title, lines, chart_id=ident, points_only=kind == "scatter")
    if kind == "bar":
        label, number = fields.get("label", ""), fields.get("value", "")
        groups = [str(r.get(fields["stroke"], "")) for r in rows] if fields.get("stroke") else None
        heights = [_number(r.get(number)) for r in rows]
        labels = [str(r.get(label, "")) for r in rows]
        return bar_chart(title, labels, [h if h is not None else math.nan for h in heights], ident, groups)
    if kind == "histogram":
        numbers = [n for n in (_number(r.get(fields.get("value", ""))) for r in rows) if n is not None]
        bins, counts = equal_bins(numbers, 30) if numbers else ([], [])
        return histogram_chart(title, bins, counts, ident)
    if kind == "confusion_matrix":
        cells = {(str(r.get("Actual")), str(r.get("Predicted"))): _number(r.get("nPredictions")) or 0.0 for r in rows}
        classes = list(dict.fromkeys([a for a, _ in cells] + [p for _, p in cells]))
        return heatmap_table(title, classes, classes, cells, ident)
    return f'<p class="muted">custom chart <code>{escape(str(spec.get("vega_spec")))}</code>: its table is below</p>'


def _table_body(entry: dict[str, Any], value: dict[str, Any], media_url: Callable[[str], str], url: Url) -> str:
    table = entry["table"]
    chart = _chart(entry, value, table["rows"]) if isinstance(value.get("chart"), dict) else ""
    shown = table["rows"][:25] if chart else table["rows"]
    key = entry["key"]
    head = []
    for column in table["columns"]:
        desc = table["sort"] == column and not table["desc"]
        href = url({f"sort.{key}": column, f"desc.{key}": "1" if desc else None, f"page.{key}": None})
        arrow = (" ▼" if table["desc"] else " ▲") if table["sort"] == column else ""
        head.append(f'<th><a href="{escape(href)}">{escape(column)}</a>{arrow}</th>')
    body = ["<tr>" + "".join(f"<td>{_cell(row.get(c), media_url)}</td>" for c in table["columns"]) + "</tr>"
            for row in shown]  # fmt: skip
    pager = _pager(entry, url) if not chart else f'<p class="muted">{table["total"]} rows; the first 25 shown</p>'
    markup = f'<table class="logged-table">{"".join(["<tr>", *head, "</tr>", *body])}</table>{pager}'
    return chart + (f"<details><summary>table</summary>{markup}</details>" if chart else markup)


def _pager(entry: dict[str, Any], url: Url) -> str:
    table, key = entry["table"], entry["key"]
    first, last = table["offset"] + 1, table["offset"] + len(table["rows"])
    links = []
    if table["page"] > 0:
        links.append(f'<a class="page-previous" href="{escape(url({f"page.{key}": table["page"] - 1}))}">previous</a>')
    if table["page"] + 1 < table["pages"]:
        links.append(f'<a class="page-next" href="{escape(url({f"page.{key}": table["page"] + 1}))}">next</a>')
    span = f"rows {first}–{last} of {table['total']}" if table["total"] else "no rows"
    return f'<p class="muted pager">{span} {" ".join(links)}</p>'


def _cell(value: Any, media_url: Callable[[str], str]) -> str:
    if isinstance(value, dict) and value.get("digest"):
        return _media(value, media_url, thumbnail=True)
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return '<span class="muted">—</span>'
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return escape(text if len(text) <= 300 else text[:300] + "…")


def _media(value: dict[str, Any], media_url: Callable[[str], str], thumbnail: bool = False) -> str:
    kind, fmt, src = value.get("_type") or "image", str(value.get("format") or ""), media_url(str(value["digest"]))
    caption = f"<figcaption>{escape(str(value['caption']))}</figcaption>" if value.get("caption") else ""
    if (kind == "image" or (kind == "video" and fmt == "gif")) and fmt in INLINE_IMAGES:
        size = ' class="thumb"' if thumbnail else ""
        alt = escape(str(value.get("caption") or kind))
        return f'<figure class="media"><img{size} src="{escape(src)}" alt="{alt}" loading="lazy">{caption}</figure>'
    if kind == "audio":
        return f'<figure class="media"><audio controls preload="none" src="{escape(src)}"></audio>{caption}</figure>'
    if kind == "video":
        return f'<figure class="media"><video controls preload="none" src="{escape(src)}"></video>{caption}</figure>'
    size = f" ({int(value.get('size') or 0):,} bytes)"
    return f'<a class="download" href="{escape(src)}">download {escape(kind)} .{escape(fmt)}{size}</a>{caption}'


def _media_body(entry: dict[str, Any], value: dict[str, Any], media_url: Callable[[str], str], url: Url) -> str:
    extra = ""
    if value.get("masks") or value.get("boxes"):
        names = [*(value.get("masks") or {}), *(value.get("boxes") or {})]
        extra = f'<p class="muted">overlays: {escape(", ".join(map(str, names)))}</p>'
        extra += "".join(_media({**mask, "_type": "image", "caption": f"mask {name}"}, media_url, thumbnail=True)
                         for name, mask in (value.get("masks") or {}).items())  # fmt: skip
    return _media(value, media_url) + extra


def _histogram_body(entry: dict[str, Any], value: dict[str, Any], media_url: Callable[[str], str], url: Url) -> str:
    return histogram_chart(
        entry["key"], value.get("bins") or [], value.get("values") or [], f"histogram-{entry['key']}"
    )


def _text_body(entry: dict[str, Any], value: dict[str, Any], media_url: Callable[[str], str], url: Url) -> str:
    return f"<pre>{escape(str(value.get('value', '')))}</pre>"


def _html_body(entry: dict[str, Any], value: dict[str, Any], media_url: Callable[[str], str], url: Url) -> str:
    return (f'<p class="muted">HTML, shown as source (never run in this page)</p>'
            f"{_media(value, media_url)}")  # fmt: skip


def _alert_body(entry: dict[str, Any], value: dict[str, Any], media_url: Callable[[str], str], url: Url) -> str:
    level = str(value.get("level", "INFO"))
    return (f'<p class="alert alert-{escape(level.lower())}"><b>{escape(level)}</b> {escape(str(value.get("title")))}: '
            f"{escape(str(value.get('text')))}</p>")  # fmt: skip


def _graph_body(entry: dict[str, Any], value: dict[str, Any], media_url: Callable[[str], str], url: Url) -> str:
    rows = "".join(f"<tr><td>{escape(str(n.get('name')) or '(model)')}</td><td>{escape(str(n.get('class')))}</td>"
                   f"<td>{escape(orjson.dumps(n.get('parameters') or {}).decode())}</td></tr>"
                   for n in value.get("nodes") or [])  # fmt: skip
    return (f'<p class="muted">{int(value.get("parameters") or 0):,} parameters</p><table class="graph">'
            f"<tr><th>module</th><th>class</th><th>parameters</th></tr>{rows}</table>")  # fmt: skip


def _json_body(entry: dict[str, Any], value: Any, media_url: Callable[[str], str], url: Url) -> str:
    if isinstance(value, dict) and value.get("digest"):
        return _media(value, media_url)
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() if not isinstance(value, str) else value
    return f"<pre>{escape(text[:20_000])}</pre>"


_BODIES: dict[str, Body] = {
    "table": _table_body, "image": _media_body, "audio": _media_body, "video": _media_body,
    "object3d": _media_body, "molecule": _media_body, "histogram": _histogram_body, "text": _text_body,
    "html": _html_body, "alert": _alert_body, "graph": _graph_body,
}  # fmt: skip


def media_path(project: str, run_id: str) -> Callable[[str], str]:
    """The media route's URL of a blob of this run."""
    return lambda digest: f"/runs/{quote(run_id, safe='')}/media/{quote(digest, safe='')}?project={quote(project)}"


__all__ = ["INLINE_IMAGES", "media_path", "render"]
