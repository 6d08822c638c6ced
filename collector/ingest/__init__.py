"""The collector's writer (batched inserts) and its write-ahead log."""
