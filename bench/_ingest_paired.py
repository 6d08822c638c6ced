"""Part grpc of bench/ingest.py: OTLP/gRPC against OTLP/HTTP in ABBA order on one collector.

One run after the other on the same collector is not a fair comparison: the second run meets a store
that already holds the first run's rows (and perhaps its merges), and on a shared VM the host's steal
time drifts over a minute. So the part runs gRPC twice and HTTP once more after part 1's HTTP run, in the
order HTTP (part 1), gRPC, gRPC, HTTP: a drift that is linear in time adds the same to both sides. Each
run sends its own freshly built 200,000 spans (its own project and span ids) with the same number of
client threads; every run but part 1 starts once the collector is idle (`settle`). The target compares
the mean spans/s of the two gRPC runs with the mean of the two HTTP runs.
"""

from __future__ import annotations

from statistics import mean
from typing import Any, Optional

from _common import progress
from _ingest_clients import part_collector
from _ingest_collector import CollectorProcess
from _ingest_grpc import part_grpc, settle
from _ingest_workload import prebuild

# after part 1 (HTTP, project "ingest"): (protocol, project, first span number as a multiple of --spans);
# 1 is part mixed's
PAIRED_RUNS = (("grpc", "grpc", 2), ("grpc", "grpc2", 3), ("http", "http2", 4))


def _summary(protocol: str, project: str, result: dict[str, Any]) -> dict[str, Any]:
    keys = ("spans_per_second", "seconds", "stored", "dropped", "rejected_spans", "collector_cpu_seconds")
    return {"protocol": protocol, "project": project, **{key: result.get(key) for key in keys}}


def part_grpc_paired(
    collector: CollectorProcess, spans: int, batch: int, clients: int, first_http: Optional[dict[str, Any]]
) -> dict[str, Any]:
    """The gRPC runs (the first one's full result, as part grpc reports it) plus every run's summary and
    the two sides' means. `first_http` is part 1's result (None when part 1 did not run)."""
    runs = [] if first_http is None or "skipped" in first_http else [_summary("http", "ingest", first_http)]
    first_grpc: Optional[dict[str, Any]] = None
    for protocol, project, first in PAIRED_RUNS:
        progress(f"part grpc: building {spans:,} spans of project {project} (not timed), then {protocol} ...")
        bodies, sizes = prebuild(spans, batch, project=project, first=first * spans)
        if protocol == "grpc":
            result = part_grpc(collector, bodies, sizes, clients, project)
            first_grpc = first_grpc or result
        else:
            settled = settle(collector.process.pid if collector.process is not None else 0)
            result = {**part_collector(collector, bodies, sizes, clients, project), "settle_seconds": settled}
        del bodies
        runs.append(_summary(protocol, project, result))
    assert first_grpc is not None
    return {**first_grpc, "runs": runs, **_means(runs)}


def _means(runs: list[dict[str, Any]]) -> dict[str, Optional[float]]:
    def side(protocol: str) -> Optional[float]:
        rates = [run.get("spans_per_second") for run in runs if run["protocol"] == protocol]
        return mean(rates) if rates and all(rate is not None for rate in rates) else None  # type: ignore[arg-type]

    return {"grpc_mean_spans_per_second": side("grpc"), "http_mean_spans_per_second": side("http")}


def paired_detail(part: dict[str, Any]) -> list[str]:
    """The report's lines on the ABBA runs."""
    order = " | ".join(
        f"{run['protocol']} {run['project']} {run['spans_per_second']:,.0f}"
        if run.get("spans_per_second") is not None else f"{run['protocol']} {run['project']} n/a"
        for run in part["runs"]
    )  # fmt: skip
    grpc, http = part["grpc_mean_spans_per_second"], part["http_mean_spans_per_second"]
    means = "n/a" if grpc is None or http is None else f"gRPC {grpc:,.0f} vs HTTP {http:,.0f} ({grpc / http:.2f}x)"
    return [f"gRPC vs HTTP, ABBA order on one collector (spans/s): {order}; means {means}"]


__all__ = ["PAIRED_RUNS", "paired_detail", "part_grpc_paired"]
