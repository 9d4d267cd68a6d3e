""":meth:`Config.refuse_unknown`, the one check every configuration table uses for keys it does not know."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.config import Config, ConfigError


def test_an_unknown_key_is_named_with_the_file_and_the_known_keys(tmp_path: Path) -> None:
    file = tmp_path / "orchestrator.toml"
    file.write_text("[thing]\nzeta = 1\nalpha = 2\nbeta = 3\n")
    config = Config.load(file)
    message = f"{file.resolve()}: thing.alpha: unknown key (known: beta, gamma)"
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        config.refuse_unknown("thing", config.section("thing"), {"gamma", "beta"})  # the first by name


def test_known_keys_pass_and_the_word_can_change() -> None:
    config = Config({"worker": {"speed": 3, "concurrency": 2}})
    config.refuse_unknown("worker", {"concurrency": 2}, ("concurrency", "prefetch"))
    with pytest.raises(
        ConfigError, match=re.escape("configuration: worker.speed: unknown setting (known: concurrency)")
    ):
        config.refuse_unknown("worker", config.section("worker"), ["concurrency"], what="setting")
