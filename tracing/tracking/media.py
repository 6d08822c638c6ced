"""Values that are not numbers: `th.Table`, `th.Histogram`, text, arrays and frames, and the media
of `media_image` (`th.Image`), `media_video` (`th.Video`) and `media_more` (`th.Audio`, `th.Html`,
`th.Object3D`, `th.Molecule`, `th.Plotly`).

`run.log` turns each into a JSON value with a `_type` that lands in `run_values` (one row per key
and step); a table's rows land in `run_tables` (one JSON object per row, queryable with SQL's JSON
functions), media bytes in the blob store (the row keeps the digest, size, format and metadata).
W&B's conversions apply: a numpy array or a list of numbers becomes a histogram, a pandas DataFrame
a table, a matplotlib figure an image (W&B turns it into plotly when it can; tracehouse keeps the
picture), a plotly figure a `th.Plotly`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional, Sequence

from tracehouse._errors import ConfigError
from tracehouse.tracking.media_base import PutBytes, is_matplotlib, is_plotly_figure

if TYPE_CHECKING:
    from tracehouse.tracking.media_image import Image
    from tracehouse.tracking.media_more import Audio, Html, Molecule, Object3D, Plotly
    from tracehouse.tracking.media_video import Video

# Loaded on first use (`th.init` and `run.log` of numbers never pay for the media encoders).
_LAZY = {"Image": "media_image", "Audio": "media_more", "Html": "media_more", "Molecule": "media_more",
         "Object3D": "media_more", "Plotly": "media_more", "Video": "media_video"}  # fmt: skip

__all__ = ["Audio", "Histogram", "Html", "Image", "Molecule", "Object3D", "Plotly", "PutBytes", "Table", "Video",
           "is_media", "to_value"]  # fmt: skip


class Table:
    """Rows and named columns (W&B's `wandb.Table`); logged tables are rows in `run_tables`."""

    def __init__(
        self,
        columns: Optional[Sequence[str]] = None,
        data: Optional[Sequence[Sequence[Any]]] = None,
        rows: Optional[Sequence[Sequence[Any]]] = None,
        dataframe: Any = None,
    ) -> None:
        if dataframe is not None:
            if columns is not None or data is not None or rows is not None:
                raise ConfigError("dataframe", "give either a dataframe or columns and data, not both")
            columns = [str(c) for c in dataframe.columns]
            data = dataframe.itertuples(index=False, name=None)
        data = data if data is not None else rows
        materialised = [list(row) for row in data] if data is not None else []
        if columns is None:
            width = len(materialised[0]) if materialised else 0
            columns = [f"col{i}" for i in range(width)]
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise ConfigError("columns", f"expected a list of column names, got {columns!r}")
        if len(set(columns)) != len(columns):
            raise ConfigError("columns", f"column names must be distinct, got {list(columns)}")
        self.columns: list[str] = list(columns)
        self.data: list[list[Any]] = []
        for row in materialised:
            self.add_data(*row)

    def add_data(self, *data: Any) -> None:
        """Append one row (one value per column)."""
        if len(data) != len(self.columns):
            raise ConfigError("data", f"a row needs {len(self.columns)} values ({self.columns}), got {len(data)}")
        self.data.append(list(data))

    add_row = add_data

    def add_column(self, name: str, data: Sequence[Any]) -> None:
        """Add a column with one value per existing row."""
        if not isinstance(name, str) or name in self.columns:
            raise ConfigError("name", f"expected a new column name, got {name!r}")
        values = list(data)
        if self.data and len(values) != len(self.data):
            raise ConfigError("data", f"the table has {len(self.data)} rows, the column {len(values)} values")
        if not self.data:
            self.data = [[] for _ in values]
        self.columns.append(name)
        for row, value in zip(self.data, values, strict=True):
            row.append(value)

    def get_column(self, name: str, convert_to: Optional[str] = None) -> Any:
        """The values of one column (`convert_to="numpy"` for an array)."""
        if name not in self.columns:
            raise ConfigError("name", f"no column {name!r}; the table has {self.columns}")
        index = self.columns.index(name)
        values = [row[index] for row in self.data]
        if convert_to == "numpy":
            import numpy as np

            return np.array(values)
        return values

    def get_index(self) -> list[int]:
        """Row numbers."""
        return list(range(len(self.data)))

    def get_dataframe(self) -> Any:
        """The table as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.data, columns=self.columns)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"Table(columns={self.columns!r}, rows={len(self.data)})"

    def _to_value(self, put: PutBytes) -> dict[str, Any]:
        return {"_type": "table", "columns": self.columns, "data": [[_cell(v, put) for v in row] for row in self.data]}


class Histogram:
    """A histogram of values (W&B's `wandb.Histogram`): from a sequence, or numpy's (counts, edges)."""

    def __init__(self, sequence: Optional[Sequence[Any]] = None, np_histogram: Any = None, num_bins: int = 64) -> None:
        if not isinstance(num_bins, int) or isinstance(num_bins, bool) or not 1 <= num_bins <= 512:
            raise ConfigError("num_bins", f"expected an integer from 1 to 512, got {num_bins!r}")
        if np_histogram is not None:
            counts, edges = np_histogram
            self.histogram, self.bins = [float(c) for c in counts], [float(e) for e in edges]
            if len(self.bins) != len(self.histogram) + 1:
                raise ConfigError("np_histogram", "expected (counts, bin_edges) with one more edge than counts")
            return
        if sequence is None:
            raise ConfigError("sequence", "give a sequence of numbers or np_histogram=(counts, edges)")
        values = [float(v) for v in _flat_numbers(sequence) if math.isfinite(float(v))]
        low, high = (min(values), max(values)) if values else (0.0, 0.0)
        if high == low:
            low, high = low - 0.5, high + 0.5
        width = (high - low) / num_bins
        counts = [0] * num_bins
        for value in values:
            counts[min(int((value - low) / width), num_bins - 1)] += 1
        self.histogram = [float(c) for c in counts]
        self.bins = [low + i * width for i in range(num_bins + 1)]

    def _to_value(self, put: PutBytes) -> dict[str, Any]:
        return {"_type": "histogram", "bins": self.bins, "values": self.histogram}


def __getattr__(name: str) -> Any:
    """Image, Audio, Video, Html, Object3D, Molecule and Plotly, imported when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"tracehouse.tracking.{module}"), name)
    globals()[name] = value
    return value


def is_media(value: Any) -> bool:
    """A value that stores itself: `th.Table`, `th.Image`, ... and every other media or plot type
    (each has `_to_value(put)` returning its stored form, a dict with a `_type`)."""
    return callable(getattr(type(value), "_to_value", None))


def _flat_numbers(values: Any) -> list[Any]:
    if hasattr(values, "ravel") and hasattr(values, "tolist"):  # numpy array
        return list(values.ravel().tolist())
    out: list[Any] = []
    for value in values:
        if isinstance(value, (list, tuple)):
            out.extend(_flat_numbers(value))
        else:
            out.append(value)
    return out


def _cell(value: Any, put: PutBytes) -> Any:
    if is_media(value):
        return value._to_value(put)
    if value is None or type(value) in (str, int, float, bool):
        return value
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 1) == 0:
        return item()
    return str(value)


def to_value(value: Any, put: PutBytes) -> Optional[dict[str, Any]]:
    """The stored form of a non-numeric logged value, or None when its type is not supported."""
    if is_media(value):
        stored: dict[str, Any] = value._to_value(put)
        return stored
    if isinstance(value, str):
        return {"_type": "text", "value": value}
    if is_matplotlib(value):
        from tracehouse.tracking.media_image import Image

        return Image(value)._to_value(put)
    if is_plotly_figure(value):
        from tracehouse.tracking.media_more import Plotly

        return Plotly(value)._to_value(put)
    module = type(value).__module__
    if module.startswith("pandas") and hasattr(value, "itertuples") and hasattr(value, "columns"):
        return Table(dataframe=value)._to_value(put)
    if (module.startswith("numpy") and hasattr(value, "shape")) or (
        isinstance(value, (list, tuple)) and value and all(type(v) in (int, float) for v in _flat_numbers(value))
    ):
        try:
            return Histogram(value)._to_value(put)
        except (TypeError, ValueError):
            return None
    if value is None or isinstance(value, (list, tuple)):
        return {"_type": "json", "value": _cell(value, put) if value is None else [_cell(v, put) for v in value]}
    return None
