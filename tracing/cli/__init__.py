"""The `tracehouse` command line."""
