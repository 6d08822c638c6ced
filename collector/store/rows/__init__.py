"""Records to rows: spans, runs, artifacts, evals, sweeps."""
