"""`tracehouse sync --quarantine`: segments set aside in `quarantine/` go back to be read again.

A segment lands in quarantine/ when bytes of it were damaged (its readable frames were stored
and its ack says how far), when a destination refused a range of it for good (a copy of that
range, no ack), or when it is not a spool segment at all. Putting it back in the spool directory
lets the normal ingest read it again: what its ack covers is not sent twice, and damage is
skipped by resyncing. A segment read to its end already, or not ours, stays where it is.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tracehouse.collector.ingest.spool import SEGMENT_MAGIC, SEGMENT_SUFFIX, fsync_directory
from tracehouse.collector.ingest.spool_ingest import QUARANTINE, _Ack


@dataclass
class Requeued:
    """What `requeue_quarantine` did."""

    requeued: list[str] = field(default_factory=list)  # segments put back to be read again
    kept: list[str] = field(default_factory=list)  # read to their end already, or not spool segments


def requeue_quarantine(spool_dir: Path) -> Requeued:
    """Move the segments of `spool_dir/quarantine` that hold unread frames back into `spool_dir`."""
    done = Requeued()
    quarantine = spool_dir / QUARANTINE
    if not quarantine.is_dir():
        return done
    for segment in sorted(quarantine.glob(f"*{SEGMENT_SUFFIX}")):
        if not _worth_reading(segment):
            done.kept.append(segment.name)
            continue
        ack = _Ack.path_for(segment)
        if ack.exists():
            shutil.move(str(ack), str(spool_dir / ack.name))  # first: how far it was read travels with it
        shutil.move(str(segment), str(spool_dir / segment.name))
        done.requeued.append(segment.name)
    if done.requeued:
        fsync_directory(spool_dir)
    return done


def _worth_reading(segment: Path) -> bool:
    try:
        with open(segment, "rb") as handle:
            if handle.read(len(SEGMENT_MAGIC)) != SEGMENT_MAGIC:
                return False
        size = segment.stat().st_size
    except OSError:
        return False
    return _Ack.load(segment).committed < size
