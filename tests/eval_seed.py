"""Evaluations stored the way users store them: `th.evals.evaluate` in a separate process, sending to
a live collector (`TRACEHOUSE_ENDPOINT`). Two evaluations of one dataset (hostile markup in inputs,
outputs and errors), one of a 60-row dataset (two pages), and a second version of the first dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import run_python

PROJECT = "ui-evals"
HOSTILE_INPUT = "<script>alert('in')</script>"
HOSTILE_OUTPUT = "<script>alert('out')</script>"

_CODE = r"""
import json
import tracehouse as th
from tracehouse import evals

rows = [{"id": "fr", "input": "France", "expected": "Paris"}, {"id": "es", "input": "Spain", "expected": "Madrid"},
        {"id": "xss", "input": "<script>alert('in')</script>", "expected": "<b>bold</b>"},
        {"id": "it", "input": "Italy", "expected": "Rome"}]
capitals = evals.Dataset("capitals", rows)

def baseline(input):
    if input == "Italy":
        raise RuntimeError("model <img src=x onerror=alert(1)> overloaded")
    return {"France": "Paris", "Spain": "Barcelona"}.get(input, "<script>alert('out')</script>")

def improved(**fields):
    return {"France": "Paris", "Spain": "Madrid", "Italy": "Rome"}.get(fields["input"], "<script>alert('out')</script>")

scorers = [evals.exact_match(), evals.string_similarity()]
a = evals.evaluate(baseline, capitals, scorers=scorers, name="baseline", progress=False)
b = evals.evaluate(improved, capitals, scorers=scorers, name="improved", progress=False)
numbers = evals.Dataset("doubles", [{"id": f"n{i:02d}", "input": i, "expected": 2 * i} for i in range(60)])
c = evals.evaluate(lambda input: 2 * input if input % 7 else input, numbers, scorers=[evals.exact_match()],
                   name="doubling", progress=False)
evals.Dataset("capitals", rows + [{"id": "de", "input": "Germany", "expected": "Berlin"}]).push()
th.flush()
print(json.dumps({"a": a.run_id, "b": b.run_id, "c": c.run_id}))
"""


def seed_evals(url: str, data_dir: Path) -> dict[str, Any]:
    """Run the evaluations against the collector at `url`; their run ids (a: baseline, b: improved,
    c: doubling, 60 examples)."""
    env = {"TRACEHOUSE_ENDPOINT": url, "TRACEHOUSE_PROJECT": PROJECT, "TRACEHOUSE_DIR": str(data_dir)}
    done = run_python(_CODE, env=env, timeout=300, clean=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))
