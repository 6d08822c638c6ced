"""W&B's surface in one module, for scripts that keep the name: `import tracehouse.wandb as wandb`.

It is tracehouse itself under W&B's names (`import tracehouse as wandb` gives the same), so
`wandb.init / log / config / summary / finish / Table / Image / Audio / Histogram / plot / Api /
sweep / agent / Artifact / define_metric / login / Settings / AlertLevel / errors / termlog` all
work; see the README's "Coming from W&B" table for each call and any difference.
"""

from typing import Any as _Any

import tracehouse as _tracehouse

__all__ = list(_tracehouse.__all__)  # and, as attributes, the active `run`, `config` and `summary`


def __getattr__(name: str) -> _Any:
    """Every name of `tracehouse` (the active `run`, `config` and `summary` included)."""
    return getattr(_tracehouse, name)


def __dir__() -> list[str]:
    return sorted(set(__all__))
