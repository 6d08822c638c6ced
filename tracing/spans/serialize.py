"""Payload capture that never fails: any Python value to (JSON text, original size in bytes)."""

from __future__ import annotations

from typing import Any, Callable, Optional

from tracehouse._json import to_json_bytes, truncate_utf8


def capture(
    value: Any,
    limit: int,
    capture_content: bool = True,
    redact: Optional[Callable[[str], str]] = None,
) -> tuple[str, int]:
    """Return (stored text, original size in bytes) for a captured payload.

    Strings are stored as they are, everything else as JSON. The text is redacted, then truncated
    to `limit` bytes; with `capture_content=False` only the size is kept.
    """
    if isinstance(value, str):
        if not capture_content:
            return "", len(value.encode("utf-8", errors="replace"))
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            data = value.encode("utf-8", errors="replace")
        else:
            if redact is None and len(data) <= limit:
                return value, len(data)
    else:
        data = to_json_bytes(value)
    size = len(data)
    if not capture_content:
        return "", size
    if redact is not None:
        try:
            redacted = redact(data.decode("utf-8", errors="replace"))
            data = str(redacted).encode("utf-8", errors="replace")
        except Exception:
            return "<redaction failed; content dropped>", size
    if len(data) > limit:
        return truncate_utf8(data, limit), size
    return data.decode("utf-8", errors="replace"), size
