"""The ``[phabricator]`` table: secrets only from the environment, bad values named by key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.config import Config, ConfigError
from orchestrator.integrations.phabricator.settings import Settings, TriggerRule


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Settings:
    file = tmp_path / "orchestrator.toml"
    file.write_text(text)
    return Settings.from_config(Config.load(file, environ={}), environ or {})


def test_secrets_come_from_the_environment_named_in_the_file(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        '[phabricator]\nurl = "https://phorge.example.com/"\ntoken_env = "MY_TOKEN"\n'
        '[[phabricator.triggers]]\nrepository = "PHID-REPO-1"\nstart = "release:prod"\n',
        {"MY_TOKEN": "api-secret", "ORCHESTRATOR_PHABRICATOR_HMAC_KEY": "k"},
    )
    assert (settings.url, settings.token, settings.hmac_key) == (
        "https://phorge.example.com",
        "api-secret",
        "k",
    )
    assert "api-secret" not in repr(settings)
    assert settings.triggers == (TriggerRule("release:prod", "PHID-REPO-1"),)
    assert settings.triggers[0].matches("PHID-REPO-1", []) and not settings.triggers[0].matches(None, [])


def test_the_default_variables_are_read_without_a_file() -> None:
    settings = Settings.from_config(
        Config(),
        {"ORCHESTRATOR_PHABRICATOR_URL": "http://127.0.0.1:8080", "ORCHESTRATOR_PHABRICATOR_TOKEN": "api-t"},
    )
    assert settings.conduit_ready and settings.hmac_key is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('token = "api-abc"', "phabricator.token: secrets never live in the configuration file"),
        ('hmac_key = "k"', "phabricator.hmac_key: secrets never live"),
        ('colour = "red"', "phabricator.colour: unknown key"),
        ('url = "phorge.example.com"', "phabricator.url: must be an http(s) URL"),
        ('publish_policy = "strict"', "phabricator.publish_policy: must be one of"),
        ("reconcile_seconds = -1", "phabricator.reconcile_seconds: must be a positive number"),
        ('[[phabricator.triggers]]\nrepository = "X"', "phabricator.triggers[0].start: is required"),
        ('[[phabricator.triggers]]\nstart = "a:b:c"', "phabricator.triggers[0].start: must be NAME"),
        ('[phabricator.harbormaster]\nstar = "ci"', "phabricator.harbormaster: must be a table"),
    ],
)
def test_a_bad_value_is_reported_with_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(
        ConfigError,
        match=re.escape(message),
    ) as caught:
        load(tmp_path, f"[phabricator]\n{text}\n")
    assert str(tmp_path / "orchestrator.toml") in str(caught.value)
