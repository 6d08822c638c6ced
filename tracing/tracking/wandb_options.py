"""W&B's `wandb.init` arguments and `WANDB_*` variables, as `th.init` understands them.

A W&B script passes `entity=`, `reinit=`, `settings=`, `config="params.yaml"`, mode aliases and
reads `WANDB_PROJECT` and friends; `resolve` turns all of that into tracehouse's own options, in
W&B's order of precedence: an argument, then `TRACEHOUSE_*`, then `WANDB_*`, then the default.
Options with no meaning here (`anonymous`, `save_code=False`, `sync_tensorboard`, ...) are accepted
and, where W&B would change behaviour, said so once.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, ClassVar, Mapping, Optional

from tracehouse._errors import ConfigError

logger = logging.getLogger("tracehouse")

MODE_ALIASES = {"online": "online", "offline": "offline", "disabled": "disabled", "dryrun": "offline",
                "run": "online", "shared": "online"}  # fmt: skip
REINIT = {None: "finish_previous", True: "finish_previous", False: "return_previous", "default": "finish_previous",
          "finish_previous": "finish_previous", "return_previous": "return_previous",
          "create_new": "create_new"}  # fmt: skip
# W&B's variables, read when the argument and tracehouse's own variable are unset
_ENV = {"project": ("TRACEHOUSE_PROJECT", "WANDB_PROJECT"), "mode": ("TRACEHOUSE_MODE", "WANDB_MODE"),
        "id": ("TRACEHOUSE_RUN_ID", "WANDB_RUN_ID"), "name": (None, "WANDB_NAME"), "notes": (None, "WANDB_NOTES"),
        "group": (None, "WANDB_RUN_GROUP"), "job_type": (None, "WANDB_JOB_TYPE"), "entity": (None, "WANDB_ENTITY"),
        "resume": (None, "WANDB_RESUME"), "tags": (None, "WANDB_TAGS"), "dir": (None, "WANDB_DIR")}  # fmt: skip
# wandb.Settings keys that mean an init argument
_SETTING_KEYS = {"mode": "mode", "project": "project", "entity": "entity", "run_id": "id", "run_name": "name",
                 "run_group": "group", "run_job_type": "job_type", "run_notes": "notes", "run_tags": "tags",
                 "resume": "resume", "root_dir": "dir", "save_code": "save_code"}  # fmt: skip
_IGNORED = ("anonymous", "sync_tensorboard", "monitor_gym", "tensorboard", "force", "magic")


class Settings:
    """W&B's `wandb.Settings(...)`: keyword settings for `init(settings=...)` or `th.setup(settings=...)`.

    The keys that name an init argument (`mode`, `project`, `entity`, `run_id`, `run_name`,
    `run_group`, `run_job_type`, `run_notes`, `run_tags`, `resume`, `root_dir`, `save_code`) and
    `silent` apply; others are kept and ignored."""

    def __init__(self, **settings: Any) -> None:
        self.__dict__.update(settings)

    def as_dict(self) -> dict[str, Any]:
        """The settings given, as a dict."""
        return dict(self.__dict__)

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


class InitOptions:
    """What `th.init` was asked for, after W&B's arguments, settings and variables were applied
    (a plain class: building it must not slow `th.init` down with dataclass machinery at import)."""

    _DEFAULTS: ClassVar[dict[str, Any]] = {
        "project": None, "name": None, "id": None, "tags": None, "group": None, "job_type": None, "notes": None,
        "mode": None, "resume": None, "dir": None, "entity": "", "reinit": "finish_previous", "save_code": False,
        "allow_val_change": False, "silent": None, "fork_from": None, "resume_from": None,
        "dir_root": None,  # WANDB_DIR / settings.root_dir: runs keep their files under it
    }  # fmt: skip

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(self._DEFAULTS)
        self.__dict__.update(values)
        self.config: dict[str, Any] = {}

    project: Optional[str]
    name: Optional[str]
    id: Optional[str]
    tags: Optional[list[str]]
    group: Optional[str]
    job_type: Optional[str]
    notes: Optional[str]
    mode: Optional[str]
    resume: Any
    dir: Optional[str]
    entity: str
    reinit: str
    save_code: bool
    allow_val_change: bool
    silent: Optional[bool]
    fork_from: Optional[tuple[str, int]]
    resume_from: Optional[tuple[str, int]]
    dir_root: Optional[str]


_OPTION_NAMES = set(InitOptions._DEFAULTS)


def resolve(arguments: dict[str, Any], extra: Mapping[str, Any]) -> InitOptions:
    """InitOptions from `th.init`'s arguments, W&B's extra keywords, `settings=` and the environment."""
    unknown = sorted(set(extra) - {"entity", "reinit", "settings", "save_code", "allow_val_change",
                                   "config_exclude_keys", "config_include_keys", "fork_from", "resume_from",
                                   *_IGNORED})  # fmt: skip
    if unknown:
        raise ConfigError(unknown[0], f"th.init() got an unexpected argument {unknown[0]!r}")
    values = {k: v for k, v in arguments.items() if v is not None}
    settings = _settings(extra.get("settings"))
    for key, option in _SETTING_KEYS.items():
        if key in settings and option not in values and settings[key] is not None:
            values[option] = settings[key]
    for option, (ours, theirs) in _ENV.items():
        if option not in values and not (ours and os.environ.get(ours)) and os.environ.get(theirs):
            values[option] = os.environ[theirs]
    options = InitOptions(**{k: v for k, v in values.items() if k in _OPTION_NAMES})
    options.config = _config(arguments.get("config"), extra.get("config_include_keys"),
                             extra.get("config_exclude_keys"))  # fmt: skip
    options.tags = _tags(values.get("tags"))
    options.mode = _mode(values.get("mode"))
    options.resume = {"true": True, "false": None}.get(str(options.resume).lower(), options.resume)
    options.entity = str(extra.get("entity") or values.get("entity") or "")
    options.reinit = _reinit(extra.get("reinit"))
    options.save_code = bool(extra.get("save_code", values.get("save_code", False)))
    options.allow_val_change = bool(extra.get("allow_val_change", False))
    options.silent = settings.get("silent")
    if "dir" in values and arguments.get("dir") is None:  # WANDB_DIR / root_dir: the root of every run's files
        options.dir, options.dir_root = None, str(values["dir"])
    options.fork_from = _run_at_step("fork_from", extra.get("fork_from"))
    options.resume_from = _run_at_step("resume_from", extra.get("resume_from"))
    if options.fork_from and options.resume_from:
        raise ConfigError("fork_from", "give fork_from or resume_from, not both")
    for name in _IGNORED:
        if extra.get(name) not in (None, False, "never", "allow"):
            logger.info("tracehouse: init(%s=...) has no meaning here; ignored", name)
    return options


def _settings(settings: Any) -> dict[str, Any]:
    if settings is None:
        return {}
    if isinstance(settings, Settings):
        return settings.as_dict()
    if isinstance(settings, Mapping):
        return dict(settings)
    as_dict = getattr(settings, "model_dump", None) or getattr(settings, "to_dict", None)
    if callable(as_dict):  # a real wandb.Settings (pydantic)
        return {k: v for k, v in as_dict().items() if k in _SETTING_KEYS or k == "silent"}
    raise ConfigError("settings", f"expected th.Settings or a dict, got {type(settings).__name__}")


def _config(config: Any, include: Any, exclude: Any) -> dict[str, Any]:
    from tracehouse.tracking.config import as_mapping

    if isinstance(config, (str, os.PathLike)):  # W&B: a YAML file of parameters
        config = _yaml_config(Path(config))
    values = as_mapping(config, "config")
    if include is not None and exclude is not None:
        raise ConfigError("config_include_keys", "give config_include_keys or config_exclude_keys, not both")
    if include is not None:
        values = {k: v for k, v in values.items() if k in set(include)}
    if exclude is not None:
        values = {k: v for k, v in values.items() if k not in set(exclude)}
    return values


def _yaml_config(path: Path) -> dict[str, Any]:
    """A W&B config file: plain `key: value`, or W&B's `key: {value: ..., desc: ...}` form."""
    import yaml

    if not path.is_file():
        raise ConfigError("config", f"{str(path)!r} is not a file (give a dict or a YAML file)")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError("config", f"{path} is not valid YAML: {error}") from None
    if not isinstance(loaded, dict):
        raise ConfigError("config", f"{path} does not hold a mapping of parameters")
    loaded.pop("wandb_version", None)
    return {str(k): v["value"] if isinstance(v, dict) and "value" in v else v for k, v in loaded.items()}


def _tags(tags: Any) -> Optional[list[str]]:
    if tags is None:
        return None
    if isinstance(tags, str):  # WANDB_TAGS=a,b
        return [t.strip() for t in tags.split(",") if t.strip()]
    return [str(t) for t in tags]


def _mode(mode: Any) -> Optional[str]:
    if mode is None:
        return None
    if mode not in MODE_ALIASES:
        raise ConfigError("mode", f"expected 'online', 'offline' or 'disabled' (or W&B's 'dryrun', 'run', "
                                  f"'shared'), got {mode!r}")  # fmt: skip
    return MODE_ALIASES[mode]


def _reinit(reinit: Any) -> str:
    try:
        return REINIT[reinit]
    except (KeyError, TypeError):
        raise ConfigError("reinit", f"expected a bool, 'default', 'return_previous', 'finish_previous' or "
                                    f"'create_new', got {reinit!r}") from None  # fmt: skip


def _run_at_step(option: str, value: Any) -> Optional[tuple[str, int]]:
    """W&B's `"<run_id>?_step=<step>"`."""
    if value is None:
        return None
    text = str(value)
    run_id, _, query = text.partition("?")
    key, _, step = query.partition("=")
    if not run_id or key != "_step" or not step.isdigit():
        raise ConfigError(option, f"expected '<run id>?_step=<step>', got {text!r}")
    return run_id, int(step)


__all__ = ["InitOptions", "Settings", "resolve"]
