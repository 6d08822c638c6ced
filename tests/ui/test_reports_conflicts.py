"""Two people editing one report: a save made from a version someone else has replaced since is refused
(409 over the API, the draft kept in the editor), never silently lost; without a base version the last
save wins, as before."""

from __future__ import annotations

import os
import re
import time
from typing import Any, Iterator

import pytest
from conftest import SESSION_STORE_URL, collector_client

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from tracehouse.collector.server import ServeOptions, build

PROJECT = "conflicts"
NOTE = [{"type": "markdown", "text": "first"}]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    database = f"report_conflicts_{os.getpid()}_{time.monotonic_ns()}"
    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=database, default_project=PROJECT,
                               spool_dir=tmp_path_factory.mktemp("conflicts") / "wal"))  # fmt: skip
    with collector_client(parts.app) as opened:
        yield opened
    parts.close()


def _create(client: TestClient, title: str) -> dict[str, Any]:
    answer = client.post("/api/v1/reports", json={"project": PROJECT, "title": title, "blocks": NOTE})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _put(client: TestClient, report_id: str, title: str, **extra: Any) -> Any:
    headers = extra.pop("headers", None)
    return client.put(f"/api/v1/reports/{report_id}", json={"title": title, "blocks": NOTE, **extra}, headers=headers)


def test_a_put_from_a_replaced_version_is_409_and_writes_nothing(client: TestClient) -> None:
    report = _create(client, "Week 12")
    alice = _put(client, report["report_id"], "Alice's", base_version=report["version"])
    assert alice.status_code == 200, alice.text
    bob = _put(client, report["report_id"], "Bob's", base_version=report["version"])  # opened before Alice saved
    assert bob.status_code == 409
    message = bob.json()["error"]
    assert report["report_id"] in message and str(report["version"]) in message
    assert str(alice.json()["version"]) in message
    latest = client.get(f"/api/v1/reports/{report['report_id']}").json()
    assert latest["title"] == "Alice's"
    history = client.get(f"/api/v1/reports/{report['report_id']}/versions").json()["versions"]
    assert [v["title"] for v in history] == ["Alice's", "Week 12"]
    again = _put(client, report["report_id"], "Bob's", base_version=alice.json()["version"])  # rebased on Alice's
    assert again.status_code == 200 and client.get(f"/api/v1/reports/{report['report_id']}").json()["title"] == "Bob's"


def test_if_match_works_like_base_version_and_without_either_the_last_save_wins(client: TestClient) -> None:
    report = _create(client, "Tags")
    first = _put(client, report["report_id"], "One", headers={"If-Match": f'"{report["version"]}"'})
    assert first.status_code == 200
    stale = _put(client, report["report_id"], "Two", headers={"If-Match": f'W/"{report["version"]}"'})
    assert stale.status_code == 409
    assert _put(client, report["report_id"], "Three", headers={"If-Match": "*"}).status_code == 200
    assert _put(client, report["report_id"], "Four").status_code == 200
    assert client.get(f"/api/v1/reports/{report['report_id']}").json()["title"] == "Four"


BAD_BASES = [{"base_version": "12"}, {"base_version": -1}, {"base_version": True},
             {"headers": {"If-Match": '"12; DROP"'}}, {"headers": {"If-Match": '"' + "9" * 30 + '"'}}]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_BASES)
def test_malformed_base_versions_are_400_naming_them(client: TestClient, bad: dict[str, Any]) -> None:
    report = _create(client, "Bad")
    answer = _put(client, report["report_id"], "Changed", **bad)
    assert answer.status_code == 400
    assert ("If-Match" if "headers" in bad else "base_version") in answer.json()["error"]
    assert client.get(f"/api/v1/reports/{report['report_id']}").json()["title"] == "Bad"


def _editor_form(client: TestClient, report_id: str, title: str) -> dict[str, Any]:
    page = client.get(f"/reports/{report_id}/edit")
    assert page.status_code == 200
    values = dict(re.findall(r'<input type="hidden" name="(csrf|base_version|project)" value="([^"]*)"', page.text))
    key = re.search(r'name="order" value="([0-9a-f]+)"', page.text)
    assert key and values.get("base_version")
    return {
        **values,
        "title": title,
        "description": "",
        "order": [key.group(1)],
        f"b.{key.group(1)}.type": "markdown",
        f"b.{key.group(1)}.text": f"{title} notes",
        "action": "save",
    }


def test_the_editor_keeps_a_stale_draft_and_a_second_save_replaces_the_newer_version(client: TestClient) -> None:
    report = _create(client, "Shared")
    alice, bob = _editor_form(client, report["report_id"], "Alice"), _editor_form(client, report["report_id"], "Bob")
    assert alice["base_version"] == str(report["version"])
    assert client.post(f"/reports/{report['report_id']}/edit", data=alice, follow_redirects=False).status_code == 303
    refused = client.post(f"/reports/{report['report_id']}/edit", data=bob, follow_redirects=False)
    assert refused.status_code == 409
    assert "was changed since version" in refused.text and "Save again" in refused.text
    assert 'value="Bob"' in refused.text and "Bob notes" in refused.text  # the draft is all there
    latest = client.get(f"/api/v1/reports/{report['report_id']}").json()
    assert latest["title"] == "Alice"
    rebased = re.search(r'name="base_version" value="(\d+)"', refused.text)
    assert rebased and int(rebased.group(1)) == latest["version"]
    again = client.post(f"/reports/{report['report_id']}/edit", data={**bob, "base_version": rebased.group(1)},
                        follow_redirects=False)  # fmt: skip
    assert again.status_code == 303
    assert client.get(f"/api/v1/reports/{report['report_id']}").json()["title"] == "Bob"
