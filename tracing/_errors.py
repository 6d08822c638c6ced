"""The exception tree of tracehouse.

TracehouseError
 ├── ConfigError     (also a ValueError): a bad option or argument, raised early
 ├── NotFoundError   (also a LookupError): what was asked for is not in the store
 ├── ConflictError   a change made from a version that is no longer the latest (409)
 └── StoreError      the store cannot be opened, migrated, written or queried
"""

from __future__ import annotations


class TracehouseError(Exception):
    """Base class of every error tracehouse raises on purpose."""


class ConfigError(TracehouseError, ValueError):
    """A configuration option or API argument has a bad value; the message names it."""

    def __init__(self, option: str, problem: str) -> None:
        self.option = option
        self.problem = problem
        super().__init__(f"{option}: {problem}")


class NotFoundError(TracehouseError, LookupError):
    """A trace (or other record) asked for by id is not in the store."""


class ConflictError(TracehouseError):
    """A change was based on a version of a record that someone else has replaced since; nothing was written."""


class StoreError(TracehouseError):
    """The store could not be opened, migrated, written or queried."""
