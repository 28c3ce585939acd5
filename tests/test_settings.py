from pathlib import Path

import pytest

from tunedesk.errors import ConfigError
from tunedesk.settings import load_settings


def test_flags_override_environment_which_overrides_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "tunedesk.yaml"
    config.write_text("backend: echo\nmax_new_tokens: 99\ntemperature: 0.5\n")
    monkeypatch.setenv("TUNEDESK_CONFIG", str(config))
    monkeypatch.setenv("TUNEDESK_MAX_NEW_TOKENS", "42")

    settings = load_settings(temperature=0.2, model=None)

    assert settings.backend == "echo"  # from YAML
    assert settings.max_new_tokens == 42  # env beats YAML
    assert settings.temperature == 0.2  # flag beats both
    assert settings.model == "smollm2-135m"  # None means "flag not given"


def test_misspelt_yaml_key_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "tunedesk.yaml"
    config.write_text("backend: echo\nmax_new_token: 99\n")
    monkeypatch.setenv("TUNEDESK_CONFIG", str(config))
    with pytest.raises(ConfigError, match="max_new_token"):
        load_settings()


def test_out_of_range_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEDESK_TOP_P", "1.5")
    with pytest.raises(ConfigError, match="top_p"):
        load_settings()


def test_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TUNEDESK_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_settings()


def test_home_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TUNEDESK_HOME", str(tmp_path / "state"))
    assert load_settings().home == tmp_path / "state"
