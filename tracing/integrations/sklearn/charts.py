"""The charts of `th.sklearn` (W&B's `wandb.sklearn.plot_*`), computed with scikit-learn.

Each function returns a `CustomChart` (a `th.Table` of the chart's data and its spec, as
`th.plot.*` do), with W&B's Vega spec names and the chart kind the run page draws it as. Where W&B
refits the user's estimator (residuals, outlier candidates, elbow curve, learning curve), a clone
is fitted here: the estimator passed in is never changed.
"""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence

import numpy as np

from tracehouse._errors import ConfigError
from tracehouse.tracking.media import Table
from tracehouse.tracking.plots import CustomChart, _chart


def _array(values: Any, name: str) -> np.ndarray:
    if values is None:
        raise ConfigError(name, "is required")
    array = np.asarray(values)
    if array.size == 0:
        raise ConfigError(name, "is empty")
    return array


def _clone(estimator: Any) -> Any:
    from sklearn.base import clone

    return clone(estimator)


def _round(value: Any) -> float:
    return round(float(value), 6)


def feature_importances(
    model: Any,
    feature_names: Optional[Sequence[str]] = None,
    title: str = "Feature Importance",
    max_num_features: int = 50,
) -> CustomChart:
    """The model's `feature_importances_` (or the magnitude of `coef_`), largest first, as bars."""
    raw = getattr(model, "feature_importances_", None)
    if raw is None and getattr(model, "coef_", None) is not None:
        coef = np.abs(np.asarray(model.coef_, dtype=float))
        raw = coef.mean(axis=0) if coef.ndim > 1 else coef
    if raw is None:
        raise ConfigError("model", f"{type(model).__name__} has no feature_importances_ or coef_: fit it first")
    importances = np.asarray(raw, dtype=float).reshape(-1)
    names = list(feature_names) if feature_names is not None else _model_features(model, len(importances))
    if len(names) != len(importances):
        raise ConfigError("feature_names", f"{len(names)} names for {len(importances)} features")
    order = np.argsort(-importances, kind="stable")[:max_num_features]
    data = [[str(names[i]), _round(importances[i])] for i in order]
    table = Table(columns=["feature_names", "importances"], data=data)
    fields = {"label": "feature_names", "value": "importances"}
    return _chart("bar", "wandb/feature_importances/v1", table, fields, {"title": title}, False)


def _model_features(model: Any, count: int) -> list[str]:
    names = getattr(model, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else [f"feature_{i}" for i in range(count)]


def learning_curve(
    model: Any,
    X: Any,
    y: Any,
    cv: Any = None,
    shuffle: bool = False,
    random_state: Any = None,
    train_sizes: Any = None,
    n_jobs: Optional[int] = 1,
    scoring: Any = None,
) -> CustomChart:
    """Mean train and cross-validation scores at growing training-set sizes (sklearn's learning_curve)."""
    from sklearn.model_selection import learning_curve as sk_learning_curve

    sizes = np.linspace(0.1, 1.0, 5) if train_sizes is None else train_sizes
    counts, train, test = sk_learning_curve(_clone(model), _array(X, "X"), _array(y, "y"), cv=cv, shuffle=shuffle,
                                            random_state=random_state, train_sizes=sizes, n_jobs=n_jobs,
                                            scoring=scoring)  # fmt: skip
    data = [[int(n), "train", _round(s)] for n, s in zip(counts, train.mean(axis=1), strict=True)]
    data += [[int(n), "test", _round(s)] for n, s in zip(counts, test.mean(axis=1), strict=True)]
    table = Table(columns=["train_size", "dataset", "score"], data=data)
    fields = {"x": "train_size", "y": "score", "stroke": "dataset"}
    return _chart("line", "wandb/learning_curve/v1", table, fields, {"title": "Learning Curve"}, False)


def summary_metrics(
    model: Any, X: Any = None, y: Any = None, X_test: Any = None, y_test: Any = None, model_name: str = ""
) -> CustomChart:
    """Test-set metrics of a fitted model: accuracy, precision, recall and F1 (weighted) of a
    classifier; MAE, MSE and R² of a regressor."""
    from sklearn import metrics
    from sklearn.base import is_classifier

    features, truth = (X_test, y_test) if X_test is not None else (X, y)
    predicted = model.predict(_array(features, "X_test"))
    truth = _array(truth, "y_test")
    if is_classifier(model):
        scores = {"accuracy": metrics.accuracy_score(truth, predicted),
                  "precision": metrics.precision_score(truth, predicted, average="weighted", zero_division=0),
                  "recall": metrics.recall_score(truth, predicted, average="weighted", zero_division=0),
                  "f1": metrics.f1_score(truth, predicted, average="weighted", zero_division=0)}  # fmt: skip
    else:
        scores = {"mae": metrics.mean_absolute_error(truth, predicted),
                  "mse": metrics.mean_squared_error(truth, predicted),
                  "r2": metrics.r2_score(truth, predicted)}  # fmt: skip
    name = model_name or type(model).__name__
    table = Table(columns=["metric_name", "metric_value", "model_name"],
                  data=[[k, _round(v), name] for k, v in scores.items()])  # fmt: skip
    fields = {"label": "metric_name", "value": "metric_value"}
    return _chart("bar", "wandb/metrics/v1", table, fields, {"title": f"Summary metrics: {name}"}, False)


def class_proportions(y_train: Any, y_test: Any, labels: Optional[Sequence[Any]] = None) -> CustomChart:
    """How many examples of each class the train and test sets hold."""
    train, test = _array(y_train, "y_train").reshape(-1), _array(y_test, "y_test").reshape(-1)
    classes = sorted(set(train.tolist()) | set(test.tolist()), key=str)
    data = []
    for dataset, values in (("train", train), ("test", test)):
        for cls in classes:
            name = labels[int(cls)] if labels is not None and isinstance(cls, (int, np.integer)) else cls
            data.append([str(name), dataset, int((values == cls).sum())])
    table = Table(columns=["class", "dataset", "count"], data=data)
    fields = {"label": "class", "value": "count", "stroke": "dataset"}
    return _chart("bar", "wandb/class_proportions/v1", table, fields, {"title": "Class Proportions"}, False)


def calibration_curve(clf: Any, X: Any, y: Any, clf_name: str = "Classifier", n_bins: int = 10) -> CustomChart:
    """Fraction of positives against mean predicted probability of a fitted binary classifier on
    (X, y), with the perfectly calibrated diagonal."""
    from sklearn.calibration import calibration_curve as sk_calibration

    truth = _array(y, "y").reshape(-1)
    if len(set(truth.tolist())) != 2:
        raise ConfigError("y", "a calibration curve needs exactly two classes")
    if not hasattr(clf, "predict_proba"):
        raise ConfigError("clf", f"{type(clf).__name__} has no predict_proba")
    scores = clf.predict_proba(_array(X, "X"))[:, 1]
    positives, predicted = sk_calibration(truth == max(truth.tolist()), scores, n_bins=n_bins)
    data = [[clf_name, _round(p), _round(f)] for p, f in zip(predicted, positives, strict=True)]
    data += [["Perfectly calibrated", 0.0, 0.0], ["Perfectly calibrated", 1.0, 1.0]]
    table = Table(columns=["model", "mean_predicted_value", "fraction_of_positives"], data=data)
    fields = {"x": "mean_predicted_value", "y": "fraction_of_positives", "stroke": "model"}
    return _chart("line", "wandb/calibration/v1", table, fields, {"title": "Calibration Curve"}, False)


def residuals(regressor: Any, X: Any, y: Any, test_size: float = 0.2, random_state: int = 0) -> CustomChart:
    """Residuals (truth - prediction) against prediction, for a train / test split of (X, y) and a
    clone of `regressor` fitted on the train part."""
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(_array(X, "X"), _array(y, "y"), test_size=test_size,
                                                        random_state=random_state)  # fmt: skip
    model = _clone(regressor).fit(X_train, y_train)
    data = []
    for dataset, features, truth in (("train", X_train, y_train), ("test", X_test, y_test)):
        predicted = model.predict(features)
        data += [[_round(p), _round(t - p), dataset] for p, t in zip(predicted, truth, strict=True)]
    table = Table(columns=["prediction", "residual", "dataset"], data=data)
    fields = {"x": "prediction", "y": "residual", "stroke": "dataset"}
    return _chart("scatter", "wandb/residuals_plot/v1", table, fields, {"title": "Residuals"}, False)


def outlier_candidates(regressor: Any, X: Any, y: Any) -> CustomChart:
    """Cook's distance of each example under a least-squares fit of (X, y) (W&B's outlier
    candidates); `influence_threshold` is 4/n, the usual cut-off."""
    features, truth = np.asarray(_array(X, "X"), dtype=float), np.asarray(_array(y, "y"), dtype=float).reshape(-1)
    if features.ndim == 1:
        features = features.reshape(-1, 1)
    design = np.column_stack([np.ones(len(features)), features])
    n, p = design.shape
    if n <= p:
        raise ConfigError("X", f"Cook's distance needs more examples ({n}) than parameters ({p})")
    model = _clone(regressor).fit(features, truth)
    residual = truth - model.predict(features)
    leverage = np.einsum("ij,jk,ik->i", design, np.linalg.pinv(design.T @ design), design)
    mse = float(residual @ residual) / (n - p)
    distance = residual**2 / (p * max(mse, 1e-300)) * leverage / np.maximum((1 - leverage) ** 2, 1e-12)
    threshold = 4.0 / n
    data = [[i, _round(d), _round(threshold)] for i, d in enumerate(distance)]
    table = Table(columns=["instance", "distance", "influence_threshold"], data=data)
    fields = {"label": "instance", "value": "distance"}
    return _chart("bar", "wandb/outliers/v1", table, fields, {"title": "Cook's Distance Outlier Detection"}, False)


def elbow_curve(
    clusterer: Any, X: Any, cluster_ranges: Any = None, n_jobs: Optional[int] = 1, show_cluster_time: bool = True
) -> CustomChart:
    """The sum of squared distances (`-score`) of a clone of `clusterer` fitted with each number of
    clusters in `cluster_ranges` (default 1, 3, 5, 7, 9), and the time each fit took."""
    features = _array(X, "X")
    if not hasattr(clusterer, "n_clusters") or not hasattr(clusterer, "score"):
        raise ConfigError("clusterer", f"{type(clusterer).__name__} has no n_clusters / score (KMeans has)")
    ranges = list(range(1, 10, 2)) if cluster_ranges is None else [int(k) for k in cluster_ranges]
    data = []
    for k in ranges:
        model = _clone(clusterer).set_params(n_clusters=k)
        started = time.perf_counter()
        model.fit(features)
        elapsed = time.perf_counter() - started
        data.append([k, _round(-model.score(features)), _round(elapsed) if show_cluster_time else None])
    table = Table(columns=["cluster_ranges", "errors", "clustering_time"], data=data)
    fields = {"x": "cluster_ranges", "y": "errors"}
    return _chart("line", "wandb/elbow/v1", table, fields, {"title": "Elbow Plot"}, False)


def silhouette(
    clusterer: Any,
    X: Any,
    cluster_labels: Any = None,
    labels: Optional[Sequence[str]] = None,
    metric: str = "euclidean",
    kmeans: bool = True,
) -> CustomChart:
    """Each example's silhouette value, grouped by cluster (largest first within a cluster), with the
    average; the clusters are `cluster_labels`, or `clusterer.fit_predict(X)` on a clone with kmeans."""
    from sklearn.metrics import silhouette_samples

    features = _array(X, "X")
    assigned = _clone(clusterer).fit_predict(features) if kmeans or cluster_labels is None else cluster_labels
    assigned = np.asarray(assigned).reshape(-1)
    if len(set(assigned.tolist())) < 2:
        raise ConfigError("cluster_labels", "a silhouette plot needs at least two clusters")
    values = silhouette_samples(features, assigned, metric=metric)
    average = _round(values.mean())
    data: list[list[Any]] = []
    for cluster in sorted(set(assigned.tolist())):
        name = labels[cluster] if labels is not None else cluster
        members = np.sort(values[assigned == cluster])[::-1]
        data += [[len(data), _round(v), str(name), average] for v in members]
    table = Table(columns=["index", "silhouette_value", "cluster", "average"], data=data)
    fields = {"label": "index", "value": "silhouette_value", "stroke": "cluster"}
    return _chart("bar", "wandb/silhouette_plot/v1", table, fields, {"title": "Silhouette Plot"}, False)


__all__ = [
    "calibration_curve", "class_proportions", "elbow_curve", "feature_importances", "learning_curve",
    "outlier_candidates", "residuals", "silhouette", "summary_metrics",
]  # fmt: skip
