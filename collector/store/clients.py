"""A few connections to the store, each used by one thread at a time (reads run side by side)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client


class ClientPool:
    """Up to `size` clients, opened on first need; `borrow()` waits while all are in use."""

    def __init__(self, connect: Callable[[], Client], size: int = 2) -> None:
        self._connect = connect
        self._size = size
        self._free: list[Client] = []
        self._opened: list[Client] = []
        self._cond = threading.Condition()

    @contextmanager
    def borrow(self) -> Iterator[Client]:
        """A client for this thread alone, until the block ends."""
        with self._cond:
            while not self._free and len(self._opened) >= self._size:
                self._cond.wait()
            if self._free:
                client = self._free.pop()
            else:
                client = self._connect()
                self._opened.append(client)
        try:
            yield client
        finally:
            with self._cond:
                self._free.append(client)
                self._cond.notify()

    def close(self) -> None:
        """Close every client opened."""
        with self._cond:
            opened, self._opened, self._free = self._opened, [], []
        for client in opened:
            client.close()
