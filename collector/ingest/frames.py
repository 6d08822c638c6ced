"""Record batches as spool frames no reader refuses and no collector answers 413: bounded in bytes.

A batch is encoded as one JSON array; when that is over `WRITE_FRAME_BYTES` it is cut into
several arrays, each under the bound. A record over the bound on its own (a huge attribute, a
payload limit set very high) has its longest strings cut, each with a note saying how much was
cut, until it fits: the record is stored shortened, never refused as a whole.
"""

from __future__ import annotations

from typing import Any, Callable

import orjson

from tracehouse._json import to_json_bytes
from tracehouse.collector.ingest.spool import WRITE_FRAME_BYTES

_NOTE = "…[cut by tracehouse: {} bytes over the spool frame limit]"
_MIN_KEEP = 256  # characters a cut string keeps


def encode_frames(
    records: list[dict[str, Any]], encode: Callable[[list[dict[str, Any]]], bytes], limit: int = WRITE_FRAME_BYTES
) -> list[tuple[bytes, int]]:
    """`records` as JSON-array frames of at most `limit` bytes each, with how many records each holds
    (one frame when the batch fits); the frames hold the records in order."""
    payload = encode(records)
    if len(payload) <= limit:
        return [(payload, len(records))]
    frames: list[tuple[bytes, int]] = []
    parts: list[bytes] = []
    size = 2
    for record in records:
        item = encode([record])[1:-1]
        if len(item) + 2 > limit:
            item = shrink_record(record, limit - 2)
        if parts and size + len(item) + 1 > limit:
            frames.append((b"[" + b",".join(parts) + b"]", len(parts)))
            parts, size = [], 2
        parts.append(item)
        size += len(item) + 1
    if parts:
        frames.append((b"[" + b",".join(parts) + b"]", len(parts)))
    return frames


def shrink_record(record: dict[str, Any], limit: int) -> bytes:
    """The record's JSON with its longest strings cut (each noting how much) so it fits in `limit` bytes."""
    shrunk: Any = orjson.loads(to_json_bytes(record))
    for _ in range(8):  # each round cuts the longest strings by what is still over
        encoded = orjson.dumps(shrunk)
        over = len(encoded) - limit
        if over <= 0:
            return encoded
        shrunk = _cut_longest(shrunk, over + 512)
    skeleton = {k: v for k, v in record.items() if isinstance(v, (int, float, bool)) or k in ("type", "name")}
    skeleton["attributes"] = {"tracehouse.cut": f"record of {len(orjson.dumps(shrunk))} bytes over the frame limit"}
    return to_json_bytes(skeleton)


def _strings(value: Any, path: tuple[Any, ...], out: list[tuple[int, tuple[Any, ...]]]) -> None:
    if isinstance(value, str):
        out.append((len(value.encode("utf-8", errors="replace")), path))
    elif isinstance(value, dict):
        for key, item in value.items():
            _strings(item, (*path, key), out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _strings(item, (*path, index), out)


def _cut_longest(document: Any, excess: int) -> Any:
    """Cut `excess` bytes from the longest strings of `document` (longest first)."""
    found: list[tuple[int, tuple[Any, ...]]] = []
    _strings(document, (), found)
    for length, path in sorted(found, reverse=True):
        if excess <= 0 or length <= _MIN_KEEP:
            break
        cut = min(excess, length - _MIN_KEEP)
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        text: str = parent[path[-1]]
        kept = text.encode("utf-8", errors="replace")[: length - cut].decode("utf-8", errors="ignore")
        parent[path[-1]] = kept + _NOTE.format(cut)
        excess -= cut
    return document
