"""Charts to log (W&B's `wandb.plot.*` and `wandb.plot_table`): `run.log({"roc": th.plot.roc_curve(...)})`.

Each function returns a `CustomChart`: a `th.Table` of the chart's data and a spec saying how to
draw it. Logged, it is a table value with a `chart` key, so its rows land in `run_tables` (one JSON
object per row) and its `run_values` row (type `table`) keeps the columns, the row count and the
spec: `{"kind", "vega_spec", "fields", "title", "string_fields", "split_table"}`. `kind` is one of
line, scatter, bar, histogram, line_series, confusion_matrix, roc, pr, or custom (`plot_table`);
`vega_spec` is W&B's preset name for the built-in kinds and the name given to `plot_table`.

    SELECT JSONExtractFloat(row, 'fpr') AS fpr, JSONExtractFloat(row, 'tpr') AS tpr
    FROM run_tables WHERE key = 'roc' AND JSONExtractString(row, 'class') = 'cat'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

from tracehouse._errors import ConfigError
from tracehouse.tracking.media import PutBytes, Table

__all__ = [
    "CustomChart",
    "bar",
    "confusion_matrix",
    "histogram",
    "line",
    "line_series",
    "plot_table",
    "pr_curve",
    "roc_curve",
    "scatter",
]


@dataclass
class ChartSpec:
    """How to draw a chart: its kind, W&B's Vega spec name, the table columns of each field, strings."""

    kind: str
    spec_name: str
    fields: dict[str, Any]
    string_fields: dict[str, Any] = field(default_factory=dict)
    split_table: bool = False

    @property
    def title(self) -> str:
        return str(self.string_fields.get("title") or "")

    def to_dict(self) -> dict[str, Any]:
        """The stored form (the `chart` key of the logged value)."""
        return {
            "kind": self.kind, "vega_spec": self.spec_name, "fields": dict(self.fields), "title": self.title,
            "string_fields": dict(self.string_fields), "split_table": self.split_table,
        }  # fmt: skip


class CustomChart:
    """A chart to log (W&B's `CustomChart`): `table` holds its data, `spec` how to draw it."""

    def __init__(self, table: Table, spec: ChartSpec) -> None:
        self.table = table
        self.spec = spec

    def __repr__(self) -> str:
        return f"CustomChart(kind={self.spec.kind!r}, vega_spec={self.spec.spec_name!r}, rows={len(self.table)})"

    def _to_value(self, put: PutBytes) -> dict[str, Any]:
        return {**self.table._to_value(put), "chart": self.spec.to_dict()}


def _chart(kind: str, spec_name: str, table: Table, fields: dict[str, Any], strings: dict[str, Any],
           split_table: bool) -> CustomChart:  # fmt: skip
    if not isinstance(split_table, bool):
        raise ConfigError("split_table", f"expected True or False, got {split_table!r}")
    return CustomChart(table, ChartSpec(kind, spec_name, fields, strings, split_table))


def _check_table(table: Any, argument: str = "table") -> Table:
    if not isinstance(table, Table):
        raise ConfigError(argument, f"expected a th.Table, got {type(table).__name__}")
    return table


def _columns(table: Any, **named: Optional[str]) -> Table:
    """`table`, after checking that each named argument (None: not given) names one of its columns."""
    checked = _check_table(table)
    for argument, column in named.items():
        if column is not None and column not in checked.columns:
            raise ConfigError(argument, f"no column {column!r}; the table has {checked.columns}")
    return checked


def plot_table(
    vega_spec_name: str,
    data_table: Table,
    fields: dict[str, Any],
    string_fields: Optional[dict[str, Any]] = None,
    split_table: bool = False,
) -> CustomChart:
    """A chart of `data_table` drawn by the Vega spec `vega_spec_name` (W&B's `wandb.plot_table`).

    `fields` maps the spec's fields to table columns, `string_fields` gives its string constants
    (`{"title": ...}`); kind `custom`.
    """
    if not isinstance(vega_spec_name, str) or not vega_spec_name:
        raise ConfigError("vega_spec_name", f"expected the name of a Vega spec, got {vega_spec_name!r}")
    _check_table(data_table, "data_table")
    if not isinstance(fields, dict) or not all(isinstance(k, str) for k in fields):
        raise ConfigError("fields", f"expected a dict from spec field names to columns, got {fields!r}")
    if string_fields is not None and not isinstance(string_fields, dict):
        raise ConfigError("string_fields", f"expected a dict of strings, got {string_fields!r}")
    return _chart("custom", vega_spec_name, data_table, dict(fields), dict(string_fields or {}), split_table)


def line(
    table: Table, x: str, y: str, stroke: Optional[str] = None, title: str = "", split_table: bool = False
) -> CustomChart:
    """A line chart of column `y` against column `x`, one line per value of column `stroke`."""
    checked = _columns(table, x=x, y=y, stroke=stroke)
    fields = {"x": x, "y": y, "stroke": stroke}
    return _chart("line", "wandb/line/v0", checked, fields, {"title": title}, split_table)


def scatter(table: Table, x: str, y: str, title: str = "", split_table: bool = False) -> CustomChart:
    """A scatter plot of column `y` against column `x`."""
    checked = _columns(table, x=x, y=y)
    return _chart("scatter", "wandb/scatter/v0", checked, {"x": x, "y": y}, {"title": title}, split_table)


def bar(table: Table, label: str, value: str, title: str = "", split_table: bool = False) -> CustomChart:
    """A bar per row: its name from column `label`, its length from column `value`."""
    checked = _columns(table, label=label, value=value)
    fields = {"label": label, "value": value}
    return _chart("bar", "wandb/bar/v0", checked, fields, {"title": title}, split_table)


def histogram(table: Table, value: str, title: str = "", split_table: bool = False) -> CustomChart:
    """A histogram of the values of column `value` (the UI bins them)."""
    checked = _columns(table, value=value)
    return _chart("histogram", "wandb/histogram/v0", checked, {"value": value}, {"title": title}, split_table)


def _series(values: Any, argument: str) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ConfigError(argument, f"expected a sequence, got {type(values).__name__}")
    return list(values)


def line_series(
    xs: Any,
    ys: Iterable[Iterable[Any]],
    keys: Optional[Iterable[str]] = None,
    title: str = "",
    xname: str = "x",
    split_table: bool = False,
) -> CustomChart:
    """Several lines on one chart: `ys[i]` against `xs` (one x sequence for all) or `xs[i]`.

    Lines are named by `keys` (default `line_0`, `line_1`, ...); the table has W&B's columns
    step, lineKey, lineVal, one row per point.
    """
    y_lines = [_series(y, "ys") for y in _series(ys, "ys")]
    x_values = _series(xs, "xs")
    if not y_lines:
        raise ConfigError("ys", "give at least one series of y values")
    first = x_values[0] if x_values else None
    if not isinstance(first, Iterable) or isinstance(first, (str, bytes)):  # one x sequence shared by every line
        x_lines = [x_values] * len(y_lines)
    else:
        x_lines = [_series(x, "xs") for x in x_values]
    if len(x_lines) != len(y_lines):
        raise ConfigError("xs", f"{len(x_lines)} x series for {len(y_lines)} y series")
    names = [f"line_{i}" for i in range(len(y_lines))] if keys is None else _series(keys, "keys")
    if len(names) != len(y_lines):
        raise ConfigError("keys", f"{len(names)} keys for {len(y_lines)} y series")
    pairs = enumerate(zip(x_lines, y_lines, strict=True))
    data = [[x, names[i], y] for i, (xx, yy) in pairs for x, y in zip(xx, yy, strict=False)]  # W&B: the shorter wins
    table = Table(columns=["step", "lineKey", "lineVal"], data=data)
    fields = {"step": "step", "lineKey": "lineKey", "lineVal": "lineVal"}
    strings = {"title": title, "xname": xname}
    return _chart("line_series", "wandb/lineseries/v0", table, fields, strings, split_table)


def confusion_matrix(
    probs: Optional[Sequence[Sequence[float]]] = None,
    y_true: Optional[Sequence[Any]] = None,
    preds: Optional[Sequence[Any]] = None,
    class_names: Optional[Sequence[str]] = None,
    title: str = "Confusion Matrix Curve",
    split_table: bool = False,
) -> CustomChart:
    """A confusion matrix of `y_true` against `preds` (or the argmax of `probs`; give exactly one).

    With `class_names`, labels are class indices; without, the classes are the sorted labels seen,
    named Class_1, Class_2, ... Rows (Actual, Predicted, nPredictions) for every pair of classes.
    """
    from tracehouse.tracking.plot_curves import confusion_rows

    data = confusion_rows(probs, y_true, preds, class_names)
    table = Table(columns=["Actual", "Predicted", "nPredictions"], data=data)
    fields = {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"}
    return _chart("confusion_matrix", "wandb/confusion_matrix/v1", table, fields, {"title": title}, split_table)


def roc_curve(
    y_true: Sequence[Any],
    y_probas: Optional[Sequence[Sequence[float]]] = None,
    labels: Optional[list[str]] = None,
    classes_to_plot: Optional[list[Any]] = None,
    title: str = "ROC Curve",
    split_table: bool = False,
) -> CustomChart:
    """One-vs-rest ROC curves, one per class of `y_true` (or of `classes_to_plot`).

    `y_probas` has one column per class; `labels[c]` names integer class `c`. Rows (class, fpr,
    tpr): scikit-learn's `roc_curve` points, rounded to 3 decimals.
    """
    from tracehouse.tracking.plot_curves import roc_rows

    table = Table(columns=["class", "fpr", "tpr"], data=roc_rows(y_true, y_probas, labels, classes_to_plot))
    strings = {"title": title, "x-axis-title": "False positive rate", "y-axis-title": "True positive rate"}
    fields = {"x": "fpr", "y": "tpr", "class": "class"}
    return _chart("roc", "wandb/area-under-curve/v0", table, fields, strings, split_table)


def pr_curve(
    y_true: Optional[Sequence[Any]] = None,
    y_probas: Optional[Sequence[Sequence[float]]] = None,
    labels: Optional[list[str]] = None,
    classes_to_plot: Optional[list[Any]] = None,
    interp_size: int = 21,
    title: str = "Precision-Recall Curve",
    split_table: bool = False,
) -> CustomChart:
    """One-vs-rest precision-recall curves, one per class of `y_true` (or of `classes_to_plot`).

    Rows (class, precision, recall): for each of `interp_size` recalls from 1 down to 0, the best
    precision at that recall or more (W&B's interpolation of scikit-learn's curve), 3 decimals.
    """
    from tracehouse.tracking.plot_curves import pr_rows

    data = pr_rows(y_true, y_probas, labels, classes_to_plot, interp_size)
    table = Table(columns=["class", "precision", "recall"], data=data)
    strings = {"title": title, "x-axis-title": "Recall", "y-axis-title": "Precision"}
    fields = {"x": "recall", "y": "precision", "class": "class"}
    return _chart("pr", "wandb/area-under-curve/v0", table, fields, strings, split_table)
