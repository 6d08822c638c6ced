"""Which host a process lives on and whether a pid still runs there.

A run records its host and pid; where the store is read on that host (the owner of the data dir,
or a collector beside the training script), a `running` run whose process is gone is `crashed` at
once instead of after the heartbeat timeout. Another host's runs keep the heartbeat rule.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from typing import Iterable


@lru_cache(maxsize=1)
def this_host() -> str:
    """This machine's name, as runs record it."""
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs here (signal 0 probes without sending; a zombie, killed and not yet
    reaped, is not alive; another user's process is)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's process
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def is_dead(pid: int) -> bool:
    """Whether a recorded pid (positive) no longer runs here."""
    return pid > 0 and not pid_alive(pid)


def dead_pids(pids: Iterable[int]) -> list[str]:
    """The pids of `pids` that no longer run here, as strings (a read's `Array(String)` parameter)."""
    return sorted({str(pid) for pid in pids if is_dead(int(pid))})


__all__ = ["dead_pids", "is_dead", "pid_alive", "this_host"]
