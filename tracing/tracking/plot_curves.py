"""The numbers behind `th.plot.roc_curve`, `pr_curve` and `confusion_matrix`, computed with numpy.

The curves are scikit-learn's (`sklearn.metrics.roc_curve` with its default `drop_intermediate`,
`precision_recall_curve`), without needing scikit-learn; the per-class tables are W&B's: one row
per point and class, values rounded to 3 decimals, precision made monotone and read at
`interp_size` evenly spaced recalls.
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

import numpy as np

from tracehouse._errors import ConfigError

logger = logging.getLogger("tracehouse")

MAX_ROWS = 10_000  # W&B's Table.MAX_ROWS: a curve table keeps at most this many points


def _binary_curve(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positives counted at each distinct score, highest score first."""
    order = np.argsort(score, kind="mergesort")[::-1]
    score, positive = score[order], positive[order]
    ends = np.r_[np.where(np.diff(score))[0], positive.size - 1]
    tps = np.cumsum(positive, dtype=np.float64)[ends]
    return 1 + ends - tps, tps


def roc_points(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates), as `sklearn.metrics.roc_curve` gives them."""
    fps, tps = _binary_curve(positive, score)
    if len(fps) > 2:  # drop points on a straight line between their neighbours
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps = fps[keep], tps[keep]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    return fps / fps[-1], tps / tps[-1]


def pr_points(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(precisions, recalls), as `sklearn.metrics.precision_recall_curve` gives them (recall falling)."""
    fps, tps = _binary_curve(positive, score)
    predicted = tps + fps
    precision = np.divide(tps, predicted, out=np.zeros_like(tps), where=predicted != 0)
    recall = tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0]


def interpolated_precision(positive: np.ndarray, score: np.ndarray, interp_size: int) -> tuple[np.ndarray, np.ndarray]:
    """W&B's PR points: the best precision at a recall at least each of `interp_size` recalls from 1 to 0."""
    precision, recall = pr_points(positive, score)
    precision = np.maximum.accumulate(precision)[::-1]  # from the highest recall down: the best so far
    recall = recall[::-1]
    wanted = np.linspace(0, 1, interp_size)[::-1]
    return precision[np.searchsorted(recall, wanted, side="left")], wanted


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) and getattr(value, "ndim", 1) == 0 else value


def _classes(
    y_true: Any, y_probas: Any, labels: Optional[Sequence[Any]], classes_to_plot: Optional[Sequence[Any]]
) -> tuple[np.ndarray, np.ndarray, list[tuple[Any, int, Any]]]:
    """The checked labels and scores, and (class, its score column, its name) for each class to plot."""
    if y_true is None:
        raise ConfigError("y_true", "give the true class of each sample")
    if y_probas is None:
        raise ConfigError("y_probas", "give the predicted probabilities, one column per class")
    truth, probas = np.asarray(y_true), np.asarray(y_probas, dtype=np.float64)
    if truth.ndim != 1:
        raise ConfigError("y_true", f"expected one label per sample, got shape {truth.shape}")
    if probas.ndim != 2:
        raise ConfigError("y_probas", f"expected shape (samples, classes), got {probas.shape}")
    if len(truth) != len(probas):
        raise ConfigError("y_probas", f"{len(probas)} rows of probabilities for {len(truth)} true labels")
    if not np.isfinite(probas).all():
        raise ConfigError("y_probas", "the probabilities must be finite numbers")
    classes = np.unique(truth)
    if len(classes) < 2:
        raise ConfigError("y_true", f"a curve needs at least two classes, got {classes.tolist()}")
    if len(classes) > probas.shape[1]:
        raise ConfigError("y_probas", f"{probas.shape[1]} columns for {len(classes)} classes {classes.tolist()}")
    # an integer class is its column (so a class missing from y_true shifts nothing); else its rank
    by_value = np.issubdtype(classes.dtype, np.integer) and classes.min() >= 0 and classes.max() < probas.shape[1]
    plotted = []
    for rank, cls in enumerate(classes):
        if classes_to_plot is not None and not np.isin(cls, np.asarray(classes_to_plot)):
            continue
        name = _plain(cls)
        if labels is not None and np.issubdtype(classes.dtype, np.integer):
            if not 0 <= int(cls) < len(labels):
                raise ConfigError("labels", f"no label for class {int(cls)}; {len(labels)} labels given")
            name = labels[int(cls)]
        plotted.append((cls, int(cls) if by_value else rank, name))
    if not plotted:
        raise ConfigError("classes_to_plot", f"none of {list(classes_to_plot or [])} is a class of y_true")
    return truth, probas, plotted


def _thin(per_class: list[list[list[Any]]]) -> list[list[Any]]:
    """All rows, or evenly spaced rows of each class (first and last kept) when they pass MAX_ROWS."""
    total = sum(len(rows) for rows in per_class)
    if total <= MAX_ROWS:
        return [row for rows in per_class for row in rows]
    logger.warning("tracehouse: a curve of %d points keeps %d of them (W&B's table limit)", total, MAX_ROWS)
    budget = max(2, MAX_ROWS // len(per_class))
    kept: list[list[Any]] = []
    for rows in per_class:
        picks = np.unique(np.linspace(0, len(rows) - 1, min(budget, len(rows))).round().astype(int))
        kept.extend(rows[i] for i in picks)
    return kept


def roc_rows(y_true: Any, y_probas: Any, labels: Any, classes_to_plot: Any) -> list[list[Any]]:
    """Rows of (class, fpr, tpr), one per point of each class's one-vs-rest ROC curve."""
    truth, probas, plotted = _classes(y_true, y_probas, labels, classes_to_plot)
    per_class = []
    for cls, column, name in plotted:
        fpr, tpr = roc_points(truth == cls, probas[:, column])
        per_class.append(
            [[name, f, t] for f, t in zip(np.round(fpr, 3).tolist(), np.round(tpr, 3).tolist(), strict=True)]
        )
    return _thin(per_class)


def pr_rows(y_true: Any, y_probas: Any, labels: Any, classes_to_plot: Any, interp_size: int) -> list[list[Any]]:
    """Rows of (class, precision, recall): `interp_size` points of each class's one-vs-rest PR curve."""
    if not isinstance(interp_size, int) or isinstance(interp_size, bool) or interp_size < 2:
        raise ConfigError("interp_size", f"expected an integer of at least 2, got {interp_size!r}")
    truth, probas, plotted = _classes(y_true, y_probas, labels, classes_to_plot)
    per_class = []
    for cls, column, name in plotted:
        precision, recall = interpolated_precision(truth == cls, probas[:, column], interp_size)
        rounded = zip(np.round(precision, 3).tolist(), np.round(recall, 3).tolist(), strict=True)
        per_class.append([[name, p, r] for p, r in rounded])
    return _thin(per_class)


def _labels(values: Any, name: str) -> list[Any]:
    if values is None:
        raise ConfigError(name, "give one class label per sample")
    array = np.asarray(values)
    if array.ndim != 1:
        raise ConfigError(name, f"expected one class label per sample, got shape {array.shape}")
    return [_plain(v) for v in array]


def confusion_rows(probs: Any, y_true: Any, preds: Any, class_names: Optional[Sequence[str]]) -> list[list[Any]]:
    """W&B's confusion matrix as rows of (Actual, Predicted, nPredictions), every pair of classes."""
    if (probs is None) == (preds is None):
        raise ConfigError("preds", "give exactly one of probs (per-class probabilities) and preds (labels)")
    if probs is not None:
        scores = np.asarray(probs, dtype=np.float64)
        if scores.ndim != 2:
            raise ConfigError("probs", f"expected shape (samples, classes), got {scores.shape}")
        predicted = [int(i) for i in np.argmax(scores, axis=1)]
    else:
        predicted = _labels(preds, "preds")
    actual = _labels(y_true, "y_true")
    if len(predicted) != len(actual):
        raise ConfigError("y_true", f"{len(actual)} true labels for {len(predicted)} predictions")
    if class_names is not None:
        names = list(class_names)
        index = {i: i for i in range(len(names))}
        for argument, values in (("probs" if probs is not None else "preds", predicted), ("y_true", actual)):
            stray = sorted({v for v in values if v not in index}, key=repr)
            if stray:
                raise ConfigError(argument, f"with class_names, labels are indices 0..{len(names) - 1}; got {stray}")
    else:
        try:
            ordered = sorted(set(predicted) | set(actual))
        except TypeError as error:
            raise ConfigError("y_true", f"labels must be comparable to each other: {error}") from None
        index = {value: i for i, value in enumerate(ordered)}
        names = [f"Class_{i + 1}" for i in range(len(ordered))]
    counts = np.zeros((len(names), len(names)), dtype=np.int64)
    for truth, guess in zip(actual, predicted, strict=True):
        counts[index[truth], index[guess]] += 1
    return [[names[i], names[j], int(counts[i, j])] for i in range(len(names)) for j in range(len(names))]
