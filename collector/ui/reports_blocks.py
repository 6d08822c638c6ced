"""What a report is made of, checked: a title, a description and ordered blocks.

A block is `{"type": "markdown", "text": "..."}` or `{"type": "panel", "panel": <kind>, "settings": {...}}`
with one of the panel kinds below. Every check raises ConfigError naming the field (`blocks[2].settings.x`),
so the API answers 400 and the editor shows the message beside the form as typed. Settings are only
checked for shape here; whether a run, trace or evaluation exists is the panel's business when it is
drawn (an unknown one is an error inside that panel, not a failed page).
"""

from __future__ import annotations

import re
from typing import Any, Callable

import orjson

from tracehouse._errors import ConfigError
from tracehouse.collector.store.queries import LATENCY_GROUPS
from tracehouse.collector.store.run_filters import check_filters

MAX_TITLE, MAX_DESCRIPTION = 200, 2000
MAX_MARKDOWN = 50_000  # characters in one markdown block
MAX_BLOCKS = 60
MAX_REPORT_BYTES = 512 * 1024  # the blocks as stored JSON
MAX_RUNS = 20  # runs one chart overlays
MAX_TABLE_ROWS = 100
MAX_COLUMNS = 30
X_AXES = ("step", "relative", "time")
_TEXT = 300  # any other text setting
_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")  # run ids as the tracker writes them (W&B-style)
_TRACE = re.compile(r"^[0-9a-f]{32}$")
_RANGE = re.compile(r"^[0-9]{1,4}[smhdw]$")

Check = Callable[[str, Any], Any]


def _text(limit: int = _TEXT) -> Check:
    def check(field: str, value: Any) -> str:
        if not isinstance(value, str):
            raise ConfigError(field, f"expected text, got {type(value).__name__}")
        if len(value) > limit:
            raise ConfigError(field, f"at most {limit:,} characters, got {len(value):,}")
        return value.strip()

    return check


def _choice(options: tuple[str, ...]) -> Check:
    def check(field: str, value: Any) -> str:
        if value not in options:
            raise ConfigError(field, f"expected one of {', '.join(options)}, got {str(value)[:40]!r}")
        return str(value)

    return check


def _pattern(regex: re.Pattern[str], what: str) -> Check:
    def check(field: str, value: Any) -> str:
        text = value.strip() if isinstance(value, str) else value
        if text == "":
            return ""
        if not isinstance(text, str) or not regex.match(text):
            raise ConfigError(field, f"expected {what}, got {str(value)[:60]!r}")
        return text

    return check


def _ids(field: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[\s,]+", value) if v]
    if not isinstance(value, list) or len(value) > MAX_RUNS:
        raise ConfigError(field, f"expected a list of up to {MAX_RUNS} run ids")
    return [_pattern(_ID, "a run id")(f"{field}[{i}]", v) for i, v in enumerate(value)]


def _columns(field: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or len(value) > MAX_COLUMNS:
        raise ConfigError(field, f"expected a list of up to {MAX_COLUMNS} column names")
    return [_text(200)(f"{field}[{i}]", v) for i, v in enumerate(value)]


def _filter(field: str, value: Any) -> Any:
    """A W&B run filter (MongoDB-style JSON, as the runs page's advanced field), or none."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ConfigError(field, f'expected filter JSON such as {{"config.lr": {{"$lt": 0.01}}}}, '
                                     f"got {value[:60]!r}") from None  # fmt: skip
    if value is None:
        return None
    try:
        check_filters(value)
    except ConfigError as error:
        raise ConfigError(field, str(error)) from None
    return value


def _flag(field: str, value: Any) -> bool:
    if value in (True, False, "1", "0", "", "true", "false", "on"):
        return value in (True, "1", "true", "on")
    raise ConfigError(field, f"expected true or false, got {str(value)[:20]!r}")


def _rows(field: str, value: Any) -> int:
    try:
        number = int(value) if not isinstance(value, bool) else -1
    except (TypeError, ValueError):
        number = -1
    if not 1 <= number <= MAX_TABLE_ROWS:
        raise ConfigError(field, f"expected a whole number from 1 to {MAX_TABLE_ROWS}, got {str(value)[:20]!r}")
    return number


# per panel kind: its label and, per setting, (check, default)
PANELS: dict[str, tuple[str, dict[str, tuple[Check, Any]]]] = {
    "run_chart": ("Run metric chart", {
        "title": (_text(), ""), "runs": (_ids, []), "filter": (_filter, None), "metric": (_text(200), ""),
        "x": (_choice(X_AXES), "step")}),
    "latency_table": ("Latency table", {
        "title": (_text(), ""), "by": (_choice(tuple(LATENCY_GROUPS)), "name"),
        "range": (_pattern(_RANGE, "a duration such as 1h, 24h or 7d"), "24h"), "start": (_text(40), ""),
        "end": (_text(40), "")}),
    "runs_table": ("Runs table", {
        "title": (_text(), ""), "filter": (_filter, None), "columns": (_columns, []), "sort": (_text(200), ""),
        "desc": (_flag, False), "limit": (_rows, 20)}),
    "trace_link": ("Trace link", {
        "title": (_text(), ""), "trace_id": (_pattern(_TRACE, "32 lowercase hex digits"), "")}),
    "eval_summary": ("Eval summary", {"title": (_text(), ""), "run_id": (_pattern(_ID, "an evaluation's run id"), "")}),
}  # fmt: skip


def default_settings(kind: str) -> dict[str, Any]:
    """A new panel's settings."""
    return {name: default for name, (_, default) in PANELS[kind][1].items()}


def check_settings(kind: str, settings: Any, field: str) -> dict[str, Any]:
    """A panel's settings with defaults filled in; ConfigError for an unknown or malformed one."""
    if not isinstance(settings, dict):
        raise ConfigError(field, "expected an object of settings")
    known = PANELS[kind][1]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ConfigError(f"{field}.{unknown[0]}", f"{kind} has no setting {unknown[0][:40]!r}; "
                                                   f"it has {', '.join(known)}")  # fmt: skip
    checked = {}
    for name, (check, default) in known.items():
        value = settings.get(name, default)
        checked[name] = default if value is None and default is None else check(f"{field}.{name}", value)
    return checked


def check_block(block: Any, field: str) -> dict[str, Any]:
    """One block, checked and normalised."""
    if not isinstance(block, dict):
        raise ConfigError(field, 'expected {"type": "markdown", "text": ...} or {"type": "panel", "panel": ...}')
    kind = block.get("type")
    if kind == "markdown":
        extra = sorted(set(block) - {"type", "text"})
        if extra:
            raise ConfigError(f"{field}.{extra[0]}", "a markdown block has only type and text")
        return {"type": "markdown", "text": _text(MAX_MARKDOWN)(f"{field}.text", block.get("text", ""))}
    if kind != "panel":
        raise ConfigError(f"{field}.type", f"expected markdown or panel, got {str(kind)[:40]!r}")
    extra = sorted(set(block) - {"type", "panel", "settings"})
    if extra:
        raise ConfigError(f"{field}.{extra[0]}", "a panel block has only type, panel and settings")
    panel = block.get("panel")
    if panel not in PANELS:
        raise ConfigError(f"{field}.panel", f"unknown panel type {str(panel)[:40]!r}; expected one of "
                                            f"{', '.join(PANELS)}")  # fmt: skip
    return {"type": "panel", "panel": panel,
            "settings": check_settings(panel, block.get("settings", {}), f"{field}.settings")}  # fmt: skip


def check_report(body: Any) -> dict[str, Any]:
    """A report's title, description and blocks from a request body; ConfigError naming a bad field."""
    if not isinstance(body, dict):
        raise ConfigError("body", 'expected {"title": ..., "description": ..., "blocks": [...]}')
    extra = sorted(set(body) - {"title", "description", "blocks", "project"})
    if extra:
        raise ConfigError(extra[0], "a report has title, description, blocks (and project)")
    if "title" not in body:
        raise ConfigError("title", "a report needs a title")
    title = _text(MAX_TITLE)("title", body["title"])
    if not title:
        raise ConfigError("title", "a report needs a title")
    description = _text(MAX_DESCRIPTION)("description", body.get("description", ""))
    blocks = body.get("blocks", [])
    if not isinstance(blocks, list):
        raise ConfigError("blocks", "expected a list of blocks")
    if len(blocks) > MAX_BLOCKS:
        raise ConfigError("blocks", f"at most {MAX_BLOCKS} blocks, got {len(blocks)}")
    checked = [check_block(block, f"blocks[{i}]") for i, block in enumerate(blocks)]
    size = len(orjson.dumps(checked))
    if size > MAX_REPORT_BYTES:
        raise ConfigError("blocks", f"the blocks come to {size:,} bytes; a report holds at most {MAX_REPORT_BYTES:,}")
    return {"title": title, "description": description, "blocks": checked}


__all__ = ["MAX_BLOCKS", "MAX_MARKDOWN", "PANELS", "X_AXES", "check_block", "check_report", "check_settings",
           "default_settings"]  # fmt: skip
