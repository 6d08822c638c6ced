"""`tracehouse sweep` and `tracehouse agent`: create, control and inspect sweeps, run their trials."""

from __future__ import annotations

import argparse
import logging
from typing import Any

ACTIONS = ("stop", "pause", "resume", "cancel")


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """The `sweep` and `agent` commands."""
    sweep = sub.add_parser(
        "sweep", parents=[common], help="create a sweep from a YAML config, control one, or show its status"
    )
    sweep.add_argument("args", nargs="*", metavar="CONFIG.yaml | status ID", help="a config file, or: status ID")
    control = sweep.add_mutually_exclusive_group()
    for action in ACTIONS:
        control.add_argument(f"--{action}", metavar="ID", help=f"{action} the sweep ID")
    agent = sub.add_parser("agent", parents=[common], help="run a sweep's trials (its command, one child each)")
    agent.add_argument("sweep_id", help="the id `tracehouse sweep` printed")
    agent.add_argument("--count", type=int, help="run at most this many trials")


def run_command(th: Any, args: argparse.Namespace, print_frame: Any, dumps: Any) -> None:
    """Carry out `sweep` or `agent`."""
    if args.command == "agent":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        ran = th.agent(args.sweep_id, count=args.count)
        print(dumps({"sweep_id": args.sweep_id, "trials": ran}) if args.json else
              f"agent ran {ran} trial(s) of sweep {args.sweep_id}")  # fmt: skip
        return
    action = next((a for a in ACTIONS if getattr(args, a)), None)
    if action is not None:
        if args.args:
            raise th.ConfigError("args", f"--{action} takes only the sweep id")
        state = th.sweep_control(getattr(args, action), action)
        print(dumps({"sweep_id": getattr(args, action), "state": state}) if args.json else f"sweep is {state}")
        return
    if len(args.args) == 2 and args.args[0] == "status":
        _status(th, args.args[1], args.json, print_frame, dumps)
        return
    if len(args.args) != 1:
        raise th.ConfigError("args", "expected `sweep CONFIG.yaml`, `sweep status ID` or `sweep --stop ID`")
    sweep_id = th.sweep(args.args[0])
    print(dumps({"sweep_id": sweep_id}) if args.json else sweep_id)


def _status(th: Any, sweep_id: str, as_json: bool, print_frame: Any, dumps: Any) -> None:
    status = th.sweep_status(sweep_id)
    if as_json:
        print(dumps(status))
        return
    counts: dict[str, int] = {}
    for trial in status["trials"]:
        counts[trial["state"]] = counts.get(trial["state"], 0) + 1
    print(f"sweep {sweep_id} ({status['method']}): {status['state']}")
    if status["metric"]:
        print(f"metric: {status['metric']} ({status['goal']})")
    print("trials: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none yet"))
    best = status["best"]
    if best is not None:
        print(f"best: {best['run_id']} {status['metric']}={best['metric']} {best['params']}")
    if status["trials"]:
        print_frame(th.sweep_results(sweep_id), False)
