"""Signal handlers that raise, held off while the main thread is inside a critical section.

A sweep child's SIGTERM handler raises `RunStopped` so the trial ends. Python runs the handler
between any two bytecodes of the main thread: raised between a queue pop and the spool write, it
would lose the popped records. `with critical:` marks such sections; a handler calls
`raise_or_defer`, which raises at once outside them and at the end of the outermost one inside.
A leaf module: the exporters use it, the sweeps module raises through it.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Callable, Optional

_main = threading.main_thread()


class _Critical:
    """The context manager `critical` (a class, not a generator: run.log passes through it)."""

    depth = 0  # sections the main thread is in (handlers only ever interrupt the main thread)
    deferred: Optional[Callable[[], BaseException]] = None

    def __enter__(self) -> None:
        if threading.current_thread() is _main:
            _Critical.depth += 1

    def __exit__(
        self, kind: Optional[type[BaseException]], error: Optional[BaseException], trace: Optional[TracebackType]
    ) -> None:
        if threading.current_thread() is not _main:
            return
        _Critical.depth -= 1
        if _Critical.depth == 0 and _Critical.deferred is not None:
            make, _Critical.deferred = _Critical.deferred, None
            raise make()


critical = _Critical()


def raise_or_defer(make: Callable[[], BaseException]) -> None:
    """From a signal handler: raise `make()` now, or when the main thread leaves its critical section."""
    if _Critical.depth:
        _Critical.deferred = make
        return
    raise make()
