"""How records leave a process: the spool (write-ahead log) and the path into the embedded store."""

from tracehouse.collector.ingest.spool import SpoolWriter, scan_segment, segment_is_live
from tracehouse.collector.ingest.spool_ingest import IngestReport, SpoolIngester
from tracehouse.exporters._records import SpanRecord

__all__ = ["IngestReport", "SpanRecord", "SpoolIngester", "SpoolWriter", "scan_segment", "segment_is_live"]
