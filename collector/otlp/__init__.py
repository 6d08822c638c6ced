"""OTLP/HTTP decoding (protobuf, JSON) and the attribute conventions of the ecosystems accepted."""
