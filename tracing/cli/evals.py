"""`tracehouse eval compare A B`: what changed between two evaluation runs."""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """The `eval` command."""
    evaluation = sub.add_parser("eval", help="evaluations: compare two evaluation runs")
    actions = evaluation.add_subparsers(dest="eval_command", required=True, metavar="ACTION")
    compare = actions.add_parser("compare", parents=[common], help="per-scorer deltas and the examples that changed")
    compare.add_argument("run_a", help="the evaluation run to compare from")
    compare.add_argument("run_b", help="the evaluation run to compare to")


def run_command(th: Any, args: argparse.Namespace, format_table: Any, dumps: Any) -> None:
    """Carry out `eval compare`."""
    from tracehouse.evals import compare

    result = compare(args.run_a, args.run_b)
    if args.json:
        print(dumps({"run_a": result.run_a, "run_b": result.run_b, "deltas": result.deltas.to_dict("records"),
                     "changed": result.changed.to_dict("records")}))  # fmt: skip
        return
    print(f"{result.run_a} -> {result.run_b}")
    rows = [[r["scorer"], r["mean_a"], r["mean_b"], f"{r['delta']:+.4f}", r["examples"]]
            for r in result.deltas.to_dict("records")]  # fmt: skip
    print(format_table(["scorer", "mean A", "mean B", "delta", "examples"], rows))
    if result.changed.empty:
        print("no example changed verdict")
        return
    print(f"\n{len(result.changed)} example verdict(s) changed:")
    flips = [[r["example"], r["scorer"], "pass" if r["a"] else "fail", "pass" if r["b"] else "fail"]
             for r in result.changed.to_dict("records")]  # fmt: skip
    print(format_table(["example", "scorer", "A", "B"], flips))
