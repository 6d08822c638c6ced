"""Reading back an offline wandb run's history: the records of its `.wandb` transaction log.

An offline run cannot be queried before `wandb sync`, so `log_throughput.py` counts the history
records in the log itself (a LevelDB-style log: a 7-byte header, then 32 KiB blocks of records).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

_WANDB_BLOCK = 32768  # the .wandb file is a LevelDB-style log: 7-byte file header, then 32 KiB blocks
_WANDB_RECORD_HEADER = struct.Struct("<IHB")  # crc32, length, kind (1 full, 2 first, 3 middle, 4 last)


def count_wandb_history(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """Steps and metric values held by the history records of a .wandb transaction log."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise RuntimeError(f"{path.name}: not a W&B transaction log")
    records, pending, pos = [], b"", 7
    while pos + _WANDB_RECORD_HEADER.size <= len(data):
        left = _WANDB_BLOCK - pos % _WANDB_BLOCK
        if left < _WANDB_RECORD_HEADER.size:  # block trailer padding
            pos += left
            continue
        _, length, kind = _WANDB_RECORD_HEADER.unpack_from(data, pos)
        pos += _WANDB_RECORD_HEADER.size
        chunk, pos = data[pos : pos + length], pos + length
        if kind == 0:
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            records.append(pending)
    steps, values = set(), 0
    for raw in records:
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]  # generated, no stubs
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            steps.add(record.history.step.num)
            values += sum(1 for item in record.history.item if (item.key or ".".join(item.nested_key)) in keys)
    return {"steps_stored": len(steps), "values_stored": values, "log_bytes": len(data)}
