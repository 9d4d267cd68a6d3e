"""The template ports this package knows are the ports the bundled templates really use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.executions.tasks import TaskError
from orchestrator.integrations.reflow.catalog import ReflowSettings
from orchestrator.integrations.reflow.components import TEMPLATE_PORTS
from orchestrator.integrations.reflow.runner import run_isolated

CASES: dict[str, tuple[Any, Any]] = {
    "tpl_loop": ([10, 20], {"index": 0, "value": 10}),
    "tpl_passthrough": ({"a": 1}, {"a": 1}),
    "tpl_map": ([1, 2], [1, 2]),
    "tpl_filter": ([1, 2], [1, 2]),
    "tpl_reduce": ([1, 2], 3.0),
}


def one_node(folder: Path, template: str, **extra: Any) -> ReflowSettings:
    inports, outports = TEMPLATE_PORTS[template]
    spec = {
        "nodes": {"t": {"component": template}},
        "connections": [],
        "input": f"t.{inports[0]}",
        "output": f"t.{outports[0]}",
        **extra,
    }
    (folder / "one.json").write_text(json.dumps(spec))
    return ReflowSettings(folder=folder)


def test_every_known_template_is_exercised() -> None:
    assert set(CASES) == set(TEMPLATE_PORTS)


@pytest.mark.parametrize("template", sorted(CASES))
def test_a_packet_goes_in_and_out_through_the_known_ports(tmp_path: Path, template: str) -> None:
    settings = one_node(tmp_path, template)
    given, expected = CASES[template]
    assert run_isolated(settings.load("one"), given, settings, timeout=120) == expected


def test_a_packet_on_a_declared_error_port_fails_the_task(tmp_path: Path) -> None:
    settings = one_node(tmp_path, "tpl_map", errors=["t.error"])
    with pytest.raises(TaskError) as caught:
        run_isolated(settings.load("one"), "not a list", settings, timeout=120)
    assert caught.value.error == "Reflow.ActorFailed"
    assert caught.value.cause == "network 'one' sent an error at t.error: Expected Array on input port"
