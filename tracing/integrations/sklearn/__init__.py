"""scikit-learn plots for the active run, W&B's `wandb.sklearn.plot_*` under the same names:
`th.sklearn.plot_classifier(model, X_train, X_test, y_train, y_test, y_pred, y_probas, labels)`.

Each `plot_*` computes its chart with scikit-learn and logs it to the active run under W&B's key
(`roc`, `pr`, `confusion_matrix`, `feature_importances`, `learning_curve`, `summary_metrics`,
`class_proportions`, `calibration_curve`, `residuals`, `outlier_candidates`, `elbow_curve`,
`silhouette_plot`): a table in `run_tables` and a chart spec the run page draws (see
tracehouse.tracking.plots). Without an active run they raise ConfigError. Estimators that W&B
refits are cloned first, so the model passed in is never changed.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from tracehouse._errors import ConfigError
from tracehouse.integrations.sklearn import charts
from tracehouse.tracking.media import Table
from tracehouse.tracking.plots import CustomChart, _chart


def _log(key: str, chart: CustomChart) -> CustomChart:
    _log_all({key: chart})
    return chart


def _log_all(found: dict[str, CustomChart]) -> None:
    from tracehouse.tracking.run import current_run

    run = current_run()
    if run is None:
        raise ConfigError("run", f"no active run to log {', '.join(found)} to: call th.init() first")
    run.log(found)


def plot_feature_importances(
    model: Any = None,
    feature_names: Optional[Sequence[str]] = None,
    title: str = "Feature Importance",
    max_num_features: int = 50,
) -> CustomChart:
    """Bars of a fitted model's feature importances (or coefficient magnitudes), largest first."""
    return _log("feature_importances", charts.feature_importances(model, feature_names, title, max_num_features))


def plot_learning_curve(
    model: Any = None,
    X: Any = None,
    y: Any = None,
    cv: Any = None,
    shuffle: bool = False,
    random_state: Any = None,
    train_sizes: Any = None,
    n_jobs: Optional[int] = 1,
    scoring: Any = None,
) -> CustomChart:
    """Train and cross-validation scores against the training-set size."""
    chart = charts.learning_curve(model, X, y, cv, shuffle, random_state, train_sizes, n_jobs, scoring)
    return _log("learning_curve", chart)


def plot_summary_metrics(
    model: Any = None, X: Any = None, y: Any = None, X_test: Any = None, y_test: Any = None
) -> CustomChart:
    """A fitted model's test metrics (classifier: accuracy, precision, recall, F1; regressor: MAE, MSE, R²)."""
    return _log("summary_metrics", charts.summary_metrics(model, X, y, X_test, y_test))


def plot_class_proportions(
    y_train: Any = None, y_test: Any = None, labels: Optional[Sequence[Any]] = None
) -> CustomChart:
    """How many examples of each class the train and test sets hold."""
    return _log("class_proportions", charts.class_proportions(y_train, y_test, labels))


def plot_calibration_curve(clf: Any = None, X: Any = None, y: Any = None, clf_name: str = "Classifier") -> CustomChart:
    """A fitted binary classifier's calibration curve on (X, y)."""
    return _log("calibration_curve", charts.calibration_curve(clf, X, y, clf_name))


def plot_residuals(regressor: Any = None, X: Any = None, y: Any = None) -> CustomChart:
    """Residuals against predictions on a train / test split (a clone of the regressor is fitted)."""
    return _log("residuals", charts.residuals(regressor, X, y))


def plot_outlier_candidates(regressor: Any = None, X: Any = None, y: Any = None) -> CustomChart:
    """Cook's distance of each example (a clone of the regressor is fitted on X, y)."""
    return _log("outlier_candidates", charts.outlier_candidates(regressor, X, y))


def plot_elbow_curve(
    clusterer: Any = None,
    X: Any = None,
    cluster_ranges: Any = None,
    n_jobs: Optional[int] = 1,
    show_cluster_time: bool = True,
) -> CustomChart:
    """The clustering error for each number of clusters (clones of the clusterer are fitted)."""
    return _log("elbow_curve", charts.elbow_curve(clusterer, X, cluster_ranges, n_jobs, show_cluster_time))


def plot_silhouette(
    clusterer: Any = None,
    X: Any = None,
    cluster_labels: Any = None,
    labels: Optional[Sequence[str]] = None,
    metric: str = "euclidean",
    kmeans: bool = True,
) -> CustomChart:
    """Each example's silhouette value, by cluster."""
    return _log("silhouette_plot", charts.silhouette(clusterer, X, cluster_labels, labels, metric, kmeans))


def plot_roc(
    y_true: Any = None,
    y_probas: Any = None,
    labels: Optional[list[str]] = None,
    plot_micro: bool = True,
    plot_macro: bool = True,
    classes_to_plot: Optional[list[Any]] = None,
) -> CustomChart:
    """One-vs-rest ROC curves (th.plot.roc_curve), logged as `roc`."""
    from tracehouse.tracking.plots import roc_curve

    return _log("roc", roc_curve(y_true, y_probas, labels, classes_to_plot))


def plot_precision_recall(
    y_true: Any = None,
    y_probas: Any = None,
    labels: Optional[list[str]] = None,
    plot_micro: bool = True,
    classes_to_plot: Optional[list[Any]] = None,
) -> CustomChart:
    """One-vs-rest precision-recall curves (th.plot.pr_curve), logged as `pr`."""
    from tracehouse.tracking.plots import pr_curve

    return _log("pr", pr_curve(y_true, y_probas, labels, classes_to_plot))


def plot_confusion_matrix(
    y_true: Any = None,
    y_pred: Any = None,
    labels: Optional[Sequence[Any]] = None,
    true_labels: Optional[Sequence[Any]] = None,
    pred_labels: Optional[Sequence[Any]] = None,
    normalize: bool = False,
) -> CustomChart:
    """scikit-learn's confusion matrix (`normalize=True`: each actual class's row sums to 1), one row
    per (actual, predicted) pair; `true_labels` / `pred_labels` keep only those rows / columns."""
    return _log("confusion_matrix", _confusion_matrix(y_true, y_pred, labels, true_labels, pred_labels, normalize))


def _confusion_matrix(
    y_true: Any,
    y_pred: Any,
    labels: Optional[Sequence[Any]] = None,
    true_labels: Optional[Sequence[Any]] = None,
    pred_labels: Optional[Sequence[Any]] = None,
    normalize: bool = False,
) -> CustomChart:
    from sklearn.metrics import confusion_matrix

    truth, predicted = charts._array(y_true, "y_true").reshape(-1), charts._array(y_pred, "y_pred").reshape(-1)
    if len(truth) != len(predicted):
        raise ConfigError("y_pred", f"{len(predicted)} predictions for {len(truth)} labels")
    seen = sorted(set(truth.tolist()) | set(predicted.tolist()), key=str)
    integer_labels = labels is not None and all(isinstance(c, (int, np.integer)) for c in seen)
    classes = seen if labels is None or integer_labels else list(labels)
    matrix = confusion_matrix(truth, predicted, labels=classes, normalize="true" if normalize else None)
    names = [labels[c] if integer_labels and labels is not None and 0 <= c < len(labels) else c for c in classes]
    keep_true = set(true_labels) if true_labels is not None else set(names)
    keep_pred = set(pred_labels) if pred_labels is not None else set(names)
    data = [[str(actual), str(guess), round(float(matrix[i, j]), 6) if normalize else int(matrix[i, j])]
            for i, actual in enumerate(names) if actual in keep_true
            for j, guess in enumerate(names) if guess in keep_pred]  # fmt: skip
    table = Table(columns=["Actual", "Predicted", "nPredictions"], data=data)
    fields = {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"}
    return _chart("confusion_matrix", "wandb/confusion_matrix/v1", table, fields, {"title": "Confusion Matrix"}, False)


def plot_classifier(
    model: Any,
    X_train: Any,
    X_test: Any,
    y_train: Any,
    y_test: Any,
    y_pred: Any,
    y_probas: Any,
    labels: Optional[list[str]] = None,
    is_binary: bool = False,
    model_name: str = "Classifier",
    feature_names: Optional[Sequence[str]] = None,
    log_learning_curve: bool = False,
) -> None:
    """Every classifier chart W&B's `plot_classifier` logs, on one step: feature importances (when the
    model has them), learning curve (`log_learning_curve=True`), confusion matrix, summary metrics,
    class proportions, calibration curve (binary), ROC and precision-recall."""
    from tracehouse.tracking.plots import pr_curve, roc_curve

    found: dict[str, CustomChart] = {}
    if hasattr(model, "feature_importances_") or hasattr(model, "coef_"):
        found["feature_importances"] = charts.feature_importances(model, feature_names)
    if log_learning_curve:
        found["learning_curve"] = charts.learning_curve(model, X_train, y_train)
    found["confusion_matrix"] = _confusion_matrix(y_test, y_pred, labels)
    found["summary_metrics"] = charts.summary_metrics(model, X_test=X_test, y_test=y_test, model_name=model_name)
    found["class_proportions"] = charts.class_proportions(y_train, y_test, labels)
    if is_binary:
        found["calibration_curve"] = charts.calibration_curve(model, X_test, y_test, model_name)
    found["roc"] = roc_curve(y_test, y_probas, labels)
    found["pr"] = pr_curve(y_test, y_probas, labels)
    _log_all(found)


def plot_regressor(
    model: Any, X_train: Any, X_test: Any, y_train: Any, y_test: Any, model_name: str = "Regressor"
) -> None:
    """Every regressor chart W&B's `plot_regressor` logs, on one step: summary metrics, learning curve,
    outlier candidates and residuals."""
    _log_all({
        "summary_metrics": charts.summary_metrics(model, X_test=X_test, y_test=y_test, model_name=model_name),
        "learning_curve": charts.learning_curve(model, X_train, y_train),
        "outlier_candidates": charts.outlier_candidates(model, X_train, y_train),
        "residuals": charts.residuals(model, X_train, y_train),
    })  # fmt: skip


def plot_clusterer(
    model: Any, X_train: Any, cluster_labels: Any, labels: Optional[Sequence[str]] = None, model_name: str = "Clusterer"
) -> None:
    """W&B's `plot_clusterer`, on one step: the elbow curve and the silhouette plot of `cluster_labels`."""
    _log_all({
        "elbow_curve": charts.elbow_curve(model, X_train),
        "silhouette_plot": charts.silhouette(model, X_train, cluster_labels, labels, kmeans=False),
    })  # fmt: skip


__all__ = [
    "plot_calibration_curve", "plot_class_proportions", "plot_classifier", "plot_clusterer", "plot_confusion_matrix",
    "plot_elbow_curve", "plot_feature_importances", "plot_learning_curve", "plot_outlier_candidates",
    "plot_precision_recall", "plot_regressor", "plot_residuals", "plot_roc", "plot_silhouette",
    "plot_summary_metrics",
]  # fmt: skip
