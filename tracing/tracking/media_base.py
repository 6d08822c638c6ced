"""What every media value shares: the `put` callable, file reading with a checked format, array
conversion and the stored form of a value whose bytes are one blob."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Optional

from tracehouse._errors import ConfigError

PutBytes = Callable[[bytes], tuple[str, int]]


class BlobMedia:
    """A media value whose content is one blob (`data`, in `format`), plus metadata in the value."""

    _type: ClassVar[str] = ""
    data: bytes
    format: str
    caption: Optional[str] = None

    def _meta(self) -> dict[str, Any]:
        """What the value keeps besides the blob (sample rate, size, point count, ...)."""
        return {}

    def _to_value(self, put: PutBytes) -> dict[str, Any]:
        digest, size = put(self.data)
        value = {"_type": self._type, "digest": digest, "size": size, "format": self.format}
        return value | {"caption": self.caption or ""} | self._meta()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(format={self.format!r}, bytes={len(self.data)})"


def file_format(path: str, formats: Iterable[str]) -> Optional[str]:
    """The format of a file named `path`: the longest of `formats` its name ends with (".pts.json")."""
    name = path.lower()
    found = [f for f in formats if name.endswith("." + f)]
    return max(found, key=len) if found else None


def read_file(argument: str, path: Any, formats: Iterable[str]) -> tuple[bytes, str]:
    """The bytes and format of the file at `path`; a ConfigError naming `argument` when it is not a
    file or not one of `formats`."""
    formats = sorted(formats)
    found = file_format(str(path), formats)
    if found is None:
        raise ConfigError(argument, f"{str(path)!r} is not one of the supported formats ({', '.join(formats)})")
    if not Path(path).is_file():
        raise ConfigError(argument, f"{str(path)!r} is not a file")
    return Path(path).read_bytes(), found


def read_stream(argument: str, stream: Any, file_type: Optional[str], formats: Iterable[str]) -> tuple[bytes, str]:
    """The bytes of an open file object (W&B's `file_type=` names its format)."""
    formats = sorted(formats)
    if file_type is None or file_type.lower().lstrip(".") not in formats:
        raise ConfigError("file_type", f"a file object needs file_type= one of {', '.join(formats)}, got {file_type!r}")
    if hasattr(stream, "seek"):
        stream.seek(0)
    content = stream.read()
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    if not data:
        raise ConfigError(argument, "the file object is empty")
    return data, file_type.lower().lstrip(".")


def is_array(value: Any) -> bool:
    """A numpy array, or an array-like numpy can take without copying rules of its own (torch, ...)."""
    return hasattr(value, "shape") and (hasattr(value, "__array__") or hasattr(value, "numpy"))


def is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def to_numpy(value: Any) -> Any:
    """A numpy array of `value`: a numpy array, a torch tensor (detached, on the CPU), a TF tensor
    (`.numpy()`) or a nested list."""
    import numpy as np

    if is_torch_tensor(value):
        return value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray) and callable(getattr(value, "numpy", None)):
        return np.asarray(value.numpy())
    return np.asarray(value)


def is_matplotlib(value: Any) -> bool:
    """A matplotlib figure, axes or the `matplotlib.pyplot` module itself (W&B takes all three)."""
    if getattr(value, "__name__", None) == "matplotlib.pyplot":
        return True
    return type(value).__module__.startswith("matplotlib") and (hasattr(value, "savefig") or hasattr(value, "figure"))


def is_plotly_figure(value: Any) -> bool:
    return type(value).__module__.startswith("plotly") and callable(getattr(value, "to_plotly_json", None))


def matplotlib_figure(value: Any) -> Any:
    """The figure of a matplotlib figure, axes or pyplot module (its current figure)."""
    if getattr(value, "__name__", None) == "matplotlib.pyplot":
        return value.gcf()
    if hasattr(value, "savefig"):
        return value
    figure = value.figure
    return figure if hasattr(figure, "savefig") else figure.get_figure()
