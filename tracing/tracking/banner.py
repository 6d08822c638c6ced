"""The one line `th.init()` prints on stderr (W&B's `wandb:` lines): the run, and where to look at it.

`tracehouse: run bright-river-3 (id 1a2b3c4d) in project 'demo' · http://127.0.0.1:4318/runs/1a2b3c4d?project=demo`

The address is the UI's run page when a UI is known: the configured collector (`endpoint`), or a
`tracehouse serve` / `ui` that advertises itself on this data dir. Otherwise the line names the
command that shows the run. An offline run says how to upload it; a disabled run, or the `silent`
setting (TRACEHOUSE_SILENT, W&B's WANDB_SILENT, `th.configure(silent=True)`), prints nothing.
Plain stderr, not logging, so it shows without any logging set up.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional
from urllib.parse import quote

from tracehouse._internal_errors import log_internal_error
from tracehouse.spans.config import Settings
from tracehouse.spans.runtime import runtime

if TYPE_CHECKING:
    from tracehouse.tracking.run import Run


def announce(run: Run, resumed: bool, silent: Optional[bool] = None) -> None:
    """Print the run's line on stderr, unless it is disabled or tracehouse is silent (the setting, or
    `silent` of this init's `settings=`); never raises."""
    settings = runtime.settings
    if run.disabled or (settings.silent if silent is None else silent):
        return
    try:
        line = banner(run, resumed, settings)
    except Exception:
        log_internal_error("init's banner")
        return
    stream = sys.stderr  # looked up now: pytest's capsys / capfd and redirect_stderr replace it
    if stream is None:  # pythonw: no stderr (and print(file=None) would write to stdout)
        return
    try:
        print(line, file=stream, flush=True)
    except (OSError, ValueError):
        pass  # a closed stream or a broken pipe: the run goes on without its line


def banner(run: Run, resumed: bool, settings: Settings) -> str:
    """The line for `run`, without printing it."""
    kind = "offline run" if run.offline else "resumed run" if resumed else "run"
    what = f"tracehouse: {kind} {run.name} (id {run.id}) in project {run.project!r}"
    if run.sweep_id:
        what += f", sweep {run.sweep_id}"
    if run.offline:
        return f"{what} · kept on this machine; upload it with: {_command(['sync'], None, settings)}"
    url = ui_url(settings)
    if url is not None:
        return f"{what} · {ui_page(url, 'runs', run.project, run.id)}"
    shown, browsed = _command(["run", run.id], run.project, settings), _command(["ui"], None, settings)
    return f"{what} · view it with: {shown}, or in a browser: {browsed}"


def ui_page(base: str, page: str, project: str, item: str = "") -> str:
    """A UI page's address: `base/page[/item]?project=...` (`page` is "runs" or "sweeps")."""
    path = f"{page}/{quote(item, safe='')}" if item else page
    return f"{base}/{path}?project={quote(project, safe='')}"


def ui_url(settings: Settings) -> Optional[str]:
    """The UI that shows this process's runs: the configured collector, else a collector advertising
    itself on the data dir's embedded store; None when neither is known."""
    if settings.endpoint:
        return settings.endpoint
    from tracehouse.collector.owner.ownership import chdb_path, read_advertisement

    path = chdb_path(settings.store_url)
    found = read_advertisement(path) if path is not None else None
    return found.url.rstrip("/") if found is not None and found.kind == "collector" else None


def _command(words: list[str], project: Optional[str], settings: Settings) -> str:
    """`tracehouse <words>`, with --project / --data-dir where the CLI would not find them by itself."""
    parts = ["tracehouse", *words]
    if project is not None and project != (os.environ.get("TRACEHOUSE_PROJECT") or "default"):
        parts += ["--project", project]
    cli_dir = Path(os.environ.get("TRACEHOUSE_DIR") or "~/.tracehouse").expanduser()
    if settings.data_dir.resolve() != cli_dir.resolve():
        parts += ["--data-dir", str(settings.data_dir)]
    return shlex.join(parts)
