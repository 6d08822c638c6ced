"""The collector's OTLP/gRPC receiver (traces, logs, metrics on port 4317 beside OTLP/HTTP on 4318)."""
