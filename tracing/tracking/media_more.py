"""W&B's other media, each stored as one blob with its metadata in the value: `th.Audio`, `th.Html`,
`th.Object3D`, `th.Molecule` and `th.Plotly` (with W&B's constructor signatures and meanings)."""

from __future__ import annotations

import base64
import io
import json
import wave
from pathlib import Path
from typing import Any, Optional, Sequence

from tracehouse._errors import ConfigError
from tracehouse.tracking.media_base import (
    BlobMedia,
    is_array,
    is_matplotlib,
    is_plotly_figure,
    read_file,
    read_stream,
    to_numpy,
)

AUDIO_FORMATS = ("wav", "mp3", "ogg", "flac")
OBJECT3D_FORMATS = ("obj", "gltf", "glb", "babylon", "stl", "pts.json")
MOLECULE_FORMATS = ("pdb", "pqr", "mmcif", "mcif", "cif", "sdf", "sd", "gro", "mol2", "mmtf")


class Audio(BlobMedia):
    """An audio clip: a file (wav, mp3, ogg, flac: bytes as they are) or a numpy array of samples
    ((samples,) or (samples, channels); floats in [-1, 1], or integers), encoded as a 16-bit PCM WAV
    at `sample_rate` (required for an array, as in W&B)."""

    _type = "audio"

    def __init__(self, data_or_path: Any, sample_rate: Optional[int] = None, caption: Optional[str] = None) -> None:
        if sample_rate is not None and (isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or (
            not 0 < sample_rate <= 1_000_000
        )):  # fmt: skip
            raise ConfigError(
                "sample_rate", f"expected a positive whole number of samples a second, got {sample_rate!r}"
            )
        self.caption, self.sample_rate = caption, sample_rate
        self.duration: Optional[float] = None
        self.channels: Optional[int] = None
        if isinstance(data_or_path, (str, Path)):
            self.data, self.format = read_file("data_or_path", data_or_path, AUDIO_FORMATS)
            if self.format == "wav":
                self._read_wav_facts()
        elif is_array(data_or_path) or isinstance(data_or_path, (list, tuple)):
            if sample_rate is None:
                raise ConfigError("sample_rate", "is required when Audio is given an array of samples")
            self.data, self.channels, frames = _encode_wav(data_or_path, sample_rate)
            self.format, self.duration = "wav", frames / sample_rate
        else:
            raise ConfigError("data_or_path", f"expected a path or an array of samples, got {type(data_or_path)}")

    def _read_wav_facts(self) -> None:
        try:
            with wave.open(io.BytesIO(self.data)) as clip:
                rate, frames, self.channels = clip.getframerate(), clip.getnframes(), clip.getnchannels()
        except (wave.Error, EOFError):  # a WAV wave cannot read (float samples, ...): kept as it is
            return
        self.sample_rate = self.sample_rate or rate
        self.duration = frames / rate if rate else None

    def _meta(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "duration": self.duration, "channels": self.channels}


def _encode_wav(data: Any, sample_rate: int) -> tuple[bytes, int, int]:
    """A 16-bit PCM WAV of the samples, with its channel and frame counts."""
    import numpy as np

    samples = to_numpy(data)
    if samples.ndim not in (1, 2) or samples.size == 0 or not np.issubdtype(samples.dtype, np.number):
        raise ConfigError(
            "data_or_path", f"expected samples (samples,) or (samples, channels), got {samples.shape} {samples.dtype}"
        )
    samples = samples.reshape(-1, 1) if samples.ndim == 1 else samples
    if samples.shape[1] > 16:
        raise ConfigError("data_or_path", f"expected (samples, channels), got {samples.shape}: more than 16 channels")
    if np.issubdtype(samples.dtype, np.floating):
        pcm = np.rint(np.clip(np.nan_to_num(samples), -1.0, 1.0) * 32767)
    elif samples.dtype == np.int16:
        pcm = samples
    else:  # other integers: their full range onto 16 bits
        info = np.iinfo(samples.dtype)
        pcm = (samples.astype(np.float64) - (info.min + info.max + 1) / 2) * (65536 / (info.max - info.min + 1))
        pcm = np.clip(np.rint(pcm), -32768, 32767)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as clip:
        clip.setnchannels(int(samples.shape[1]))
        clip.setsampwidth(2)
        clip.setframerate(sample_rate)
        clip.writeframes(pcm.astype("<i2").tobytes())
    return buffer.getvalue(), int(samples.shape[1]), int(samples.shape[0])


class Html(BlobMedia):
    """HTML: literal HTML in a string or a file object, or the path of an .html file. `inject` adds
    `<base target="_blank">` to its head, so links open outside the page showing it (W&B also links
    its own stylesheet; tracehouse does not)."""

    _type = "html"

    def __init__(self, data: Any, inject: bool = True, data_is_not_path: bool = False) -> None:
        if isinstance(data, Path) or (
            isinstance(data, str) and not data_is_not_path and data.endswith(".html") and Path(data).is_file()
        ):
            if not Path(data).is_file():
                raise ConfigError("data", f"{str(data)!r} is not a file")
            html = Path(data).read_text(encoding="utf-8")
        elif isinstance(data, str):
            html = data
        elif hasattr(data, "read"):
            if hasattr(data, "seek"):
                data.seek(0)
            content = data.read()
            html = content.decode("utf-8") if isinstance(content, bytes) else str(content)
        else:
            raise ConfigError("data", f"expected HTML in a string or a file object, or a path, got {type(data)}")
        self.html = _inject_head(html) if inject else html
        self.data, self.format, self.caption = self.html.encode("utf-8"), "html", None


def _inject_head(html: str) -> str:
    base = '<base target="_blank">'
    if "<head>" in html:
        before, after = html.split("<head>", 1)
        return f"{before}<head>{base}{after}".strip()
    if "<html>" in html:
        before, after = html.split("<html>", 1)
        return f"{before}<html><head>{base}</head>{after}".strip()
    return f"{base}{html}".strip()


class Object3D(BlobMedia):
    """A 3D object: a file (obj, gltf, glb, babylon, stl, pts.json), a file object with `file_type=`,
    a point cloud array ((N, 3) x y z, (N, 4) x y z category, (N, 6) x y z r g b) or a scene dict
    ({"type": "lidar/beta", "points", "boxes", "vectors"}); arrays and scenes become pts.json."""

    _type = "object3d"

    def __init__(self, data_or_path: Any, caption: Optional[str] = None, **kwargs: Any) -> None:
        self.caption = caption
        self.points: Optional[int] = None
        if hasattr(data_or_path, "read") and isinstance(getattr(data_or_path, "name", None), str):
            data_or_path = data_or_path.name  # an open file: W&B reads the file it names
        if isinstance(data_or_path, (str, Path)):
            self.data, self.format = read_file("data_or_path", data_or_path, OBJECT3D_FORMATS)
        elif hasattr(data_or_path, "read"):
            self.data, self.format = read_stream(
                "data_or_path", data_or_path, kwargs.get("file_type"), OBJECT3D_FORMATS
            )
        elif isinstance(data_or_path, dict):
            scene = _scene(data_or_path)
            self.data, self.format, self.points = json.dumps(scene).encode(), "pts.json", len(scene["points"])
        elif is_array(data_or_path):
            cloud = to_numpy(data_or_path)
            if cloud.ndim != 2 or cloud.shape[1] not in (3, 4, 6):
                raise ConfigError("data_or_path", f"expected a point cloud (N, 3), (N, 4) or (N, 6), got {cloud.shape}")
            self.data, self.format, self.points = json.dumps(cloud.tolist()).encode(), "pts.json", int(cloud.shape[0])
        else:
            raise ConfigError(
                "data_or_path", f"expected a path, a file object, an array or a dict, got {type(data_or_path)}"
            )

    @classmethod
    def from_file(cls, data_or_path: Any, file_type: Optional[str] = None) -> Object3D:
        """An object from a file path, or a file object whose format `file_type` names."""
        return cls(data_or_path, file_type=file_type)

    @classmethod
    def from_numpy(cls, data: Any) -> Object3D:
        """A point cloud from an (N, 3), (N, 4) or (N, 6) array."""
        if not is_array(data):
            raise ConfigError("data", f"expected a numpy array, got {type(data)}")
        return cls(data)

    @classmethod
    def from_point_cloud(
        cls,
        points: Sequence[Any],
        boxes: Sequence[Any],
        vectors: Optional[Sequence[Any]] = None,
        point_cloud_type: str = "lidar/beta",
    ) -> Object3D:
        """A lidar scene: points, 3D boxes and vectors (W&B's `Object3D.from_point_cloud`)."""
        if point_cloud_type != "lidar/beta":
            raise ConfigError("point_cloud_type", f"only 'lidar/beta' is supported, got {point_cloud_type!r}")
        return cls({"type": point_cloud_type, "points": points, "boxes": boxes, "vectors": vectors or []})

    def _meta(self) -> dict[str, Any]:
        return {"points": self.points}


def _plain(value: Any) -> Any:
    """`value` with numpy arrays and numbers as lists and Python numbers (what JSON takes), and
    plotly's base64 typed arrays ({"dtype", "bdata", "shape"}) decoded to lists too."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict) and isinstance(value.get("bdata"), str) and set(value) <= {"dtype", "bdata", "shape"}:
        import numpy as np

        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value.get("dtype", "f8")))
        shape = value.get("shape")
        if shape:
            array = array.reshape([int(n) for n in str(shape).split(",")])
        return array.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _scene(scene: dict[str, Any]) -> dict[str, Any]:
    if scene.get("type") != "lidar/beta":
        raise ConfigError("data_or_path", f"a scene dict needs type 'lidar/beta', got {scene.get('type')!r}")
    out = {"type": "lidar/beta"} | {k: _plain(scene.get(k, [])) for k in ("points", "boxes", "vectors")}
    if not all(isinstance(out[k], list) for k in ("points", "boxes", "vectors")):
        raise ConfigError("data_or_path", "a scene's points, boxes and vectors must be lists or arrays")
    try:
        json.dumps(out)
    except (TypeError, ValueError) as error:
        raise ConfigError("data_or_path", f"the scene cannot be stored as JSON: {error}") from None
    return out


class Molecule(BlobMedia):
    """A molecule file (pdb, pqr, mmcif, mcif, cif, sdf, sd, gro, mol2, mmtf), or a file object with
    `file_type=`; stored as it is."""

    _type = "molecule"

    def __init__(self, data_or_path: Any, caption: Optional[str] = None, **kwargs: Any) -> None:
        self.caption = caption
        if hasattr(data_or_path, "read") and isinstance(getattr(data_or_path, "name", None), str):
            data_or_path = data_or_path.name
        if isinstance(data_or_path, (str, Path)):
            self.data, self.format = read_file("data_or_path", data_or_path, MOLECULE_FORMATS)
        elif hasattr(data_or_path, "read"):
            self.data, self.format = read_stream(
                "data_or_path", data_or_path, kwargs.get("file_type"), MOLECULE_FORMATS
            )
        else:
            raise ConfigError("data_or_path", f"expected a path or a file object, got {type(data_or_path)}")


class Plotly(BlobMedia):
    """A plotly figure, stored as its JSON (numpy arrays as lists, as W&B stores them)."""

    _type = "plotly"

    def __init__(self, val: Any) -> None:
        if is_matplotlib(val):
            raise ConfigError(
                "val", "tracehouse does not convert matplotlib figures to plotly: log th.Image(figure) instead"
            )
        if not is_plotly_figure(val):
            raise ConfigError("val", f"expected a plotly figure, got {type(val).__name__}")
        from plotly.utils import PlotlyJSONEncoder

        figure = _plain(val.to_plotly_json())
        self.data = json.dumps(figure, cls=PlotlyJSONEncoder).encode("utf-8")
        self.format, self.caption = "plotly.json", None
        self.traces = len(figure.get("data", []))
        title = figure.get("layout", {}).get("title", {})
        self.title = title.get("text") if isinstance(title, dict) else title

    @classmethod
    def make_plot_media(cls, val: Any) -> Any:
        """A plotly figure as a Plotly; a matplotlib figure as an Image (W&B converts it to plotly
        when it can; tracehouse always keeps the picture)."""
        if is_matplotlib(val):
            from tracehouse.tracking.media_image import Image

            return Image(val)
        return cls(val)

    def _meta(self) -> dict[str, Any]:
        return {"traces": self.traces, "title": self.title or ""}
