"""W&B's module-level helpers: `login`, `setup`, `teardown`, `watch` / `unwatch`, `controller`,
`termlog` / `termwarn` / `termerror`, `errors`.

There is no account and no service process: `login` checks nothing and says so (True), `setup`
applies settings to this process, `teardown` finishes the active run and flushes. The term*
functions print W&B-style lines on stderr (`tracehouse: ...`), silenced by the `silent` setting.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

from tracehouse._errors import ConfigError, NotFoundError, StoreError, TracehouseError


def login(key: Optional[str] = None, relogin: Optional[bool] = None, host: Optional[str] = None, **_: Any) -> bool:
    """W&B's `wandb.login()`: tracehouse has no accounts, so there is nothing to log in to; returns True.
    With `host` (W&B's self-hosted server), that is the collector endpoint and `key` its API key; a
    key without a host is not used (a W&B key is never sent anywhere)."""
    if host:
        from tracehouse.spans.api import configure

        configure(endpoint=host, api_key=key)
    return True


def setup(settings: Any = None) -> None:
    """W&B's `wandb.setup()`: apply `settings` (th.wandb Settings or a dict: mode, project, silent, dir)
    to this process; there is no service process to start."""
    from tracehouse.spans.api import configure
    from tracehouse.tracking.wandb_options import _settings

    values = _settings(settings)
    known = {k: values[k] for k in ("project", "silent") if values.get(k) is not None}
    if values.get("root_dir"):
        known["data_dir"] = values["root_dir"]
    if known:
        configure(**known)


def teardown(exit_code: Optional[int] = None) -> None:
    """W&B's `wandb.teardown()`: finish the active run and flush what is recorded."""
    from tracehouse.spans.api import flush
    from tracehouse.tracking.session import finish

    finish(exit_code)
    flush()


def watch(
    models: Any,
    criterion: Any = None,
    log: Optional[str] = "gradients",
    log_freq: int = 1000,
    idx: Optional[int] = None,
    log_graph: bool = False,
) -> None:
    """W&B's `wandb.watch()`: `run.watch()` on the active run (ConfigError without one)."""
    from tracehouse.tracking.session import _require

    _require().watch(models, criterion, log, log_freq, idx, log_graph)


def unwatch(models: Any = None) -> None:
    """W&B's `wandb.unwatch()`: `run.unwatch()` on the active run (nothing to do without one)."""
    from tracehouse.tracking.run import current_run

    run = current_run()
    if run is not None:
        run.unwatch(models)


def _term(prefix: str, message: str, repeat: bool = True, prefix_: bool = True) -> None:
    from tracehouse.spans.runtime import runtime

    if runtime.settings.silent:
        return
    stream = sys.stderr
    if stream is not None:
        print(f"tracehouse: {prefix}{message}" if prefix_ else message, file=stream, flush=True)


def termlog(string: str = "", newline: bool = True, repeat: bool = True, prefix: bool = True) -> None:
    """W&B's `wandb.termlog`: a line on stderr."""
    _term("", string, repeat, prefix)


def termwarn(string: str, repeat: bool = True, prefix: bool = True) -> None:
    """W&B's `wandb.termwarn`: a warning line on stderr."""
    _term("WARNING ", string, repeat, prefix)


def termerror(string: str, repeat: bool = True, prefix: bool = True) -> None:
    """W&B's `wandb.termerror`: an error line on stderr."""
    _term("ERROR ", string, repeat, prefix)


class errors:  # W&B's module name: `wandb.errors.CommError`
    """W&B's `wandb.errors`: its exception names, mapped to tracehouse's errors."""

    Error = TracehouseError
    CommError = StoreError
    UsageError = ConfigError
    AuthenticationError = ConfigError
    NotFoundError = NotFoundError


__all__ = ["errors", "login", "setup", "teardown", "termerror", "termlog", "termwarn"]
