"""`th.Report` makes, saves, versions and loads the UI's reports from Python (W&B's reports API), in the
embedded store and through a collector with a project key (through the store's owner process:
tests/e2e/test_owner.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
from conftest import run_python
from servers import Collector, free_port

import tracehouse as th


def _report() -> th.Report:
    report = th.Report("LR sweep", description="week 12")
    report.markdown("## Loss\nLow rates win.").latency_table(by="model", range="7d")
    return report.runs_table(filter={"config.lr": {"$lt": 0.1}}, columns=["name", "summary.loss"], sort="name")


def test_a_report_is_saved_versioned_loaded_listed_and_deleted(th_env: th.Settings) -> None:
    report = _report().save()
    assert report.id and report.url == f"/reports/{report.id}" and report.author.endswith("(python)")
    first = report.version
    report.title = "LR sweep, final"
    report.eval_summary("eval-1").save()
    assert report.version is not None and first is not None and report.version > first
    loaded = th.Report.load(report.id)
    assert (loaded.title, loaded.description, [b.get("panel", b["type"]) for b in loaded.blocks]) == (
        "LR sweep, final", "week 12", ["markdown", "latency_table", "runs_table", "eval_summary"],
    )  # fmt: skip
    assert loaded.blocks[1]["settings"]["by"] == "model"
    assert th.Report.load(report.id, version=first).title == "LR sweep"
    assert [v["title"] for v in loaded.versions()] == ["LR sweep, final", "LR sweep"]
    listed = th.reports()
    assert listed["report_id"].tolist() == [report.id] and listed["title"].tolist() == ["LR sweep, final"]
    loaded.delete()
    assert th.reports().empty
    with pytest.raises(th.NotFoundError, match=report.id):
        th.Report.load(report.id)


def test_a_save_from_a_replaced_version_raises_and_writes_nothing(th_env: th.Settings) -> None:
    saved = _report().save()
    assert saved.id is not None
    alice, bob = th.Report.load(saved.id), th.Report.load(saved.id)
    alice.title = "Alice's"
    alice.save()
    bob.title = "Bob's"
    with pytest.raises(th.ConflictError, match=saved.id):
        bob.save()
    assert th.Report.load(saved.id).title == "Alice's"
    bob = th.Report.load(saved.id)  # load again, redo the change
    bob.title = "Bob's"
    bob.save()
    assert th.Report.load(saved.id).title == "Bob's"


def test_bad_blocks_and_unknown_ids_name_what_is_wrong(th_env: th.Settings) -> None:
    report = th.Report("Bad")
    with pytest.raises(th.ConfigError, match=r"blocks\[0\]"):
        report.add({"type": "panel", "panel": "pie_chart", "settings": {}})
    with pytest.raises(th.ConfigError, match="trace_id"):
        report.trace_link("not-a-trace-id")
    with pytest.raises(th.ConfigError, match="title"):
        th.Report("").save()
    assert report.blocks == [] and report.id is None and th.reports().empty  # nothing was written
    with pytest.raises(th.NotFoundError, match="0123456789abcdef"):
        th.Report.load("0123456789abcdef")


def test_through_a_collector_with_a_project_key(tmp_path: Path) -> None:
    collector_dir = tmp_path / "collector-data"
    created = subprocess.run(
        [sys.executable, "-m", "tracehouse", "keys", "create", "--project", "ml", "--data-dir", str(collector_dir),
         "--json"], capture_output=True, text=True, check=True,
    )  # fmt: skip
    key = json.loads(created.stdout)["key"]
    collector = Collector(collector_dir, free_port(), "--require-keys")
    collector.start()
    try:
        child = run_python(textwrap.dedent(f"""
            import tracehouse as th
            th.configure(endpoint={collector.url!r}, api_key={key!r}, data_dir={str(tmp_path / "sdk")!r},
                         project="ml")
            report = th.Report("Remote").markdown("*hi*").save()
            stale = th.Report.load(report.id)
            report.title = "Remote, edited"
            report.save()
            try:
                stale.save()
            except th.ConflictError as error:
                print("conflict", report.id in str(error))
            print(th.reports()["title"].tolist(), len(report.versions()))
            try:
                th.Report.load("0123456789abcdef")
            except th.NotFoundError as error:
                print("missing", "0123456789abcdef" in str(error))
            print(report.id)
            """), clean=True)  # fmt: skip
        assert child.returncode == 0, child.stderr
        lines = child.stdout.strip().splitlines()
        assert lines[:3] == ["conflict True", "['Remote, edited'] 2", "missing True"]
        request = urllib.request.Request(
            f"{collector.url}/reports/{lines[3]}", headers={"Authorization": f"Bearer {key}"}
        )
        with urllib.request.urlopen(request, timeout=30) as page:
            text = page.read().decode()
        assert "Remote, edited" in text and "<em>hi</em>" in text
    finally:
        assert collector.stop() == 0
