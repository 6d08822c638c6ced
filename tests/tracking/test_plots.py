"""Charts logged with run.log (W&B's wandb.plot.* and plot_table): rows in run_tables, spec in run_values."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

import tracehouse as th
import tracehouse.tracking.plots as plot
from tracehouse.tracking import plot_curves


def _rows(run_id: str, key: str) -> list[dict[str, Any]]:
    found = th.query(
        "SELECT row FROM run_tables WHERE run_id = {r:String} AND key = {k:String} ORDER BY row_index",
        {"r": run_id, "k": key},
    )
    return [json.loads(row) for row in found["row"]]


def _charts(run_id: str) -> dict[str, dict[str, Any]]:
    found = th.query("SELECT key, type, value FROM run_values WHERE run_id = {r:String}", {"r": run_id})
    assert set(found["type"]) == {"table"}  # a chart is a table value with a spec
    return {row.key: json.loads(row.value) for row in found.itertuples()}


def test_table_charts_store_their_rows_and_spec(th_env: th.Settings) -> None:
    rng = np.random.default_rng(7)
    losses = rng.random(6)
    table = th.Table(
        columns=["step", "loss", "split"], data=[[i, losses[i], ["val", "train"][i % 2]] for i in range(6)]
    )
    bars = th.Table(columns=["class", "accuracy"], data=[["cat", 0.9], ["dog", 0.7]])
    with th.init(project=th_env.project) as run:
        run.log({
            "line": plot.line(table, "step", "loss", stroke="split", title="Loss"),
            "scatter": plot.scatter(table, "step", "loss", title="Scatter"),
            "bar": plot.bar(bars, "class", "accuracy", title="Accuracy", split_table=True),
            "hist": plot.histogram(table, "loss"),
            "series": plot.line_series([0, 1, 2], [[1, 2, 3], np.array([4.0, 5.0, 6.0])], keys=["a", "b"],
                                       title="Two", xname="epoch"),
            "mine": plot.plot_table("me/heatmap/v1", table, {"x": "step", "y": "loss"}, {"title": "Mine"}),
        })  # fmt: skip
    charts = _charts(run.id)
    assert charts["line"]["chart"] == {
        "kind": "line", "vega_spec": "wandb/line/v0", "fields": {"x": "step", "y": "loss", "stroke": "split"},
        "title": "Loss", "string_fields": {"title": "Loss"}, "split_table": False,
    }  # fmt: skip
    kinds = {key: (v["chart"]["kind"], v["chart"]["vega_spec"], v["rows"]) for key, v in charts.items()}
    assert kinds == {
        "line": ("line", "wandb/line/v0", 6), "scatter": ("scatter", "wandb/scatter/v0", 6),
        "bar": ("bar", "wandb/bar/v0", 2), "hist": ("histogram", "wandb/histogram/v0", 6),
        "series": ("line_series", "wandb/lineseries/v0", 6), "mine": ("custom", "me/heatmap/v1", 6),
    }  # fmt: skip
    assert charts["bar"]["chart"]["fields"] == {"label": "class", "value": "accuracy"}
    assert charts["bar"]["chart"]["split_table"] is True
    assert charts["hist"]["chart"]["fields"] == {"value": "loss"} and charts["hist"]["chart"]["title"] == ""
    assert charts["series"]["chart"]["string_fields"] == {"title": "Two", "xname": "epoch"}
    assert (
        charts["mine"]["chart"]["fields"] == {"x": "step", "y": "loss"} and charts["mine"]["columns"] == table.columns
    )
    assert _rows(run.id, "line") == [{"step": i, "loss": losses[i], "split": ["val", "train"][i % 2]} for i in range(6)]
    assert _rows(run.id, "bar") == [{"class": "cat", "accuracy": 0.9}, {"class": "dog", "accuracy": 0.7}]
    assert [(r["step"], r["lineKey"], r["lineVal"]) for r in _rows(run.id, "series")] == [
        (0, "a", 1), (1, "a", 2), (2, "a", 3), (0, "b", 4.0), (1, "b", 5.0), (2, "b", 6.0),
    ]  # fmt: skip
    assert run.summary["line"]["chart"]["kind"] == "line" and run.summary["line"]["rows"] == 6


def test_line_series_defaults_and_one_x_per_line() -> None:
    chart = plot.line_series([[0, 1], [10, 20, 30]], [[5, 6], [7, 8, 9]])
    assert chart.table.data == [[0, "line_0", 5], [1, "line_0", 6], [10, "line_1", 7], [20, "line_1", 8],
                                [30, "line_1", 9]]  # fmt: skip
    assert chart.spec.string_fields == {"title": "", "xname": "x"} and chart.spec.kind == "line_series"


def test_confusion_matrix_rows(th_env: th.Settings) -> None:
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(3), size=40)
    truth = rng.integers(0, 3, size=40)
    with th.init(project=th_env.project) as run:
        run.log({
            "named": plot.confusion_matrix(y_true=[0, 1, 2, 2, 1], preds=[0, 2, 2, 2, 1], class_names=["a", "b", "c"]),
            "probs": plot.confusion_matrix(probs=probs, y_true=truth, title="From probabilities"),
            "labels": plot.confusion_matrix(y_true=["cat", "dog", "cat"], preds=["cat", "cat", "dog"]),
        })  # fmt: skip
    named = {(r["Actual"], r["Predicted"]): r["nPredictions"] for r in _rows(run.id, "named")}
    assert named == {("a", "a"): 1, ("a", "b"): 0, ("a", "c"): 0, ("b", "a"): 0, ("b", "b"): 1, ("b", "c"): 1,
                     ("c", "a"): 0, ("c", "b"): 0, ("c", "c"): 2}  # fmt: skip
    expected = np.zeros((3, 3), dtype=int)
    np.add.at(expected, (truth, probs.argmax(axis=1)), 1)
    counted = [[r["Actual"], r["Predicted"], r["nPredictions"]] for r in _rows(run.id, "probs")]
    names = ["Class_1", "Class_2", "Class_3"]
    assert counted == [[names[i], names[j], int(expected[i, j])] for i in range(3) for j in range(3)]
    assert [list(r.values()) for r in _rows(run.id, "labels")] == [
        ["Class_1", "Class_1", 1], ["Class_1", "Class_2", 1], ["Class_2", "Class_1", 1], ["Class_2", "Class_2", 0],
    ]  # fmt: skip
    spec = _charts(run.id)["probs"]["chart"]
    assert (spec["kind"], spec["vega_spec"], spec["title"]) == ("confusion_matrix", "wandb/confusion_matrix/v1",
                                                              "From probabilities")  # fmt: skip
    assert spec["fields"] == {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"}


def test_roc_and_pr_curve_points(th_env: th.Settings) -> None:
    # scikit-learn's documented example: scores 0.1, 0.4, 0.35, 0.8 for labels 0, 0, 1, 1
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    probas = np.c_[1 - scores, scores]
    with th.init(project=th_env.project) as run:
        run.log({
            "roc": plot.roc_curve([0, 0, 1, 1], probas, labels=["neg", "pos"], classes_to_plot=[1]),
            "pr": plot.pr_curve([0, 0, 1, 1], probas, labels=["neg", "pos"], classes_to_plot=[1], interp_size=5),
            "both": plot.roc_curve(np.array([0, 0, 1, 1]), probas),
        })  # fmt: skip
    assert [list(r.values()) for r in _rows(run.id, "roc")] == [
        ["pos", 0.0, 0.0], ["pos", 0.0, 0.5], ["pos", 0.5, 0.5], ["pos", 0.5, 1.0], ["pos", 1.0, 1.0],
    ]  # fmt: skip
    # the best precision at each recall or more: 2/3 until recall 1/2, then 1
    assert [list(r.values()) for r in _rows(run.id, "pr")] == [
        ["pos", 0.667, 1.0], ["pos", 0.667, 0.75], ["pos", 1.0, 0.5], ["pos", 1.0, 0.25], ["pos", 1.0, 0.0],
    ]  # fmt: skip
    both = _rows(run.id, "both")
    assert {r["class"] for r in both} == {0, 1} and (both[0]["fpr"], both[-1]["tpr"]) == (0.0, 1.0)
    charts = _charts(run.id)
    assert charts["roc"]["chart"]["fields"] == {"x": "fpr", "y": "tpr", "class": "class"}
    assert charts["roc"]["chart"]["string_fields"]["x-axis-title"] == "False positive rate"
    assert (charts["pr"]["chart"]["kind"], charts["pr"]["chart"]["title"]) == ("pr", "Precision-Recall Curve")
    assert charts["pr"]["chart"]["fields"] == {"x": "recall", "y": "precision", "class": "class"}
    assert charts["both"]["chart"]["vega_spec"] == "wandb/area-under-curve/v0"


def test_a_class_missing_from_y_true_keeps_its_column() -> None:
    # classes 0 and 2 seen, three probability columns: class 2's curve reads column 2
    truth, probas = [0, 2, 2, 0], [[0.9, 0.0, 0.1], [0.2, 0.7, 0.1], [0.1, 0.0, 0.9], [0.8, 0.1, 0.1]]
    chart = plot.roc_curve(truth, probas, classes_to_plot=[2])
    assert chart.table.data == [[2, 0.0, 0.0], [2, 0.0, 0.5], [2, 1.0, 1.0]]


def test_long_curves_are_thinned_keeping_their_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plot_curves, "MAX_ROWS", 20)
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, size=400)
    chart = plot.roc_curve(truth, rng.dirichlet(np.ones(2), size=400))
    assert len(chart.table) <= 20
    for cls in (0, 1):
        points = [(f, t) for c, f, t in chart.table.data if c == cls]
        assert points[0] == (0.0, 0.0) and points[-1] == (1.0, 1.0)


def test_curves_match_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(11)
    truth = rng.integers(0, 3, size=200)
    probas = np.round(rng.dirichlet(np.ones(3), size=200), 2)  # rounded, so scores tie
    for cls in range(3):
        fpr, tpr, _ = metrics.roc_curve(truth, probas[:, cls], pos_label=cls)
        ours = plot_curves.roc_points(truth == cls, probas[:, cls])
        np.testing.assert_array_equal(ours[0], fpr)
        np.testing.assert_array_equal(ours[1], tpr)
        precision, recall, _ = metrics.precision_recall_curve(truth, probas[:, cls], pos_label=cls)
        ours = plot_curves.pr_points(truth == cls, probas[:, cls])
        np.testing.assert_array_equal(ours[0], precision)
        np.testing.assert_array_equal(ours[1], recall)
    roc_rows = plot.roc_curve(truth, probas, labels=["a", "b", "c"]).table.data
    expected = []
    for cls, name in enumerate("abc"):
        fpr, tpr, _ = metrics.roc_curve(truth, probas[:, cls], pos_label=cls)
        expected += [[name, f, t] for f, t in zip(np.round(fpr, 3).tolist(), np.round(tpr, 3).tolist(), strict=True)]
    assert roc_rows == expected
    # W&B's pr_curve on scikit-learn's curve: monotone precision, read at 21 recalls from 1 to 0
    wanted = np.linspace(0, 1, 21)[::-1]
    expected = []
    for cls in range(3):
        precision, recall, _ = metrics.precision_recall_curve(truth, probas[:, cls], pos_label=cls)
        precision = np.maximum.accumulate(precision)[::-1]
        picked = precision[np.searchsorted(recall[::-1], wanted, side="left")]
        expected += [
            [cls, p, r] for p, r in zip(np.round(picked, 3).tolist(), np.round(wanted, 3).tolist(), strict=True)
        ]
    assert plot.pr_curve(truth, probas).table.data == expected


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: plot.line(t, "nope", "loss"), r"^x: no column 'nope'; the table has \['step', 'loss'\]"),
        (lambda t: plot.line(t, "step", "loss", stroke="hue"), "^stroke: no column 'hue'"),
        (lambda t: plot.scatter(t, "step", "acc"), "^y: no column 'acc'"),
        (lambda t: plot.bar(t, "name", "loss"), "^label: no column 'name'"),
        (lambda t: plot.bar(t, "step", "size"), "^value: no column 'size'"),
        (lambda t: plot.histogram(t, "size"), "^value: no column 'size'"),
        (lambda t: plot.line(pd.DataFrame({"x": [1]}), "x", "x"), "^table: expected a th.Table, got DataFrame"),
        (lambda t: plot.line(t, "step", "loss", split_table="yes"), "^split_table"),
        (lambda t: plot.plot_table("my/spec", [[1, 2]], {"x": "a"}), "^data_table: expected a th.Table"),
        (lambda t: plot.plot_table("", t, {}), "^vega_spec_name"),
        (lambda t: plot.plot_table("my/spec", t, ["x"]), "^fields"),
        (lambda t: plot.line_series([0, 1], [[1, 2], [3, 4]], keys=["a"]), "^keys: 1 keys for 2 y series"),
        (lambda t: plot.line_series([[0, 1]] * 3, [[1, 2], [3, 4]]), "^xs: 3 x series for 2 y series"),
        (lambda t: plot.line_series([0, 1], []), "^ys"),
        (lambda t: plot.confusion_matrix([[0.2, 0.8]], [1], [1]), "^preds: give exactly one of probs"),
        (lambda t: plot.confusion_matrix(y_true=[0, 1]), "^preds: give exactly one of probs"),
        (lambda t: plot.confusion_matrix(y_true=[0, 1], preds=[0]), "^y_true: 2 true labels for 1 predictions"),
        (lambda t: plot.confusion_matrix(preds=[0, 1]), "^y_true: give one class label"),
        (lambda t: plot.confusion_matrix(y_true=[0, 3], preds=[0, 1], class_names=["a", "b"]), r"^y_true: .*\[3\]"),
        (lambda t: plot.confusion_matrix([[0.1, 0.1, 0.8]], [0], class_names=["a", "b"]), r"^probs: .*\[2\]"),
        (lambda t: plot.roc_curve([0, 1, 1], [[0.5, 0.5], [0.1, 0.9]]), "^y_probas: 2 rows .* for 3 true labels"),
        (lambda t: plot.roc_curve([0, 1]), "^y_probas: give the predicted"),
        (lambda t: plot.roc_curve([0, 1], [0.2, 0.8]), r"^y_probas: expected shape \(samples, classes\)"),
        (lambda t: plot.roc_curve([1, 1], [[0.0, 1.0], [0.1, 0.9]]), "^y_true: a curve needs at least two classes"),
        (lambda t: plot.roc_curve([0, 1, 2], [[0.5, 0.5]] * 3), "^y_probas: 2 columns for 3 classes"),
        (lambda t: plot.roc_curve([0, 1], [[0.5, np.nan]] * 2), "^y_probas: the probabilities must be finite"),
        (lambda t: plot.roc_curve([0, 1], [[0.4, 0.6]] * 2, classes_to_plot=[5]), "^classes_to_plot"),
        (lambda t: plot.roc_curve([0, 1], [[0.4, 0.6]] * 2, labels=["only"]), "^labels: no label for class 1"),
        (lambda t: plot.pr_curve(y_probas=[[0.4, 0.6]]), "^y_true: give the true class"),
        (lambda t: plot.pr_curve([0, 1], [[0.4, 0.6]] * 2, interp_size=1), "^interp_size"),
    ],
)
def test_misuse_raises_a_config_error_naming_the_argument(make: Any, message: str) -> None:
    table = th.Table(columns=["step", "loss"], data=[[0, 1.0], [1, 0.5]])
    with pytest.raises(th.ConfigError, match=message):
        make(table)
