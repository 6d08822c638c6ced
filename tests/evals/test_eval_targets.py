"""How `evaluate` calls its target: named fields, the input field, `**kwargs` (every field but the
expected one), and a clear error for a target that takes nothing."""

from __future__ import annotations

import functools
from typing import Any

import pytest

import tracehouse as th
from tracehouse import evals
from tracehouse.evals._runner import _caller

ROWS = [{"id": "fr", "input": "France", "lang": "fr", "expected": "Paris"},
        {"id": "es", "input": "Spain", "lang": "es", "expected": "Madrid"}]  # fmt: skip
CAPITALS = {"France": "Paris", "Spain": "Madrid"}


def test_a_kwargs_target_receives_the_examples_fields(th_env: th.Settings) -> None:
    seen: list[dict[str, Any]] = []

    def target(**fields: Any) -> str:
        seen.append(fields)
        return CAPITALS[fields["input"]]

    result = evals.evaluate(target, ROWS, scorers=[evals.exact_match()], name="kwargs")
    assert result.aggregates["exact_match.pass_rate"] == 1.0 and result.examples["error"].isna().all()
    assert sorted(seen, key=lambda f: f["id"]) == [
        {"id": "es", "input": "Spain", "lang": "es"}, {"id": "fr", "input": "France", "lang": "fr"}
    ]  # the expected answer is not handed to the target  # fmt: skip
    assert result.examples["trace_id"].str.fullmatch("[0-9a-f]{32}").all()  # each example's trace, for its link


def test_named_parameters_with_kwargs_get_the_rest() -> None:
    row = ROWS[0]
    assert _caller(lambda input, **rest: None, "input")(row) == ((), {"input": "France", "id": "fr", "lang": "fr"})
    assert _caller(lambda country, **rest: None, "input")(row) == (("France",), {"id": "fr", "lang": "fr"})
    assert _caller(lambda lang, input: None, "input")(row) == ((), {"lang": "fr", "input": "France"})
    assert _caller(lambda x: None, "input")(row) == (("France",), {})
    assert _caller(lambda *args: None, "input")(row) == (("France",), {})
    assert _caller(lambda **kw: None, "input", expected_field="lang")(row) == (
        (), {"id": "fr", "input": "France", "expected": "Paris"})  # fmt: skip
    assert _caller(functools.partial(lambda a, b: None, 1), "input")(row) == (("France",), {})


def test_a_target_without_parameters_is_a_config_error_naming_it(th_env: th.Settings) -> None:
    def no_inputs() -> str:
        return "Paris"

    with pytest.raises(th.ConfigError, match=r"^target: .*no_inputs takes no parameters; give it one"):
        evals.evaluate(no_inputs, ROWS, scorers=[evals.exact_match()])
    started = th.query("SELECT count() AS n FROM runs WHERE project = {p:String}", {"p": th_env.project})
    assert started["n"].iloc[0] == 0  # refused before a run was started

    class Model:
        def predict(self) -> str:
            return "Paris"

    with pytest.raises(th.ConfigError, match=r"Model\.predict takes no parameters"):
        evals.evaluate(Model().predict, ROWS, scorers=[])
