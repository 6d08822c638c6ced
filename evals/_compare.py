"""`th.evals.compare(run_a, run_b)`: per-scorer deltas and the examples whose verdict changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, cast

from tracehouse._errors import NotFoundError

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Comparison:
    """Two evaluations side by side."""

    run_a: str
    run_b: str
    deltas: pd.DataFrame  # scorer, mean_a, mean_b, delta, examples
    changed: pd.DataFrame  # example, scorer, a, b (pass/fail scorers whose verdict flipped)

    def __repr__(self) -> str:
        return f"Comparison({self.run_a} -> {self.run_b}, {len(self.deltas)} scores, {len(self.changed)} changed)"


def _scores(run_id: str, project: Optional[str]) -> pd.DataFrame:
    from tracehouse.reads.reading import read

    frame = read("eval_scores", {"r": run_id}, project)
    if frame.empty:
        raise NotFoundError(f"run {run_id!r} has no evaluation scores (is it an evaluation run of this project?)")
    return cast("pd.DataFrame", frame[frame["error"] == ""])


def compare(run_a: Any, run_b: Any, project: Optional[str] = None) -> Comparison:
    """Compare two evaluation runs (ids or EvalResults) of the same dataset."""
    import pandas as pd

    a_id, b_id = getattr(run_a, "run_id", run_a), getattr(run_b, "run_id", run_b)
    a, b = _scores(str(a_id), project), _scores(str(b_id), project)
    a_means = a.groupby("name")["value"].agg(["mean", "count"])
    b_means = b.groupby("name")["value"].agg(["mean", "count"])
    joined = a_means.add_suffix("_a").join(b_means.add_suffix("_b"), how="outer")
    deltas = pd.DataFrame({
        "scorer": joined.index, "mean_a": joined["mean_a"].values, "mean_b": joined["mean_b"].values,
        "delta": (joined["mean_b"] - joined["mean_a"]).values,
        "examples": joined["count_b"].fillna(0).astype(int).values,
    })  # fmt: skip
    per_a = a.groupby(["example", "name"])["value"].mean()
    per_b = b.groupby(["example", "name"])["value"].mean()
    both = pd.concat([per_a.rename("a"), per_b.rename("b")], axis=1).dropna().reset_index()
    binary = both[both["a"].isin([0.0, 1.0]) & both["b"].isin([0.0, 1.0]) & (both["a"] != both["b"])]
    changed = binary.rename(columns={"name": "scorer"})[["example", "scorer", "a", "b"]].reset_index(drop=True)
    return Comparison(str(a_id), str(b_id), deltas.reset_index(drop=True), changed)
