"""Evaluations: datasets, scorers and evaluation runs in the same store (coming with the evals issue)."""

__all__: list[str] = []
