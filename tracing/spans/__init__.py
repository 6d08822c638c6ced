"""Tracing: settings, the process runtime, spans, the @trace decorator, payload capture."""
