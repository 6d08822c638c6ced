"""The runs table's view as a query string: the filter form translated to W&B's filter JSON, the advanced
JSON beside it, the chosen columns, sort, group and page. Every view is a URL (`RunsView.url`).

The form's fields: `state`, `tags` (comma-separated, any of them), `name` (contains, case-insensitive),
config conditions `ck` / `cop` / `cv` and summary conditions `sk` / `sop` / `sv` (repeated, one per row;
ops `= != < <= > >=`), `filter` (the advanced JSON). All parts must hold (`$and`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Optional
from urllib.parse import urlencode

import orjson

from tracehouse._errors import ConfigError
from tracehouse.collector.store.run_filters import check_filters

OPS = {"=": "$eq", "!=": "$ne", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
STATES = ("running", "finished", "failed", "crashed")
PER_PAGE = 50
MAX_PER_PAGE = 500
_RE2_SPECIAL = set("\\.+*?()|[]{}^$")


@dataclass(frozen=True)
class Condition:
    """One row of the form: a config or summary key, an operator and a value, as typed."""

    key: str
    op: str
    value: str


@dataclass(frozen=True)
class FilterForm:
    """The filter form's fields, as typed (so the page shows them again)."""

    state: str = ""
    tags: str = ""
    name: str = ""
    config: tuple[Condition, ...] = ()
    summary: tuple[Condition, ...] = ()
    advanced: str = ""

    def filters(self) -> Optional[dict[str, Any]]:
        """The W&B filter this form means (None: every run); ConfigError naming a bad field."""
        parts: list[dict[str, Any]] = []
        if self.state:
            if self.state not in STATES:
                raise ConfigError("state", f"expected one of {', '.join(STATES)}, got {self.state!r}")
            parts.append({"state": self.state})
        tags = [t.strip() for t in self.tags.split(",") if t.strip()]
        if tags:
            parts.append({"tags": {"$in": tags}})
        if self.name:
            parts.append({"name": {"$regex": "(?i)" + re2_literal(self.name)}})
        for prefix, rows in (("config.", self.config), ("summary.", self.summary)):
            parts += [condition_filter(prefix, row) for row in rows]
        if self.advanced:
            parts.append(advanced_filter(self.advanced))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"$and": parts}


@dataclass(frozen=True)
class RunsView:
    """What the runs table shows: filter, columns (None: the defaults), sort, group, page."""

    form: FilterForm = field(default_factory=FilterForm)
    columns: Optional[tuple[str, ...]] = None
    sort: Optional[str] = None
    desc: bool = False
    group: Optional[str] = None
    page: int = 1
    per_page: int = PER_PAGE

    def query(self) -> list[tuple[str, str]]:
        """This view as query-string pairs (blank fields left out)."""
        form = self.form
        pairs = [("state", form.state), ("tags", form.tags), ("name", form.name)]
        for names, rows in ((("ck", "cop", "cv"), form.config), (("sk", "sop", "sv"), form.summary)):
            for row in rows:
                pairs += [(names[0], row.key), (names[1], row.op), (names[2], row.value)]
        pairs.append(("filter", form.advanced))
        if self.columns is not None:
            pairs += [("cols", c) for c in self.columns] or [("cols", "")]
        pairs += [("sort", self.sort or ""), ("desc", "1" if self.desc else ""), ("group", self.group or "")]
        if self.page != 1:
            pairs.append(("page", str(self.page)))
        if self.per_page != PER_PAGE:
            pairs.append(("per_page", str(self.per_page)))
        return [(k, v) for k, v in pairs if v or k in ("cv", "sv") or (k == "cols" and self.columns == ())]

    def url(self, project: str, path: str = "/runs", **changes: Any) -> str:
        """The URL of this view with some fields changed (`page` back to 1 unless given)."""
        changed = replace(self, **{"page": 1, **changes})
        return f"{path}?{urlencode([('project', project), *changed.query()])}"


def re2_literal(text: str) -> str:
    """`text` as an RE2 pattern that matches it literally."""
    return "".join(f"\\{c}" if c in _RE2_SPECIAL else c for c in text)


def parse_value(text: str) -> Any:
    """A typed value: a number, true / false / null, a "quoted" string, else the text itself."""
    raw = text.strip()
    if raw in ("true", "false", "null") or (raw.startswith('"') and raw.endswith('"') and len(raw) >= 2):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        number = float(raw)
    except ValueError:
        return raw
    return number if math.isfinite(number) else raw


def typed_text(value: Any) -> str:
    """The text that `parse_value` reads back as `value` (a string that looks like a number is quoted)."""
    if isinstance(value, str) and parse_value(value) == value:
        return value
    return orjson.dumps(value).decode()


def condition_filter(prefix: str, row: Condition) -> dict[str, Any]:
    """One form row as a filter: `{"config.lr": {"$lt": 0.01}}`."""
    option = "cop" if prefix == "config." else "sop"
    if row.op not in OPS:
        raise ConfigError(option, f"expected one of {' '.join(OPS)} for {row.key!r}, got {row.op!r}")
    key = row.key[len(prefix) :] if row.key.startswith(prefix) else row.key
    return {f"{prefix}{key}": {OPS[row.op]: parse_value(row.value)}}


def advanced_filter(raw: str) -> dict[str, Any]:
    """The advanced field: W&B filter JSON, checked."""
    try:
        filters = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ConfigError("filter", f'expected JSON such as {{"config.lr": {{"$lt": 0.01}}}}, got {raw!r}') from None
    check_filters(filters)
    return dict(filters)


def _rows(params: Any, names: tuple[str, str, str]) -> tuple[Condition, ...]:
    keys, ops, values = (params.getlist(n) for n in names)
    rows = []
    for index, key in enumerate(keys):
        if key.strip():
            op = ops[index] if index < len(ops) else "="
            rows.append(Condition(key.strip(), op.strip() or "=", values[index] if index < len(values) else ""))
    return tuple(rows)


def _count(params: Any, name: str, default: int, high: int) -> int:
    raw = (params.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise ConfigError(name, f"expected a whole number from 1 to {high}, got {raw!r}")
    return int(raw)


def runs_view(params: Any) -> RunsView:
    """The view a query string asks for (a bad number is a ConfigError; the filter is checked later)."""

    def text(name: str) -> str:
        return (params.get(name) or "").strip()

    form = FilterForm(
        state=text("state"), tags=text("tags"), name=text("name"), config=_rows(params, ("ck", "cop", "cv")),
        summary=_rows(params, ("sk", "sop", "sv")), advanced=text("filter"),
    )  # fmt: skip
    listed = params.getlist("cols")
    columns = tuple(c for c in listed if c) if listed else None
    return RunsView(form=form, columns=columns, sort=text("sort") or None, desc=params.get("desc") == "1",
                    group=text("group") or None, page=_count(params, "page", 1, 10**6),
                    per_page=_count(params, "per_page", PER_PAGE, MAX_PER_PAGE))  # fmt: skip


__all__ = ["OPS", "STATES", "Condition", "FilterForm", "RunsView", "parse_value", "runs_view", "typed_text"]
