"""Settings: argument > environment > default, typed errors naming the option."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

import tracehouse as th
from tracehouse.spans.config import PARAMS, resolve_settings


def test_defaults_without_any_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for param in PARAMS.values():
        if param.env:
            monkeypatch.delenv(param.env, raising=False)
    settings = resolve_settings()
    assert settings.project == "default"
    assert settings.data_dir == Path("~/.tracehouse").expanduser()
    assert settings.spool_dir == settings.data_dir / "spool"
    assert settings.store_url == f"chdb://{(settings.data_dir / 'db').resolve()}"
    assert settings.endpoint is None
    assert settings.capture_content is True
    assert settings.max_payload_bytes == 65536
    assert settings.disabled is False
    assert settings.database == "tracehouse"


def test_environment_then_arguments_take_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRACEHOUSE_PROJECT", "from-env")
    monkeypatch.setenv("TRACEHOUSE_DIR", str(tmp_path / "env-dir"))
    monkeypatch.setenv("TRACEHOUSE_MAX_PAYLOAD_BYTES", "1024")
    monkeypatch.setenv("TRACEHOUSE_CAPTURE_CONTENT", "false")
    monkeypatch.setenv("TRACEHOUSE_DISABLED", "1")
    monkeypatch.setenv("TRACEHOUSE_ENDPOINT", "http://collector:4318/")
    monkeypatch.setenv("TRACEHOUSE_CLICKHOUSE_URL", "http://default:pw@ch:8123")
    from_env = resolve_settings()
    assert from_env.project == "from-env"
    assert from_env.data_dir == tmp_path / "env-dir"
    assert from_env.max_payload_bytes == 1024
    assert from_env.capture_content is False
    assert from_env.disabled is True
    assert from_env.endpoint == "http://collector:4318"
    assert from_env.store_url == "http://default:pw@ch:8123"
    from_args = resolve_settings(project="from-arg", max_payload_bytes=2048, capture_content=True, disabled=False)
    assert (from_args.project, from_args.max_payload_bytes, from_args.capture_content, from_args.disabled) == (
        "from-arg",
        2048,
        True,
        False,
    )
    assert from_args.data_dir == tmp_path / "env-dir"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("project", "bad name!"),
        ("project", ""),
        ("data_dir", 42),
        ("endpoint", "ftp://collector"),
        ("endpoint", "http://"),
        ("capture_content", "sometimes"),
        ("max_payload_bytes", "lots"),
        ("max_payload_bytes", 10),
        ("redact", 42),
        ("disabled", "maybe"),
        ("clickhouse_url", "mysql://x"),
        ("database", "drop table;"),
        ("flush_timeout", -1),
    ],
)
def test_bad_value_raises_config_error_naming_the_option(option: str, value: object) -> None:
    with pytest.raises(th.ConfigError) as caught:
        th.configure(**{option: value})  # type: ignore[arg-type]
    assert caught.value.option == option
    assert str(caught.value).startswith(f"{option}: ")


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACEHOUSE_MAX_PAYLOAD_BYTES", "abc")
    with pytest.raises(th.ConfigError, match="TRACEHOUSE_MAX_PAYLOAD_BYTES"):
        resolve_settings()


def test_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(th.ConfigError, match="data_dir"):
        th.configure(data_dir=str(a_file))


def test_a_failed_configure_keeps_the_settings_in_force(th_env: th.Settings) -> None:
    with pytest.raises(th.ConfigError):
        th.configure(project="ok-project", max_payload_bytes="nope")  # type: ignore[arg-type]
    assert th.get_settings() == th_env


def test_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        th.configure(colour="blue")  # type: ignore[call-arg]


def test_settings_table_documents_every_option() -> None:
    for name, param in PARAMS.items():
        assert param.doc, name
    readme = (REPO / "README.md").read_text()
    for name, param in PARAMS.items():
        assert f"`{name}`" in readme, f"README does not document option {name}"
        if param.env:
            assert f"`{param.env}`" in readme, f"README does not document {param.env}"
