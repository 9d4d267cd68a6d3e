"""Fixtures of the reflow tests: a configuration whose networks are the test networks of this folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import Config
from orchestrator.integrations.reflow.catalog import ReflowSettings

HERE = Path(__file__).resolve().parent


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """An orchestrator.toml naming this folder's networks and test actors."""
    path = tmp_path / "orchestrator.toml"
    path.write_text(
        f'[reflow]\nnetworks = "{HERE / "networks"}"\npythonpath = ["{HERE}"]\n', encoding="utf-8"
    )
    return path


@pytest.fixture
def config(config_file: Path) -> Config:
    return Config.load(config_file)


@pytest.fixture
def settings(config: Config) -> ReflowSettings:
    return ReflowSettings.from_config(config)
