"""W&B's artifact calls: entity paths, `Artifact.save`, `link_artifact`, `log_model` / `use_model`,
incremental artifacts and `remove`, lineage as run objects."""

from __future__ import annotations

from pathlib import Path

import pytest

import tracehouse as th
from tracehouse.tracking.run import current_run


def _file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _logged(tmp_path: Path, name: str = "corpus", text: str = "a") -> th.Artifact:
    with th.init(project="test") as run:
        art = th.Artifact(name, "dataset")
        art.add_file(_file(tmp_path / "src" / "data.txt", text))
        run.log_artifact(art, aliases=["best"])
    return art.wait()


def test_use_artifact_takes_an_entity_path(th_env: th.Settings, tmp_path: Path) -> None:
    _logged(tmp_path)
    with th.init(project="test") as run:
        assert run.use_artifact("someone/test/corpus:best").version == "v0"
        assert th.use_artifact("someone/test/corpus:v0").qualified_name == "test/corpus:v0"
    assert th.use_artifact("someone/test/corpus").version == "v0"  # no run: read only
    for bad in ("a/b/c/corpus:v0", "test//corpus", "corpus:", "/corpus", "test/corpus:a:b"):
        with pytest.raises(th.ConfigError, match="entity/project/name:alias"):
            th.use_artifact(bad)


def test_save_logs_through_the_active_run(th_env: th.Settings, tmp_path: Path) -> None:
    with th.init(project="test") as run:
        art = th.Artifact("notes", "dataset")
        art.add_file(_file(tmp_path / "n.txt", "n"))
        assert art.save() is art and art.version == "v0"
    assert art.logged_by() == run.id and art.logged_by_run == run.id


def test_save_without_a_run_makes_an_auto_run(th_env: th.Settings, tmp_path: Path) -> None:
    assert current_run() is None
    art = th.Artifact("notes", "dataset")
    art.add_file(_file(tmp_path / "n.txt", "n"))
    art.save(project="other")
    assert (art.version, art.project) == ("v0", "other")
    producer = art.logged_by()
    assert producer is not None and (producer.project, producer.state) == ("other", "finished")
    runs = th.query("SELECT job_type, state FROM runs FINAL WHERE project = 'other'")
    assert runs.values.tolist() == [["auto", "finished"]]
    assert th.use_artifact("notes:latest", project="other").files() == ["n.txt"]
    again = th.Artifact("notes", "dataset")  # the same content: the same version, the default project elsewhere
    again.add_file(tmp_path / "n.txt")
    assert again.save(project="other").version == "v0"
    with pytest.raises(th.ConfigError, match="project"):
        th.Artifact("x", "dataset").save(project="a/b")


def test_link_artifact_records_the_version_in_a_collection(th_env: th.Settings, tmp_path: Path) -> None:
    first = _logged(tmp_path, text="one")
    with th.init(project="test") as run:
        linked = run.link_artifact(first, "someone/test/registry-models", aliases=["production"])
        assert linked.wait().version == "v0"
        assert run.link_artifact(first, "registry-models").wait().version == "v0"  # unchanged digest: no new version
    stored = th.use_artifact("registry-models:production")
    assert (stored.version, stored.digest, stored.type) == ("v0", first.digest, "dataset")
    assert sorted(stored.aliases) == ["latest", "production"]
    second = _logged(tmp_path, text="two")
    with th.init(project="test") as run:
        assert run.link_artifact(second, "registry-models").wait().version == "v1"
        root = th.use_artifact("registry-models:latest").download(tmp_path / "out")
    assert (Path(root) / "data.txt").read_text() == "two"
    assert th.use_artifact("corpus:latest").version == "v1"  # the source keeps its own versions
    with th.init(project="test") as run:
        for bad in ("a/b/c/d", "", "x:latest", "a//b"):
            with pytest.raises(th.ConfigError, match="target_path"):
                run.link_artifact(first, bad)
        with pytest.raises(th.ConfigError, match="aliases"):
            run.link_artifact(first, "registry-models", aliases=["v3"])
        with pytest.raises(th.ConfigError, match="artifact"):
            run.link_artifact("corpus:latest", "registry-models")  # type: ignore[arg-type]


def test_log_model_and_use_model(th_env: th.Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    weights = _file(tmp_path / "ckpt" / "model.pt", "weights")
    _file(tmp_path / "ckpt" / "sub" / "config.json", "{}")
    with th.init(project="test") as run:
        single = run.log_model(weights, aliases=["best"])
        folder = run.log_model(tmp_path / "ckpt", name="resnet")
    assert (single.name, single.type) == (f"run-{run.id}-model.pt", "model")
    assert single.wait().version == "v0" and folder.files() == ["model.pt", "sub/config.json"]
    with th.init(project="test") as consumer:
        path = Path(consumer.use_model(f"run-{run.id}-model.pt:best"))
        assert path.is_file() and path.read_text() == "weights"  # one file: its path
        root = Path(consumer.use_model("someone/test/resnet:latest"))
        assert (root / "sub" / "config.json").read_text() == "{}"
    assert folder.wait().used_by() == [consumer.id]
    _logged(tmp_path)
    with th.init(project="test") as run:
        with pytest.raises(th.ConfigError, match="type 'dataset', not a model"):
            run.use_model("corpus:latest")
        with pytest.raises(th.ConfigError, match="path"):
            run.log_model(tmp_path / "missing")
        with pytest.raises(th.ConfigError, match="name"):
            run.log_model(weights, name="bad name!")
        with pytest.raises(th.NotFoundError):
            run.use_model("nothing:latest")


def test_incremental_artifacts_keep_the_latest_files(th_env: th.Settings, tmp_path: Path) -> None:
    with th.init(project="test") as run:
        base = th.Artifact("shards", "dataset", incremental=True)  # the first version: nothing to keep
        base.add_file(_file(tmp_path / "a.txt", "a"))
        base.add_file(_file(tmp_path / "dir" / "b.txt", "b"), name="dir/b.txt")
        base.add_file(_file(tmp_path / "dir" / "c.txt", "c"), name="dir/c.txt")
        run.log_artifact(base)
    assert base.wait().version == "v0"
    with th.init(project="test") as run:
        more = th.Artifact("shards", "dataset", incremental=True)
        more.add_file(_file(tmp_path / "a2.txt", "A"), name="a.txt")  # replaces a.txt
        more.add_file(_file(tmp_path / "d.txt", "d"))
        more.remove("dir/c.txt")  # not in this draft: dropped from the kept files
        run.log_artifact(more)
    assert more.wait().version == "v1" and more.files() == ["a.txt", "d.txt", "dir/b.txt"]
    stored = th.use_artifact("shards:latest")
    assert stored.files() == ["a.txt", "d.txt", "dir/b.txt"]
    assert Path(stored.get_entry("a.txt").download(tmp_path / "o")).read_text() == "A"
    with th.init(project="test") as run:
        folder = th.Artifact("shards", "dataset", incremental=True)
        folder.add_file(_file(tmp_path / "e.txt", "e"))
        folder.remove("dir")  # a folder: every file under it
        run.log_artifact(folder)
    assert th.use_artifact("shards:latest").files() == ["a.txt", "d.txt", "e.txt"]
    with th.init(project="test") as run:
        plain = th.Artifact("shards", "dataset")  # not incremental: only its own files
        plain.add_file(tmp_path / "e.txt")
        run.log_artifact(plain)
    assert th.use_artifact("shards:latest").files() == ["e.txt"]
    with pytest.raises(th.ConfigError, match="incremental"):
        th.Artifact("x", "dataset", incremental="yes")  # type: ignore[arg-type]


def test_remove(th_env: th.Settings, tmp_path: Path) -> None:
    art = th.Artifact("x", "dataset")
    entry = art.add_file(_file(tmp_path / "a.txt", "a"))
    art.add_file(_file(tmp_path / "b.txt", "b"), name="sub/b.txt")
    art.remove("sub")
    assert art.files() == ["a.txt"]
    art.remove(entry)
    assert art.files() == []
    with pytest.raises(th.NotFoundError, match=r"'a\.txt' is not in x"):
        art.remove("a.txt")
    with pytest.raises(th.ConfigError, match="relative"):
        art.remove("../a.txt")
    with pytest.raises(th.ConfigError, match="holds no files"), th.init(project="test") as run:
        run.log_artifact(art)
    stored = _logged(tmp_path)
    with pytest.raises(th.ConfigError, match="logged or read back"):
        stored.remove("data.txt")


def test_lineage_returns_runs_that_compare_equal_to_their_ids(th_env: th.Settings, tmp_path: Path) -> None:
    with th.init(project="test", config={"lr": 0.1}) as producer:
        art = th.Artifact("raw", "dataset")
        art.add_file(_file(tmp_path / "x.txt", "x"))
        producer.log_artifact(art)
    with th.init(project="test", name="trainer") as consumer:
        consumer.use_artifact("raw:latest")
    used = th.use_artifact("raw:v0")
    logged_by = used.logged_by()
    assert logged_by is not None and logged_by == producer.id and str(logged_by) == producer.id
    assert (logged_by.id, logged_by.project, logged_by.state, logged_by.config) == (
        producer.id, "test", "finished", {"lr": 0.1}
    )  # fmt: skip
    [user] = used.used_by()
    assert user == consumer.id and used.used_by() == [consumer.id] and {user} == {consumer.id}
    assert (user.name, user.state) == ("trainer", "finished") and repr(user) == f"<Run test/{consumer.id}>"
    assert th.Artifact("fresh", "dataset").logged_by() is None
