"""Langfuse's SDK posts OTLP to `/api/public/otel/v1/traces` with `Authorization: Basic base64(public:secret)`:
the collector serves that path, and there (only there) takes the secret key as a tracehouse key."""

from __future__ import annotations

import base64
import os
import time
from typing import Iterator

import pytest
from conftest import SESSION_STORE_URL, collector_client

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from tracehouse.collector import Store
from tracehouse.collector.server import ServeOptions, build
from tracehouse.collector.store.keys import KeyStore

PATH = "/api/public/otel/v1/traces"


@pytest.fixture
def keyed() -> Iterator[tuple[TestClient, dict[str, str]]]:
    store = Store(SESSION_STORE_URL, f"langfuse_{os.getpid()}_{time.monotonic_ns()}")
    keys = KeyStore(store)
    made = {"alpha": keys.create("alpha")[1], "admin": keys.create(None)[1]}
    store.close()
    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=store.database, require_keys=True))
    with collector_client(parts.app) as client:
        yield client, made
    parts.close()


def _body(project: str, span_id: str) -> dict[str, object]:
    now = time.time_ns()
    attribute = {"key": "tracehouse.project", "value": {"stringValue": project}}
    span = {"traceId": "c" * 32, "spanId": span_id, "name": "generation", "startTimeUnixNano": str(now - 1000),
            "endTimeUnixNano": str(now), "attributes": [{"key": "langfuse.observation.type",
                                                         "value": {"stringValue": "generation"}}]}  # fmt: skip
    return {"resourceSpans": [{"resource": {"attributes": [attribute]}, "scopeSpans": [{"spans": [span]}]}]}


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _stored(client: TestClient, admin: str) -> list[list[object]]:
    answer = client.post("/api/v1/query", json={"sql": "SELECT project, span_id FROM spans ORDER BY span_id"},
                         headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
    rows: list[list[object]] = answer.json()["rows"]
    return rows


def test_langfuse_path_takes_the_secret_key_of_basic_auth(keyed: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = keyed
    ok = client.post(PATH, json=_body("alpha", "1" * 16), headers=_basic("pk-lf-anything", keys["alpha"]))
    assert ok.status_code == 200, ok.text
    bearer = client.post(PATH, json=_body("alpha", "2" * 16), headers={"Authorization": f"Bearer {keys['alpha']}"})
    assert bearer.status_code == 200
    assert _stored(client, keys["admin"]) == [["alpha", "1" * 16], ["alpha", "2" * 16]]


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + base64.b64encode(b"pk-lf-x:sk-lf-not-ours").decode(),  # Langfuse's own keys are not ours
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic %%%not-base64%%%",
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),  # not UTF-8
        "Basic ",
    ],
)
def test_bad_basic_credentials_are_401_and_write_nothing(keyed: tuple[TestClient, dict[str, str]],
                                                         authorization: str) -> None:  # fmt: skip
    client, keys = keyed
    answer = client.post(PATH, json=_body("alpha", "3" * 16), headers={"Authorization": authorization})
    assert answer.status_code == 401
    assert _stored(client, keys["admin"]) == []


def test_basic_auth_is_taken_on_langfuse_path_only(keyed: tuple[TestClient, dict[str, str]]) -> None:
    """Elsewhere a Basic header is no key: a browser that cached credentials cannot ride on them."""
    client, keys = keyed
    plain = client.post("/v1/traces", json=_body("alpha", "4" * 16), headers=_basic("u", keys["alpha"]))
    assert plain.status_code == 401
    query = client.post("/api/v1/query", json={"sql": "SELECT 1"}, headers=_basic("u", keys["admin"]))
    assert query.status_code == 401
    assert _stored(client, keys["admin"]) == []


def test_langfuse_path_keeps_the_key_project_binding(keyed: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = keyed
    other = client.post(PATH, json=_body("beta", "5" * 16), headers=_basic("pk", keys["alpha"]))
    assert other.status_code == 403 and "alpha" in other.text
    assert _stored(client, keys["admin"]) == []
