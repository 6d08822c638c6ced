"""Artifacts: versions by content digest, aliases, lineage, the blob store, download and verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tracehouse as th


def _files(root: Path, contents: dict[str, str]) -> Path:
    for name, text in contents.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _blob_count(settings: th.Settings) -> int:
    return sum(1 for p in (settings.data_dir / "blobs" / "sha256").rglob("*") if p.is_file())


def test_versions_follow_the_content_digest_and_aliases_move(th_env: th.Settings, tmp_path: Path) -> None:
    data = _files(tmp_path / "src", {"train.csv": "a,b\n1,2\n", "nested/test.csv": "a,b\n3,4\n"})
    with th.init(project=th_env.project) as first:
        art = th.Artifact("corpus", "dataset", description="qa pairs", metadata={"rows": 2})
        art.add_dir(data)
        with art.new_file("labels.json") as handle:
            handle.write('{"yes": 1}')
        assert art.files() == ["labels.json", "nested/test.csv", "train.csv"]
        first.log_artifact(art, aliases=["best"])
    assert art.wait().version == "v0" and _blob_count(th_env) == 3

    with th.init(project=th_env.project) as second:  # same content: no new version, its aliases move
        same = th.Artifact("corpus", "dataset")
        same.add_dir(data)
        with same.new_file("labels.json") as handle:
            handle.write('{"yes": 1}')
        second.log_artifact(same, aliases=["prod"])
    assert same.digest == art.digest and same.wait().version == "v0"

    (data / "train.csv").write_text("a,b\n1,2\n5,6\n")  # one file changes: v1, the others are not stored again
    with th.init(project=th_env.project) as third:
        changed = th.Artifact("corpus", "dataset")
        changed.add_dir(data)
        third.log_artifact(changed, aliases=["best"])
    assert changed.wait().version == "v1" and _blob_count(th_env) == 4

    latest = th.use_artifact("corpus:latest")
    assert (latest.version, latest.aliases) == ("v1", ["best", "latest"])
    assert th.use_artifact("corpus:prod").version == "v0"
    assert th.use_artifact("corpus:best").version == "v1"  # a custom alias moves on request
    old = th.use_artifact("corpus:v0")
    assert (old.type, old.description, old.metadata, old.aliases) == ("dataset", "qa pairs", {"rows": 2}, ["prod"])
    assert old.logged_by() == first.id


def test_download_get_entry_and_verify(th_env: th.Settings, tmp_path: Path) -> None:
    data = _files(tmp_path / "src", {"a.txt": "alpha", "sub/b.txt": "beta"})
    with th.init(project=th_env.project) as run:
        art = th.Artifact("model", "model")
        art.add_dir(data)
        run.log_artifact(art)
    stored = th.use_artifact("model:v0")
    root = Path(stored.download(tmp_path / "out"))
    assert (root / "a.txt").read_text() == "alpha" and (root / "sub" / "b.txt").read_text() == "beta"
    stored.verify(root)
    entry = stored.get_entry("sub/b.txt")
    assert entry.size == 4 and len(entry.digest) == 64
    assert Path(entry.download(tmp_path / "one")).read_text() == "beta"
    with pytest.raises(th.NotFoundError, match=r"'nope.txt' is not in .*model:v0 \(it holds: a.txt, sub/b.txt\)"):
        stored.get_entry("nope.txt")
    (root / "a.txt").write_text("tampered")
    (root / "extra.txt").write_text("?")
    (root / "sub" / "b.txt").unlink()
    with pytest.raises(ValueError, match=r"changed a\.txt; missing sub/b\.txt"):
        stored.verify(root)
    with pytest.raises(ValueError, match=r"unexpected extra\.txt"):
        stored.verify(root)
    stored.download(root)  # a second download repairs what changed
    (root / "extra.txt").unlink()
    stored.verify(root)


def test_references_are_tracked_not_copied(th_env: th.Settings, tmp_path: Path) -> None:
    source = _files(tmp_path / "bucket", {"shard-0.jsonl": "{}\n", "shard-1.jsonl": "{}\n{}\n"})
    with th.init(project=th_env.project) as run:
        art = th.Artifact("shards", "dataset")
        entries = art.add_reference(source.as_uri(), name="shards")
        art.add_reference(str(source / "shard-0.jsonl"), name="first.jsonl")
        assert [e.path for e in entries] == ["shards/shard-0.jsonl", "shards/shard-1.jsonl"]
        run.log_artifact(art)
    assert _blob_count(th_env) == 0
    stored = th.use_artifact("shards:latest")
    assert stored.get_entry("shards/shard-1.jsonl").ref == (source / "shard-1.jsonl").as_uri()
    with pytest.raises(th.ConfigError, match="allow_local_references"):  # local files only when asked for
        stored.download(tmp_path / "copy")
    assert not (tmp_path / "copy").exists()
    root = stored.download(tmp_path / "copy", allow_local_references=True)
    stored.verify(root)
    assert (Path(root) / "first.jsonl").read_text() == "{}\n"
    (source / "shard-1.jsonl").write_text("changed\n")  # the source changed: a new version
    with th.init(project=th_env.project) as run:
        again = th.Artifact("shards", "dataset")
        again.add_reference(source.as_uri(), name="shards")
        again.add_reference(str(source / "shard-0.jsonl"), name="first.jsonl")
        run.log_artifact(again)
    assert again.wait().version == "v1"


def test_lineage_is_queryable(th_env: th.Settings, tmp_path: Path) -> None:
    data = _files(tmp_path / "d", {"x.txt": "x"})
    with th.init(project=th_env.project, job_type="prep") as producer:
        producer.log_artifact(str(data / "x.txt"), name="raw", type="dataset")
    with th.init(project=th_env.project, job_type="train") as consumer:
        used = consumer.use_artifact("raw:latest", type="dataset")
        out = th.Artifact("weights", "model")
        with out.new_file("w.bin", mode="wb") as handle:
            handle.write(b"\x00\x01")
        consumer.log_artifact(out)
    assert used.logged_by() == producer.id and used.used_by() == [consumer.id]
    rows = th.query(
        "SELECT u.name AS name, u.direction AS direction, r.job_type AS job_type FROM artifact_usage AS u FINAL "
        "JOIN runs AS r FINAL ON r.run_id = u.run_id ORDER BY name, direction"
    )
    assert rows.values.tolist() == [
        ["raw", "input", "train"],
        ["raw", "output", "prep"],
        ["weights", "output", "train"],
    ]


def test_bad_input_gives_clear_errors_and_keeps_what_was_logged(th_env: th.Settings, tmp_path: Path) -> None:
    data = _files(tmp_path / "d", {"x.txt": "x"})
    with pytest.raises(th.ConfigError, match="artifact names take"):
        th.Artifact("bad name/with:colon", "dataset")
    with pytest.raises(th.ConfigError, match="type"):
        th.Artifact("ok", "")
    art = th.Artifact("ok", "dataset")
    with pytest.raises(th.ConfigError, match="is not a file"):
        art.add_file(tmp_path / "missing.txt")
    with pytest.raises(th.ConfigError, match="stay inside"):
        art.add_file(data / "x.txt", name="../escape.txt")
    art.add_file(data / "x.txt")
    (tmp_path / "other.txt").write_text("other")
    with pytest.raises(th.ConfigError, match="overwrite=True"):
        art.add_file(tmp_path / "other.txt", name="x.txt")
    with th.init(project=th_env.project) as run:
        run.log({"loss": 1.0})
        with pytest.raises(th.ConfigError, match="holds no files"):
            run.log_artifact(th.Artifact("empty", "dataset"))
        with pytest.raises(th.ConfigError, match="v<number>"):
            run.log_artifact(art, aliases=["v3"])
        run.log_artifact(art, aliases=["good"])
        with pytest.raises(th.ConfigError, match="was logged"):
            art.add_file(tmp_path / "other.txt")
        with pytest.raises(
            th.NotFoundError, match=r"ok:v7 is not in project .*versions v0..v0 and aliases good, latest"
        ):
            run.use_artifact("ok:v7")
        with pytest.raises(th.NotFoundError, match="no artifact is named 'missing'"):
            run.use_artifact("missing:latest")
        with pytest.raises(th.ConfigError, match="of type 'dataset', not 'model'"):
            run.use_artifact("ok:latest", type="model")
        with pytest.raises(th.ConfigError, match="expected 'name'"):
            run.use_artifact("a:b:c")
        run.log({"loss": 0.5})
    assert list(th.history(run.id)["loss"]) == [1.0, 0.5]
    assert th.use_artifact("ok:good").files() == ["x.txt"]


def test_blobs_at_an_fsspec_url(th_env: th.Settings, tmp_path: Path) -> None:
    from conftest import reconfigure

    reconfigure(th_env, blob_url="memory://tracehouse-test-blobs")
    data = _files(tmp_path / "d", {"weights.bin": "0123456789"})
    with th.init(project=th_env.project) as run:
        run.log_artifact(str(data), name="remote-model", type="model")
    import fsspec

    fs = fsspec.filesystem("memory")
    assert len(fs.find("/tracehouse-test-blobs/sha256")) == 1
    stored = th.use_artifact("remote-model:latest")
    root = stored.download(tmp_path / "fetched")
    stored.verify(root)
    assert (Path(root) / "weights.bin").read_text() == "0123456789"
    with pytest.raises(th.ConfigError, match="fsspec URL"):
        reconfigure(th_env, blob_url="not a url")


def test_versions_are_numbered_once_across_processes(th_env: th.Settings, tmp_path: Path) -> None:
    from conftest import run_python

    for index in range(2):
        code = f"""
import tracehouse as th
th.configure(data_dir={str(th_env.data_dir)!r}, project={th_env.project!r})
with th.init() as run:
    art = th.Artifact("shared", "dataset")
    with art.new_file("part.txt") as handle:
        handle.write("content {index}")
    run.log_artifact(art)
"""
        result = run_python(code)
        assert result.returncode == 0, result.stderr
    versions = th.query("SELECT version, file_count FROM artifacts FINAL WHERE name = 'shared' ORDER BY version")
    assert versions.values.tolist() == [[0, 1], [1, 1]]
    assert th.use_artifact("shared:latest").version == "v1"


def test_cli_artifact_get_and_list(th_env: th.Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tracehouse.cli.main import main

    data = _files(tmp_path / "d", {"prompt.txt": "You are helpful."})
    with th.init(project=th_env.project) as run:
        run.log_artifact(str(data / "prompt.txt"), name="prompt", type="prompt", aliases=["prod"])
    assert main(["artifact", "get", "prompt:prod", "--root", str(tmp_path / "got"), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["artifact"] == f"{th_env.project}/prompt:v0" and answer["files"] == ["prompt.txt"]
    assert (tmp_path / "got" / "prompt.txt").read_text() == "You are helpful."
    assert main(["artifact", "list"]) == 0
    listed = capsys.readouterr().out
    assert "prompt" in listed and "v0" in listed and "latest,prod" in listed
    assert main(["artifact", "get", "prompt:v4"]) == 1
    assert "prompt:v4 is not in project" in capsys.readouterr().err
    assert main(["run", run.id]) == 0
    assert "output  prompt:v0" in capsys.readouterr().out


def test_tables_go_into_artifacts_and_come_back(th_env: th.Settings) -> None:
    with th.init(project=th_env.project) as run:
        art = th.Artifact("eval-set", "dataset")
        art.add(th.Table(columns=["q", "a"], data=[["2+2?", "4"]]), "questions")
        assert art.files() == ["questions.table.json"]
        with pytest.raises(th.ConfigError, match=r"th\.Table"):
            art.add({"not": "media"}, "x")
        run.log_artifact(art)
    table = th.use_artifact("eval-set:latest").get("questions")
    assert isinstance(table, th.Table) and table.data == [["2+2?", "4"]] and table.columns == ["q", "a"]
    with pytest.raises(th.NotFoundError, match="nothing was added as 'answers'"):
        th.use_artifact("eval-set:latest").get("answers")
