"""The face of the package: a short documented list of names, and a light import."""

from __future__ import annotations

from conftest import run_python

import tracehouse as th
import tracehouse.collector
import tracehouse.exporters


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in dir(th) if not name.startswith("_")}
    submodules = {
        "collector",
        "exporters",
        "evals",
        "testing",
        "pytest_plugin",
        "spans",
        "reads",
        "tracking",
        "sweeps",
        "integrations",
        "cli",
        "wandb",  # the drop-in (`import tracehouse.wandb as wandb`): an attribute once any test imported it
    }
    assert set(th.__all__) - {"__version__"} == public - submodules


def test_every_public_name_is_documented() -> None:
    for package in (th, tracehouse.collector, tracehouse.exporters):
        for name in package.__all__:
            if name.startswith("__"):
                continue
            assert getattr(package, name).__doc__, f"{package.__name__}.{name} has no docstring"


def test_import_is_light() -> None:
    """`import tracehouse` loads the face, the errors and the version: no store, server, pandas,
    OpenTelemetry SDK or exporter, and none of the package's other modules."""
    result = run_python(
        "import sys, tracehouse; print('\\n'.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tracehouse', 'pandas', 'numpy', 'chdb', 'clickhouse_connect', 'fastapi', 'uvicorn', 'opentelemetry', "
        "'pyarrow', 'openai', 'langchain_core', 'orjson'))))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["tracehouse", "tracehouse._errors", "tracehouse._version"]


def test_errors_form_one_tree() -> None:
    assert issubclass(th.ConfigError, th.TracehouseError)
    assert issubclass(th.ConfigError, ValueError)
    assert issubclass(th.StoreError, th.TracehouseError)
    error = th.ConfigError("project", "bad")
    assert error.option == "project"
    assert str(error) == "project: bad"
