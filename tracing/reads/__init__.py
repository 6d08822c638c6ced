"""Reading the store: SQL and the common questions, here, through the store's owner or a collector."""
