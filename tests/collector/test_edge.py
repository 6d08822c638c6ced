"""The collector's edge: loopback is not a trust boundary (Host, Origin, CSRF, headers, bodies, bad input)."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import SESSION_STORE_URL, collector_client

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from tracehouse.collector.server import CollectorParts, ServeOptions, build


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[CollectorParts]:
    built = build(ServeOptions(store_url=SESSION_STORE_URL, database=f"edge_{os.getpid()}_{time.monotonic_ns()}",
                               default_project="p", spool_dir=tmp_path / "wal", blob_location=str(tmp_path / "blobs"),
                               body_timeout=1.0))  # fmt: skip
    yield built
    built.close()


@pytest.fixture
def client(parts: CollectorParts) -> Iterator[TestClient]:
    with collector_client(parts.app) as found:
        found.post("/api/v1/records", json=[_span()])
        yield found


def _span(project: str = "p") -> dict[str, Any]:
    now = time.time_ns()
    return {
        "type": "span", "project": project, "name": "step", "trace_id": "c" * 32, "span_id": "2" * 16,
        "parent_span_id": "", "start_ns": now - 1000, "end_ns": now, "status": "ok", "status_message": "",
        "attributes": {}, "events": [], "span_kind": "INTERNAL", "scope": "t", "resource": {},
    }  # fmt: skip


def test_a_rebound_host_name_gets_nothing(parts: CollectorParts) -> None:
    with TestClient(parts.app, base_url="http://attacker.example:4318") as rebound:
        for answer in (rebound.get("/"), rebound.get("/api/v1/traces"),
                       rebound.post("/api/v1/query", json={"sql": "SELECT 1"})):  # fmt: skip
            assert answer.status_code == 403 and "Host" in answer.json()["error"]
    for host in ("localhost:4318", "127.0.0.1", "[::1]:4318"):
        with TestClient(parts.app, base_url=f"http://{host}") as local:
            assert local.get("/healthz").status_code == 200, host


def test_a_cross_site_form_post_cannot_run_sql(client: TestClient) -> None:
    form = client.post("/api/v1/query", content=b'{"sql": "SELECT 1"}',
                       headers={"Content-Type": "text/plain", "Origin": "https://evil.example"})  # fmt: skip
    assert form.status_code == 403 and "evil.example" in form.json()["error"]
    no_origin = client.post("/api/v1/query", content=b'{"sql": "SELECT 1"}', headers={"Content-Type": "text/plain"})
    assert no_origin.status_code == 415
    fetched = client.post("/api/v1/query", json={"sql": "SELECT 1"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert fetched.status_code == 403
    for route in ("/api/v1/keys", "/api/v1/records", "/v1/traces", "/login", "/api/v1/sweeps"):
        assert client.post(route, content=b"x", headers={"Origin": "null"}).status_code == 403, route
    same = client.post("/api/v1/query", json={"sql": "SELECT 1 AS one"}, headers={"Origin": "http://127.0.0.1:4318"})
    assert same.status_code == 200 and same.json()["rows"] == [[1]]


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    for answer in (client.get("/"), client.get("/traces"), client.get("/login"), client.get("/api/v1/traces"),
                   client.get("/nope"), client.post("/api/v1/query", json={"sql": "DROP TABLE spans"})):  # fmt: skip
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self';" in policy
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin" and answer.headers["x-frame-options"] == "DENY"


def test_pages_have_no_inline_script(client: TestClient) -> None:
    for path in ("/", "/traces", "/runs", "/sweeps", "/login", "/traces/" + "c" * 32):
        page = client.get(path, params={"project": "p"})
        assert page.status_code == 200, (path, page.text[:300])
        # a script from a file, or chart data (type="application/json": a data block, never run)
        assert not re.search(r"<script(?![^>]*\b(src=|type=\"application/json\"))[^>]*>", page.text), path
        assert not re.search(r"\son[a-z]+\s*=", page.text), path
    script = client.get("/static/ui.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]


def test_the_login_form_needs_its_csrf_token(client: TestClient) -> None:
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None and "tracehouse_csrf" in form.headers["set-cookie"]
    forged = client.post("/login", data={"key": "", "next": "/"}, follow_redirects=False)
    assert forged.status_code == 403 and "form" in forged.text
    signed = client.post("/login", data={"key": "", "next": "/", "csrf": token.group(1)}, follow_redirects=False)
    assert signed.status_code == 303


@pytest.mark.parametrize(
    ("method", "path", "limit"),
    [
        ("POST", "/login", 16 * 1024),
        ("POST", "/api/v1/query", 1024 * 1024),
        ("POST", "/api/v1/read", 1024 * 1024),
        ("POST", "/api/v1/keys", 1024 * 1024),
        ("POST", "/api/v1/sweeps", 1024 * 1024),
        ("POST", "/api/v1/sweeps/x/next", 1024 * 1024),
        ("POST", "/api/v1/owner", 8 * 1024 * 1024),
        ("POST", "/api/v1/records", 32 * 1024 * 1024),
        ("PUT", "/api/v1/blobs/" + "0" * 64, 64 * 1024**3),
    ],
)
def test_every_route_bounds_its_body(client: TestClient, method: str, path: str, limit: int) -> None:
    if limit < 64 * 1024**2:
        answer = client.request(method, path, content=b"x" * (limit + 1), headers={"Content-Type": "application/json"})
    else:
        answer = client.request(method, path, content=b"x", headers={"Content-Length": str(limit + 1)})
    assert answer.status_code == 413 and f"{limit:,}" in answer.json()["error"]


def test_a_body_that_stops_arriving_times_out(parts: CollectorParts) -> None:
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(parts.app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"POST /api/v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{\"sql\": ")  # fmt: skip
            answer = conn.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 408") and "stopped arriving" in answer
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/api/v1/sweeps/s1/next", {"json": {"project": "p", "agent_id": "a", "pid": "x"}}, 400),
        ("POST", "/api/v1/sweeps", {"json": {"project": ["a", "b"], "config": {"method": "grid"}}}, 400),
        ("POST", "/api/v1/read", {"json": {"name": "runs", "project": ["p"], "parameters": {}}}, 400),
        ("GET", "/api/v1/traces", {"params": {"since": "100000000d"}}, 400),
        ("GET", "/api/v1/latency", {"params": {"since": "1000-01-01"}}, 400),
        ("GET", "/api/v1/latency", {"params": {"since": "3000-01-01T00:00:00"}}, 400),
        ("GET", "/api/v1/traces", {"params": {"since": "yesterday"}}, 400),
        ("POST", "/api/v1/read", {"json": {"name": "history", "project": "p", "parameters": {}}}, 400),
        ("GET", "/api/v1/traces", {"params": {"project": "nope"}}, 404),
        ("GET", "/api/v1/latency", {"params": {"project": "nope"}}, 404),
        ("POST", "/api/v1/read", {"json": {"name": "runs", "project": "nope", "parameters": {"c": 1}}}, 404),
    ],
)
def test_bad_input_is_a_4xx_that_names_it(client: TestClient, method: str, path: str, kwargs: dict[str, Any],
                                          status: int) -> None:  # fmt: skip
    answer = client.request(method, path, **kwargs)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]


def test_the_query_after_a_refused_multi_statement_one_works(client: TestClient) -> None:
    assert client.post("/api/v1/query", json={"sql": "SELECT 1; DROP TABLE spans"}).status_code == 400
    assert client.post("/api/v1/query", json={"sql": "SELECT count() FROM spans"}).json()["rows"] == [[1]]


def test_a_full_disk_is_507_with_a_reason(tmp_path: Path) -> None:
    import subprocess

    tiny = tmp_path / "tiny"
    tiny.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(tiny)], capture_output=True).returncode:
        pytest.skip("needs to mount a small tmpfs (root)")
    try:
        (tiny / "filler").write_bytes(b"\0" * (2 * 1024 * 1024 - 64 * 1024))
        built = build(ServeOptions(store_url=SESSION_STORE_URL, database=f"full_{os.getpid()}_{time.monotonic_ns()}",
                                   spool_dir=tiny / "wal", blob_location=str(tiny / "blobs")))  # fmt: skip
        try:
            with collector_client(built.app) as client:
                blob = os.urandom(512 * 1024)
                import hashlib

                answer = client.put(f"/api/v1/blobs/{hashlib.sha256(blob).hexdigest()}", content=blob)
                assert answer.status_code == 507 and "disk is full" in answer.json()["error"]
                from servers import otlp_body

                big = otlp_body(400)
                otlp = client.post("/v1/traces", content=big, headers={"Content-Type": "application/x-protobuf"})
                assert otlp.status_code == 507 and "disk is full" in otlp.json()["error"]
        finally:
            built.close()
    finally:
        subprocess.run(["umount", "-l", str(tiny)], capture_output=True)
