"""An offline wandb run for the benchmarks: its environment, and reading back its `.wandb` transaction log.

An offline run cannot be queried before `wandb sync`, so `log_throughput.py` counts the history
records in the log itself (a LevelDB-style log: a 7-byte header, then 32 KiB blocks of records).
"""

from __future__ import annotations

import glob
import os
import struct
from pathlib import Path
from typing import Any

_WANDB_BLOCK = 32768  # the .wandb file is a LevelDB-style log: 7-byte file header, then 32 KiB blocks
_WANDB_RECORD_HEADER = struct.Struct("<IHB")  # crc32, length, kind (1 full, 2 first, 3 middle, 4 last)


def offline_env(data_dir: Path) -> None:
    """wandb set up by its environment only: offline, silent, every dir it writes in `data_dir`."""
    os.environ.update(
        WANDB_SILENT="true", WANDB_MODE="offline", WANDB_DIR=str(data_dir), WANDB_CONFIG_DIR=str(data_dir / "config"),
        WANDB_CACHE_DIR=str(data_dir / "cache"), WANDB_DATA_DIR=str(data_dir / "data"),
    )  # fmt: skip


def offline_run_log(data_dir: Path, run_id: str) -> Path:
    """The `.wandb` transaction log of offline run `run_id` under `data_dir` (its run dir is the parent)."""
    logs = glob.glob(str(data_dir / "wandb" / f"offline-run-*-{run_id}" / "*.wandb"))
    if len(logs) != 1:
        raise RuntimeError(f"expected one .wandb file for run {run_id}, found {len(logs)}")
    return Path(logs[0])


def count_wandb_history(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """Steps, and (step, key) values of `keys`, held by the history records of a .wandb transaction log."""
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
    steps, values, wanted = set(), 0, set(keys)
    for raw in records:
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]  # generated, no stubs
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            steps.add(record.history.step.num)
            # an image or table is one item per field (nested_key ["sample", "path"], ...): count its top key once
            top = {item.key or (item.nested_key[0] if item.nested_key else "") for item in record.history.item}
            values += len(top & wanted)
    return {"steps_stored": len(steps), "values_stored": values, "log_bytes": len(data)}
