"""Artifacts: versioned files with W&B's API, and logging and reading them back."""
