"""Artifacts and saved files stay in their root: recorded, stored and downloaded (each attack reached outside)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import tracehouse as th
from tracehouse.reads.reading import get_store


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/cron.d/x", "a/../../b", "a//b", "C:/x", "..\\..\\x"])
def test_entry_paths_that_leave_the_artifact_are_refused(th_env: th.Settings, tmp_path: Path, name: str) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x")
    art = th.Artifact("paths", "dataset")
    with pytest.raises(th.ConfigError, match="stay inside the artifact"):
        art.add_file(source, name=name)
    with pytest.raises(th.ConfigError, match="stay inside the artifact"), art.new_file(name) as handle:
        handle.write("never")
    assert art.files() == []


def test_add_dir_refuses_symlinks_out_of_its_root(th_env: th.Settings, tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "ok.txt").write_text("ok")
    secret = tmp_path / "secret.txt"
    secret.write_text("ssh key")
    os.symlink(secret, root / "sub" / "leak.txt")
    os.symlink(root / "ok.txt", root / "inside-link.txt")  # a link that stays inside is fine
    art = th.Artifact("linked", "dataset")
    with pytest.raises(th.ConfigError, match="links outside"):
        art.add_dir(root)
    assert art.files() == []  # nothing was half-added
    os.unlink(root / "sub" / "leak.txt")
    assert art.add_dir(root) and art.files() == ["inside-link.txt", "ok.txt"]


def _hostile_manifest(settings: th.Settings, path: str) -> None:
    """A store whose manifest row points outside the artifact (written past the checks, as by an old version)."""
    store = get_store()
    digest = "d" * 64
    store.insert("artifact_files", {"project": [settings.project], "artifact_digest": [digest], "path": [path],
                                    "digest": ["e" * 64], "size": [3], "ref": [""]})  # fmt: skip
    store.insert("artifacts", {"project": [settings.project], "name": ["evil"], "version": [0], "type": ["dataset"],
                               "digest": [digest], "description": [""], "metadata": ["{}"], "size": [3],
                               "file_count": [1], "run_id": [""], "created_at": [time.time_ns() // 1000]})  # fmt: skip
    store.insert("artifact_aliases", {"project": [settings.project], "name": ["evil"], "alias": ["latest"],
                                      "version": [0], "updated_at": [time.time_ns() // 1000]})  # fmt: skip


def test_download_never_writes_outside_its_root(th_env: th.Settings, tmp_path: Path) -> None:
    _hostile_manifest(th_env, "../../outside.txt")
    with pytest.raises(th.ConfigError, match="stay inside the artifact"):
        th.use_artifact("evil:latest").download(tmp_path / "root" / "deep")
    assert not (tmp_path / "outside.txt").exists()


def test_a_symlink_in_the_download_root_is_not_followed_out(th_env: th.Settings, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_text("weights")
    with th.init(project=th_env.project) as run:
        art = th.Artifact("model", "model")
        art.add_file(source, name="sub/model.bin")
        run.log_artifact(art)
    root = tmp_path / "download"
    root.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, root / "sub")
    with pytest.raises(th.ConfigError, match="would land outside"):
        th.use_artifact("model:latest").download(root)
    assert list(elsewhere.iterdir()) == []


def test_the_store_refuses_artifact_and_file_records_that_leave_their_root(th_env: th.Settings) -> None:
    from tracehouse.collector.ingest.writer import write_records

    now = time.time_ns()
    records = [
        {"type": "artifact", "project": th_env.project, "name": "bad", "artifact_type": "dataset", "digest": "a" * 64,
         "description": "", "metadata": {}, "files": [{"path": "../../.bashrc", "digest": "b" * 64, "size": 1,
                                                        "ref": ""}], "aliases": [], "run_id": "", "time_ns": now},
        {"type": "file", "project": th_env.project, "run_id": "r1", "path": "/etc/passwd", "blob": "c" * 64,
         "size": 1, "time_ns": now},
    ]  # fmt: skip
    result = write_records(get_store(), records, None)
    assert len(result.rejected) == 2 and all("path" in reason for reason in result.rejected)
    counts = th.query("SELECT (SELECT count() FROM artifact_files) AS a, (SELECT count() FROM run_files) AS f")
    assert (int(counts["a"][0]), int(counts["f"][0])) == (0, 0)


def test_restore_never_writes_outside_its_root(th_env: th.Settings, tmp_path: Path) -> None:
    with pytest.raises(th.ConfigError, match="stay inside"):
        th.restore("../../.profile", run_path=f"{th_env.project}/r1", root=str(tmp_path / "here"))
    assert not (tmp_path / ".profile").exists()
