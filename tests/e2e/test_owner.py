"""One owner per embedded store: every other process on the data dir works through it, never a lock error."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import REPO
from servers import free_port

pytest.importorskip("fastapi")


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")}
    env.update({"TRACEHOUSE_DIR": str(data_dir), "TRACEHOUSE_PROJECT": "p", "TRACEHOUSE_RAISE_INTERNAL_ERRORS": "1",
                "PYTHONUNBUFFERED": "1", **extra})  # fmt: skip
    return env


def _python(code: str, data_dir: Path, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=_env(data_dir, **extra),
                          capture_output=True, text=True, timeout=timeout, cwd=str(REPO))  # fmt: skip


def _cli(data_dir: Path, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracehouse", *argv], env=_env(data_dir), capture_output=True,
                          text=True, timeout=timeout, cwd=str(REPO))  # fmt: skip


def _assert_no_lock_noise(*results: subprocess.CompletedProcess[str]) -> None:
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "lock" not in result.stderr.lower() and "Code: " not in result.stderr, result.stderr


class Holder:
    """A plain script that opened the store (so it owns it) and waits for a line on stdin to go on."""

    SCRIPT = """
        import sys, tracehouse as th
        with th.span("holder-span"):
            pass
        print("holding", len(th.query("SELECT 1 AS x")), flush=True)
        for line in sys.stdin:
            if line.strip() == "count":
                print("count", int(th.query("SELECT count() AS n FROM spans")["n"][0]), flush=True)
            elif line.strip() == "exit":
                break
    """

    def __init__(self, data_dir: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(self.SCRIPT)], env=_env(data_dir),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=str(REPO))  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("holding"), self.proc.stderr.read() if self.proc.stderr else line

    def ask(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write("exit\n")
        self.proc.stdin.flush()
        _, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err
        return err


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Holder, Path]]:
    data_dir = tmp_path / "data"
    found = Holder(data_dir)
    yield found, data_dir
    if found.proc.poll() is None:
        found.proc.kill()


def test_a_second_script_reads_and_writes_through_the_owner(holder: tuple[Holder, Path]) -> None:
    owner, data_dir = holder
    advert = data_dir / "db" / "owner.json"
    assert stat.S_IMODE(advert.stat().st_mode) == 0o600
    second = _python("""
        import tracehouse as th
        with th.span("second-span"):
            pass
        with th.init(config={"lr": 0.1}) as run:
            run.log({"loss": 0.5})
        print(sorted(th.query("SELECT DISTINCT name FROM spans")["name"]))
        print(th.traces(limit=5)["root_name"].tolist())
        print(th.runs()["config.lr"].tolist(), th.history(run.id)["loss"].tolist())
    """, data_dir)  # fmt: skip
    _assert_no_lock_noise(second)
    lines = second.stdout.strip().splitlines()
    assert lines[0] == "['holder-span', 'second-span']"
    assert set(eval(lines[1])) == {"holder-span", "second-span"}
    assert lines[2] == "[0.1] [0.5]"
    assert owner.ask("count") == "count 2"  # the owner sees what the other process wrote


def test_reports_are_saved_and_loaded_through_the_owner(holder: tuple[Holder, Path]) -> None:
    _, data_dir = holder
    saved = _python("""
        import tracehouse as th
        report = th.Report("From the trainer").markdown("done").latency_table(by="model").save()
        stale = th.Report.load(report.id)
        report.title = "Edited"
        report.save()
        try:
            stale.save()
        except th.ConflictError:
            print("conflict")
        print(report.id)
    """, data_dir)  # fmt: skip
    _assert_no_lock_noise(saved)
    conflict, report_id = saved.stdout.split()
    loaded = _python(f"""
        import tracehouse as th
        report = th.Report.load({report_id!r})
        print(report.title, len(report.blocks), len(report.versions()), th.reports()["report_id"].tolist())
    """, data_dir)  # fmt: skip
    _assert_no_lock_noise(loaded)
    assert conflict == "conflict" and loaded.stdout.strip() == f"Edited 2 2 ['{report_id}']"


def test_the_cli_keys_and_sweeps_work_beside_the_owner(holder: tuple[Holder, Path], tmp_path: Path) -> None:
    _, data_dir = holder
    traces = _cli(data_dir, "traces", "--json")
    keys = _cli(data_dir, "keys", "create", "--project", "p", "--json")
    listed = _cli(data_dir, "keys", "list", "--json")
    config = tmp_path / "sweep.yaml"
    config.write_text("method: grid\nmetric: {name: loss, goal: minimize}\nparameters: {lr: {values: [0.1, 0.2]}}\n")
    sweep = _cli(data_dir, "sweep", str(config), "--json")
    _assert_no_lock_noise(traces, keys, listed, sweep)
    assert json.loads(traces.stdout)[0]["root_name"] == "holder-span"
    assert json.loads(keys.stdout)["key"] in listed.stdout or json.loads(keys.stdout)["key_id"] in listed.stdout
    sweep_id = json.loads(sweep.stdout)["sweep_id"]
    agent = _python(f"""
        import tracehouse as th
        def train():
            with th.init() as run:
                run.log({{"loss": run.config.lr}})
        th.agent({sweep_id!r}, function=train)
        print(th.sweep_status({sweep_id!r})["best"]["params"])
    """, data_dir)  # fmt: skip
    _assert_no_lock_noise(agent)
    assert agent.stdout.strip().splitlines()[-1] == "{'lr': 0.1}"


def test_when_the_owner_exits_the_next_process_opens_the_store(holder: tuple[Holder, Path]) -> None:
    owner, data_dir = holder
    assert "lock" not in owner.close().lower()
    assert not (data_dir / "db" / "owner.json").exists()  # withdrawn at exit
    after = _python("import tracehouse as th; print(int(th.query('SELECT count() AS n FROM spans')['n'][0]))",
                    data_dir)  # fmt: skip
    _assert_no_lock_noise(after)
    assert after.stdout.strip() == "1"


def test_a_stale_advertisement_is_ignored(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "db").mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = {"url": "http://127.0.0.1:9", "pid": int(dead.stdout), "secret": "x", "kind": "sdk", "spool_dir": ""}
    (data_dir / "db" / "owner.json").write_text(json.dumps(stale))
    result = _python("import tracehouse as th; print(th.query('SELECT 7 AS n')['n'][0])", data_dir, timeout=60)
    _assert_no_lock_noise(result)
    assert result.stdout.strip() == "7"


def _request(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_the_owner_answers_only_its_secret_on_its_own_host(holder: tuple[Holder, Path]) -> None:
    _, data_dir = holder
    advert = json.loads((data_dir / "db" / "owner.json").read_text())
    url, secret = advert["url"] + "/api/v1/owner", advert["secret"]
    body = json.dumps({"op": "query", "args": {"sql": "SELECT 1 AS one"}}).encode()
    good = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    assert _request(url, body, good)[0] == 200
    assert _request(url, body, {**good, "Authorization": "Bearer tho_wrong"})[0] == 401
    assert _request(url, body, {k: v for k, v in good.items() if k != "Authorization"})[0] == 401
    assert _request(url, body, {**good, "Origin": "http://evil.example"})[0] == 403
    assert _request(url, body, {**good, "Host": "evil.example"})[0] == 403
    refused = _request(url, json.dumps({"op": "query", "args": {"sql": "DROP TABLE spans"}}).encode(), good)
    assert refused[0] == 400 and refused[1]["error"].startswith("sql: ")
    status, answer = _declared_only(advert["url"], 9 * 1024 * 1024, secret)
    assert status == 413 and "limit" in answer["error"]


def _declared_only(url: str, length: int, secret: str) -> tuple[int, Any]:
    """Send only headers that announce a body of `length` bytes; the answer must not wait for it."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.putrequest("POST", "/api/v1/owner")
    for name, value in (("Authorization", f"Bearer {secret}"), ("Content-Type", "application/json"),
                        ("Content-Length", str(length))):  # fmt: skip
        conn.putheader(name, value)
    conn.endheaders()
    answer = conn.getresponse()
    return answer.status, json.loads(answer.read())


class Collector:
    """`tracehouse serve` (or `ui`) in a child process, on a data dir."""

    def __init__(self, data_dir: Path, *argv: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tracehouse", *(argv or ("serve", "--grpc-port", "0")), "--port", str(self.port),
             "--data-dir", str(data_dir)], env=_env(data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=str(REPO),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            advert = data_dir / "db" / "owner.json"
            if advert.exists() and json.loads(advert.read_text()).get("kind") == "collector":
                return
            if self.proc.poll() is not None:
                raise AssertionError(self.proc.communicate()[1])
            time.sleep(0.1)
        raise AssertionError("the collector did not advertise itself")

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        return err


def test_everything_works_while_the_ui_is_open(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ui = Collector(data_dir, "ui", "--no-browser")
    try:
        script = _python("""
            import tracehouse as th
            with th.span("beside-ui"):
                pass
            with th.init(config={"layers": 2}) as run:
                run.log({"acc": 0.9})
            print(th.traces()["root_name"].tolist(), th.history(run.id)["acc"].tolist(), th.runs()["state"].tolist())
        """, data_dir)  # fmt: skip
        traces = _cli(data_dir, "traces", "--json")
        key = _cli(data_dir, "keys", "create", "--project", "p", "--json")
        again = _cli(data_dir, "ui", "--no-browser")
        config = tmp_path / "sweep.yaml"
        config.write_text("method: grid\nparameters: {lr: {values: [0.1]}}\n")
        sweep = _cli(data_dir, "sweep", str(config), "--json")
        _assert_no_lock_noise(script, traces, key, again, sweep)
        status = _cli(data_dir, "sweep", "status", json.loads(sweep.stdout)["sweep_id"], "--json")
        _assert_no_lock_noise(status)
        assert json.loads(status.stdout)["state"] == "running"
        assert script.stdout.strip() == "['beside-ui'] [0.9] ['finished']"
        assert json.loads(traces.stdout)[0]["root_name"] == "beside-ui"
        assert json.loads(key.stdout)["key"].startswith("thk_")
        assert again.stdout.startswith(f"tracehouse UI already running at {ui.url}/")
    finally:
        ui.stop()
    assert not (data_dir / "db" / "owner.json").exists()


def test_a_collector_takes_the_store_over_from_a_script(holder: tuple[Holder, Path]) -> None:
    owner, data_dir = holder
    collector = Collector(data_dir)
    try:
        assert owner.ask("count") == "count 1"  # the script now reads through the collector
        second = _cli(data_dir, "query", "SELECT count() AS n FROM spans", "--json")
        _assert_no_lock_noise(second)
        assert json.loads(second.stdout) == [{"n": 1}]
        refused = _cli(data_dir, "serve", "--port", str(free_port()))
        assert refused.returncode == 1 and f"already serves this data dir at {collector.url}" in refused.stderr
    finally:
        collector.stop()


FORKS = """
    import multiprocessing as mp, os, sys, tracehouse as th

    def work(i):
        with th.span(f"child-{i}"):
            pass
        return int(th.query("SELECT count() AS n FROM spans")["n"][0])

    if __name__ == "__main__":
        with th.span("parent"):
            pass
        print("parent sees", int(th.query("SELECT count() AS n FROM spans")["n"][0]), flush=True)
        with mp.get_context(sys.argv[1]).Pool(2) as pool:
            print("children see", sorted(pool.map(work, range(4))), flush=True)
        pid = os.fork()
        if pid == 0:
            with th.span("plain-fork"):
                pass
            th.flush()
            sys.exit(3)  # a plain exit: atexit hooks and finalizers run in the child
        _, status = os.waitpid(pid, 0)
        print("fork exit", os.waitstatus_to_exitcode(status), flush=True)
        print("names", sorted(th.query("SELECT name FROM spans")["name"]), flush=True)
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_forked_and_spawned_workers_never_touch_the_parent_engine(tmp_path: Path, method: str) -> None:
    script = tmp_path / "forks.py"
    script.write_text(textwrap.dedent(FORKS))
    result = subprocess.run([sys.executable, str(script), method], env=_env(tmp_path / "data"), capture_output=True,
                            text=True, timeout=180, cwd=str(REPO))  # fmt: skip
    _assert_no_lock_noise(result)
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "parent sees 1"
    seen = eval(lines[1].removeprefix("children see "))
    assert len(seen) == 4 and min(seen) >= 2  # each child's read saw the parent's span and its own
    assert lines[2] == "fork exit 3"
    assert eval(lines[3].removeprefix("names ")) == sorted(["parent", "plain-fork"] + [f"child-{i}" for i in range(4)])
