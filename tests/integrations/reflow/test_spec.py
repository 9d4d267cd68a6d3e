"""Invalid networks are refused before anything starts, every problem named by file and JSON pointer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Config, ConfigError
from orchestrator.executions.tasks import TaskError
from orchestrator.integrations.reflow.catalog import ReflowSettings, UnknownNetwork
from orchestrator.integrations.reflow.components import resolve, search_path
from orchestrator.integrations.reflow.runner import run_isolated
from orchestrator.integrations.reflow.spec import NetworkInvalid, NetworkSpec, parse_spec

HERE = Path(__file__).resolve().parent
ACTORS = "orchestrator.integrations.reflow.actors"


def network(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "nodes": {
            "split": {"component": f"{ACTORS}:Split"},
            "each": {"component": "tpl_loop"},
            "gather": {"component": f"{ACTORS}:Gather"},
        },
        "connections": [
            {"from": "split.items", "to": "each.collection"},
            {"from": "split.count", "to": "gather.count"},
            {"from": "each.item", "to": "gather.item"},
        ],
        "input": "split.in",
        "output": "gather.out",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def problems_of(document: Any) -> list[str]:
    try:
        spec = parse_spec("n", document, "n.json")
        resolve(spec)
    except NetworkInvalid as exc:
        return exc.lines()
    return []


def test_a_valid_network_has_no_problems() -> None:
    assert problems_of(network()) == []


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([], "n.json:/: must be a JSON object, not an array"),
        (network(nodes=None), "n.json:/nodes: is required"),
        (network(input=None), "n.json:/input: is required"),
        (network(output=None), "n.json:/output: is required"),
        (network(extra=1), "n.json:/extra: unknown field"),
        (
            network(input="ghost.in"),
            "n.json:/input: node 'ghost' does not exist (nodes: each, gather, split)",
        ),
        (network(input="split"), "n.json:/input: must be an endpoint 'node.port', not 'split'"),
        (
            network(connections=[{"from": "split.items", "to": "nobody.collection"}]),
            "n.json:/connections/0/to: node 'nobody' does not exist",
        ),
        (
            network(output={"all": "gather.out", "bad": "gather.nope"}),
            "n.json:/output/bad: node 'gather' (orchestrator.integrations.reflow.actors:Gather) "
            "has no output port 'nope' (output ports: out)",
        ),
        (
            network(input="split.inn"),
            "n.json:/input: node 'split' (orchestrator.integrations.reflow.actors:Split) "
            "has no input port 'inn' (input ports: in)",
        ),
        (
            network(
                connections=[
                    {"from": "split.items", "to": "each.items"},
                    {"from": "split.count", "to": "gather.count"},
                    {"from": "each.item", "to": "gather.item"},
                ]
            ),
            "n.json:/connections/0/to: node 'each' (tpl_loop) has no input port 'items' "
            "(input ports: collection)",
        ),
        (
            network(nodes={"split": {"component": "tpl_nope"}}, connections=[], output="split.out"),
            "n.json:/nodes/split/component: template 'tpl_nope' is not bundled with Reflow",
        ),
        (
            network(nodes={"split": {"component": "tpl_http_request"}}, connections=[], output="split.out"),
            "n.json:/nodes/split/component: the ports of template 'tpl_http_request' are not known here",
        ),
        (
            network(
                nodes={"split": {"component": "no_such_module:Actor"}}, connections=[], output="split.out"
            ),
            "n.json:/nodes/split/component: cannot import module 'no_such_module': ModuleNotFoundError",
        ),
        (
            network(nodes={"split": {"component": f"{ACTORS}:Nope"}}, connections=[], output="split.out"),
            f"n.json:/nodes/split/component: module '{ACTORS}' has no 'Nope'",
        ),
        (
            network(nodes={"split": {"component": "json:JSONDecoder"}}, connections=[], output="split.out"),
            "n.json:/nodes/split/component: 'json:JSONDecoder' is not a subclass of offbit_reflow.Actor",
        ),
        (
            network(nodes={"split": {"component": "split-it"}}, connections=[], output="split.out"),
            "n.json:/nodes/split/component: 'split-it' is neither a bundled template",
        ),
        (
            network(
                connections=[
                    {"from": "split.items", "to": "each.collection"},
                    {"from": "each.item", "to": "gather.item"},
                    {"from": "gather.out", "to": "split.in"},
                ]
            ),
            "n.json:/connections/2: closes a cycle split -> each -> gather -> split: "
            "networks must be acyclic",
        ),
        (
            network(connections=[{"from": "split.items", "to": "each.collection"}]),
            "n.json:/nodes/gather: is never reached from the input or an initial packet",
        ),
        (
            network(
                nodes={
                    "split": {"component": f"{ACTORS}:Split", "config": {"env_vars": {"A-B": "required"}}},
                    "each": {"component": "tpl_loop", "config": {"env_vars": {"TOKEN": "sometimes"}}},
                    "gather": {"component": f"{ACTORS}:Gather"},
                }
            ),
            "n.json:/nodes/split/config/env_vars/A-B: 'A-B' is not an environment variable name",
        ),
        (
            network(
                nodes={
                    "split": {"component": f"{ACTORS}:Split"},
                    "each": {"component": "tpl_loop", "config": {"env_vars": {"TOKEN": "sometimes"}}},
                    "gather": {"component": f"{ACTORS}:Gather"},
                }
            ),
            "n.json:/nodes/each/config/env_vars/TOKEN: "
            'must be "required", "optional" or "optional:<default>"',
        ),
        (
            network(initial=[{"to": "gather.count", "value": i} for i in range(33)]),
            "n.json:/initial/32: more than 32 initial packets to node 'gather'",
        ),
        (
            network(
                connections=[
                    {"from": "split.items", "to": "each.collection"},
                    {"from": "split.items", "to": "each.collection"},
                    {"from": "each.item", "to": "gather.item"},
                ]
            ),
            "n.json:/connections/1: connection split.items -> each.collection is declared twice",
        ),
    ],
)
def test_each_problem_is_named_by_file_and_pointer(document: Any, expected: str) -> None:
    found = problems_of(document)
    assert any(line.startswith(expected) for line in found), found


def test_every_problem_is_reported_at_once() -> None:
    found = problems_of(network(input="ghost.in", output="gather.nope", extra=True))
    assert [line.split(":")[1] for line in found] == ["/extra", "/input"]


def test_templates_may_declare_their_ports() -> None:
    document = network(
        nodes={"req": {"component": "tpl_http_request", "ports": {"in": ["url"], "out": ["response"]}}},
        connections=[],
        input="req.url",
        output="req.response",
    )
    assert problems_of(document) == []
    document["nodes"]["req"]["ports"]["out"] = ["body"]
    assert problems_of(document) == [
        "n.json:/output: node 'req' (tpl_http_request) has no output port 'response' (output ports: body)"
    ]


def test_actors_import_from_the_configured_pythonpath(settings: ReflowSettings) -> None:
    spec = settings.load("squares")
    with pytest.raises(NetworkInvalid, match="cannot import module 'reflow_test_actors'"):
        resolve(spec)
    with search_path(settings.pythonpath):
        assert set(resolve(spec)) == {"split", "each", "square", "gather"}


def test_the_executor_refuses_an_invalid_network_without_starting_it(settings: ReflowSettings) -> None:
    # broken.json connects to a node that does not exist: Reflow would abort the process on start()
    with pytest.raises(NetworkInvalid) as caught:
        settings.load("broken")
    assert caught.value.lines() == [
        f"{HERE / 'networks' / 'broken.json'}:/connections/0/to: node 'ghost' does not exist (nodes: a)"
    ]


def test_the_child_validates_again_before_starting() -> None:
    # a request that skipped the parent's checks still never reaches start(): no SIGABRT, a clear answer
    request = {
        "network": "broken",
        "source": "broken.json",
        "spec": json.loads((HERE / "networks" / "broken.json").read_text()),
        "input": {},
        "pythonpath": [],
    }
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.integrations.reflow.child"],
        input=json.dumps(request).encode(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["status"] == "failed" and answer["error"] == "Reflow.InvalidNetwork"
    assert "broken.json:/connections/0/to: node 'ghost' does not exist" in answer["cause"]


def test_a_network_whose_port_is_wrong_fails_in_the_child_as_invalid(tmp_path: Path) -> None:
    (tmp_path / "wrong.json").write_text(json.dumps(network(output="gather.outt")))
    settings = ReflowSettings(folder=tmp_path)
    spec: NetworkSpec = settings.load("wrong")  # structurally fine: ports need the components
    with pytest.raises(TaskError) as caught:
        run_isolated(spec, [1], settings, timeout=120)
    assert caught.value.error == "Reflow.InvalidNetwork"
    assert "wrong.json:/output: node 'gather'" in caught.value.cause


def test_unknown_networks_and_unreadable_files(tmp_path: Path) -> None:
    settings = ReflowSettings(folder=tmp_path)
    with pytest.raises(UnknownNetwork, match=r"no reflow network 'x' in .* \(networks: none\)"):
        settings.load("x")
    with pytest.raises(UnknownNetwork):
        settings.load("../x")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(NetworkInvalid, match=r"bad.json:/: not valid JSON: .* line 1 column 2"):
        settings.load("bad")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("networks = 3", "reflow.networks: must be a folder path"),
        ("pythonpath = 'x'", "reflow.pythonpath: must be a list of folder paths"),
        ("timeout_seconds = -1", "reflow.timeout_seconds: must be positive"),
        ("timeout_seconds = 'soon'", "reflow.timeout_seconds: must be a number of seconds"),
        ("folder = 'x'", "reflow.folder: unknown key"),
    ],
)
def test_bad_configuration_is_named_by_key(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "orchestrator.toml"
    path.write_text(f"[reflow]\n{table}\n")
    with pytest.raises(ConfigError, match=message):
        ReflowSettings.from_config(Config.load(path))


def test_folders_are_relative_to_the_configuration_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "orchestrator.toml"
    path.parent.mkdir()
    path.write_text('[reflow]\nnetworks = "nets"\npythonpath = ["actors"]\ntimeout_seconds = 30\n')
    settings = ReflowSettings.from_config(Config.load(path))
    assert settings.folder == path.parent.resolve() / "nets"
    assert settings.pythonpath == (path.parent.resolve() / "actors",)
    assert settings.timeout_seconds == 30.0
    assert ReflowSettings.from_config(Config()).folder == Path("statemachines/networks")
