"""Evaluations: datasets, scorers, evaluate (sync and async), faults, compare, feedback, sweeps."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import tracehouse as th
from tracehouse import evals

CAPITALS = [{"id": "fr", "input": "France", "expected": "Paris"}, {"id": "es", "input": "Spain", "expected": "Madrid"},
            {"id": "it", "input": "Italy", "expected": "Rome"}]  # fmt: skip


def test_datasets_from_lists_files_and_frames_are_versioned_by_content(th_env: th.Settings, tmp_path: Path) -> None:
    jsonl = tmp_path / "capitals.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in CAPITALS) + "\n")
    csv = tmp_path / "capitals.csv"
    csv.write_text("id,input,expected\n" + "\n".join(f"{r['id']},{r['input']},{r['expected']}" for r in CAPITALS))
    from_list = evals.Dataset("capitals", CAPITALS)
    assert evals.Dataset.from_jsonl(jsonl).digest == from_list.digest
    assert evals.Dataset.from_csv(csv, name="capitals").rows == CAPITALS
    assert evals.Dataset.from_pandas(pd.DataFrame(CAPITALS), "capitals").digest == from_list.digest
    assert from_list.push().wait().version == "v0"
    assert evals.Dataset("capitals", list(CAPITALS)).wait().version == "v0"  # same rows, same version
    assert evals.Dataset("capitals", CAPITALS[:2]).wait().version == "v1"
    latest, first = evals.Dataset.get("capitals"), evals.Dataset.get("capitals", "v0")
    assert (latest.version, len(latest), first.rows) == ("v1", 2, CAPITALS)
    with pytest.raises(th.NotFoundError, match=r"capitals:v7 is not stored \(versions: v0, v1\)"):
        evals.Dataset.get("capitals", "v7")
    with pytest.raises(th.ConfigError, match="list of dicts"):
        evals.Dataset("bad", [1, 2])
    jsonl.write_text('{"ok": 1}\nnot json\n')
    with pytest.raises(th.ConfigError, match=r"capitals\.jsonl:2 is not JSON"):
        evals.Dataset.from_jsonl(jsonl)
    with pytest.raises(th.ConfigError, match="dataset names"):
        evals.Dataset("no spaces", [])


def test_evaluate_traces_scores_and_stores_a_run(th_env: th.Settings) -> None:
    known = {"France": "Paris", "Spain": "Barcelona", "Italy": "Rome"}

    @th.trace(kind="llm")
    def answer(input: str) -> str:
        th.current_span().set_usage(model="gpt-4o-mini", input_tokens=5, output_tokens=1)
        return known[input]

    result = evals.evaluate(answer, evals.Dataset("capitals", CAPITALS),
                            scorers=[evals.exact_match(), evals.string_similarity(), evals.contains()],
                            name="baseline")  # fmt: skip
    assert result.aggregates["exact_match.pass_rate"] == pytest.approx(2 / 3)
    assert result.aggregates["string_similarity.mean"] < 1 and result.dataset_version == "v0"
    assert list(result.examples["example"]) == ["fr", "es", "it"] and result.examples["error"].isna().all()
    row = th.runs(filters={"run_id": result.run_id}).iloc[0]
    assert (row["job_type"], row["name"], row["state"]) == ("eval", "baseline", "finished")
    assert row["summary.exact_match.pass_rate"] == pytest.approx(2 / 3) and row["config.dataset"] == "capitals"
    scores = th.query("SELECT example, name, value, trace_id FROM scores WHERE run_id = {r:String} AND name = "
                      "'exact_match' ORDER BY example", {"r": result.run_id})  # fmt: skip
    assert scores[["example", "value"]].values.tolist() == [["es", 0.0], ["fr", 1.0], ["it", 1.0]]
    spans = th.query("SELECT name, run_id, trace_id FROM spans WHERE trace_id = {t:String} ORDER BY start_time",
                     {"t": scores["trace_id"].iloc[0]})  # fmt: skip
    assert spans[["name", "run_id"]].values.tolist() == [["example", result.run_id], ["answer", result.run_id]]
    table = th.query("SELECT count() AS n FROM run_tables WHERE run_id = {r:String}", {"r": result.run_id})
    assert table["n"].iloc[0] == 3


def test_an_evaluation_inside_a_training_run_is_its_child_one_join_away(th_env: th.Settings) -> None:
    @th.trace(kind="llm")
    def answer(input: str) -> str:
        return {"France": "Paris", "Spain": "Madrid"}.get(input, "?")

    with th.init(project="train", name="trainer") as training:
        training.log({"loss": 1.0})
        result = evals.evaluate(answer, CAPITALS, scorers=[evals.exact_match()], name="val", project="train")
        assert th.run is training  # still the active run: training goes on
        training.log({"loss": 0.5})
    th.sync()
    history = th.history(training.id, project="train")
    assert history["evals/val/exact_match.pass_rate"].iloc[1] == pytest.approx(2 / 3)  # on the step it ran in
    assert (
        th.runs(project="train", filters={"run_id": training.id}).iloc[0]["summary.evals/val/run_id"] == result.run_id
    )
    joined = th.query(
        "SELECT t.name AS training, count() AS spans FROM spans s JOIN runs AS e FINAL ON s.run_id = e.run_id "
        "JOIN runs AS t FINAL ON JSONExtractString(e.config, 'parent_run_id') = t.run_id "
        "WHERE s.name = 'answer' GROUP BY training"
    )
    assert joined.values.tolist() == [["trainer", 3]]


def test_faults_are_per_example_and_the_evaluation_completes(th_env: th.Settings) -> None:
    def target(input: str) -> str:
        if input == "Spain":
            raise RuntimeError("model overloaded")
        return {"France": "Paris", "Italy": "Rome"}[input]

    @evals.scorer(name="slow", timeout=0.2)
    def slow(output: str) -> bool:
        time.sleep(1.0 if output == "Rome" else 0)
        return True

    @evals.scorer
    def needs_region(output: str, region: str) -> bool:
        return bool(region)

    @evals.scorer
    def picky(output: str) -> bool:
        if output == "Paris":
            raise ValueError("cannot judge Paris")
        return True

    result = evals.evaluate(target, CAPITALS, scorers=[evals.exact_match(), slow, needs_region, picky])
    by_example = result.examples.set_index("example")
    assert by_example.loc["es", "error"] == "RuntimeError: model overloaded"
    assert by_example.loc["it", "slow.error"] == "TimeoutError: slow took longer than 0.2 s"
    assert "no field 'region' that needs_region needs" in by_example.loc["fr", "needs_region.error"]
    assert "cannot judge Paris" in by_example.loc["fr", "picky.error"]
    assert by_example.loc["it", "exact_match"] == True  # noqa: E712 - the rest of the example was scored
    assert result.aggregates["error_rate"] == pytest.approx(1 / 3)
    errors = th.query("SELECT example, name, error FROM scores WHERE run_id = {r:String} AND error != '' "
                      "ORDER BY example, name", {"r": result.run_id})  # fmt: skip
    expected = [("fr", "needs_region"), ("fr", "picky"), ("it", "needs_region"), ("it", "slow")]
    assert [tuple(r) for r in errors[["example", "name"]].values] == expected
    with pytest.raises(th.ConfigError, match="has no examples"):
        evals.evaluate(target, evals.Dataset("empty", []), scorers=[evals.exact_match()])
    with pytest.raises(th.ConfigError, match="max_concurrency"):
        evals.evaluate(target, CAPITALS, scorers=[], max_concurrency=0)


def test_async_targets_run_concurrently_up_to_the_limit(th_env: th.Settings) -> None:
    running, peak = 0, 0
    lock = threading.Lock()

    async def target(input: str) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        await asyncio.sleep(0.05)
        with lock:
            running -= 1
        return input

    @evals.scorer
    async def echoed(output: str, input: str) -> dict[str, Any]:
        return {"same": output == input, "length": len(output)}

    rows = [{"input": f"q{i}", "expected": f"q{i}"} for i in range(48)]
    result = evals.evaluate(target, rows, scorers=[evals.exact_match(), echoed], max_concurrency=8, trials=2)
    assert peak == 8 and len(result.rows) == 96  # eight at once, never more (no wall-clock bound: CI is busy)
    assert result.aggregates["echoed.same.pass_rate"] == 1.0 and result.aggregates["echoed.length.mean"] > 1


def test_built_in_scorers(th_env: th.Settings) -> None:
    assert evals.regex(r"^\d+$")("123") and not evals.regex()("abc", expected=r"\d")
    assert evals.json_valid()('{"a": 1}') and not evals.json_valid()("{a")
    schema = {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}}
    assert evals.json_schema(schema)('{"a": 1}') and not evals.json_schema(schema)('{"a": "x"}')
    assert evals.numeric_close(rel_tol=0.01)("3.14", 3.1416) and not evals.numeric_close()("x", 1)
    assert evals.contains()("The capital is PARIS.", ["paris", "capital"])
    assert evals.exact_match(case_sensitive=False)(" paris ", "Paris")
    assert evals.string_similarity("token_sort_ratio")("b a", "a b") == 1.0
    vectors = {"cat": [1.0, 0.0], "kitten": [0.9, 0.1], "car": [0.0, 1.0]}
    similar = evals.embedding_similarity(lambda text: vectors[text])
    assert similar("cat", "kitten") > 0.9 > similar("cat", "car")
    with pytest.raises(th.ConfigError, match=r"rapidfuzz\.fuzz"):
        evals.string_similarity("nope")
    with pytest.raises(th.ConfigError, match="no scorer named"):
        evals.evaluate(lambda input: input, CAPITALS, scorers=["never-registered"])


def test_llm_judge_through_an_openai_compatible_server(th_env: th.Settings) -> None:
    openai = pytest.importorskip("openai")
    from openai_server import OpenAIServer

    server = OpenAIServer()
    try:
        client = openai.OpenAI(base_url=server.url, api_key="test")
        judge = evals.llm_judge(client, "echo", "How well does {output} answer {input}? {output}", name="judge")
        rows = [{"input": "capital of France?", "expected": "Paris"}, {"input": "two plus two?", "expected": "4"}]
        answers = {"capital of France?": "8", "two plus two?": "no digits here"}
        result = evals.evaluate(lambda input: answers[input], rows, scorers=[judge])
        by_input = result.examples.set_index("example")
        assert by_input.loc["0", "judge"] == pytest.approx(0.8)  # the "echo" model repeats the prompt: 8 first
        assert "holds no score" in by_input.loc["1", "judge.error"]
        prompts = [body["messages"][0]["content"] for _, body in server.requests]
        assert "How well does 8 answer capital of France?? 8" in prompts
        with pytest.raises(th.ConfigError, match="must mention"):
            evals.llm_judge(client, "m", "no placeholder")
    finally:
        server.shutdown()


def test_compare_and_the_cli(th_env: th.Settings, capsys: pytest.CaptureFixture[str]) -> None:
    known = {"France": "Paris", "Spain": "Barcelona", "Italy": "Rome"}
    before = evals.evaluate(lambda input: known[input], CAPITALS, scorers=[evals.exact_match()], name="before")
    known.update(Spain="Madrid", Italy="Milan")
    after = evals.evaluate(lambda input: known[input], CAPITALS, scorers=[evals.exact_match()], name="after")
    comparison = evals.compare(before, after)
    assert comparison.deltas.set_index("scorer").loc["exact_match", "delta"] == pytest.approx(0.0)
    assert comparison.changed.values.tolist() == [["es", "exact_match", 0.0, 1.0], ["it", "exact_match", 1.0, 0.0]]
    from tracehouse.cli.main import main

    assert main(["eval", "compare", before.run_id, after.run_id]) == 0
    out = capsys.readouterr().out
    assert "exact_match" in out and "+0.0000" in out and "2 example verdict(s) changed" in out
    assert "es       exact_match  fail  pass" in out and "it       exact_match  pass  fail" in out
    assert main(["eval", "compare", before.run_id, "nope"]) == 1
    assert "has no evaluation scores" in capsys.readouterr().err


def test_feedback_scores_on_live_traces(th_env: th.Settings) -> None:
    @th.trace
    def handle(question: str) -> str:
        span = th.current_span()
        th.score(span, "latency_ok", True)
        return "answer"

    handle("q")
    trace_id = th.traces(limit=1)["trace_id"].iloc[0]
    th.score(trace_id, "helpful", 1, comment="fixed my issue")
    th.score(trace_id, "label", "great")
    rows = th.query("SELECT target_type, name, value, string_value, comment, source FROM scores ORDER BY name")
    assert rows.values.tolist()[0] == ["trace", "helpful", 1.0, "", "fixed my issue", "feedback"]
    assert rows[rows["name"] == "label"]["string_value"].iloc[0] == "great"
    assert rows[rows["name"] == "latency_ok"][["target_type", "value"]].values.tolist() == [["span", 1.0]]
    with pytest.raises(th.ConfigError, match="trace id"):
        th.score("not-an-id", "x", 1)
    with pytest.raises(th.ConfigError, match="finite"):
        th.score(trace_id, "x", float("nan"))


def test_a_sweep_optimises_an_eval_aggregate(th_env: th.Settings) -> None:
    templates = {"terse": "{country}", "helpful": "The capital of {country} is"}
    capitals = {"France": "Paris", "Spain": "Madrid", "Italy": "Rome"}

    def rag_app(input: str, template: str, temperature: float) -> str:
        prompt = templates[template].format(country=input)
        return capitals[input] if prompt.startswith("The capital") and temperature < 0.5 else input

    def trial() -> None:  # evaluate() starts the run, which is the sweep's trial: th.config holds its parameters
        evals.evaluate(lambda input: rag_app(input, th.config["template"], th.config["temperature"]), CAPITALS,
                       scorers=[evals.exact_match()])  # fmt: skip

    sweep_id = th.sweep({"method": "grid", "metric": {"name": "exact_match.mean", "goal": "maximize"},
                         "parameters": {"template": {"values": ["terse", "helpful"]},
                                        "temperature": {"values": [0.0, 1.0]}}})  # fmt: skip
    assert th.agent(sweep_id, function=trial) == 4
    best = th.sweep_status(sweep_id)["best"]
    assert best is not None and best["params"] == {"template": "helpful", "temperature": 0.0}
    assert best["metric"] == 1.0
