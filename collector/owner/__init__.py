"""The owner of an embedded store: its advertisement, the operations it runs for others, its server."""
