"""What the framework callbacks share: the run they log to, config values made storable, models as artifacts.

A callback logs to the active run when there is one (the script called `th.init`), else starts its
own with the project, name and config it was given and finishes it when training ends, as W&B's
integrations do.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Optional

from tracehouse.tracking.run import Run, current_run


def active_or_new_run(project: Optional[str], name: Optional[str], init_kwargs: Mapping[str, Any]) -> tuple[Run, bool]:
    """The active run (False: not ours to finish) or a new one (True)."""
    from tracehouse.tracking.session import init

    run = current_run()
    if run is not None and run.state == "running":
        return run, False
    return init(project=project, name=name, **dict(init_kwargs)), True


def storable(value: Any, depth: int = 0) -> Any:
    """A config value as JSON can hold it: numbers, strings, bools, None, lists and dicts of them;
    anything else (a dtype, an enum, a callable) as its str."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth < 8 and isinstance(value, Mapping):
        return {str(k): storable(v, depth + 1) for k, v in value.items()}
    if depth < 8 and isinstance(value, (list, tuple, set, frozenset)):
        return [storable(v, depth + 1) for v in value]
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item) and getattr(value, "ndim", 1) == 0:
        try:
            return storable(item(), depth + 1)
        except (TypeError, ValueError):
            pass
    return str(value)


def numbers(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric entries of `values` (tensors and numpy scalars included) as floats, keys prefixed."""
    out: dict[str, float] = {}
    for key, value in values.items():
        number = storable(value)
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            out[f"{prefix}{key}"] = float(number)
    return out


def log_model_artifact(
    run: Run, path: Path, name: str, aliases: list[str], metadata: Optional[dict[str, Any]] = None
) -> Any:
    """Log the file or directory `path` as a `model` artifact `name` with `aliases`; returns the artifact."""
    from tracehouse.tracking.artifacts.artifact import Artifact

    artifact = Artifact(name, "model", metadata=storable(metadata or {}))
    if path.is_dir():
        artifact.add_dir(path)
    else:
        artifact.add_file(path)
    return run.log_artifact(artifact, aliases=aliases)


def importance_chart(importances: Mapping[str, float], title: str = "Feature Importance") -> Any:
    """A bar chart of feature importances, largest first (a table `feature`, `importance` plus its spec)."""
    from tracehouse.tracking.media_table import Table
    from tracehouse.tracking.plots import bar

    ordered = sorted(importances.items(), key=lambda item: (-item[1], item[0]))
    table = Table(columns=["feature", "importance"], data=[[name, float(value)] for name, value in ordered])
    return bar(table, "feature", "importance", title=title)


__all__ = ["active_or_new_run", "importance_chart", "log_model_artifact", "numbers", "storable"]
