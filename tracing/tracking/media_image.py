"""`th.Image` (W&B's `wandb.Image`): from a path, a PIL image, a numpy array or torch tensor, or a
matplotlib figure; PNG-encoded in-house, with W&B's segmentation masks, bounding boxes and classes.

Arrays follow W&B's rules: trivial dimensions are squeezed, values in [0, 1] are scaled to 0-255,
values in [-1, 1] mapped onto 0-255, anything else clipped (`normalize=False` only casts); torch
tensors are channel-first (CHW), and so is a numpy array whose last dimension is not a channel count
but whose first is (1, 3 or 4).
"""

from __future__ import annotations

import io
import numbers
import struct
import zlib
from pathlib import Path
from typing import Any, Optional, Sequence

from tracehouse._errors import ConfigError
from tracehouse.tracking.media_base import (
    PutBytes,
    is_array,
    is_matplotlib,
    is_torch_tensor,
    matplotlib_figure,
    to_numpy,
)

_MODES = {"L": 1, "RGB": 3, "RGBA": 4}
_FILE_TYPES = ("png", "jpg", "jpeg", "bmp")


class Image:
    """An image, stored as a blob; masks are PNG blobs of their own, boxes and classes JSON in the value."""

    data: bytes
    format: str
    width: int
    height: int

    def __init__(
        self,
        data_or_path: Any,
        mode: Optional[str] = None,
        caption: Optional[str] = None,
        grouping: Optional[int] = None,
        classes: Any = None,
        boxes: Optional[dict[str, Any]] = None,
        masks: Optional[dict[str, Any]] = None,
        file_type: Optional[str] = None,
        normalize: bool = True,
    ) -> None:
        if mode is not None and mode not in _MODES:
            raise ConfigError("mode", f"expected 'L', 'RGB' or 'RGBA', got {mode!r}")
        if file_type is not None and file_type not in _FILE_TYPES:
            raise ConfigError("file_type", f"expected one of {', '.join(_FILE_TYPES)}, got {file_type!r}")
        self.caption, self.grouping = caption, grouping
        if isinstance(data_or_path, Image):
            self.data, self.format = data_or_path.data, data_or_path.format
            self.width, self.height = data_or_path.width, data_or_path.height
        elif isinstance(data_or_path, (str, Path)):
            self._from_path(Path(data_or_path))
        elif is_matplotlib(data_or_path):
            buffer = io.BytesIO()
            matplotlib_figure(data_or_path).savefig(buffer, format="png")
            self.data, self.format = buffer.getvalue(), "png"
            self.width, self.height = _png_size(self.data)
        elif hasattr(data_or_path, "save") and hasattr(data_or_path, "size") and not is_array(data_or_path):
            pixels = data_or_path if mode is None else data_or_path.convert(mode)  # a PIL image
            self.data, self.format = _pil_bytes(pixels, file_type or "png"), file_type or "png"
            self.width, self.height = pixels.size
        elif is_array(data_or_path) or isinstance(data_or_path, list):
            pixels = image_pixels(data_or_path, normalize, channel_first=is_torch_tensor(data_or_path))
            pixels = _convert(pixels, mode)
            self.height, self.width = int(pixels.shape[0]), int(pixels.shape[1])
            self.format = file_type or "png"
            self.data = encode_png(pixels) if self.format == "png" else _pil_bytes(_to_pil(pixels), self.format)
        else:
            raise ConfigError(
                "data_or_path",
                f"expected a path, a PIL image, a numpy array, a torch tensor or a matplotlib figure, "
                f"got {type(data_or_path).__name__}",
            )
        self.masks = _masks(masks, self.width, self.height)
        self.boxes = _boxes(boxes)
        if isinstance(data_or_path, Image):  # W&B's copy: the original's annotations unless new ones are given
            self.masks, self.boxes = self.masks or data_or_path.masks, self.boxes or data_or_path.boxes
            self.grouping = data_or_path.grouping if grouping is None else grouping
        self.classes = _classes(classes, self.masks, self.boxes)

    def _from_path(self, path: Path) -> None:
        if not path.is_file():
            raise ConfigError("data_or_path", f"{str(path)!r} is not a file")
        self.data = path.read_bytes()
        self.format = path.suffix.lstrip(".").lower() or "bin"
        self.width, self.height = _png_size(self.data) if self.format == "png" else _pil_size(self.data)

    def _to_value(self, put: PutBytes) -> dict[str, Any]:
        digest, size = put(self.data)
        value: dict[str, Any] = {"_type": "image", "digest": digest, "size": size, "format": self.format,
                                 "width": self.width, "height": self.height, "caption": self.caption or ""}  # fmt: skip
        if self.grouping is not None:
            value["grouping"] = self.grouping
        if self.masks:
            value["masks"] = {name: _mask_value(mask, put) for name, mask in self.masks.items()}
        if self.boxes:
            value["boxes"] = self.boxes
        if self.classes:
            value["classes"] = self.classes
        return value

    def __repr__(self) -> str:
        return f"Image(format={self.format!r}, width={self.width}, height={self.height})"


def image_pixels(data: Any, normalize: bool = True, channel_first: bool = False) -> Any:
    """A uint8 HxW, HxWx3 or HxWx4 numpy array of an image array (W&B's squeeze, CHW and range rules)."""
    import numpy as np

    array = to_numpy(data)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ConfigError("data_or_path", f"expected an array of numbers, got dtype {array.dtype}")
    shape = tuple(array.shape)
    while array.ndim > 3 and array.shape[0] == 1:  # a batch of one
        array = array[0]
    if array.ndim == 3 and (channel_first or (array.shape[2] not in (1, 3, 4) and array.shape[0] in (1, 3, 4))):
        array = np.transpose(array, (1, 2, 0))  # CHW -> HWC
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or 0 in array.shape:
        raise ConfigError(
            "data_or_path", f"expected an HxW, HxWx3 or HxWx4 array (or CxHxW, C = 1, 3 or 4), got shape {shape}"
        )
    array = array.astype(np.float64) if array.dtype == np.bool_ else array
    if not normalize:
        return array.astype(np.uint8)
    array = np.nan_to_num(array.astype(np.float64))
    low, high = float(array.min()), float(array.max())
    if low >= 0 and high <= 1:
        return (array * 255).astype(np.uint8)
    if low >= -1 and high <= 1:
        return (255 * 0.5 * (array + 1)).astype(np.uint8)
    return array.clip(0, 255).astype(np.uint8)


def _convert(pixels: Any, mode: Optional[str]) -> Any:
    """`pixels` in `mode` (L, RGB or RGBA), converted the way PIL converts."""
    import numpy as np

    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if mode is None or _MODES[mode] == channels:
        return pixels
    if mode == "L":
        rgb = pixels[..., :3].astype(np.uint32)
        return ((rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114 + 500) // 1000).astype(np.uint8)
    rgb = np.stack([pixels] * 3, axis=-1) if channels == 1 else pixels[..., :3]
    if mode == "RGB":
        return rgb
    return np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 255, dtype=np.uint8)], axis=-1)


def encode_png(pixels: Any) -> bytes:
    """A PNG of a uint8 HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA) numpy array."""
    import numpy as np

    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    channels = 1 if pixels.ndim == 2 else int(pixels.shape[2])
    rows = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(height, width * channels)
    raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), rows], axis=1).tobytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, {1: 0, 3: 2, 4: 6}[channels], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def _png_size(data: bytes) -> tuple[int, int]:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return 0, 0


def _pil_size(data: bytes) -> tuple[int, int]:
    """The size of an image file PIL can open (0, 0 without PIL or when it cannot)."""
    try:
        from PIL import Image as PILImage

        with PILImage.open(io.BytesIO(data)) as opened:
            return int(opened.size[0]), int(opened.size[1])
    except Exception:  # no PIL, or not an image PIL knows: the bytes are kept all the same
        return 0, 0


def _to_pil(pixels: Any) -> Any:
    from PIL import Image as PILImage

    return PILImage.fromarray(pixels)


def _pil_bytes(image: Any, file_type: str) -> bytes:
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise ConfigError("file_type", f"{file_type!r} needs Pillow: pip install pillow (png needs nothing)") from None
    fmt = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "bmp": "BMP"}[file_type]
    buffer = io.BytesIO()
    (image.convert("RGB") if fmt == "JPEG" and image.mode == "RGBA" else image).save(buffer, format=fmt)
    return buffer.getvalue()


def _labels(argument: str, labels: Any) -> dict[int, str]:
    if not isinstance(labels, dict) or not all(
        isinstance(k, numbers.Number) and not isinstance(k, bool) and isinstance(v, str) for k, v in labels.items()
    ):
        raise ConfigError(argument, f"class_labels must be a dict of numbers to strings, got {labels!r}")
    return {int(k): v for k, v in labels.items()}  # type: ignore[call-overload]


def _masks(masks: Any, width: int, height: int) -> dict[str, dict[str, Any]]:
    """Each mask's PNG and class labels (W&B's `ImageMask` rules); its shape must match the image's."""
    import numpy as np

    if not masks:
        return {}
    if not isinstance(masks, dict):
        raise ConfigError("masks", f"expected a dict of mask name to mask, got {type(masks).__name__}")
    found = {}
    for name, mask in masks.items():
        where = f"masks[{name!r}]"
        if not isinstance(mask, dict) or ("mask_data" not in mask and "path" not in mask):
            raise ConfigError(where, "expected a dict with 'mask_data' (a 2D array of class ids) or 'path'")
        if "path" in mask and "mask_data" not in mask:
            data = Image(mask["path"]).data
            found[str(name)] = {"data": data, "labels": _labels(where, mask.get("class_labels", {}))}
            continue
        array = to_numpy(mask["mask_data"])
        if array.ndim != 2:
            raise ConfigError(where, f"mask_data must be a 2D array, got shape {tuple(array.shape)}")
        if width and height and tuple(array.shape) != (height, width):
            raise ConfigError(where, f"mask_data has shape {tuple(array.shape)}, the image is {height}x{width}")
        if not np.issubdtype(array.dtype, np.number) or not np.all(np.mod(array, 1) == 0) or array.min() < 0 or (
            array.max() > 255
        ):  # fmt: skip
            raise ConfigError(where, "mask_data must be integers between 0 and 255")
        pixels = array.astype(np.uint8)
        labels = mask.get("class_labels")
        labels = {int(c): f"class_{int(c)}" for c in np.unique(pixels)} if labels is None else _labels(where, labels)
        found[str(name)] = {"data": encode_png(pixels), "labels": labels}
    return found


def _mask_value(mask: dict[str, Any], put: PutBytes) -> dict[str, Any]:
    digest, size = put(mask["data"])
    width, height = _png_size(mask["data"])
    labels = {str(k): v for k, v in mask["labels"].items()}
    return {"digest": digest, "size": size, "format": "png", "width": width, "height": height, "class_labels": labels}


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _position(where: str, position: Any) -> dict[str, Any]:
    if isinstance(position, dict):
        middle = position.get("middle")
        sized = _number(position.get("width")) and _number(position.get("height"))
        if isinstance(middle, (list, tuple)) and len(middle) == 2 and all(map(_number, middle)) and sized:
            return {"middle": [float(middle[0]), float(middle[1])], "width": float(position["width"]),
                    "height": float(position["height"])}  # fmt: skip
        if all(_number(position.get(k)) for k in ("minX", "maxX", "minY", "maxY")):
            return {k: float(position[k]) for k in ("minX", "maxX", "minY", "maxY")}
    raise ConfigError(where, "a box needs a position with middle, width and height, or minX, maxX, minY and maxY")


def _box(where: str, box: Any) -> dict[str, Any]:
    if not isinstance(box, dict) or "position" not in box:
        raise ConfigError(where, "a box needs a position with middle, width and height, or minX, maxX, minY and maxY")
    out: dict[str, Any] = {"position": _position(where, box["position"])}
    if "class_id" in box:
        if not isinstance(box["class_id"], numbers.Integral) or isinstance(box["class_id"], bool):
            raise ConfigError(where, f"a box's class_id must be an integer, got {box['class_id']!r}")
        out["class_id"] = int(box["class_id"])
    if "box_caption" in box:
        if not isinstance(box["box_caption"], str):
            raise ConfigError(where, f"a box's box_caption must be a string, got {box['box_caption']!r}")
        out["box_caption"] = box["box_caption"]
    if "scores" in box:
        scores = box["scores"]
        if not isinstance(scores, dict) or not all(isinstance(k, str) and _number(v) for k, v in scores.items()):
            raise ConfigError(where, f"a box's scores must be a dict of strings to numbers, got {scores!r}")
        out["scores"] = {k: float(v) for k, v in scores.items()}
    if "domain" in box:
        if box["domain"] not in (None, "pixel"):
            raise ConfigError(where, f"a box's domain is 'pixel' or absent (fractions), got {box['domain']!r}")
        if box["domain"] is not None:
            out["domain"] = "pixel"
    return out


def _boxes(boxes: Any) -> dict[str, dict[str, Any]]:
    """Each box layer's boxes and class labels, validated as W&B's `BoundingBoxes2D` validates them."""
    if not boxes:
        return {}
    if not isinstance(boxes, dict):
        raise ConfigError("boxes", f"expected a dict of box layer name to boxes, got {type(boxes).__name__}")
    found = {}
    for name, layer in boxes.items():
        where = f"boxes[{name!r}]"
        if not isinstance(layer, dict) or not isinstance(layer.get("box_data"), list):
            raise ConfigError(where, "expected a dict with 'box_data', a list of boxes")
        out: dict[str, Any] = {"box_data": [_box(f"{where}.box_data[{i}]", b) for i, b in enumerate(layer["box_data"])]}
        if "class_labels" in layer:
            out["class_labels"] = {str(k): v for k, v in _labels(where, layer["class_labels"]).items()}
        found[str(name)] = out
    return found


def _classes(classes: Any, masks: dict[str, Any], boxes: dict[str, Any]) -> list[dict[str, Any]]:
    """W&B's merged class set: every mask's and box layer's labels, then `classes` (a list of
    {"id", "name"} or an object with `_class_set`)."""
    merged: dict[int, str] = {}
    for mask in masks.values():
        merged.update(mask["labels"])
    for layer in boxes.values():
        merged.update({int(k): v for k, v in layer.get("class_labels", {}).items()})
    if classes is not None:
        entries: Sequence[Any] = getattr(classes, "_class_set", classes)
        if isinstance(entries, (str, bytes)) or not all(
            isinstance(e, dict) and isinstance(e.get("id"), int) and isinstance(e.get("name"), str) for e in entries
        ):
            raise ConfigError("classes", "expected a list of {'id': int, 'name': str}")
        merged.update({e["id"]: e["name"] for e in entries})
    return [{"id": k, "name": v} for k, v in merged.items()]
