"""How records leave a process: the spool (write-ahead log) and the path into the embedded store."""

from ._ingest import IngestReport, SpoolIngester
from ._records import SpanRecord
from ._spool import SpoolWriter, scan_segment, segment_is_live

__all__ = ["IngestReport", "SpanRecord", "SpoolIngester", "SpoolWriter", "scan_segment", "segment_is_live"]
