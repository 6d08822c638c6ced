"""Evaluations: datasets, scorers and evaluation runs in the same store as traces and runs.

```python
from tracehouse import evals

data = evals.Dataset("capitals", [{"input": "France", "expected": "Paris"}])
result = evals.evaluate(answer, data, scorers=[evals.exact_match(), evals.contains()])
evals.compare(before, result)
```
"""

from tracehouse.evals._compare import Comparison, compare
from tracehouse.evals._dataset import Dataset
from tracehouse.evals._runner import EvalResult, evaluate, evaluate_async
from tracehouse.evals._scorers import (
    Scorer,
    contains,
    embedding_similarity,
    exact_match,
    json_schema,
    json_valid,
    llm_judge,
    numeric_close,
    regex,
    scorer,
    string_similarity,
)

__all__ = [
    "Comparison",
    "Dataset",
    "EvalResult",
    "Scorer",
    "compare",
    "contains",
    "embedding_similarity",
    "evaluate",
    "evaluate_async",
    "exact_match",
    "json_schema",
    "json_valid",
    "llm_judge",
    "numeric_close",
    "regex",
    "scorer",
    "string_similarity",
]
