"""Values that are not numbers: `th.Table` and `th.JoinedTable` (from `media_table`), `th.Histogram`,
text, arrays and frames, and the media of `media_image` (`th.Image`), `media_video` (`th.Video`) and
`media_more` (`th.Audio`, `th.Html`, `th.Object3D`, `th.Molecule`, `th.Plotly`).

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
from tracehouse._numbers import equal_bins
from tracehouse.tracking.media_base import PutBytes, is_matplotlib, is_plotly_figure
from tracehouse.tracking.media_table import JoinedTable, Table, _cell, is_media

if TYPE_CHECKING:
    from tracehouse.tracking.media_image import Image
    from tracehouse.tracking.media_more import Audio, Html, Molecule, Object3D, Plotly
    from tracehouse.tracking.media_video import Video

# Loaded on first use (`th.init` and `run.log` of numbers never pay for the media encoders).
_LAZY = {"Image": "media_image", "Audio": "media_more", "Html": "media_more", "Molecule": "media_more",
         "Object3D": "media_more", "Plotly": "media_more", "Video": "media_video"}  # fmt: skip

__all__ = ["Audio", "Histogram", "Html", "Image", "JoinedTable", "Molecule", "Object3D", "Plotly", "PutBytes", "Table",
           "Video", "is_media", "to_value"]  # fmt: skip


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
        self.bins, self.histogram = equal_bins(values, num_bins)

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
