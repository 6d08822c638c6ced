"""Test helpers: capture finished spans as plain dicts and assert on them as a readable tree.

    from tracehouse.testing import capture_spans

    def test_answer():
        with capture_spans() as spans:
            answer("what is tracehouse?")
        assert spans.tree(fields=("name", "kind")) == [
            {"name": "answer", "kind": "function", "children": [
                {"name": "retrieve", "kind": "retriever", "children": []},
            ]},
        ]

With pytest, the `tracehouse_spans` fixture gives the same object for the duration of a test.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from tracehouse.collector.store.queries import build_tree
from tracehouse.collector.store.rows.spans import span_row
from tracehouse.exporters._records import SpanRecord, record_to_dict
from tracehouse.spans.runtime import runtime

__all__ = ["CapturedSpans", "capture_spans"]

DEFAULT_TREE_FIELDS = ("name", "kind", "status")


class CapturedSpans:
    """Finished spans, in the order they ended, each a dict of `spans` table columns."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def _add(self, record: SpanRecord) -> None:
        self.rows.append(span_row(record_to_dict(record)))

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]

    def names(self) -> list[str]:
        """Span names in the order the spans ended."""
        return [row["name"] for row in self.rows]

    def by_name(self, name: str) -> dict[str, Any]:
        """The first span called `name` (KeyError if none)."""
        for row in self.rows:
            if row["name"] == name:
                return row
        raise KeyError(f"no span named {name!r}; captured: {self.names()}")

    def clear(self) -> None:
        """Forget what was captured so far."""
        self.rows.clear()

    def tree(self, fields: Sequence[str] = DEFAULT_TREE_FIELDS) -> list[dict[str, Any]]:
        """Root spans with nested `children`, ordered by start time, keeping only `fields`.

        Ids and timestamps are left out unless asked for, so the result can be compared whole.
        """
        ordered = sorted(self.rows, key=lambda r: (r["start_time"], r["end_time"]))
        root = build_tree([{**{f: r[f] for f in fields}, "span_id": r["span_id"], "parent_span_id": r["parent_span_id"]}
                           for r in ordered])  # fmt: skip
        roots = root["children"] if root.get("name") == "(trace)" and not root.get("span_id") else [root]
        return [_strip_ids(node, fields) for node in roots]


def _strip_ids(node: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    return {**{f: node[f] for f in fields}, "children": [_strip_ids(c, fields) for c in node["children"]]}


@contextmanager
def capture_spans() -> Iterator[CapturedSpans]:
    """Collect every span that ends inside the block (they are still exported as usual)."""
    captured = CapturedSpans()
    runtime.listeners.append(captured._add)
    try:
        yield captured
    finally:
        runtime.listeners.remove(captured._add)
