"""`th.Video` (W&B's `wandb.Video`): a video file kept as it is, or frames encoded to an animated GIF
in-house (W&B encodes with moviepy and imageio; tracehouse needs neither, and a browser shows a GIF)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, Optional

from tracehouse._errors import ConfigError
from tracehouse.tracking.media_base import BlobMedia, is_array, read_file, to_numpy

VIDEO_FORMATS = ("gif", "mp4", "webm", "ogg")


class Video(BlobMedia):
    """A video: a path or file object (gif, mp4, webm, ogg: bytes as they are), or a uint8 array of
    frames (time, channel, height, width) or a batch (batch, time, channel, height, width), tiled into
    a grid as W&B tiles it and encoded as a GIF at `fps` frames a second (4 unless given)."""

    _type = "video"

    def __init__(
        self, data_or_path: Any, caption: Optional[str] = None, fps: Optional[int] = None, format: Optional[str] = None
    ) -> None:
        if format is not None and format not in VIDEO_FORMATS:
            raise ConfigError("format", f"expected one of {', '.join(VIDEO_FORMATS)}, got {format!r}")
        if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 100):
            raise ConfigError("fps", f"expected a number of frames a second from 1 to 100, got {fps!r}")
        self.caption = caption
        self.fps: Optional[float] = None
        self.frames: Optional[int] = None
        self.width: Optional[int] = None
        self.height: Optional[int] = None
        if isinstance(data_or_path, (str, Path)):
            self.data, self.format = read_file("data_or_path", data_or_path, VIDEO_FORMATS)
        elif hasattr(data_or_path, "read"):
            data_or_path.seek(0) if hasattr(data_or_path, "seek") else None
            self.data, self.format = bytes(data_or_path.read()), format or "gif"
        elif is_array(data_or_path) or isinstance(data_or_path, list):
            if format not in (None, "gif"):
                raise ConfigError(
                    "format",
                    f"tracehouse encodes frames as gif only ({format!r} needs an encoder such as moviepy and ffmpeg); "
                    "give format='gif' or a path to an encoded video",
                )
            frames = video_frames(data_or_path)
            self.fps = float(fps or 4)
            self.data, self.format = encode_gif(frames, self.fps), "gif"
            self.frames, self.height, self.width = (int(n) for n in frames.shape[:3])
            return
        else:
            raise ConfigError("data_or_path", f"expected a path, a file object or an array, got {type(data_or_path)}")
        if not self.data:
            raise ConfigError("data_or_path", "the video is empty")
        if self.format == "gif":
            self.width, self.height, self.frames = _gif_facts(self.data)

    def _meta(self) -> dict[str, Any]:
        duration = self.frames / self.fps if self.frames and self.fps else None
        return {"width": self.width, "height": self.height, "fps": self.fps, "frames": self.frames,
                "duration": duration}  # fmt: skip


def video_frames(data: Any) -> Any:
    """A (time, height, width, 3) uint8 array of W&B's video tensor: (t, c, h, w) or (b, t, c, h, w),
    cast to uint8 as W&B casts, a batch laid out in a grid (padded to a power of two, as W&B pads)."""
    import numpy as np

    array = to_numpy(data)
    if array.ndim not in (4, 5) or array.size == 0:
        raise ConfigError(
            "data_or_path", f"expected frames (time, channel, height, width) or a batch of them, got {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.number) and array.dtype != np.bool_:
        raise ConfigError("data_or_path", f"expected an array of numbers, got dtype {array.dtype}")
    video = array.reshape(1, *array.shape) if array.ndim == 4 else array
    batch, time, channels, height, width = video.shape
    if channels not in (1, 3, 4):
        raise ConfigError(
            "data_or_path", f"expected 1, 3 or 4 channels (axis 2 of a batch, 1 of frames), got {channels}"
        )
    video = video.astype(np.uint8)
    if batch & (batch - 1):
        pad = np.zeros((2 ** batch.bit_length() - batch, time, channels, height, width), dtype=np.uint8)
        video = np.concatenate((video, pad), axis=0)
    rows = 2 ** ((batch.bit_length() - 1) // 2)
    columns = video.shape[0] // rows
    video = video.reshape(rows, columns, time, channels, height, width).transpose(2, 0, 4, 1, 5, 3)
    video = video.reshape(time, rows * height, columns * width, channels)
    if channels == 1:
        video = np.repeat(video, 3, axis=3)
    return np.ascontiguousarray(video[..., :3])


def _palette(frames: Any) -> tuple[bytes, Any]:
    """A 256-colour palette and each pixel's index in it: exact when the frames have at most 256
    colours, else a 6x7x6 colour cube."""
    import numpy as np

    packed = (frames[..., 0].astype(np.uint32) << 16) | (frames[..., 1].astype(np.uint32) << 8) | frames[..., 2]
    colours, indices = np.unique(packed, return_inverse=True)
    if len(colours) <= 256:
        table = np.zeros((256, 3), dtype=np.uint8)
        table[: len(colours)] = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=1)
        return table.tobytes(), indices.reshape(frames.shape[:3]).astype(np.uint8)
    levels = np.array([6, 7, 6])
    steps = np.rint(frames.astype(np.float64) * (levels - 1) / 255).astype(np.int64)
    indices = steps[..., 0] * 42 + steps[..., 1] * 6 + steps[..., 2]
    grid = np.stack(np.meshgrid(range(6), range(7), range(6), indexing="ij"), axis=-1).reshape(-1, 3)
    table = np.zeros((256, 3), dtype=np.uint8)
    table[:252] = np.rint(grid * 255 / (levels - 1)).astype(np.uint8)
    return table.tobytes(), indices.astype(np.uint8)


def _lzw(pixels: bytes) -> bytes:
    """GIF's variable-length LZW of 8-bit palette indices, packed least significant bit first."""
    clear, end = 256, 257
    table: dict[tuple[int, int], int] = {}
    size, next_code = 9, 258
    out, bits, count = bytearray(), 0, 0

    def emit(code: int) -> None:
        nonlocal bits, count
        bits |= code << count
        count += size
        while count >= 8:
            out.append(bits & 255)
            bits >>= 8
            count -= 8

    emit(clear)
    current = pixels[0]
    for byte in pixels[1:]:
        found = table.get((current, byte))
        if found is not None:
            current = found
            continue
        emit(current)
        if next_code < 4096:
            table[(current, byte)] = next_code
            if next_code == 1 << size:
                size += 1
            next_code += 1
        else:
            emit(clear)
            table, size, next_code = {}, 9, 258
        current = byte
    emit(current)
    emit(end)
    if count:
        out.append(bits & 255)
    return bytes(out)


def encode_gif(frames: Any, fps: float) -> bytes:
    """An animated GIF (looping) of (time, height, width, 3) uint8 frames."""
    time, height, width = (int(n) for n in frames.shape[:3])
    palette, indices = _palette(frames)
    delay = max(1, round(100 / fps))  # hundredths of a second
    parts = [b"GIF89a", struct.pack("<HHBBB", width, height, 0xF7, 0, 0), palette,
             b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"]  # fmt: skip
    for frame in range(time):
        data = _lzw(indices[frame].tobytes())
        blocks = b"".join(bytes([len(data[i : i + 255])]) + data[i : i + 255] for i in range(0, len(data), 255))
        parts += [b"\x21\xf9\x04\x00" + struct.pack("<H", delay) + b"\x00\x00",
                  b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0), b"\x08", blocks, b"\x00"]  # fmt: skip
    return b"".join(parts) + b"\x3b"


def _gif_facts(data: bytes) -> tuple[Optional[int], Optional[int], Optional[int]]:
    """Width, height and frame count of a GIF file (None when it is not one)."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        return None, None, None
    width, height = struct.unpack("<HH", data[6:10])
    try:
        return int(width), int(height), _gif_frame_count(data)
    except IndexError:
        return int(width), int(height), None


def _gif_frame_count(data: bytes) -> int:
    flags, at, frames = data[10], 13, 0
    if flags & 0x80:
        at += 3 * (2 ** ((flags & 7) + 1))
    while at < len(data) and data[at] != 0x3B:
        if data[at] == 0x21:  # an extension: label, then sub-blocks
            at += 2
        else:  # an image descriptor, its local colour table, the LZW minimum code size, then sub-blocks
            frames += 1
            local = data[at + 9]
            at += 10 + (3 * (2 ** ((local & 7) + 1)) if local & 0x80 else 0) + 1
        while data[at]:
            at += data[at] + 1
        at += 1
    return frames
