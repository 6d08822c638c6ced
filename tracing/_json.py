"""JSON that never fails: any Python value to JSON bytes, and the helpers the spool writers share.

A leaf module (only orjson): the SDK, the exporters and the collector's write-ahead log use it.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
from collections.abc import Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any

import orjson

JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_MAX_DEPTH = 64


def json_default(value: Any) -> Any:
    """orjson `default=` hook: turn what orjson cannot encode into something it can."""
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(raw[:4096]).decode("ascii"), "size": len(raw)}
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump) and not isinstance(value, type):
        return model_dump(mode="json")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (Decimal, PurePath)):
        return str(value)
    item = getattr(value, "item", None)  # numpy scalars orjson did not take (float16, ...)
    if callable(item) and type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return item()
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and type(value).__module__.startswith(("numpy", "pandas")):
        return tolist()
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and type(value).__module__.startswith("pandas"):
        return to_dict()
    if isinstance(value, (tuple, list)):
        return list(value)
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    return _safe_repr(value)


def _safe_repr(value: Any) -> str:
    try:
        return valid_utf8(repr(value))
    except Exception:
        return f"<unrepresentable {type(value).__qualname__}>"


def valid_utf8(text: str) -> str:
    """`text` with lone surrogates (from undecodable file names, say) replaced, so it encodes as UTF-8."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="replace").decode("utf-8")


def _sanitise(value: Any, seen: set[int], depth: int) -> Any:
    """Slow path for values orjson refused (cycles, too deep, a failing hook): plain types only."""
    if isinstance(value, str):
        return valid_utf8(value)
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)  # JSON parsers (and orjson) stop at 64 bits
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if depth > _MAX_DEPTH:
        return "<too deep>"
    marker = id(value)
    if marker in seen:
        return "<cycle>"
    seen.add(marker)
    try:
        return _sanitise_container(value, seen, depth)
    except Exception:  # a container that fails to iterate degrades alone, not the whole payload
        return _safe_repr(value)
    finally:
        seen.discard(marker)


def _sanitise_container(value: Any, seen: set[int], depth: int) -> Any:
    if isinstance(value, Mapping):
        return {valid_utf8(str(k)): _sanitise(v, seen, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_sanitise(v, seen, depth + 1) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _sanitise(getattr(value, f.name, None), seen, depth + 1) for f in dataclasses.fields(value)}
    converted = json_default(value)
    if isinstance(converted, str):
        return valid_utf8(converted)
    if converted is value:
        return _safe_repr(value)
    return _sanitise(converted, seen, depth + 1)


def json_safe(value: Any) -> Any:
    """`value` made of plain JSON types only: cycles cut, odd objects converted, text valid UTF-8."""
    return _sanitise(value, set(), 0)


def to_json_bytes(value: Any) -> bytes:
    """Encode any value as JSON bytes; never raises."""
    try:
        return orjson.dumps(value, default=json_default, option=JSON_OPTIONS)
    except Exception:
        pass
    try:
        return orjson.dumps(json_safe(value), option=JSON_OPTIONS)
    except Exception:
        return orjson.dumps(_safe_repr(value))


def truncate_utf8(data: bytes, limit: int) -> str:
    """Decode at most `limit` bytes of UTF-8 without splitting a character."""
    return data[:limit].decode("utf-8", errors="ignore")
