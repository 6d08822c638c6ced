"""`run.config` and `run.summary`: W&B's dict-and-attribute objects."""

from __future__ import annotations

import argparse
import logging
from collections import abc
from typing import Any, Callable, Iterator, Mapping, Optional

from tracehouse._errors import ConfigError

logger = logging.getLogger("tracehouse")


def as_mapping(value: Any, option: str) -> dict[str, Any]:
    """A dict from a mapping or an argparse namespace (what `config=` accepts); None is empty."""
    if value is None:
        return {}
    if isinstance(value, argparse.Namespace):
        return dict(vars(value))
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise ConfigError(option, f"keys must be strings, got {key!r}")
        return dict(value)
    raise ConfigError(option, f"expected a dict or an argparse.Namespace, got {type(value).__name__}")


def _unchanged() -> None:
    """A config or summary not bound to a run (W&B's `wandb.Config()`): nothing to tell."""


class _AttrDict:
    """Item and attribute access over one dict; `on_change` is told after every change."""

    _data: dict[str, Any]
    _on_change: Callable[[], None]

    def __init__(self, data: Optional[dict[str, Any]] = None, on_change: Optional[Callable[[], None]] = None) -> None:
        object.__setattr__(self, "_data", {} if data is None else data)
        object.__setattr__(self, "_on_change", on_change or _unchanged)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise AttributeError(key) from None

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of `key`, or `default`."""
        return self._data.get(key, default)

    def keys(self) -> Any:
        """The keys."""
        return self._data.keys()

    def items(self) -> Any:
        """(key, value) pairs."""
        return self._data.items()

    def as_dict(self) -> dict[str, Any]:
        """A copy as a plain dict."""
        return dict(self._data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"


class Config(_AttrDict):
    """`run.config`: set once; changing a key's value raises unless `allow_val_change=True` (as W&B)."""

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __setattr__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def update(self, values: Any, allow_val_change: bool = False) -> None:
        """Add keys (a dict or an argparse namespace); an existing key's value changes only with
        `allow_val_change=True` (or `th.init(allow_val_change=True)` for the whole run)."""
        allow_val_change = allow_val_change or bool(getattr(self, "_allow_changes", False))
        new = as_mapping(values, "config")
        locked = getattr(self, "_locked", None)
        if locked:
            for key in [k for k in new if k in locked and new[k] != self._data.get(k)]:
                logger.warning("tracehouse: config %r is set by the sweep (%r); %r ignored", key, self._data[key],
                               new.pop(key))  # fmt: skip
        for key, value in new.items():
            if key in self._data and self._data[key] != value and not allow_val_change:
                raise ConfigError(
                    f"config.{key}",
                    f"already {self._data[key]!r}, not changed to {value!r}: pass allow_val_change=True to change it",
                )
        self._data.update(new)
        self._on_change()

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._on_change()

    def __delattr__(self, key: str) -> None:
        try:
            self.__delitem__(key)
        except KeyError:
            raise AttributeError(key) from None

    def allow_changes(self) -> None:
        """Every key's value may change from now on (W&B's `init(allow_val_change=True)`)."""
        object.__setattr__(self, "_allow_changes", True)

    def _lock(self, keys: Any) -> None:
        """Keys a sweep set: the trial's values win over the script's, with a warning."""
        object.__setattr__(self, "_locked", frozenset(keys))

    def setdefaults(self, values: Mapping[str, Any]) -> None:
        """Set the keys not set yet (a script's defaults under a sweep's values)."""
        missing = {k: v for k, v in as_mapping(values, "config").items() if k not in self._data}
        if missing:
            self._data.update(missing)
            self._on_change()


class Summary(_AttrDict):
    """`run.summary`: the last logged value of each key unless set by hand (then the hand-set value)."""

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __setattr__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def update(self, values: Mapping[str, Any]) -> None:
        """Set summary values."""
        self._data.update(values)
        self._on_change()

    def _logged(self, values: Mapping[str, Any], removed: Any) -> None:
        """What a committed step puts in the summary; keys whose value `removed(value)` are taken out."""
        if removed is None:
            self._data.update(values)
            return
        for key, value in values.items():
            if removed(value):
                self._data.pop(key, None)
            else:
                self._data[key] = value


_LEAVES = frozenset((float, int, str, bool))  # checked by type first: isinstance on an ABC is slow per value


def flatten(data: Mapping[str, Any], prefix: str = "", out: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Nested dicts as one level with dotted keys (`{"a": {"b": 1}}` -> `{"a.b": 1}`)."""
    out = {} if out is None else out
    for key, value in data.items():
        if type(key) is not str:
            raise ConfigError("data", f"keys must be strings, got {key!r}")
        name = prefix + key
        kind = type(value)
        if kind is dict or (kind not in _LEAVES and isinstance(value, abc.Mapping)):
            flatten(value, name + ".", out)
        else:
            out[name] = value
    return out
