"""pytest plugin (registered by the `pytest11` entry point): the `tracehouse_spans` fixture."""

from __future__ import annotations

from typing import Iterator

import pytest

from tracehouse.testing import CapturedSpans, capture_spans


@pytest.fixture
def tracehouse_spans() -> Iterator[CapturedSpans]:
    """Spans finished during the test, as dicts of `spans` columns; `.tree()` nests them."""
    with capture_spans() as spans:
        yield spans
