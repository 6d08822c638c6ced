"""Walking a keyset-paged list (`next` / `prev` cursors) both ways, for the list pages' tests."""

from __future__ import annotations

from typing import Any, Callable

Page = Callable[..., Any]  # fetch(limit=..., after=... | before=...) -> the page's JSON


def walk_pages(fetch: Page, items: str, key: str) -> tuple[list[list[str]], list[list[str]]]:
    """Every page forward (following `next`), then every page backward from the last (following `prev`):
    the `key` of each row in `items`, per page, both lists in forward order."""
    forward, cursor = [], None
    while True:
        page = fetch(limit="5", **({"after": cursor} if cursor else {}))
        forward.append([row[key] for row in page[items]])
        if page["next"] is None:
            break
        cursor = page["next"]
        assert len(forward) < 20, "paging does not end"
    backward, cursor = [forward[-1]], page["prev"]
    while cursor is not None:
        page = fetch(limit="5", before=cursor)
        backward.append([row[key] for row in page[items]])
        cursor = page["prev"]
        assert len(backward) < 20, "paging back does not end"
    return forward, backward[::-1]
