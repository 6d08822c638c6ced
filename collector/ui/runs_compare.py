"""Runs side by side: their metric histories (for overlaid charts), and a config diff and a summary diff
(rows = keys, columns = runs; a row differs when any run's value differs, a missing value included)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from tracehouse._errors import ConfigError
from tracehouse.collector.store.reads import flat_values
from tracehouse.collector.ui import data
from tracehouse.collector.ui.runs_cells import is_number, value_text

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

MAX_RUNS = 10
_MISSING = b"\x00missing"


def diff_rows(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per key of any of `values` (one flat dict per run): each run's value and text, and whether
    they differ."""
    keys = sorted({k for v in values for k in v})
    rows = []
    for key in keys:
        raw = [v.get(key) for v in values]
        seen = {orjson.dumps(v[key], option=orjson.OPT_SORT_KEYS, default=str) if key in v else _MISSING
                for v in values}  # fmt: skip
        rows.append({"key": key, "values": raw, "cells": [value_text(r) for r in raw],
                     "numbers": [is_number(r) for r in raw], "differs": len(seen) > 1})  # fmt: skip
    return rows


def compare(store: Store, project: str, run_ids: list[str], only_differences: bool = False) -> dict[str, Any]:
    """Several runs side by side: metrics, config and summary diffs (only the differing rows if asked)."""
    run_ids = list(dict.fromkeys(run_ids))
    if not 1 <= len(run_ids) <= MAX_RUNS:
        raise ConfigError("ids", f"choose 1 to {MAX_RUNS} runs to compare, got {len(run_ids)}")
    chosen = [data.run(store, project, run_id) for run_id in run_ids]
    keys = sorted({k for r in chosen for k in r["metrics"]})
    configs = [flat_values(r["config"], "") for r in chosen]
    summaries = [flat_values(r["summary"], "") for r in chosen]
    config_rows, summary_rows = diff_rows(configs), diff_rows(summaries)
    counts = {"config": sum(r["differs"] for r in config_rows), "summary": sum(r["differs"] for r in summary_rows)}
    if only_differences:
        config_rows = [r for r in config_rows if r["differs"]]
        summary_rows = [r for r in summary_rows if r["differs"]]
    return {"project": project, "runs": [{k: r[k] for k in ("run_id", "name", "state", "metrics")} for r in chosen],
            "keys": keys, "config_keys": sorted({k for c in configs for k in c}),
            "configs": dict(zip(run_ids, configs, strict=True)), "config_rows": config_rows,
            "summary_rows": summary_rows, "differing": counts, "only_differences": only_differences}  # fmt: skip


__all__ = ["MAX_RUNS", "compare", "diff_rows"]
