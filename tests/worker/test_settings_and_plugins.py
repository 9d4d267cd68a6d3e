"""The ``[worker]`` table, command-line overrides, and loading plugins (``module:function``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import Config, ConfigError
from orchestrator.errors import UsageError
from orchestrator.runtime import Runtime
from orchestrator.worker import WorkerSettings, plugins


def config(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "orchestrator.toml"
    path.write_text(text)
    return Config.load(path)


def test_the_worker_table_is_read_and_the_command_line_overrides_it(tmp_path: Path) -> None:
    settings = WorkerSettings.from_config(
        config(
            tmp_path,
            "[worker]\nconcurrency = 8\nqueues = ['tasks']\nlease_seconds = 12\n"
            "plugins = ['a.b:install']\nmetrics_port = 9464\n",
        )
    )
    assert (settings.concurrency, settings.queues, settings.lease_seconds) == (8, ("tasks",), 12.0)
    assert settings.plugins == ("a.b:install",) and settings.metrics_port == 9464
    assert settings.claim_ahead == 8 and settings.renew_every == 4.0  # defaults follow the others
    changed = settings.override(concurrency=2, lease_seconds=None, prefetch=0)
    assert (changed.concurrency, changed.lease_seconds, changed.claim_ahead) == (2, 12.0, 0)
    assert WorkerSettings.from_config(Config()) == WorkerSettings()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[worker]\nconcurrency = 0", "worker.concurrency: must be at least 1"),
        ("[worker]\nconcurrency = true", "worker.concurrency: must be an integer"),
        ("[worker]\ngrace_seconds = -1", "worker.grace_seconds: must be 0 seconds or more"),
        ("[worker]\nheartbeat_seconds = 40", "worker.heartbeat_seconds: must be more than 0 and less than"),
        ("[worker]\nmetrics_port = 70000", "worker.metrics_port: must be a TCP port"),
        ("[worker]\nqueues = []\nprefetch = -2", "worker.prefetch: must be 0 or more"),
        ("[worker]\nuntil_idle = true", "worker.until_idle: unknown setting"),
        ("worker = 3", "worker: must be a table"),
    ],
)
def test_bad_worker_settings_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        WorkerSettings.from_config(config(tmp_path, text))
    assert message in str(raised.value) and "orchestrator.toml" in str(raised.value)


def broken_install(runtime: Runtime) -> None:
    raise RuntimeError("no such network")


not_callable = 42


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("worker.test_settings_and_plugins", "expected MODULE:FUNCTION"),
        ("worker.nope:install", "cannot import 'worker.nope'"),
        ("worker.test_settings_and_plugins:missing", "has no 'missing'"),
        ("worker.test_settings_and_plugins:not_callable", "'not_callable' is not callable"),
    ],
)
def test_plugins_that_cannot_load_are_usage_errors(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        plugins.load(spec)


def test_a_plugin_that_fails_is_a_usage_error_and_nothing_after_it_runs(runtime: Runtime) -> None:
    before = dict(runtime.executors)
    specs = ["worker.test_settings_and_plugins:broken_install", "worker.plugin:install"]
    with pytest.raises(UsageError, match="failed to install: RuntimeError: no such network"):
        plugins.install(specs, runtime)
    assert runtime.executors == before


def test_plugins_install_in_order(runtime: Runtime) -> None:
    runtime.executors.pop("arn")
    plugins.install(["worker.plugin:install"], runtime)
    assert callable(runtime.executors["arn"])
