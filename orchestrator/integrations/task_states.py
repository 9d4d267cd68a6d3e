"""Every Task state of a definition, for the integrations' checks of what a definition asks for.

The checks (:func:`orchestrator.integrations.definition_checks`) run on valid definitions only, and
each looks at Task states wherever they are: at the top level, in the branches of Parallel states and
in the processors of Map states (``ItemProcessor``, or the older ``Iterator``). :func:`task_states`
walks them once, in document order, with the JSON Pointer of each state (for ``/pointer: message``
problems) and whether its expressions are JSONata (``QueryLanguage``, inherited from the enclosing
machine or state).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.asl.problems import child


@dataclass(frozen=True, slots=True)
class TaskState:
    """One Task state: where it is, its name, its fields and its query language."""

    pointer: str
    """The JSON Pointer of the state: ``/States/Fan/Branches/0/States/Build``."""
    name: str
    state: Mapping[str, Any]
    jsonata: bool
    """Whether its expressions are JSONata (else JSONPath)."""

    @property
    def resource(self) -> str:
        """The state's ``Resource`` (empty when it has none)."""
        return str(self.state.get("Resource", ""))


def task_states(definition: Any, pointer: str = "", jsonata: bool = False) -> Iterator[TaskState]:
    """Every Task state of ``definition`` (a state machine, or a branch or processor of one)."""
    if not isinstance(definition, Mapping):
        return
    jsonata = _jsonata(definition, jsonata)
    states = definition.get("States")
    if not isinstance(states, Mapping):
        return
    for name, state in states.items():
        if not isinstance(state, Mapping):
            continue
        here = child(pointer, "States", str(name))
        state_jsonata = _jsonata(state, jsonata)
        if state.get("Type") == "Task":
            yield TaskState(here, str(name), state, state_jsonata)
        branches = state.get("Branches")
        for index, branch in enumerate(branches if isinstance(branches, list) else []):
            yield from task_states(branch, child(here, "Branches", index), state_jsonata)
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from task_states(state[key], child(here, key), state_jsonata)


def _jsonata(node: Mapping[str, Any], inherited: bool) -> bool:
    language = node.get("QueryLanguage")
    return inherited if language is None else language == "JSONata"
