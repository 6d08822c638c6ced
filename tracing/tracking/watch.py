"""W&B's `watch(model)`: gradient and parameter histograms of a PyTorch model, every `log_freq` steps.

`log="gradients"` (the default) registers a hook on every parameter that needs a gradient and logs
`gradients/<name>` when the parameter's gradient has been computed `log_freq` times since the last
histogram; `log="parameters"` a forward hook on the model that logs `parameters/<name>` every
`log_freq` training forward passes; `"all"` both. Histograms are 64 bins over the finite values
(W&B's), logged with `commit=False` so they land on the step the training loop commits next. With
`log_graph=True` the module tree (each module's name, class and parameter shapes) is stored once as
the value `graph_<idx>` (`_type: "graph"`).

A second model watched in the same run gets the prefix `graph_<idx>.` in its keys (W&B prefixes
`graph_<idx>` with no separator). Hooks never raise into training: a failure is logged once. They
are removed by `unwatch(model)`, `unwatch()` and when the run finishes.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from tracehouse._errors import ConfigError
from tracehouse._internal_errors import log_internal_error

if TYPE_CHECKING:
    from tracehouse.tracking.media import Histogram

logger = logging.getLogger("tracehouse")

LOG_KINDS = ("gradients", "parameters", "all")
BINS = 64


class Watched:
    """One watched model: its hook handles and counters."""

    def __init__(self, model: Any, prefix: str, log_freq: int, log: Callable[[dict[str, Any]], None]) -> None:
        self.model = model
        self.prefix = prefix
        self.log_freq = log_freq
        self._log = log
        self.handles: list[Any] = []
        self._forward_calls = 0
        self._gradient_calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def hook_parameters(self) -> None:
        self.handles.append(self.model.register_forward_hook(self._on_forward))

    def hook_gradients(self) -> None:
        for name, parameter in self.model.named_parameters():
            if parameter.requires_grad:
                self.handles.append(parameter.register_hook(self._gradient_hook(name)))

    def _on_forward(self, module: Any, inputs: Any, output: Any) -> None:
        if not module.training:
            return
        with self._lock:
            self._forward_calls += 1
            due = self._forward_calls % self.log_freq == 0
        if due:
            self._safely("parameter histograms", self._log_parameters)

    def _log_parameters(self) -> None:
        values = {}
        for name, parameter in self.model.named_parameters():
            histogram = tensor_histogram(parameter)
            if histogram is not None:
                values[f"parameters/{self.prefix}{name}"] = histogram
        if values:
            self._log(values)

    def _gradient_hook(self, name: str) -> Callable[[Any], None]:
        def hook(gradient: Any) -> None:
            with self._lock:
                count = self._gradient_calls.get(name, 0) + 1
                self._gradient_calls[name] = count
            if count % self.log_freq == 0:
                self._safely("a gradient histogram", lambda: self._log_gradient(name, gradient))

        return hook

    def _log_gradient(self, name: str, gradient: Any) -> None:
        histogram = tensor_histogram(gradient)
        if histogram is not None:
            self._log({f"gradients/{self.prefix}{name}": histogram})

    def _safely(self, what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except ConfigError:  # the run finished under a hook still attached: nothing to log into
            self.remove()
        except Exception:
            log_internal_error(f"logging {what} of a watched model")

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def tensor_histogram(tensor: Any, bins: int = BINS) -> Optional[Histogram]:
    """A 64-bin histogram of a tensor's finite values (None when it has none)."""
    import torch

    from tracehouse.tracking.media import Histogram

    with torch.no_grad():
        flat = tensor.detach()
        if flat.is_sparse:
            flat = flat.coalesce().values()
        flat = flat.reshape(-1).to("cpu", torch.float32)
        flat = flat[torch.isfinite(flat)]
        if flat.numel() == 0:
            return None
        low, high = float(flat.min()), float(flat.max())
        if low == high:
            low, high = low - 0.5, high + 0.5
        counts = torch.histc(flat, bins=bins, min=low, max=high)
        edges = torch.linspace(low, high, bins + 1)
    return Histogram(np_histogram=(counts.tolist(), edges.tolist()))


def module_graph(model: Any) -> dict[str, Any]:
    """The module tree as a stored value: each module's name, class and its own parameters' shapes."""
    nodes = []
    for name, module in model.named_modules():
        own = {n: list(p.shape) for n, p in module.named_parameters(recurse=False)}
        nodes.append({"name": name, "class": type(module).__name__, "parameters": own})
    total = sum(int(p.numel()) for p in model.parameters())
    return {"_type": "graph", "format": "torch", "nodes": nodes, "parameters": total}


def check_models(models: Any) -> Sequence[Any]:
    """The models as a tuple, each a torch.nn.Module; ConfigError otherwise."""
    items = tuple(models) if isinstance(models, (list, tuple)) else (models,)
    try:
        import torch
    except ImportError:
        raise ConfigError("models", "watch() needs PyTorch (pip install torch)") from None
    for model in items:
        if not isinstance(model, torch.nn.Module):
            raise ConfigError("models", f"expected a torch.nn.Module, got {type(model).__name__}")
    return items


def check_watch_options(log: Optional[str], log_freq: Any) -> None:
    if log is not None and log not in LOG_KINDS:
        raise ConfigError("log", f"expected one of {', '.join(LOG_KINDS)} or None, got {log!r}")
    if isinstance(log_freq, bool) or not isinstance(log_freq, int) or log_freq < 1:
        raise ConfigError("log_freq", f"expected a positive integer, got {log_freq!r}")


__all__ = ["LOG_KINDS", "Watched", "check_models", "check_watch_options", "module_graph", "tensor_histogram"]
