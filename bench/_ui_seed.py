"""The synthetic store of `ui.py`: spans inserted with one INSERT ... SELECT, a few runs and a sweep.

`child_seed` runs in a fresh interpreter on its own data dir (chDB serves one per process); the
parent then serves that data dir with `tracehouse serve` and times the pages.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from _common import own_peak_rss_mb

PROJECT = "bench"

# ---------------------------------------------------------------------------------------------
TOPICS = ["refund", "password reset", "invoice", "shipping delay", "API rate limits", "SSO setup", "data export",
          "billing address", "account deletion", "webhook retries", "two-factor login", "plan upgrade",
          "team invitations", "usage quotas", "audit logs", "CSV import", "mobile app sync", "email notifications",
          "custom domains", "GDPR request"]  # fmt: skip
DOCS = [f"Doc {k}: to change {TOPICS[k % len(TOPICS)]} open Settings > Account and follow the steps; it takes effect "
        "within minutes for every member of the workspace." for k in range(30)]  # fmt: skip
SYSTEM_PROMPT = ("You are a helpful support assistant for Acme Cloud. Answer briefly, cite the documents you use, "
                 "never invent policy. ") * 3  # fmt: skip
ANSWER_BODY = ("Open Settings, choose the relevant section and follow the steps shown there; if it still fails, "
               "reply to this message with a screenshot and we will look into it.")  # fmt: skip

# Innermost: one row per trace (ids, size, start, child durations, model, topic); middle: one row per span
# (arrayJoin); outer: the span's columns. Child spans run one after the other inside the root.
SEED_SQL = """
INSERT INTO spans (project, trace_id, span_id, parent_span_id, name, kind, span_kind, service_name, scope_name,
                   start_time, end_time, duration_ms, status, status_message, input, input_size, input_preview,
                   output, output_size, output_preview, context, model, provider, input_tokens, output_tokens,
                   total_tokens, cost_usd, attributes, resource_attributes, session_id, user_id)
SELECT
    {project:String}, trace_id, span_id, if(i = 0, '', root_id), name, kind, if(i = 0, 'SERVER', 'INTERNAL'),
    'support-bot', 'bench', start_time, addMicroseconds(start_time, toInt64(duration_ms * 1000)), duration_ms,
    status, if(status = 'error', error_message, ''), input, length(input), substringUTF8(input, 1, 200),
    output, length(output), substringUTF8(output, 1, 200), context, model, provider, in_tokens, out_tokens,
    in_tokens + out_tokens, cost, attributes, map('service.name', 'support-bot'),
    if(i = 0, concat('s-', toString(intDiv(t, 5))), ''), if(i = 0, concat('u-', toString(t % 2000)), '')  -- on the root
FROM (
    SELECT
        t, trace_id, root_id, question, topic, docs, n, i, trace_start,
        lower(hex(cityHash64(t, i, 11))) AS span_id,
        multiIf(i = 0, root_name, i = 1, 'retrieve', i = 3, if(t % 2 = 0, 'rerank', 'lookup_order'),
                i = 2, 'generate', 'refine') AS name,
        multiIf(i = 0, if(root_name = 'draft_reply', 'agent', 'chain'), i = 1, 'retriever',
                i = 3, if(t % 2 = 0, 'reranker', 'tool'), 'llm') AS kind,
        kind = 'llm' AS is_llm,
        if(i = 0, arraySum(child_ms) + 2 + (cityHash64(t, 12) % 5), child_ms[i]) AS duration_ms,
        addMicroseconds(trace_start, toInt64(if(i = 0, 0, 1000 + arraySum(arraySlice(child_ms, 1, i - 1)) * 1000)))
            AS start_time,
        if(cityHash64(t, i, 13) % 50 = 0, 'error', 'ok') AS status,
        multiIf(kind = 'llm', 'RateLimitError: 429 Too Many Requests', kind = 'tool', 'TimeoutError: order service',
                kind = 'retriever', 'ConnectionError: vector store', 'upstream step failed') AS error_message,
        if(is_llm, trace_model, '') AS model,
        multiIf(model = '', '', model LIKE 'gpt%', 'openai', model LIKE 'claude%', 'anthropic', 'groq') AS provider,
        if(is_llm, toUInt64(300 + cityHash64(t, i, 14) % 3500), NULL) AS in_tokens,
        if(is_llm, toUInt64(20 + cityHash64(t, i, 15) % 700), NULL) AS out_tokens,
        if(is_llm, (in_tokens * price_in + out_tokens * price_out) / 1e6, NULL) AS cost,
        multiIf(
            i <= 1, question,
            kind = 'llm', concat('[{"role": "system", "content": "', system_prompt, '"}, {"role": "user", "content": "',
                                 question, ' Context: ', arrayStringConcat(docs, ' '), '"}]'),
            kind = 'reranker', concat('{"query": "', question, '", "documents": 12}'),
            concat('{"order_id": "A-', toString(10000 + t % 90000), '"}')) AS input,
        multiIf(
            i = 1, concat('["', arrayStringConcat(docs, '", "'), '"]'),
            kind = 'tool', concat('{"status": "shipped", "carrier": "DHL", "eta_days": ', toString(t % 7), '}'),
            kind = 'reranker', '[3, 0, 7]',
            status = 'error', '',
            concat(answer_start, ' ', topic, '. ', answer_body, ' (ticket ', toString(t), ')')) AS output,
        if(i = 1, output, '') AS context,
        if(is_llm, map('gen_ai.request.model', model, 'gen_ai.system', provider), map()) AS attributes
    FROM (
        SELECT
            t, trace_id, root_id, n, trace_start, child_ms, trace_model, price_in, price_out, topic, docs,
            root_name, system_prompt, answer_start, answer_body,
            concat(['How do I', 'Can you help with', 'Why does my account show', 'What is the policy on',
                    'I have a problem with'][1 + cityHash64(t, 16) % 5], ' ', topic, '? Customer ',
                   toString(1000 + t % 9000), ' on plan ', ['free', 'pro', 'team', 'enterprise'][1 + t % 4], '.')
                AS question,
            arrayJoin(range(n)) AS i
        FROM (
            SELECT
                number AS t,
                lower(concat(hex(cityHash64(number, 1)), hex(cityHash64(number, 2)))) AS trace_id,
                lower(hex(cityHash64(number, 3))) AS root_id,
                3 + cityHash64(number, 4) % 3 AS n,
                subtractMicroseconds(now64(9, 'UTC'),
                    toInt64(60e6 + (number + (cityHash64(number, 5) % 1000) / 1000) * {step_us:Float64}))
                    AS trace_start,
                arrayMap(j -> round(if(j IN (2, 4), 150 + pow((cityHash64(number, j, 6) % 10000) / 10000, 3) * 6000,
                                       3 + (cityHash64(number, j, 7) % 10000) / 50), 3), range(1, n)) AS child_ms,
                multiIf(cityHash64(number, 8) % 100 < 45, 'gpt-4o-mini', cityHash64(number, 8) % 100 < 70, 'gpt-4o',
                        cityHash64(number, 8) % 100 < 90, 'claude-sonnet-4', 'llama-3.1-70b') AS trace_model,
                multiIf(trace_model = 'gpt-4o-mini', 0.15, trace_model = 'gpt-4o', 2.5,
                        trace_model = 'claude-sonnet-4', 3.0, 0.6) AS price_in,
                multiIf(trace_model = 'gpt-4o-mini', 0.6, trace_model = 'gpt-4o', 10.0,
                        trace_model = 'claude-sonnet-4', 15.0, 0.8) AS price_out,
                {topics:Array(String)}[1 + cityHash64(number, 9) % length({topics:Array(String)})] AS topic,
                arrayMap(k -> {docs:Array(String)}[1 + cityHash64(number, k, 10) % length({docs:Array(String)})],
                         range(3)) AS docs,
                ['support_answer', 'summarize_ticket', 'classify_intent', 'draft_reply'][1 + number % 4] AS root_name,
                {system_prompt:String} AS system_prompt,
                ['Sure, here is how to handle', 'Thanks for reaching out about', 'Good question about',
                 'I am sorry for the trouble with'][1 + cityHash64(number, 17) % 4] AS answer_start,
                {answer_body:String} AS answer_body
            FROM numbers({traces:UInt64})
        )
    )
)
LIMIT {spans:UInt64}
"""

_STATS_SQL = """
SELECT count(), uniqExact(trace_id), countIf(status = 'error') / count(), uniqExact(name), uniqExact(model),
       toUnixTimestamp64Milli(now64(3)) - toUnixTimestamp64Milli(min(start_time)), avg(input_size), avg(output_size)
FROM spans WHERE project = {p:String}
"""


def _train() -> None:
    import tracehouse as th

    with th.init() as run:
        for step in range(20):
            run.log({"loss": run.config.lr * run.config.layers / (step + 1)})


# a feedback score on one root in ten (what `sort=score:helpful` sorts by)
SCORES_SQL = """
INSERT INTO scores (project, score_id, target_type, trace_id, span_id, run_id, name, value, string_value, comment,
                    source, created_at)
SELECT {p:String}, concat('bench-', trace_id), 'trace', trace_id, '', '', 'helpful',
       (cityHash64(trace_id) % 101) / 100, '', '', 'feedback', now64(6)
FROM spans WHERE project = {p:String} AND parent_span_id = '' AND cityHash64(trace_id) % 10 = 0
"""


def _seed_evals(examples: int) -> dict[str, Any]:
    """Two evaluations of one dataset (`examples` support questions), for the eval, compare and dataset pages."""
    from tracehouse import evals

    rows = [{"id": f"q{i:04d}", "input": f"How do I change {TOPICS[i % len(TOPICS)]}? ({i})",
             "expected": f"Open Settings > {TOPICS[i % len(TOPICS)]}"} for i in range(examples)]  # fmt: skip
    dataset = evals.Dataset("support-questions", rows)

    def baseline(input: str) -> str:
        return f"Open Settings > {input.split('change ')[1].split('?')[0]}" if len(input) % 3 else "Ask support."

    def improved(**fields: Any) -> str:
        return f"Open Settings > {fields['input'].split('change ')[1].split('?')[0]}"

    scorers = [evals.exact_match(), evals.string_similarity()]
    first = evals.evaluate(baseline, dataset, scorers=scorers, name="baseline", progress=False)
    second = evals.evaluate(improved, dataset, scorers=scorers, name="improved", progress=False)
    return {"eval_run_ids": [first.run_id, second.run_id], "eval_examples": examples, "dataset": "support-questions"}


def child_seed(args: argparse.Namespace) -> dict[str, Any]:
    """Insert the synthetic spans and scores, then the runs, a small sweep and two evaluations; the store
    is released on exit."""
    import os

    os.environ["TRACEHOUSE_SILENT"] = "1"  # a thousand runs: no line per run
    import tracehouse as th
    from tracehouse.reads.reading import get_store

    th.configure(data_dir=Path(args.data_dir), project=PROJECT)
    t0 = time.perf_counter()
    store = get_store()
    t1 = time.perf_counter()
    traces = args.spans // 4 + 16  # 3-5 spans, 4 on average; LIMIT cuts the excess
    store.command(SEED_SQL, {
        "project": PROJECT, "step_us": 23.5 * 3600e6 / traces, "traces": traces, "spans": args.spans,
        "topics": TOPICS, "docs": DOCS, "system_prompt": SYSTEM_PROMPT, "answer_body": ANSWER_BODY,
    })  # fmt: skip
    t2 = time.perf_counter()
    _, rows = store.query_rows(_STATS_SQL, {"p": PROJECT})
    spans, traces_n, error_rate, names, models, oldest_ms, input_avg, output_avg = rows[0]
    _, sizes = store.query_rows(
        "SELECT sum(data_compressed_bytes), sum(data_uncompressed_bytes) FROM system.columns "
        "WHERE database = currentDatabase() AND table = 'spans'"
    )
    store.command(SCORES_SQL, {"p": PROJECT})
    run_ids = []
    for index in range(args.runs):
        config = {"lr": 10 ** -(index % 4 + 2), "optimizer": ["adam", "sgd"][index % 2],
                  "model": {"layers": 2 + index % 8}, "seed": index}  # fmt: skip
        with th.init(name=f"train-{index}", config=config, tags=["bench"]) as run:
            for step in range(300):
                loss = 2.0 * math.exp(-step / (60 + 20 * (index % 50)))
                run.log({"loss": loss, "accuracy": 1 - loss / 2.2, "lr": config["lr"], "grad_norm": 1 + loss})
            run_ids.append(run.id)
    t3 = time.perf_counter()
    sweep_id = th.sweep({"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
                         "parameters": {"lr": {"values": [0.1, 0.01]}, "layers": {"values": [2, 4]}}})  # fmt: skip
    trials = th.agent(sweep_id, function=_train)
    seeded_evals = _seed_evals(args.examples)
    report = th.sync()
    t4 = time.perf_counter()
    _, counted = store.query_rows("SELECT count() FROM runs FINAL WHERE project = {p:String}", {"p": PROJECT})
    return {
        "spans": int(spans), "traces": int(traces_n), "error_rate": float(error_rate), "span_names": int(names),
        "models": int(models) - 1, "oldest_hours": oldest_ms / 3.6e6, "input_avg_chars": float(input_avg),
        "output_avg_chars": float(output_avg), "spans_mb_compressed": int(sizes[0][0]) / 1e6,
        "spans_mb_uncompressed": int(sizes[0][1]) / 1e6, "open_seconds": t1 - t0, "seed_seconds": t2 - t1,
        "runs_seconds": t3 - t2, "sweep_seconds": t4 - t3, "run_ids": run_ids, "sweep_id": sweep_id,
        "sweep_trials": trials, "runs_in_store": int(counted[0][0]), "sync_problems": report.problems[:3],
        "peak_rss_mb": own_peak_rss_mb(), **seeded_evals,
    }  # fmt: skip
