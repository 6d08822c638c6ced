"""The report editor's form: the blocks as fields, the editor's actions, and the draft it shows again.

One `<fieldset>` per block, in order; each carries a key of its own (`order=<key>`, repeated in the
form's order, and `b.<key>.<field>`), so moving or removing a fieldset in the page (static/reports.js)
reorders or drops the block without renumbering anything. Without JavaScript the block buttons submit
the form with `action=up:<key>`, `down:<key>`, `remove:<key>` or `add:<kind>`, and the server answers
the editor with the draft changed (nothing saved); `action=save` checks and saves it.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Optional

import orjson

from tracehouse._errors import ConfigError
from tracehouse.collector.ui.reports_blocks import PANELS, default_settings

_KEY = re.compile(r"^[a-z0-9]{1,16}$")
KINDS = ("markdown", *PANELS)
MAX_FORM_BLOCKS = 100  # blocks a form may carry before the check (which allows fewer) says so


def new_key() -> str:
    """A fresh block key."""
    return secrets.token_hex(4)


def _first(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0]


def parse_form(form: dict[str, list[str]]) -> dict[str, Any]:
    """The report the form holds (unchecked: `reports_blocks.check_report` checks it), with each block's key."""
    blocks: list[dict[str, Any]] = []
    for key in dict.fromkeys(form.get("order") or []):
        if not _KEY.match(key):
            continue
        kind = _first(form, f"b.{key}.type")
        if kind == "markdown":
            blocks.append({"key": key, "type": "markdown", "text": _first(form, f"b.{key}.text")})
        elif kind in PANELS:
            settings = {name: _first(form, f"b.{key}.{name}") for name in PANELS[kind][1]}
            blocks.append({"key": key, "type": "panel", "panel": kind, "settings": settings})
        else:
            raise ConfigError(f"b.{key}.type", f"unknown block type {kind[:40]!r}; expected one of {', '.join(KINDS)}")
        if len(blocks) > MAX_FORM_BLOCKS:
            raise ConfigError("blocks", f"at most {MAX_FORM_BLOCKS} blocks in one form")
    return {"title": _first(form, "title"), "description": _first(form, "description"), "blocks": blocks}


def base_version(form: dict[str, list[str]]) -> Optional[int]:
    """The version the editor's draft was made from (its hidden field); None when the form has none."""
    raw = _first(form, "base_version").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 20:
        raise ConfigError("base_version", f"expected the version the draft was made from, got {raw[:30]!r}")
    return int(raw)


def body_of(draft: dict[str, Any]) -> dict[str, Any]:
    """The draft as a report body (the block keys left out)."""
    blocks = [{k: v for k, v in block.items() if k != "key"} for block in draft["blocks"]]
    return {"title": draft["title"], "description": draft["description"], "blocks": blocks}


def new_block(kind: str) -> dict[str, Any]:
    """An empty block of `kind`."""
    if kind == "markdown":
        return {"key": new_key(), "type": "markdown", "text": ""}
    if kind not in PANELS:
        raise ConfigError("action", f"unknown block type {kind[:40]!r}; expected one of {', '.join(KINDS)}")
    return {"key": new_key(), "type": "panel", "panel": kind, "settings": default_settings(kind)}


def apply(draft: dict[str, Any], action: str) -> dict[str, Any]:
    """The draft after one editor action (add, up, down, remove)."""
    verb, _, target = action.partition(":")
    blocks = list(draft["blocks"])
    if verb == "add":
        blocks.append(new_block(target))
        return {**draft, "blocks": blocks}
    at = next((i for i, b in enumerate(blocks) if b["key"] == target), None)
    if verb not in ("up", "down", "remove") or at is None:
        raise ConfigError("action", f"expected save, add:<type>, up:<block>, down:<block> or remove:<block>, "
                                    f"got {action[:60]!r}")  # fmt: skip
    if verb == "remove":
        blocks.pop(at)
    else:
        other = at - 1 if verb == "up" else at + 1
        if 0 <= other < len(blocks):
            blocks[at], blocks[other] = blocks[other], blocks[at]
    return {**draft, "blocks": blocks}


def _shown(value: Any) -> str:
    """A setting as its form field shows it."""
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def editor_blocks(report: Optional[dict[str, Any]]) -> dict[str, Any]:
    """A stored report (or none: a new one) as the editor's draft, a key per block and every setting as text."""
    if report is None:
        return {"title": "", "description": "", "blocks": []}
    blocks = []
    for block in report["blocks"]:
        entry = {**block, "key": block.get("key") or new_key()}
        if block["type"] == "panel":
            entry["settings"] = {k: _shown(v) for k, v in block["settings"].items()}
        blocks.append(entry)
    return {"title": report["title"], "description": report["description"], "blocks": blocks}


def templates() -> list[dict[str, Any]]:
    """One empty block of each kind, keyed `__key__`, for the page's `<template>`s (static/reports.js)."""
    found = []
    for kind in KINDS:
        block = editor_blocks({"title": "", "description": "", "blocks": [new_block(kind)]})["blocks"][0]
        found.append({**block, "key": "__key__"})
    return found


__all__ = [
    "KINDS",
    "apply",
    "base_version",
    "body_of",
    "editor_blocks",
    "new_block",
    "new_key",
    "parse_form",
    "templates",
]
