"""API keys: hashed, shown once, scoped to a project or admin; 401/403 at the collector's edge."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from conftest import SESSION_STORE_URL, collector_client

import tracehouse as th

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from tracehouse.cli.main import main
from tracehouse.collector import Store
from tracehouse.collector.server import ServeOptions, build
from tracehouse.collector.store.keys import KeyStore


@pytest.fixture
def store() -> Iterator[Store]:
    opened = Store(SESSION_STORE_URL, f"keys_{os.getpid()}_{time.monotonic_ns()}")
    yield opened
    opened.close()


def _record(project: str, span_id: str) -> dict[str, object]:
    now = time.time_ns()
    return {
        "type": "span", "project": project, "name": "step", "trace_id": "a" * 32, "span_id": span_id,
        "parent_span_id": "", "start_ns": now - 1000, "end_ns": now, "status": "ok", "status_message": "",
        "attributes": {}, "events": [], "span_kind": "INTERNAL", "scope": "t", "resource": {},
    }  # fmt: skip


def test_keys_are_stored_hashed_and_verify(store: Store) -> None:
    keys = KeyStore(store)
    key_id, key = keys.create("alpha", name="ci")
    assert key.startswith(f"thk_{key_id}_")
    secret = key.split("_", 2)[2]
    _, rows = store.query_rows("SELECT * FROM api_keys")
    assert secret not in repr(rows), "the secret must never be stored"
    principal = keys.verify(key)
    assert principal is not None and principal.project == "alpha" and not principal.admin
    assert keys.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert keys.verify("thk_nothex_abc") is None and keys.verify("") is None
    _, admin_key = keys.create(None)
    admin = keys.verify(admin_key)
    assert admin is not None and admin.admin
    assert [k["project"] for k in keys.list()] == ["alpha", ""]
    assert keys.revoke(key_id) and keys.verify(key) is None
    assert not keys.revoke("000000000000")
    assert [bool(k["revoked"]) for k in keys.list()] == [True, False]


@pytest.fixture
def secured(store: Store) -> Iterator[tuple[TestClient, dict[str, str]]]:
    keys = KeyStore(store)
    _, alpha = keys.create("alpha")
    _, beta = keys.create("beta")
    _, admin = keys.create(None)
    store.close()
    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=store.database, require_keys=True))
    with collector_client(parts.app) as client:
        yield client, {"alpha": alpha, "beta": beta, "admin": admin}
    parts.close()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_collector_needs_a_key_and_binds_its_project(secured: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = secured
    records = [_record("alpha", "1" * 16)]
    assert client.post("/api/v1/records", json=records).status_code == 401
    assert (
        client.post("/api/v1/records", json=records, headers=_auth("thk_000000000000_" + "x" * 40)).status_code == 401
    )
    assert client.post("/api/v1/records", json=records, headers=_auth(keys["beta"])).status_code == 403
    ok = client.post("/api/v1/records", json=records, headers=_auth(keys["alpha"]))
    assert ok.status_code == 200 and ok.json()["accepted"] == 1
    mixed = [_record("alpha", "2" * 16), _record("beta", "3" * 16)]
    assert client.post("/api/v1/records", json=mixed, headers=_auth(keys["alpha"])).status_code == 403
    count = client.post("/api/v1/query", json={"sql": "SELECT count() FROM spans"}, headers=_auth(keys["admin"]))
    assert count.json()["rows"] == [[1]], "refused requests must write nothing"


def test_reads_are_bound_to_the_key_project(secured: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = secured
    client.post("/api/v1/records", json=[_record("alpha", "4" * 16)], headers=_auth(keys["alpha"]))
    mine = client.get("/api/v1/latency", headers=_auth(keys["alpha"]))
    assert mine.status_code == 200 and mine.json()["rows"][0][:2] == ["step", 1]
    assert client.get("/api/v1/latency", params={"project": "alpha"}, headers=_auth(keys["beta"])).status_code == 403
    unknown = client.get("/api/v1/traces", headers=_auth(keys["beta"]))  # beta has nothing yet: say so
    assert unknown.status_code == 404 and "no project 'beta'" in unknown.json()["error"]
    sql = client.post("/api/v1/query", json={"sql": "SELECT 1"}, headers=_auth(keys["alpha"]))
    assert sql.status_code == 403 and "admin" in sql.json()["error"]
    assert client.get("/healthz").status_code == 200 and client.get("/metrics").status_code == 200


def test_admin_manages_keys_over_the_api(secured: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = secured
    assert client.post("/api/v1/keys", json={"project": "gamma"}, headers=_auth(keys["alpha"])).status_code == 403
    created = client.post("/api/v1/keys", json={"project": "gamma", "name": "x"}, headers=_auth(keys["admin"])).json()
    assert created["project"] == "gamma" and created["key"].startswith("thk_")
    listed = client.get("/api/v1/keys", headers=_auth(keys["admin"])).json()["keys"]
    assert "gamma" in [k["project"] for k in listed] and all("secret" not in "".join(map(str, k)) for k in listed)
    gamma = client.get("/api/v1/latency", headers=_auth(created["key"]))  # the key is good; gamma holds nothing yet
    assert gamma.status_code == 404 and "no project 'gamma'" in gamma.json()["error"]
    assert client.delete(f"/api/v1/keys/{created['key_id']}", headers=_auth(keys["admin"])).status_code == 200
    assert client.delete("/api/v1/keys/000000000000", headers=_auth(keys["admin"])).status_code == 404


def test_cli_keys_create_list_revoke(th_env: th.Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--project", "alpha", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["project"] == "alpha" and created["key"].startswith("thk_")
    assert main(["keys", "create", "--admin"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("thk_") and "this is the only time it is shown" in out
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert created["key_id"] in listing and created["key"] not in listing
    assert main(["keys", "revoke", created["key_id"]]) == 0
    assert capsys.readouterr().out.strip() == f"revoked {created['key_id']}"
    assert main(["keys", "revoke", "000000000000"]) == 1


def test_serve_on_a_network_address_without_keys_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")}
    result = subprocess.run(
        [sys.executable, "-m", "tracehouse", "serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert "no API key exists yet" in result.stderr and "tracehouse keys create" in result.stderr


def test_the_web_ui_asks_for_a_key_and_binds_its_project(secured: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = secured
    client.post("/api/v1/records", json=[_record("alpha", "5" * 16)], headers=_auth(keys["alpha"]))
    first = client.get("/traces?project=alpha", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/login?next=%2Ftraces%3Fproject%3Dalpha"
    form = client.get(first.headers["location"])
    assert "needs an API key" in form.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    refused = client.post("/login", data={"key": "thk_000000000000_" + "x" * 40, "next": "/traces", "csrf": csrf})
    assert refused.status_code == 401 and "unknown or revoked key" in refused.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', refused.text).group(1)  # type: ignore[union-attr]
    signed_in = client.post("/login", data={"key": keys["alpha"], "next": "/traces?project=alpha", "csrf": csrf},
                            follow_redirects=False)  # fmt: skip
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/traces?project=alpha"
    assert "httponly" in signed_in.headers["set-cookie"].lower()
    page = client.get("/traces?project=alpha")  # the cookie is sent from now on
    assert page.status_code == 200 and "step" in page.text
    other = client.get("/traces?project=beta")
    assert other.status_code == 403 and "reads only project" in other.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    assert client.post("/login", data={"key": keys["alpha"], "next": "https://evil.example/", "csrf": csrf},
                       follow_redirects=False).headers["location"] == "/"  # fmt: skip


@pytest.fixture
def secured_blobs(store: Store, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    keys = KeyStore(store)
    found = {name: keys.create(name)[1] for name in ("alpha", "beta")}
    found["admin"] = keys.create(None)[1]
    store.close()
    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=store.database, require_keys=True,
                               blob_location=str(tmp_path / "blobs")))  # fmt: skip
    with collector_client(parts.app) as client:
        yield client, found
    parts.close()


def test_a_blob_is_readable_only_by_the_projects_that_reference_it(
    secured_blobs: tuple[TestClient, dict[str, str]],
) -> None:
    import hashlib

    client, keys = secured_blobs
    data = b"alpha's model weights"
    digest = hashlib.sha256(data).hexdigest()
    assert client.put(f"/api/v1/blobs/{digest}", content=data, headers=_auth(keys["alpha"])).status_code == 200
    record = {"type": "artifact", "project": "alpha", "name": "model", "artifact_type": "model", "digest": "f" * 64,
              "description": "", "metadata": {}, "files": [{"path": "w.bin", "digest": digest, "size": len(data),
                                                             "ref": ""}], "aliases": [], "run_id": "",
              "time_ns": time.time_ns()}  # fmt: skip
    assert client.post("/api/v1/records", json=[record], headers=_auth(keys["alpha"])).json()["accepted"] == 1
    for who, status in (("alpha", 200), ("admin", 200), ("beta", 404)):
        assert client.head(f"/api/v1/blobs/{digest}", headers=_auth(keys[who])).status_code == status, who
        answer = client.get(f"/api/v1/blobs/{digest}", headers=_auth(keys[who]))
        assert answer.status_code == status and (status != 200 or answer.content == data), who
    other = hashlib.sha256(b"nobody references this").hexdigest()
    client.put(f"/api/v1/blobs/{other}", content=b"nobody references this", headers=_auth(keys["alpha"]))
    assert client.head(f"/api/v1/blobs/{other}", headers=_auth(keys["beta"])).status_code == 404


def test_a_project_key_sees_only_its_own_project_name(secured: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = secured
    for project in ("alpha", "beta"):
        client.post("/api/v1/records", json=[_record(project, "6" * 16)], headers=_auth(keys[project]))
    assert client.get("/api/v1/projects", headers=_auth(keys["admin"])).json()["projects"] == ["alpha", "beta"]
    assert client.get("/api/v1/projects", headers=_auth(keys["alpha"])).json()["projects"] == ["alpha"]
    client.cookies.set("tracehouse_key", keys["alpha"])
    page = client.get("/traces")
    assert page.status_code == 200 and "alpha" in page.text and "beta" not in page.text


def test_a_batch_token_of_one_project_cannot_swallow_another_projects_batch(
    secured: tuple[TestClient, dict[str, str]],
) -> None:
    client, keys = secured
    for project, span_id in (("alpha", "1" * 16), ("beta", "2" * 16)):
        answer = client.post("/api/v1/records", content=json.dumps([_record(project, span_id)]),
                             headers={**_auth(keys[project]), "Content-Type": "application/json",
                                      "X-Tracehouse-Batch": "same-token"})  # fmt: skip
        assert answer.status_code == 200 and answer.json()["accepted"] == 1
    rows = client.post("/api/v1/query", json={"sql": "SELECT project FROM spans ORDER BY project"},
                       headers=_auth(keys["admin"])).json()["rows"]  # fmt: skip
    assert rows == [["alpha"], ["beta"]]
    too_long = client.post("/api/v1/records", content=json.dumps([_record("alpha", "3" * 16)]),
                           headers={**_auth(keys["alpha"]), "Content-Type": "application/json",
                                    "X-Tracehouse-Batch": "t" * 600})  # fmt: skip
    assert too_long.status_code == 400
