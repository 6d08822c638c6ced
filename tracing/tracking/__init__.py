"""Experiment runs: init/log/config/summary, files, media, the blob store and artifacts."""
