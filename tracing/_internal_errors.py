"""Never break the host: internal failures are logged, and re-raised only under our own tests."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("tracehouse")

_RAISE_ENV = "TRACEHOUSE_RAISE_INTERNAL_ERRORS"


def raise_internal_errors() -> bool:
    """True when internal errors should propagate (set by tracehouse's own test suite)."""
    return os.environ.get(_RAISE_ENV, "") not in ("", "0", "false")


def log_internal_error(where: str) -> None:
    """Log the exception being handled; re-raise it when running tracehouse's own tests."""
    if raise_internal_errors():
        raise
    logger.exception("tracehouse internal error in %s; your code should still be running fine", where)
