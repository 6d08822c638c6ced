"""W&B's `wandb.sklearn.plot_*` as `th.sklearn`, with real scikit-learn on tiny random data: each
chart's rows land in run_tables and its spec in run_values, with the numbers scikit-learn gives."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn import metrics
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs, make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split

import tracehouse as th


def _rows(run_id: str, key: str) -> list[dict[str, Any]]:
    found = th.query(
        "SELECT row FROM run_tables WHERE run_id = {r:String} AND key = {k:String} ORDER BY row_index",
        {"r": run_id, "k": key},
    )
    return [json.loads(row) for row in found["row"]]


def _specs(run_id: str) -> dict[str, tuple[int, dict[str, Any]]]:
    found = th.query("SELECT key, step, value FROM run_values WHERE run_id = {r:String}", {"r": run_id})
    return {row.key: (int(row.step), json.loads(row.value)["chart"]) for row in found.itertuples()}


def _classification() -> tuple[Any, ...]:
    X, y = make_classification(n_samples=120, n_features=5, n_informative=3, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X_train, y_train)
    return model, X_train, X_test, y_train, y_test


def test_plot_classifier_logs_every_chart_on_one_step_with_sklearns_numbers(th_env: th.Settings) -> None:
    model, X_train, X_test, y_train, y_test = _classification()
    y_pred, y_probas = model.predict(X_test), model.predict_proba(X_test)
    with th.init(project="sk") as run:
        th.sklearn.plot_classifier(model, X_train, X_test, y_train, y_test, y_pred, y_probas, ["no", "yes"],
                                   is_binary=True, model_name="RF", feature_names=list("abcde"),
                                   log_learning_curve=True)  # fmt: skip
    th.sync()
    specs = _specs(run.id)
    assert set(specs) == {"feature_importances", "learning_curve", "confusion_matrix", "summary_metrics",
                          "class_proportions", "calibration_curve", "roc", "pr"}  # fmt: skip
    assert {step for step, _ in specs.values()} == {0}
    assert specs["feature_importances"][1]["vega_spec"] == "wandb/feature_importances/v1"

    importances = _rows(run.id, "feature_importances")
    order = np.argsort(-model.feature_importances_, kind="stable")
    assert [r["feature_names"] for r in importances] == [list("abcde")[i] for i in order]
    assert importances[0]["importances"] == pytest.approx(model.feature_importances_.max(), abs=1e-6)

    summary = {r["metric_name"]: r["metric_value"] for r in _rows(run.id, "summary_metrics")}
    assert summary["accuracy"] == pytest.approx(metrics.accuracy_score(y_test, y_pred), abs=1e-6)
    assert summary["f1"] == pytest.approx(metrics.f1_score(y_test, y_pred, average="weighted"), abs=1e-6)

    matrix = metrics.confusion_matrix(y_test, y_pred)
    cells = {(r["Actual"], r["Predicted"]): r["nPredictions"] for r in _rows(run.id, "confusion_matrix")}
    assert cells == {("no", "no"): matrix[0, 0], ("no", "yes"): matrix[0, 1], ("yes", "no"): matrix[1, 0],
                     ("yes", "yes"): matrix[1, 1]}  # fmt: skip

    proportions = {(r["class"], r["dataset"]): r["count"] for r in _rows(run.id, "class_proportions")}
    assert proportions[("yes", "train")] == int((y_train == 1).sum())
    assert proportions[("no", "test")] == int((y_test == 0).sum())

    curve = {r["dataset"] for r in _rows(run.id, "learning_curve")}
    assert curve == {"train", "test"}
    calibration = [r for r in _rows(run.id, "calibration_curve") if r["model"] == "RF"]
    assert calibration and all(0 <= r["fraction_of_positives"] <= 1 for r in calibration)
    assert {r["class"] for r in _rows(run.id, "roc")} == {"no", "yes"}


def test_plot_regressor_and_clusterer_clone_what_they_fit(th_env: th.Settings) -> None:
    X, y = make_regression(n_samples=60, n_features=3, noise=5.0, random_state=1)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=1)
    regressor = LinearRegression().fit(X_train, y_train)
    coefficients = regressor.coef_.copy()
    blobs, _ = make_blobs(n_samples=60, centers=3, random_state=2)
    clusterer = KMeans(n_clusters=3, n_init=3, random_state=0).fit(blobs)
    with th.init(project="sk-reg") as run:
        th.sklearn.plot_regressor(regressor, X_train, X_test, y_train, y_test)
        th.sklearn.plot_clusterer(clusterer, blobs, clusterer.labels_)
    th.sync()
    assert np.array_equal(regressor.coef_, coefficients) and clusterer.n_clusters == 3  # never refitted
    specs = _specs(run.id)
    assert {k: s for k, (s, _) in specs.items()} == {
        "summary_metrics": 0, "learning_curve": 0, "outlier_candidates": 0, "residuals": 0,
        "elbow_curve": 1, "silhouette_plot": 1,
    }  # fmt: skip
    summary = {r["metric_name"]: r["metric_value"] for r in _rows(run.id, "summary_metrics")}
    assert summary["r2"] == pytest.approx(metrics.r2_score(y_test, regressor.predict(X_test)), abs=1e-6)
    residuals = _rows(run.id, "residuals")
    assert len(residuals) == len(X_train) and {r["dataset"] for r in residuals} == {"train", "test"}
    outliers = _rows(run.id, "outlier_candidates")
    assert len(outliers) == len(X_train)
    assert outliers[0]["influence_threshold"] == pytest.approx(4 / len(X_train), abs=1e-6)
    fitted = LinearRegression().fit(X_train, y_train).predict(X_train)
    p, n = X_train.shape[1] + 1, len(X_train)
    mse = float(((y_train - fitted) ** 2).sum()) / (n - p)
    for i in range(3):  # Cook's distance by its definition: how far every prediction moves without example i
        keep = np.arange(n) != i
        without = LinearRegression().fit(X_train[keep], y_train[keep]).predict(X_train)
        assert outliers[i]["distance"] == pytest.approx(((fitted - without) ** 2).sum() / (p * mse), abs=2e-6)
    elbow = _rows(run.id, "elbow_curve")
    assert [r["cluster_ranges"] for r in elbow] == [1, 3, 5, 7, 9]
    errors = [r["errors"] for r in elbow]
    assert errors == sorted(errors, reverse=True)  # more clusters, less error
    silhouette = _rows(run.id, "silhouette_plot")
    average = metrics.silhouette_score(blobs, clusterer.labels_)
    assert len(silhouette) == 60 and silhouette[0]["average"] == pytest.approx(average, abs=1e-6)


def test_single_plots_and_their_errors(th_env: th.Settings) -> None:
    X, y = make_classification(n_samples=80, n_features=4, random_state=3)
    linear = LogisticRegression().fit(X, y)
    with pytest.raises(th.ConfigError, match="no active run"):
        th.sklearn.plot_feature_importances(linear)
    with th.init(project="sk-one") as run:
        th.sklearn.plot_feature_importances(linear, title="Coefficients")
        th.sklearn.plot_confusion_matrix(y, linear.predict(X), normalize=True)
        with pytest.raises(th.ConfigError, match="no feature_importances_ or coef_"):
            th.sklearn.plot_feature_importances(KMeans(n_clusters=2))
        with pytest.raises(th.ConfigError, match="two classes"):
            th.sklearn.plot_calibration_curve(linear, X, np.zeros(len(X)))
        with pytest.raises(th.ConfigError, match="3 predictions for 80 labels"):
            th.sklearn.plot_confusion_matrix(y, [0, 1, 0])
    th.sync()
    importances = _rows(run.id, "feature_importances")
    assert importances[0]["feature_names"] == f"feature_{int(np.argmax(np.abs(linear.coef_[0])))}"
    normalized = _rows(run.id, "confusion_matrix")
    for actual in ("0", "1"):
        assert sum(r["nPredictions"] for r in normalized if r["Actual"] == actual) == pytest.approx(1.0)
    assert th.sklearn is __import__("tracehouse.wandb").wandb.sklearn
