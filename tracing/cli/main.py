"""The `tracehouse` command line: query, traces, trace, latency, sync."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Optional, Sequence

import orjson

from tracehouse._errors import TracehouseError
from tracehouse._numbers import is_unknown
from tracehouse.cli.evals import add_parsers as add_eval_parsers
from tracehouse.cli.evals import run_command as run_eval_command
from tracehouse.cli.parsing import Parser, port_number, refuse
from tracehouse.cli.sweeps import add_parsers as add_sweep_parsers
from tracehouse.cli.sweeps import run_command as run_sweep_command

_MAX_CELL = 60


def _cell(value: Any) -> str:
    if is_unknown(value):  # a count or cost the store does not have: blank, never 0
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e-3 and value else f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    text = str(value).replace("\n", " ")
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain fixed-width text table."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        padded = (v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True))
        return "  ".join(padded).rstrip()

    out = [line(list(columns)), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) or value is None


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode()


def _frame_records(frame: Any) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return records


def _print_frame(frame: Any, as_json: bool) -> None:
    records = _frame_records(frame)
    if as_json:
        print(_dumps(records))
    elif not records:
        print("(no rows)")
    else:
        columns = list(frame.columns)
        print(format_table(columns, [[r[c] for c in columns] for r in records]))


def format_tree(node: dict[str, Any], prefix: str = "", last: bool = True, root: bool = True) -> list[str]:
    """A span tree as indented lines: name, kind, duration, status, model, tokens, input preview."""
    parts = [str(node.get("name"))]
    if node.get("kind"):
        parts.append(f"[{node['kind']}]")
    if node.get("duration_ms") is not None:
        parts.append(f"{node['duration_ms']:.2f} ms")
    if node.get("status") == "error":
        parts.append(f"ERROR {node.get('status_message') or ''}".rstrip())
    if node.get("model"):
        parts.append(f"model={node['model']}")
    if node.get("total_tokens") is not None:
        parts.append(f"tokens={node['total_tokens']}")
    if node.get("input"):
        parts.append(f"in={_cell(node['input'])}")
    if node.get("output"):
        parts.append(f"out={_cell(node['output'])}")
    connector = "" if root else ("└─ " if last else "├─ ")
    lines = [prefix + connector + " ".join(parts)]
    children = node.get("children") or []
    child_prefix = prefix if root else prefix + ("   " if last else "│  ")
    for i, child in enumerate(children):
        lines.extend(format_tree(child, child_prefix, i == len(children) - 1, root=False))
    return lines


def _parse_params(pairs: Sequence[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"tracehouse: --param expects NAME=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        params[key] = value
    return params


def _add_server_parsers(sub: Any) -> None:
    """`serve`, `ui` and `keys`: the commands of the collector and its store."""
    srv = sub.add_parser("serve", help="run the collector: OTLP/HTTP, REST API, the one writer of the store")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    srv.add_argument("--port", type=port_number, default=4318, help="port (default 4318, OTLP/HTTP's)")
    srv.add_argument("--grpc-port", type=port_number, default=4317, help="OTLP/gRPC port (default 4317; 0: off)")
    srv.add_argument("--forward-otlp", metavar="URL", help="tee what is received to this OTLP/HTTP endpoint")
    srv.add_argument("--data-dir", help="data directory: local spool and embedded store (default TRACEHOUSE_DIR)")
    srv.add_argument("--clickhouse", metavar="URL", help="a ClickHouse server instead of the embedded store")
    srv.add_argument("--database", help="ClickHouse database (default TRACEHOUSE_DATABASE or tracehouse)")
    srv.add_argument("--project", help="project for spans that do not name one (default TRACEHOUSE_PROJECT)")
    srv.add_argument("--require-keys", action="store_true", help="every data request needs an API key")
    srv.add_argument("--insecure", action="store_true", help="allow binding a non-loopback address without keys")
    srv.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                     help="a Host name to answer besides loopback and --host (repeatable; '*' for any)")  # fmt: skip

    ui = sub.add_parser("ui", help="open the web UI on the local store (a collector on loopback)")
    ui.add_argument("--port", type=port_number, default=4318, help="port (default 4318)")
    ui.add_argument("--data-dir", help="data directory (default TRACEHOUSE_DIR)")
    ui.add_argument("--no-browser", action="store_true", help="only print the address")

    keys = sub.add_parser("keys", help="API keys of the collector: create, list, revoke")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = keys_sub.add_parser("create", help="create a key and print it (shown once)")
    scope = create.add_mutually_exclusive_group(required=True)
    scope.add_argument("--project", help="the one project the key may write and read")
    scope.add_argument("--admin", action="store_true", help="a key that may do everything")
    create.add_argument("--name", default="", help="a label for the key")
    keys_sub.add_parser("list", help="list keys (never their secrets)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    for action in (create, *(keys_sub.choices[n] for n in ("list", "revoke"))):
        action.add_argument("--data-dir", help="data directory of the store (default TRACEHOUSE_DIR)")
        action.add_argument("--json", action="store_true", help="print JSON")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed so the docs test can list every command)."""
    from tracehouse._version import VERSION

    parser = Parser(prog="tracehouse", description="Traces, runs, sweeps and evaluations in a tracehouse store.")
    parser.add_argument("--version", action="version", version=f"tracehouse {VERSION}")
    store = Parser(add_help=False)  # commands over the whole store (every project)
    store.add_argument("--data-dir", help="data directory (default: TRACEHOUSE_DIR or ~/.tracehouse)")
    store.add_argument("--json", action="store_true", help="print JSON instead of a table")
    common = Parser(add_help=False, parents=[store])  # commands about one project
    common.add_argument("--project", help="project (default: TRACEHOUSE_PROJECT or 'default')")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    q = sub.add_parser("query", parents=[store], help="run SQL against the store (every project: filter on `project`)")
    q.add_argument("sql", help="SQL; bind values as {name:Type} with --param name=value")
    q.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a query parameter")
    q.add_argument("--max-rows", type=int, default=1_000_000, help="refuse results over this many rows (1,000,000)")
    q.add_argument("--timeout", type=float, default=60.0, help="stop the query after this many seconds (60)")
    refuse(q, "--project", "SQL reads every project; filter with WHERE project = '...'")

    t = sub.add_parser("traces", parents=[common], help="list recent traces")
    t.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    t.add_argument("--since", help="time window such as 15m, 1h, 7d (default 24h)")
    t.add_argument("--start", help="window start instead of --since: ISO 8601 time or epoch milliseconds")
    t.add_argument("--end", help="window end (with --start or a --since duration before it; default now)")
    t.add_argument("--name", help="only traces containing a span of this name")
    t.add_argument("--status", choices=["ok", "error"], help="only traces with this status")

    one = sub.add_parser("trace", parents=[common], help="show one trace as a tree")
    one.add_argument("trace_id", help="32 hex digits")

    lat = sub.add_parser("latency", parents=[common], help="latency percentiles, errors, tokens and cost per group")
    lat.add_argument(
        "--by", default="name", choices=["name", "model", "kind", "service"], help="group by (default name)"
    )
    lat.add_argument("--since", help="time window such as 15m, 1h, 7d (default 1h)")
    lat.add_argument("--start", help="window start instead of --since: ISO 8601 time or epoch milliseconds")
    lat.add_argument("--end", help="window end (with --start or a --since duration before it; default now)")

    sync = sub.add_parser(
        "sync", parents=[store], help="deliver what is left in the spool, and offline runs, to the store or collector"
    )
    sync.add_argument(
        "--quarantine", action="store_true",
        help="also read again the segments set aside in the spool's quarantine/ (damaged, or refused by the collector)",
    )  # fmt: skip
    refuse(sync, "--project", "sync delivers every project's records")
    sync.add_argument("paths", nargs="*", metavar="DIR",
                      help="other data dirs (or spool dirs) to deliver, as `wandb sync DIR` does")  # fmt: skip
    modes = (("offline", "runs started from this data dir stay on this machine until `tracehouse sync`"),
             ("online", "runs started from this data dir are delivered as they log (the default)"))  # fmt: skip
    for mode, what in modes:
        sub.add_parser(mode, parents=[store], help=what)

    sub.add_parser("runs", parents=[common], help="list the project's runs: state, config and summary")
    one_run = sub.add_parser("run", parents=[common], help="show one run: config, summary, last metrics")
    one_run.add_argument("run_id", help="the run's id")

    art = sub.add_parser("artifact", help="artifacts: download a version, list them")
    art_sub = art.add_subparsers(dest="artifact_command", required=True, metavar="ACTION")
    get = art_sub.add_parser("get", parents=[common], help="download a version and verify it")
    get.add_argument("spec", metavar="NAME:ALIAS", help="name:latest, name:v3, name:best or project/name:alias")
    get.add_argument("--root", help="directory to download into (default ./artifacts/NAME:VERSION)")
    get.add_argument("--allow-local-references", action="store_true",
                     help="copy file:// references from this machine too")  # fmt: skip
    art_sub.add_parser("list", parents=[common], help="list artifacts: versions, aliases, sizes")
    add_sweep_parsers(sub, common)
    add_eval_parsers(sub, common)

    _add_server_parsers(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the `tracehouse` command."""
    args = build_parser().parse_args(argv)
    import tracehouse as th

    try:
        if args.command == "serve":
            return _serve(th, args)
        if args.command == "ui":
            return _ui(th, args)
        _check_data_dir(th, args)
        if args.command == "keys":
            return _keys(th, args)
        if args.data_dir or getattr(args, "project", None):
            th.configure(data_dir=args.data_dir, project=getattr(args, "project", None))
        return _run(th, args)
    except TracehouseError as error:
        print(f"tracehouse: {_one_line(error)}", file=sys.stderr)
        return 1


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _check_data_dir(th: Any, args: argparse.Namespace) -> None:
    """A command that reads must not create a data dir by a typo: a --data-dir that is not there is an error
    (`sync` and the writing commands may start one)."""
    data_dir = getattr(args, "data_dir", None)
    writes = args.command in ("sync", "agent") or getattr(args, "keys_command", None) == "create"
    if data_dir and not writes and not Path(data_dir).expanduser().is_dir():
        raise th.ConfigError("--data-dir", f"{data_dir!r} is not a directory (no tracehouse data there)")


def _serve(th: Any, args: argparse.Namespace, announce: Any = None) -> int:
    from tracehouse.collector.server import ServeOptions, is_loopback, serve

    require_keys = args.require_keys or (not is_loopback(args.host) and not args.insecure)
    settings = th.configure(
        data_dir=args.data_dir, clickhouse_url=args.clickhouse, database=args.database, project=args.project,
        endpoint="",
    )  # fmt: skip
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    serve(
        ServeOptions(
            host=args.host, port=args.port, store_url=settings.store_url, database=settings.database,
            spool_dir=settings.spool_dir, default_project=settings.project, require_keys=require_keys,
            blob_location=settings.blob_location, allowed_hosts=tuple(args.allowed_host),
            grpc_port=args.grpc_port, forward_otlp=args.forward_otlp or "",
        ),
        announce,
    )  # fmt: skip
    return 0


def _ui(th: Any, args: argparse.Namespace) -> int:
    """`tracehouse ui`: the collector on loopback over the local data dir, and a browser on its pages."""
    import threading
    import webbrowser

    from tracehouse.collector.owner.ownership import chdb_path, read_advertisement

    settings = th.configure(data_dir=args.data_dir) if args.data_dir else th.get_settings()
    path = chdb_path(settings.store_url)
    running = read_advertisement(path) if path is not None else None
    if running is not None and running.kind == "collector":
        print(f"tracehouse UI already running at {running.url}/ (pid {running.pid})", flush=True)
        if not args.no_browser:
            webbrowser.open(f"{running.url}/")
        return 0

    def announce(base: str) -> None:  # once the port is bound: never a URL that is about to fail
        url = f"{base}/"
        print(f"tracehouse UI at {url} (Ctrl-C stops it)", flush=True)
        if not args.no_browser:
            threading.Timer(1.0, webbrowser.open, (url,)).start()

    return _serve(
        th,
        argparse.Namespace(
            host="127.0.0.1",
            port=args.port,
            data_dir=args.data_dir,
            clickhouse=None,
            database=None,
            project=None,
            require_keys=False,
            insecure=False,
            allowed_host=[],
            grpc_port=0,
            forward_otlp=None,
        ),
        announce,
    )


def _keys(th: Any, args: argparse.Namespace) -> int:
    """Keys live in the store: through the collector's API when an endpoint (and admin key) is set,
    else in the store, through its owner when another process (`tracehouse ui`, say) holds it."""
    from tracehouse.reads.reading import api_keys

    if args.data_dir:
        th.configure(data_dir=args.data_dir)
    if args.keys_command == "create":
        answer = api_keys("create", project=None if args.admin else args.project, name=args.name)
    elif args.keys_command == "list":
        answer = api_keys("list")
    else:
        answer = api_keys("revoke", key_id=args.key_id)
    if args.json:
        print(_dumps(answer))
    elif args.keys_command == "create":
        scope = "admin" if answer["admin"] else f"project {answer['project']!r}"
        print(f"{answer['key']}\n(key {answer['key_id']} for {scope}; this is the only time it is shown)")
    elif args.keys_command == "list":
        rows = answer["keys"]
        columns = ["key_id", "name", "project", "admin", "created_at", "revoked"]
        print(format_table(columns, [[r[c] for c in columns] for r in rows]) if rows else "(no keys)")
    else:
        print(f"revoked {answer['revoked']}")
    return 0


def _window(args: argparse.Namespace) -> dict[str, Any]:
    """--since / --start / --end as the read's window arguments (only those given)."""
    return {k: getattr(args, k) for k in ("since", "start", "end") if getattr(args, k) is not None}


def _run(th: Any, args: argparse.Namespace) -> int:
    if args.command == "query":
        frame = th.query(args.sql, _parse_params(args.param), max_rows=args.max_rows, timeout=args.timeout)
        _print_frame(frame, args.json)
    elif args.command == "traces":
        frame = th.traces(limit=args.limit, name=args.name, status=args.status, **_window(args))
        _print_frame(frame, args.json)
    elif args.command == "trace":
        tree = th.trace_tree(args.trace_id)
        print(_dumps(tree) if args.json else "\n".join(format_tree(tree)))
    elif args.command == "latency":
        _print_frame(th.latency(by=args.by, **_window(args)), args.json)
    elif args.command == "runs":
        frame = th.runs()
        hidden = ("tags", "group", "job_type", "notes", "entity", "heartbeat_at")
        columns = [c for c in frame.columns if c not in hidden]
        _print_frame(frame[columns] if not args.json else frame, args.json)
    elif args.command == "run":
        _show_run(th, args.run_id, args.json)
    elif args.command == "artifact":
        _artifact(th, args)
    elif args.command in ("sweep", "agent"):
        run_sweep_command(th, args, _print_frame, _dumps)
    elif args.command == "eval":
        run_eval_command(th, args, format_table, _dumps)
    elif args.command in ("offline", "online"):
        _set_mode(th, args.command, args.json)
    elif args.command == "sync":
        report = _sync(th, args.paths, args.quarantine)
        summary = {"rows": report.rows, "segments": report.segments_done, "rejected": report.rejected,
                   "requeued": report.requeued, "damaged_bytes": report.damaged_bytes,
                   "set_aside": report.set_aside}  # fmt: skip
        if args.json:
            print(_dumps({**summary, "problems": report.problems}))
        else:
            settings = th.get_settings()
            verb, target = (
                ("sent", f"to the collector at {settings.endpoint}")
                if settings.endpoint
                else ("ingested", f"into {settings.store_url}")
            )
            print(f"{verb} {report.rows} records from {report.segments_done} finished segment(s) {target}")
            if args.quarantine:
                print(f"  {report.requeued} quarantined segment(s) read again")
            if report.damaged_bytes or report.set_aside:
                print(f"  {report.damaged_bytes} damaged byte(s) skipped, {report.set_aside} refused range(s) set aside"
                      " in quarantine/ (`tracehouse sync --quarantine` reads them again)")  # fmt: skip
            for problem in report.problems:
                print(f"  warning: {problem}")
    return 0


def _set_mode(th: Any, mode: str, as_json: bool) -> None:
    """`tracehouse offline|online`: the mode of runs started from this data dir (W&B's `wandb offline`);
    `mode=` and TRACEHOUSE_MODE still win."""
    from tracehouse.tracking.session import MODE_FILE

    settings = th.get_settings()
    path = settings.data_dir / MODE_FILE
    if mode == "offline":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text("offline\n")
    else:
        path.unlink(missing_ok=True)
    print(_dumps({"mode": mode, "data_dir": str(settings.data_dir)}) if as_json else
          f"runs started from {settings.data_dir} are {mode}" + (" until `tracehouse online`; "
          "`tracehouse sync` delivers them" if mode == "offline" else ""))  # fmt: skip


def _sync(th: Any, paths: list[str], quarantine: bool) -> Any:
    """`th.sync()` here, or for each of `paths` (W&B's `wandb sync DIR`): a data dir, or a spool dir."""
    if not paths:
        return th.sync(quarantine=quarantine)
    from tracehouse.collector.ingest.spool_ingest import IngestReport
    from tracehouse.reads.reading import sync_dir

    total = IngestReport()
    for path in paths:
        directory = Path(path).expanduser()
        if not directory.is_dir():
            raise th.ConfigError("sync", f"{path!r} is not a directory")
        total.merge(sync_dir(directory, quarantine=quarantine))
    return total


def _artifact(th: Any, args: argparse.Namespace) -> None:
    from tracehouse.reads.reading import read

    if args.artifact_command == "list":
        _print_frame(read("artifacts", {}), args.json)
        return
    artifact = th.use_artifact(args.spec, project=th.get_settings().project)
    root = artifact.download(args.root, allow_local_references=args.allow_local_references)
    artifact.verify(root)
    if args.json:
        print(_dumps({"artifact": artifact.qualified_name, "root": root, "files": artifact.files()}))
    else:
        print(f"{artifact.qualified_name} ({len(artifact.files())} files, verified) -> {root}")


def _show_run(th: Any, run_id: str, as_json: bool) -> None:
    from tracehouse.reads.reading import read, run_project

    project = run_project(run_id)  # the run's project, found by its id when it is not this one
    frame = th.runs(project=project)
    row = _frame_records(frame[frame["run_id"] == run_id])[0]
    history = th.history(run_id, project=project)
    last = _frame_records(history.tail(1))[0] if not history.empty else {}
    info: dict[str, Any] = {
        "run": {k: v for k, v in row.items() if not k.startswith(("config.", "summary."))},
        "config": {k[len("config.") :]: v for k, v in row.items() if k.startswith("config.") and v is not None},
        "summary": {k[len("summary.") :]: v for k, v in row.items() if k.startswith("summary.") and v is not None},
        "last_step": last,
        "steps": len(history),
        "files": _frame_records(read("run_files", {"r": run_id}, project).drop(columns=["blob"], errors="ignore")),
        "artifacts": _frame_records(read("run_artifacts", {"r": run_id}, project)),
    }
    if as_json:
        print(_dumps(info))
        return
    for title in ("run", "config", "summary", "last_step"):
        print(f"{title}:")
        section: dict[str, Any] = info[title]
        for key, value in section.items():
            print(f"  {key}: {value}")
    print(f"steps: {info['steps']}")
    for title in ("files", "artifacts"):
        rows: list[dict[str, Any]] = info[title]
        print(f"{title}:" + ("" if rows else " (none)"))
        for item in rows:
            print("  " + "  ".join(str(v) for v in item.values()))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
